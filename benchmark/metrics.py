"""mIoU and depth RMSE, accumulated over a whole data set as the reference does.

The reference feeds torchmetrics' ``MulticlassJaccardIndex(C, ignore_index=255)`` and
``MeanSquaredError(squared=False)`` batch after batch, so both are functions of summed
sufficient statistics: one confusion matrix (mIoU = mean IoU over the classes that
occur in it) and the sum of squared errors with its pixel count (a pixel-weighted
global RMSE, not a mean of per-image RMSEs). dfbench keeps those statistics per clip,
so every number can be recomputed, re-aggregated and bootstrapped from the records.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_confusion_matrix

from dfbench.data.base import SEG_IGNORE


def confusion_counts(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Confusion matrix [C, C] (rows = truth) of argmax(logits [M, C, h, w]) vs labels [M, h, w]."""
    return multiclass_confusion_matrix(
        logits.argmax(dim=1), target, num_classes, ignore_index=SEG_IGNORE, validate_args=False
    ).long()


def step_confusions(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One confusion matrix per step, [K, C, C], of logits [K, C, h, w] vs labels [K, h, w].

    The same counts as :func:`confusion_counts` step by step, in one bincount: the
    evaluation makes thousands of these small updates, and torchmetrics' per-call
    argument formatting would dominate the run time.
    """
    steps, classes = logits.shape[:2]
    pred = logits.argmax(dim=1)
    valid = target != SEG_IGNORE
    step = torch.arange(steps, device=target.device).view(-1, 1, 1).expand_as(target)
    index = (step * classes + target) * classes + pred
    counts = torch.bincount(index[valid], minlength=steps * classes * classes)
    return counts.reshape(steps, classes, classes)


def step_squared_errors(depth: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step sums of squared errors and valid-pixel counts, depth [K, 1, h, w] vs [K, h, w]."""
    valid = target > 0
    diff = torch.where(valid, depth[:, 0].double() - target.double(), 0.0)
    return (diff * diff).sum(dim=(1, 2)), valid.sum(dim=(1, 2))


def miou_from_confusion(confusion: torch.Tensor) -> float:
    """Mean IoU over the classes whose row + column total is non-zero (the macro average)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = (confusion.sum(0) + confusion.sum(1)) > 0
    if not present.any():
        return float("nan")
    return float((tp[present] / union[present]).mean())


def squared_error_sum(depth: torch.Tensor, target: torch.Tensor) -> tuple[float, int]:
    """Sum of squared errors and count over valid pixels (target > 0)."""
    valid = target > 0
    diff = depth.reshape(target.shape)[valid].double() - target[valid].double()
    return float((diff * diff).sum()), int(valid.sum())


def rmse_from_sums(sse: float, count: int) -> float:
    return float("nan") if count == 0 else (sse / count) ** 0.5


class ConfusionMIoU(Metric):
    """Data-set mIoU from summed confusion matrices; sums across processes."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, confusion: torch.Tensor) -> None:
        self.confusion += confusion.to(self.confusion.device)

    def compute(self) -> torch.Tensor:
        return torch.tensor(miou_from_confusion(self.confusion))


class GlobalRMSE(Metric):
    """Pixel-weighted RMSE from summed squared errors and counts; sums across processes."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("sse", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, sse: float, count: int) -> None:
        self.sse += sse
        self.count += count

    def compute(self) -> torch.Tensor:
        return torch.tensor(rmse_from_sums(float(self.sse), int(self.count)))
