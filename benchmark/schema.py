"""The typed results schema: run identity, clip record, metric entry and run result.

Every results file is written through these classes (``run.py``) and read back through
them (``tables.py`` via ``result_store.py``), so the JSON has one spelling per key and
one version check. ``SCHEMA_VERSION`` changes when the JSON layout changes;
``dfbench.NUMERICS_VERSION`` (part of every identity) changes when the numbers do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from dfbench.errors import DfbenchError

SCHEMA_VERSION = 2
STATS = ("best", "mean", "single", "ensemble")  # "ensemble": sample scores of all S samples


def _bad(where: str, reason: str) -> DfbenchError:
    return DfbenchError(f"malformed results file {where}: {reason}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(data: dict, key: str, kind: type | tuple[type, ...], where: str, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _bad(where, f"'{key}' is {value!r}, expected {getattr(kind, '__name__', kind)}")
    return value


def _object(data: Any, where: str, what: str) -> dict:
    if not isinstance(data, dict):
        raise _bad(where, f"{what} must be a JSON object")
    return data


@dataclass(frozen=True)
class RunIdentity:
    """Everything that determines a result's numbers; nothing else (batch size, workers and
    device do not change them and are provenance). Records resume only under an equal identity.

    Attributes:
        weights: sha256 of every weight file loaded, by role (``deltaworld``, ``deltatok``,
            ``head/seg``, ``feature_space``...).
        protocol_options: the protocol's settings (``--protocol-arg``, e.g. the depth aggregation).
        limit: the clip set: the first ``limit`` clips, or all of them (None).
        numerics_version: ``dfbench.NUMERICS_VERSION`` of the code that computed the numbers.
    """

    model: str
    dataset: str
    dataset_version: str
    feature_space: str
    protocol: str
    protocol_version: str
    seed: int
    num_samples: int
    horizons: tuple[str, ...]
    precision: str
    limit: int | None
    numerics_version: int
    weights: dict[str, str] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    protocol_options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["horizons"] = list(self.horizons)
        if not self.protocol_options:
            del out["protocol_options"]  # protocols without options keep their identities (and digests)
        return out

    @classmethod
    def load(cls, data: Any, where: str) -> RunIdentity:
        data = _object(data, where, "the run identity")
        strings = ("model", "dataset", "dataset_version", "feature_space", "protocol", "protocol_version", "precision")
        values = {k: _need(data, k, str, where) for k in strings}
        values.update({k: _need(data, k, int, where) for k in ("seed", "num_samples", "numerics_version")})
        values["limit"] = _need(data, "limit", int, where, optional=True)
        horizons = _need(data, "horizons", list, where)
        if not all(isinstance(h, str) for h in horizons):
            raise _bad(where, f"'horizons' must be names, got {horizons!r}")
        weights = _object(data.get("weights", {}), where, "'weights'")
        if not all(isinstance(v, str) for v in weights.values()):
            raise _bad(where, "'weights' must map roles to sha256 strings")
        return cls(
            **values,
            horizons=tuple(horizons),
            weights=dict(weights),
            model_options=dict(_object(data.get("model_options", {}), where, "'model_options'")),
            dataset_options=dict(_object(data.get("dataset_options", {}), where, "'dataset_options'")),
            protocol_options=dict(_object(data.get("protocol_options", {}), where, "'protocol_options'")),
        )

    def digest(self) -> str:
        """Short hash of the identity: equal identities, equal digests."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def slug(self) -> str:
        """Readable file stem, e.g. ``seed0-n20-fp32-all-1a2b3c4d5e``."""
        clips = "all" if self.limit is None else f"limit{self.limit}"
        return f"seed{self.seed}-n{self.num_samples}-{self.precision}-{clips}-{self.digest()}"

    def differences(self, other: RunIdentity) -> list[str]:
        """Names of the fields that differ."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True)
class ClipRecord:
    """One clip's sufficient statistics, keyed ``task/horizon/step/stat``."""

    sample_id: str
    stats: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"sample_id": self.sample_id, "stats": self.stats}

    @classmethod
    def load(cls, data: Any, where: str) -> ClipRecord:
        data = _object(data, where, "a clip record")
        sample_id = _need(data, "sample_id", str, where)
        stats = _object(data.get("stats"), where, f"'stats' of clip {sample_id}")
        for key, value in stats.items():
            parts = key.split("/")
            if len(parts) != 4 or not parts[2].isdigit() or not isinstance(value, dict):
                raise _bad(where, f"clip {sample_id} has a malformed statistic {key!r}")
        return cls(sample_id, stats)


@dataclass(frozen=True)
class MetricEntry:
    """One number of a result; ``step`` is None for the headline entries (each horizon's last step)."""

    metric: str
    horizon: str
    stat: str
    value: float
    step: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "horizon": self.horizon}
        if self.step is not None:
            out["step"] = self.step
        out.update(stat=self.stat, value=self.value)
        return out

    @classmethod
    def load(cls, data: Any, where: str) -> MetricEntry:
        if not isinstance(data, dict) or not isinstance(data.get("metric"), str):
            raise _bad(where, f"metric entry {data!r} has no 'metric' name")
        if not isinstance(data.get("horizon"), str):
            raise _bad(where, f"horizon {data.get('horizon')!r} is not a name")
        if data.get("stat") not in STATS:
            raise _bad(where, f"stat {data.get('stat')!r} is not one of {', '.join(STATS)}")
        if not _is_number(data.get("value")):
            raise _bad(where, f"value {data.get('value')!r} is not a number")
        step = data.get("step")
        if step is not None and not (isinstance(step, int) and not isinstance(step, bool)):
            raise _bad(where, f"step {step!r} is not an integer")
        return cls(data["metric"], data["horizon"], data["stat"], float(data["value"]), step)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.metric, self.horizon, self.stat


@dataclass(frozen=True)
class RunResult:
    """A finished (or ``--limit``-partial) run: identity, numbers and provenance.

    Attributes:
        complete: every clip of the data set was evaluated; False marks a partial result.
        records: file name of the per-clip records beside the result.
        resumed_clips: clips taken from earlier invocations' records.
        provenance: facts that do not change the numbers (device, batch size, commit,
            wall time summed over all invocations...).
    """

    identity: RunIdentity
    stochastic: bool
    num_clips: int
    complete: bool
    metrics: list[MetricEntry]
    metrics_all_steps: list[MetricEntry]
    records: str
    resumed_clips: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.identity.model

    @property
    def dataset(self) -> str:
        return self.identity.dataset

    def headline_values(self) -> dict[tuple[str, str, str], float]:
        return {e.key: e.value for e in self.metrics}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "dataset": self.dataset,
            "stochastic": self.stochastic,
            "num_samples": self.identity.num_samples,
            "num_clips": self.num_clips,
            "complete": self.complete,
            "partial": not self.complete,
            "identity": self.identity.to_json(),
            "identity_hash": self.identity.digest(),
            "metrics": [e.to_json() for e in self.metrics],
            "metrics_all_steps": [e.to_json() for e in self.metrics_all_steps],
            "records": self.records,
            "resumed_clips": self.resumed_clips,
            "provenance": self.provenance,
        }

    @classmethod
    def load(cls, data: Any, where: str) -> RunResult:
        data = _object(data, where, "a result")
        if data.get("schema_version") != SCHEMA_VERSION:
            found = data.get("schema_version")
            raise _bad(where, f"schema_version is {found!r}, this dfbench reads {SCHEMA_VERSION}; rerun 'dfbench run'")
        for key in ("model", "dataset"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise _bad(where, f"'{key}' must be a non-empty string")
        if not isinstance(data.get("complete"), bool):
            raise _bad(where, "'complete' must be true or false")
        identity = RunIdentity.load(data.get("identity"), where)
        if (identity.model, identity.dataset) != (data["model"], data["dataset"]):
            raise _bad(where, "'model' and 'dataset' differ from the identity's")
        for key in ("metrics", "metrics_all_steps"):
            if not isinstance(data.get(key, []), list):
                raise _bad(where, f"'{key}' must be a list")
        metrics = [MetricEntry.load(e, where) for e in data["metrics"]]
        seen: set[tuple[str, str, str]] = set()
        for entry in metrics:
            if entry.key in seen:
                raise _bad(where, f"{'/'.join(entry.key)} appears twice")
            seen.add(entry.key)
        num_clips = data.get("num_clips")
        if not isinstance(num_clips, int) or isinstance(num_clips, bool) or num_clips < 0:
            raise _bad(where, f"'num_clips' is {num_clips!r}, expected a count")
        return cls(
            identity=identity,
            stochastic=bool(data.get("stochastic", False)),
            num_clips=num_clips,
            complete=data["complete"],
            metrics=metrics,
            metrics_all_steps=[MetricEntry.load(e, where) for e in data.get("metrics_all_steps", [])],
            records=str(data.get("records", "")),
            resumed_clips=int(data.get("resumed_clips", 0)),
            provenance=dict(_object(data.get("provenance", {}), where, "'provenance'")),
        )
