"""The per-clip records of one result, resumable after an interruption.

File format (JSON lines): the first line ``{"schema_version": 2, "header": <run identity>}``;
then one :class:`~dfbench.schema.ClipRecord` per line; ``{"state": {...}}`` lines carry
the compute time summed over every invocation so far. While a run is in progress the
records grow in ``<slug>.records.jsonl.partial``; the finished file drops the suffix.

A resumed run reads only a file whose header equals its identity. Damage is recovered,
never fatal: an unreadable header discards the file, an unreadable or foreign line is
skipped, and the clips it held are computed again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dfbench.errors import DfbenchError
from dfbench.files import file_mode, writing
from dfbench.schema import SCHEMA_VERSION, ClipRecord, RunIdentity


def _header_line(identity: RunIdentity) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, "header": identity.to_json()}) + "\n"


def _state_line(wall_time_s: float, invocations: int) -> str:
    return json.dumps({"state": {"wall_time_s": round(wall_time_s, 3), "invocations": invocations}}) + "\n"


class RecordLog:
    """Records of one identity; nothing is written before the first batch arrives.

    Attributes:
        records: sample id -> record, as read back and appended.
        prior_wall_time_s: compute time of the earlier invocations that built these records.
        notes: one line per damaged file or line that was recovered from.
    """

    def __init__(self, final_path: Path, identity: RunIdentity) -> None:
        self.final_path = Path(final_path)
        self.partial_path = self.final_path.with_name(self.final_path.name + ".partial")
        self.identity = identity
        self.records: dict[str, ClipRecord] = {}
        self.prior_wall_time_s = 0.0
        self.prior_invocations = 0
        self.notes: list[str] = []
        self._clean = False  # whether the partial file holds exactly self.records
        self._load_existing()

    def _load_existing(self) -> None:
        for source in (self.partial_path, self.final_path):
            if source.is_file() and self._read(source):
                self._clean = source == self.partial_path and not self.notes
                return

    def _read(self, source: Path) -> bool:
        try:
            lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as err:
            raise DfbenchError(f"cannot read {source} ({err.strerror}); delete it to start this result afresh.") from err
        try:
            first = json.loads(lines[0]) if lines else None
            header = RunIdentity.load(first.get("header") if isinstance(first, dict) else None, str(source))
        except (ValueError, DfbenchError):
            self.notes.append(f"{source}: unreadable header, its records are computed again")
            return False
        if header != self.identity:
            self.notes.append(f"{source}: records of another run ({', '.join(header.differences(self.identity))} "
                              "differ), computed again")
            return False
        skipped = 0
        for line in lines[1:]:
            try:
                data = json.loads(line)
                if isinstance(data, dict) and isinstance(data.get("state"), dict):
                    self.prior_wall_time_s = float(data["state"].get("wall_time_s", 0.0))
                    self.prior_invocations = int(data["state"].get("invocations", 0))
                    continue
                record = ClipRecord.load(data, str(source))
            except (ValueError, TypeError, DfbenchError):
                skipped += 1  # a line cut by an interruption, or not a record: recompute its clip
                continue
            self.records[record.sample_id] = record
        if skipped:
            self.notes.append(f"{source}: {skipped} unreadable line(s) skipped; any clip they held is computed again")
        return True

    def done(self, sample_id: str) -> bool:
        return sample_id in self.records

    def _rewrite(self, target: Path, records: list[ClipRecord], wall_time_s: float, invocations: int) -> None:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with writing(target):
            try:
                fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, file_mode())
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(_header_line(self.identity))
                    for record in records:
                        handle.write(json.dumps(record.to_json()) + "\n")
                    handle.write(_state_line(wall_time_s, invocations))
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def append(self, records: list[dict[str, Any]], wall_time_s: float) -> None:
        """Adds a batch's records; ``wall_time_s`` is this invocation's compute so far."""
        typed = [ClipRecord.load(r, "the evaluator's output") for r in records]
        total, invocations = self.prior_wall_time_s + wall_time_s, self.prior_invocations + 1
        if not self._clean:
            self.records.update((r.sample_id, r) for r in typed)
            self._rewrite(self.partial_path, list(self.records.values()), total, invocations)
            self._clean = True
            return
        with writing(self.partial_path), open(self.partial_path, "a", encoding="utf-8") as handle:
            for record in typed:
                handle.write(json.dumps(record.to_json()) + "\n")
                self.records[record.sample_id] = record
            handle.write(_state_line(total, invocations))
            handle.flush()
            os.fsync(handle.fileno())

    def finalize(self, order: list[str], wall_time_s: float) -> tuple[list[ClipRecord], float]:
        """Writes the records in data-set order under the final name.

        Returns:
            The ordered records and the compute time summed over every invocation.
        """
        ordered = [self.records[sid] for sid in order]
        total = self.prior_wall_time_s + wall_time_s
        self._rewrite(self.final_path, ordered, total, self.prior_invocations + 1)
        self.partial_path.unlink(missing_ok=True)
        return ordered, total


def read_records(path: Path) -> tuple[RunIdentity, list[ClipRecord]]:
    """Identity and records of a ``.records.jsonl`` file (damaged lines are skipped)."""
    first = json.loads(Path(path).read_text(encoding="utf-8").splitlines()[0])
    log = RecordLog(Path(path), RunIdentity.load(first.get("header"), str(path)))
    return log.identity, list(log.records.values())
