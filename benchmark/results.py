"""Results files: the typed summary JSON, its per-clip records, atomic writes.

``<output-dir>/<dataset>/<model>.json`` holds the headline metrics and provenance;
``<model>.records.jsonl`` beside it holds one line of sufficient statistics per clip,
from which every number can be recomputed. While a run is in progress the records
grow in ``<model>.records.jsonl.partial``, which is also what a resumed run reads.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dfbench.errors import DfbenchError
from dfbench.tasks import Task, get_task

SCHEMA_VERSION = 1


def stat_key(task: str, horizon: str, step: int, stat: str) -> str:
    return f"{task}/{horizon}/{step}/{stat}"


def parse_stat_key(key: str) -> tuple[str, str, int, str]:
    task, horizon, step, stat = key.split("/")
    return task, horizon, int(step), stat


def aggregate(records: Iterable[dict[str, Any]], num_classes: dict[str, int]) -> list[dict[str, Any]]:
    """Sums per-clip statistics over the data set -> one metric entry per key and metric.

    Each task merges and computes its own statistics, in its metrics' units (the
    paper's: mIoU in percent, RMSE in metres).
    """
    tasks: dict[str, Task] = {}
    totals: dict[str, Any] = {}
    for record in records:
        for key, data in record["stats"].items():
            name = parse_stat_key(key)[0]
            if name not in tasks:
                if name not in num_classes:
                    raise DfbenchError(
                        f"records hold '{name}' statistics but the data set declares only {sorted(num_classes)}; "
                        "aggregate them with the data set that wrote them."
                    )
                tasks[name] = get_task(name)
            stats = tasks[name].from_json(data, num_classes[name])
            totals[key] = tasks[name].merge(totals[key], stats) if key in totals else stats
    entries = []
    for key in sorted(totals):
        name, horizon, step, stat = parse_stat_key(key)
        for metric, value in tasks[name].compute(totals[key]).items():
            entries.append({"metric": metric, "horizon": horizon, "step": step, "stat": stat, "value": value})
    return entries


def headline(entries: list[dict[str, Any]], horizons: dict[str, int]) -> list[dict[str, Any]]:
    """The reported numbers: each horizon's last step (short = t0, mid = t2)."""
    return [
        {k: e[k] for k in ("metric", "horizon", "stat", "value")}
        for e in entries
        if e["horizon"] in horizons and e["step"] == horizons[e["horizon"]] - 1
    ]


def check_writable(directory: Path) -> None:
    """Fails early, before any compute, if results cannot be written there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise DfbenchError(
            f"cannot write results to {directory} ({err.strerror}); pass a writable --output-dir."
        ) from err


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Writes to a temporary file in the same folder, then renames it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, allow_nan=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RecordLog:
    """The append-only per-clip records of one run, resumable after an interruption.

    The first line is a header describing the run; a resumed run whose header differs
    (another seed, model, checkpoint, protocol...) starts afresh.
    """

    def __init__(self, final_path: Path, header: dict[str, Any]) -> None:
        self.final_path = final_path
        self.partial_path = final_path.with_name(final_path.name + ".partial")
        self.header = header
        self.records: dict[str, dict[str, Any]] = {}
        self._load_existing()

    def _load_existing(self) -> None:
        for source in (self.partial_path, self.final_path):
            if not source.is_file():
                continue
            lines = source.read_text().splitlines()
            if not lines or json.loads(lines[0]).get("header") != self.header:
                continue
            for line in lines[1:]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by the interruption: recompute that clip
                self.records[record["sample_id"]] = record
            break
        self._rewrite_partial()

    def _rewrite_partial(self) -> None:
        tmp = self.partial_path.with_name(self.partial_path.name + ".tmp")
        with open(tmp, "w") as handle:
            handle.write(json.dumps({"header": self.header}) + "\n")
            for record in self.records.values():
                handle.write(json.dumps(record) + "\n")
        os.replace(tmp, self.partial_path)

    def done(self, sample_id: str) -> bool:
        return sample_id in self.records

    def append(self, records: list[dict[str, Any]]) -> None:
        with open(self.partial_path, "a") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
                self.records[record["sample_id"]] = record
            handle.flush()
            os.fsync(handle.fileno())

    def finalize(self, order: list[str]) -> list[dict[str, Any]]:
        """Rewrites the records in data-set order and moves them to the final name."""
        ordered = [self.records[sid] for sid in order]
        tmp = self.partial_path.with_name(self.partial_path.name + ".tmp")
        with open(tmp, "w") as handle:
            handle.write(json.dumps({"header": self.header}) + "\n")
            for record in ordered:
                handle.write(json.dumps(record) + "\n")
        os.replace(tmp, self.final_path)
        self.partial_path.unlink(missing_ok=True)
        return ordered


def read_records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Header and records of a ``.records.jsonl`` file."""
    lines = Path(path).read_text().splitlines()
    return json.loads(lines[0])["header"], [json.loads(line) for line in lines[1:]]
