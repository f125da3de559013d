"""A clip's labels under a protocol that scores the data set's tasks as other tasks.

A protocol may score segmentation as ``seg-mo`` and depth as ``reldepth256``
(:attr:`dfbench.config.Protocol.tasks`); loaders read their labels as usual, keyed by
their own tasks, and this renames them and converts what the new task reads in another
format (metric depth in metres -> 8-bit relative disparity).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from dfbench.data.relative_depth_labels import relative_disparity_uint8


def protocol_labels(labels: Mapping[str, torch.Tensor], mapping: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Labels keyed by the data set's tasks -> keyed by the tasks ``mapping`` names (task -> source task)."""
    from dfbench.tasks import get_task
    from dfbench.tasks.relative_depth import RelativeDepth

    out = {}
    for task, source in mapping.items():
        value = labels[source]
        if isinstance(get_task(task), RelativeDepth) and value.is_floating_point():
            value = relative_disparity_uint8(value)  # metric depth: DINO-Foresight's pseudo-label format
        out[task] = value
    return out
