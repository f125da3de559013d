"""Metric depth: pixel-weighted RMSE in metres over a data set."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from dfbench.metrics import rmse_from_sums, step_squared_errors
from dfbench.tasks.base import MetricDef, Task

INVALID_DEPTH = 0.0  # metres; pixels without a LiDAR return or beyond the sky line


class MetricDepth(Task):
    """Depth in metres per pixel; statistics are {"sse": float, "count": int} over valid pixels."""

    name: ClassVar[str] = "depth"
    display: ClassVar[str] = "Metric depth"
    metrics: ClassVar[tuple[MetricDef, ...]] = (MetricDef("rmse", "RMSE", False, 2, "m"),)
    ignore_value: ClassVar[float] = INVALID_DEPTH
    head_family: ClassVar[str] = "linear"

    def build_head(self, dim: int, num_classes: int) -> nn.Module:
        from dfbench.heads.linear import DepthHead

        return DepthHead(dim)

    def valid(self, labels: torch.Tensor) -> torch.Tensor:
        # Anything not positive (and NaN) is missing ground truth, not only the padding value.
        return labels > self.ignore_value

    def statistics(self, outputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[dict[str, Any] | None]:
        sse, count = step_squared_errors(outputs, labels, self.valid(labels))
        return [{"sse": s, "count": c} if c else None for s, c in zip(sse.tolist(), count.tolist())]

    def compute(self, stats: dict[str, Any]) -> dict[str, float]:
        return {"rmse": rmse_from_sums(stats["sse"], stats["count"])}

    def training_loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        valid = self.valid(labels)
        return ((outputs[:, 0] - labels)[valid] ** 2).sum(), int(valid.sum())
