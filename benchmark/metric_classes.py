"""torchmetrics ``Metric`` forms of the task metrics, for reduction across processes.

State is the tasks' sufficient statistics with ``dist_reduce_fx="sum"``, so a data
set split across processes gives the number one process would; the arithmetic is the
functional forms' in :mod:`dfbench.metrics`.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from dfbench.metrics import miou_from_confusion, rmse_from_sums, step_confusions, step_squared_errors


class ConfusionMIoU(Metric):
    """Data-set mIoU (a fraction) of logits [M, C, h, w] vs labels [M, h, w]; sums across processes."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.add_state("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.confusion += step_confusions(logits, target, self.ignore_index).sum(dim=0).to(self.confusion.device)

    def compute(self) -> torch.Tensor:
        return torch.tensor(miou_from_confusion(self.confusion))


class GlobalRMSE(Metric):
    """Pixel-weighted RMSE of depth [M, 1, h, w] vs target [M, h, w] over a mask; sums across processes."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("sse", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, depth: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> None:
        sse, count = step_squared_errors(depth, target, valid)
        self.sse += sse.sum().to(self.sse.device)
        self.count += count.sum().to(self.count.device)

    def compute(self) -> torch.Tensor:
        return torch.tensor(rmse_from_sums(float(self.sse), int(self.count)))
