"""Per-clip statistics and their aggregation into metric entries.

The files themselves are typed in ``schema.py``, laid out by ``result_store.py`` and
written by ``record_log.py`` / ``files.py``; the names below are kept for importers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dfbench.errors import DfbenchError
from dfbench.files import check_writable, write_json_atomic
from dfbench.record_log import RecordLog, read_records
from dfbench.schema import SCHEMA_VERSION
from dfbench.sample_scores import ENSEMBLE, stats_owner
from dfbench.tasks import Task

__all__ = ["SCHEMA_VERSION", "RecordLog", "aggregate", "check_writable", "headline", "read_records",
           "write_json_atomic"]


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
                if name not in num_classes and name != ENSEMBLE:
                    raise DfbenchError(
                        f"records hold '{name}' statistics but the data set declares only {sorted(num_classes)}; "
                        "aggregate them with the data set that wrote them."
                    )
                tasks[name] = stats_owner(name)
            stats = tasks[name].from_json(data, num_classes.get(name, 1))
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
