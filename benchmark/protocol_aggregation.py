"""A protocol's choice of how depth metrics are aggregated over clips (``depth_aggregation``).

Results are pixel-pooled by default: summed statistics, independent of batching. DINO-Foresight's
official code instead averages per-batch values, so its numbers depend on the batch size and the
device count; ``depth_aggregation=official`` recomputes those, for ``official_batch_size`` and
``official_devices``, from the same per-clip records (:func:`dfbench.tasks.relative_depth.official_mean`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dfbench.results import parse_stat_key
from dfbench.tasks import get_task
from dfbench.tasks.relative_depth import RelativeDepth, as_reported, official_mean

OFFICIAL = "official"


def protocol_entries(
    entries: list[dict[str, Any]], records: list[dict[str, Any]], tasks: Mapping[str, int], options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``entries`` (from :func:`dfbench.results.aggregate`) with relative depth aggregated as ``options`` say.

    Args:
        entries: the pixel-pooled metric entries.
        records: the per-clip records in data-set order (the official batches follow it).
        tasks: the tasks scored (task -> classes).
        options: the run's protocol options.
    """
    if options.get("depth_aggregation", "pixel") != OFFICIAL:
        return entries
    depth_tasks = [name for name in tasks if isinstance(get_task(name), RelativeDepth)]
    keys = sorted({key for r in records for key in r["stats"] if parse_stat_key(key)[0] in depth_tasks})
    if not keys:
        return entries
    names = {metric.name for metric in RelativeDepth.metrics}
    replaced = {parse_stat_key(key)[1:] for key in keys}
    kept = [e for e in entries if not (e["metric"] in names and (e["horizon"], e["step"], e["stat"]) in replaced)]
    batch, devices = int(options["official_batch_size"]), int(options["official_devices"])
    for key in keys:
        _, horizon, step, stat = parse_stat_key(key)
        values = as_reported(official_mean([r["stats"].get(key) for r in records], batch, devices))
        kept += [{"metric": m, "horizon": horizon, "step": step, "stat": stat, "value": v} for m, v in values.items()]
    return kept
