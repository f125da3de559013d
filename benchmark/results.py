"""Per-clip statistics and their aggregation into metric entries.

The files themselves are typed in ``schema.py``, laid out by ``result_store.py`` and
written by ``record_log.py`` / ``files.py``; the names below are kept for importers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from dfbench.files import check_writable, write_json_atomic
from dfbench.metrics import miou_from_confusion, rmse_from_sums
from dfbench.record_log import RecordLog, read_records
from dfbench.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "RecordLog", "aggregate", "check_writable", "headline", "read_records",
           "write_json_atomic"]

TASK_METRIC = {"seg": "miou", "depth": "rmse"}


def stat_key(task: str, horizon: str, step: int, stat: str) -> str:
    return f"{task}/{horizon}/{step}/{stat}"


def parse_stat_key(key: str) -> tuple[str, str, int, str]:
    task, horizon, step, stat = key.split("/")
    return task, horizon, int(step), stat


def encode_confusion(confusion: torch.Tensor) -> list[list[int]]:
    """Sparse [row, col, count] triplets: VSPW's 124x124 matrix is mostly zeros."""
    rows, cols = confusion.nonzero(as_tuple=True)
    return [[int(r), int(c), int(confusion[r, c])] for r, c in zip(rows.tolist(), cols.tolist())]


def decode_confusion(triplets: list[list[int]], num_classes: int) -> torch.Tensor:
    out = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for r, c, n in triplets:
        out[r, c] += n
    return out


def aggregate(records: Iterable[dict[str, Any]], num_classes: dict[str, int]) -> list[dict[str, Any]]:
    """Sums per-clip statistics over the data set -> one metric entry per key.

    mIoU is reported in percent, RMSE in metres (the paper's units).
    """
    confusions: dict[str, torch.Tensor] = {}
    sums: dict[str, list[float]] = {}
    for record in records:
        for key, stats in record["stats"].items():
            task = parse_stat_key(key)[0]
            if task == "seg":
                matrix = decode_confusion(stats["confusion"], num_classes["seg"])
                confusions[key] = confusions[key] + matrix if key in confusions else matrix
            else:
                acc = sums.setdefault(key, [0.0, 0])
                acc[0] += stats["sse"]
                acc[1] += stats["count"]
    entries = []
    for key in sorted({*confusions, *sums}):
        task, horizon, step, stat = parse_stat_key(key)
        if task == "seg":
            value = 100.0 * miou_from_confusion(confusions[key])
        else:
            value = rmse_from_sums(*sums[key])
        entries.append({"metric": TASK_METRIC[task], "horizon": horizon, "step": step, "stat": stat, "value": value})
    return entries


def headline(entries: list[dict[str, Any]], horizons: dict[str, int]) -> list[dict[str, Any]]:
    """The reported numbers: each horizon's last step (short = t0, mid = t2)."""
    return [
        {k: e[k] for k in ("metric", "horizon", "stat", "value")}
        for e in entries
        if e["horizon"] in horizons and e["step"] == horizons[e["horizon"]] - 1
    ]
