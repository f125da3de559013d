"""The main table's uncertainty columns: bootstrap intervals from the records, and seeds.

Kept apart from ``tables.py`` so the table stays a pure function of results files:
this module reads each result's records file (named in the result, beside it) and the
results of the same configuration with other seeds (same identity but the seed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dfbench.errors import DfbenchError


def seed_siblings(path: Path, result: Any) -> list[tuple[Path, Any]]:
    """The results beside ``path`` whose identity differs from ``result``'s in the seed only, itself included."""
    from dfbench.result_store import LATEST, read_result

    found = []
    for other_path in sorted(Path(path).parent.glob("*.json")):
        if other_path.name == LATEST:
            continue
        other = result if other_path == Path(path) else read_result(other_path)
        if set(other.identity.differences(result.identity)) <= {"seed"} and other.complete == result.complete:
            found.append((other_path, other))
    return sorted(found, key=lambda item: item[1].identity.seed)


def _records(result: dict) -> list[dict] | None:
    """The clip records of a result dict carrying its ``path``; None when they are not there."""
    from dfbench.record_log import read_records

    if not result.get("path") or not result.get("records"):
        return None
    path = Path(result["path"]).parent / result["records"]
    if not path.is_file():
        return None
    identity, records = read_records(path)
    if identity.digest() != result.get("identity_hash"):
        return None  # records of another computation: no interval rather than a wrong one
    return [r.to_json() for r in records]


def _headline_keys(records: list[dict]) -> list[str]:
    """Each (task, horizon, stat)'s last step: the key of the headline numbers."""
    from dfbench.results import parse_stat_key, stat_key
    from dfbench.tables import STATS

    last: dict[tuple[str, str, str], int] = {}
    for record in records:
        for key in record["stats"]:
            task, horizon, step, stat = parse_stat_key(key)
            if stat in STATS:
                last[(task, horizon, stat)] = max(step, last.get((task, horizon, stat), -1))
    return [stat_key(task, horizon, step, stat) for (task, horizon, stat), step in sorted(last.items())]


def interval_values(results: list[dict], level: float, resamples: int, seed: int = 0) -> dict[str, float]:
    """``<dataset>/<metric>/<horizon>/<stat>/ci_low|ci_high`` of one row's result on one data set.

    Args:
        results: the result and its other seeds (one dict each, with ``path``); the
            interval then covers the mean over seeds.
    """
    from dfbench.run_prepare import result_tasks
    from dfbench.uncertainty import bootstrap_intervals

    seeds = [_records(r) for r in results]
    if not seeds or any(s is None or not s for s in seeds):
        return {}
    dataset = results[0]["dataset"]
    try:
        num_classes = result_tasks(dataset, results[0]["identity"]["protocol"])
    except DfbenchError:  # a data set or protocol not installed here: its class counts are unknown
        return {}
    out = {}
    for interval in bootstrap_intervals(seeds, num_classes, level=level, resamples=resamples, seed=seed,
                                        keys=_headline_keys(seeds[0])):
        column = f"{dataset}/{interval.metric}/{interval.horizon}/{interval.stat}"
        out[f"{column}/ci_low"], out[f"{column}/ci_high"] = interval.ci_low, interval.ci_high
    return out


def seed_values(results: list[dict]) -> dict[str, Any]:
    """Mean over seeds of every headline value, its ``/seed_std`` and ``<dataset>/num_seeds``."""
    from dfbench.tables import STATS
    from dfbench.uncertainty import seed_mean_std

    dataset = results[0]["dataset"]
    values: dict[str, list[float]] = {}
    for result in results:
        for e in result["metrics"]:
            if e["stat"] in STATS:
                values.setdefault(f"{dataset}/{e['metric']}/{e['horizon']}/{e['stat']}", []).append(float(e["value"]))
    out: dict[str, Any] = {f"{dataset}/num_seeds": len(results)}
    for column, found in values.items():
        if len(found) == len(results):
            out[column], out[f"{column}/seed_std"] = seed_mean_std(found)
        else:  # a seed lacks this number: no mean over a subset
            out[column], out[f"{column}/seed_std"] = math.nan, math.nan
    return out
