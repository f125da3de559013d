"""`dfbench run`: one result per (model, data set), resumable, one writer, written atomically.

Three steps: :func:`prepare` checks every input (cheap checks first, then weights) and
works out the run identity; :mod:`dfbench.multi_run` computes the clips the records of
that identity lack (for one pair or many, in one or several processes); :func:`write`
aggregates them into the result file. :func:`execute` runs one pair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfbench.errors import DfbenchError
from dfbench.feature_cache import FeatureCache
from dfbench.files import check_writable, write_json_atomic
from dfbench.hub import check_hub_cached
from dfbench.protocol_aggregation import protocol_entries
from dfbench.record_log import RecordLog
from dfbench.result_store import read_result
from dfbench.results import aggregate, headline
from dfbench.run_checks import check_counts, check_local_file, parse_device
from dfbench.run_prepare import Prepared, prepare, provenance
from dfbench.schema import MetricEntry, RunResult


@dataclass
class RunOptions:
    """Everything `dfbench run` takes; the defaults are the paper's protocol."""

    model: str
    dataset: str
    data_root: str | None = None
    feature_space: str | None = None
    feature_space_path: str | None = None
    checkpoint: str | None = None
    num_samples: int | None = None
    horizons: tuple[str, ...] = ("short", "mid")
    batch_size: int = 1
    device: str = "cpu"
    seed: int = 0
    limit: int | None = None
    output_dir: str = "results"
    heads: dict[str, str] = field(default_factory=dict)
    protocol: str | None = None  # None: the model's (its spec's default_protocol)
    protocol_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    precision: str = "auto"
    feature_cache_dir: str | None = None
    num_workers: int | None = None  # decoding processes; None: 0 for synthetic, 2 for files
    progress: bool = True
    compile: bool = False  # torch.compile the networks; part of the identity (fp numerics may move)

    def check(self) -> None:
        """The checks that need nothing loaded: counts, device, output dir, files named here."""
        check_counts(self.num_samples, self.batch_size, self.limit, self.num_workers)
        parse_device(self.device)
        check_writable(Path(self.output_dir))
        check_local_file(self.checkpoint, "--checkpoint")
        check_hub_cached(self.checkpoint)
        for task, source in self.heads.items():
            check_local_file(source, f"--head {task}")
            check_hub_cached(source)
        if self.feature_space_path is not None and not Path(self.feature_space_path).is_dir():
            raise DfbenchError(f"--feature-space-path '{self.feature_space_path}' is not a folder; "
                               "pass a model folder with config.json and model.safetensors.")
        if self.feature_cache_dir is not None:
            check_writable(Path(self.feature_cache_dir), "--feature-cache")


@dataclass
class RunOutcome:
    """What a `dfbench run` produced, for the summary it prints.

    Attributes:
        reused: the result of this identity already existed and was reported, not recomputed.
        resumed: clips taken from earlier invocations' records.
        latest: whether ``latest.json`` now names this result (a partial one never
            displaces a complete one).
        notes: damaged records that were recovered from.
    """

    path: Path
    result: RunResult
    reused: bool = False
    resumed: int = 0
    latest: bool = True
    notes: list[str] = field(default_factory=list)


def write(prep: Prepared, log: RecordLog, path: Path, started: float, resumed: int,
          extra: dict[str, Any] | None = None) -> RunResult:
    """Aggregates the records and writes the result file atomically; ``extra``: more provenance."""
    records, wall_time = log.finalize(prep.sample_ids, time.perf_counter() - started)
    try:
        entries = aggregate([r.to_json() for r in records], prep.tasks)
        entries = protocol_entries(entries, [r.to_json() for r in records], prep.tasks, prep.identity.protocol_options)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DfbenchError(f"the records in {log.final_path} cannot be aggregated ({type(err).__name__}: {err}); "
                           "delete that file to compute this result afresh.") from err
    chosen = {h: prep.protocol.horizons[h] for h in prep.options.horizons}
    result = RunResult(
        identity=prep.identity,
        stochastic=bool(prep.model_cls.stochastic),
        num_clips=len(prep.sample_ids),
        complete=len(prep.sample_ids) == prep.num_all_clips,
        metrics=[MetricEntry.load(e, "headline") for e in headline(entries, chosen)],
        metrics_all_steps=[MetricEntry.load(e, "aggregate") for e in entries],
        records=log.final_path.name,
        resumed_clips=resumed,
        provenance={**provenance(prep, chosen, wall_time, log.prior_invocations + 1), **(extra or {})},
    )
    write_json_atomic(path, result.to_json())
    return result


def finished(path: Path, prep: Prepared) -> RunResult | None:
    """The finished result of this identity, if one was written before."""
    if not path.is_file():
        return None
    try:
        result = read_result(path)
    except DfbenchError:
        return None  # damaged: computed again from its records
    return result if result.identity == prep.identity else None


def execute(options: RunOptions, feature_cache: FeatureCache | None = None, console=None) -> RunOutcome:
    """Runs (or resumes, or reports) the result of ``options``' identity."""
    from dfbench.multi_run import execute_all

    return execute_all([options], feature_cache, console)[0]


def run(options: RunOptions, feature_cache: FeatureCache | None = None, console=None) -> Path:
    """Runs the evaluation; returns the path of ``<output_dir>/<dataset>/<model>/<slug>.json``."""
    return execute(options, feature_cache, console).path


__all__ = ["RunOptions", "RunOutcome", "execute", "finished", "prepare", "run", "write"]
