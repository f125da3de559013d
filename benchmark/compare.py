"""`dfbench compare`: model A minus model B on the same clips, with intervals and p-values.

Reads each model's latest result on the data set and the records beside it, pairs the
statistics (each stat of A against B's single prediction when B is deterministic,
A's single prediction against each stat of B when A is, the same stat otherwise)
and hands them to :func:`dfbench.uncertainty.paired_difference`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dfbench.errors import DfbenchError
from dfbench.result_store import latest_result_path, read_result
from dfbench.results import parse_stat_key, stat_key
from dfbench.schema import RunResult
from dfbench.uncertainty import DEFAULT_LEVEL, DEFAULT_RESAMPLES, PairedDifference, paired_difference


def load_with_records(results_dir: Path | str, dataset: str, model: str,
                      protocol: str | None = None) -> tuple[RunResult, list[dict]]:
    """The latest result of ``model`` on ``dataset`` (under the protocol named ``protocol``) and its clip records."""
    from dfbench.record_log import read_records

    path = latest_result_path(results_dir, dataset, model, protocol)
    if path is None or not path.is_file():
        raise DfbenchError(f"no result of {model} on {dataset} under {results_dir}; "
                           f"run 'dfbench run --model {model} --dataset {dataset}' first.")
    result = read_result(path)
    records_path = path.parent / result.records
    if not result.records or not records_path.is_file():
        raise DfbenchError(f"the records of {path} are missing ({records_path}); rerun 'dfbench run' for {model}.")
    identity, records = read_records(records_path)
    if identity != result.identity:
        raise DfbenchError(f"{records_path} holds records of another run than {path}; rerun 'dfbench run' for {model}.")
    return result, [r.to_json() for r in records]


def headline_keys(records: list[dict]) -> dict[tuple[str, str, str], str]:
    """(task, horizon, stat) -> its key at the horizon's last step (the headline number)."""
    last: dict[tuple[str, str, str], int] = {}
    for record in records:
        for key in record["stats"]:
            task, horizon, step, stat = parse_stat_key(key)
            last[(task, horizon, stat)] = max(step, last.get((task, horizon, stat), -1))
    return {(t, h, s): stat_key(t, h, step, s) for (t, h, s), step in sorted(last.items())}


def stat_pairs(keys_a: dict, keys_b: dict, a_stochastic: bool, b_stochastic: bool) -> list[tuple[str, str]]:
    """The (key of A, key of B) pairs to compare, in A's key order."""
    pairs = []
    for (task, horizon, stat), key in keys_a.items():
        if not b_stochastic:
            partners = [(task, horizon, "single")] if stat != "ensemble" else []
        elif not a_stochastic:
            partners = [(task, horizon, s) for s in ("best", "mean")]
        else:
            partners = [(task, horizon, stat)]
        pairs += [(key, keys_b[p]) for p in partners if p in keys_b]
    return pairs


def compare(
    results_dir: Path | str,
    model_a: str,
    model_b: str,
    dataset: str,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    protocol: str | None = None,
) -> tuple[list[PairedDifference], int]:
    """A minus B for every metric and horizon (headline steps), and the number of clips they share.

    The expected best-of-k curve is left out: its last point is already a metric of its own.
    """
    from dfbench.run_prepare import result_tasks

    result_a, records_a = load_with_records(results_dir, dataset, model_a, protocol)
    result_b, records_b = load_with_records(results_dir, dataset, model_b, protocol)
    pairs = stat_pairs(headline_keys(records_a), headline_keys(records_b), result_a.stochastic, result_b.stochastic)
    if not pairs:
        raise DfbenchError(f"{model_a} and {model_b} share no metric on {dataset}; compare results of the same tasks.")
    if result_a.identity.protocol != result_b.identity.protocol:
        raise DfbenchError(f"{model_a} was run under protocol {result_a.identity.protocol} and {model_b} under "
                           f"{result_b.identity.protocol}; compare results of one protocol.")
    num_classes = result_tasks(dataset, result_a.identity.protocol)
    found = paired_difference(records_a, records_b, num_classes, pairs, level=level, resamples=resamples, seed=seed)
    metrics, horizons = list(metric_decimals()), list(result_a.identity.horizons)
    stats = ("best", "mean", "single", "ensemble")

    def order(d: PairedDifference) -> tuple[int, int, int, int]:
        known = d.metric in metrics
        return (not known, metrics.index(d.metric) if known else 0,
                horizons.index(d.horizon) if d.horizon in horizons else len(horizons), stats.index(d.stat_a))

    return sorted((d for d in found if not d.metric.startswith("best_of_")), key=order), len(records_a)


def to_json(differences: list[PairedDifference]) -> list[dict[str, Any]]:
    """The ``--json`` form; NaN (a metric without data) becomes null."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.to_json().items()}
            for d in differences]


def metric_decimals() -> dict[str, tuple[str, int]]:
    """Metric name -> (display name, decimals) for the printed table."""
    from dfbench.sample_scores import EnsembleStats
    from dfbench.tasks import metric_defs

    return {m.name: (m.display, m.decimals) for m in (*metric_defs(), *EnsembleStats.metrics)}
