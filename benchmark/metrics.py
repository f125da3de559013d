"""mIoU and depth RMSE from summed sufficient statistics (the functional forms).

The reference feeds torchmetrics' ``MulticlassJaccardIndex(C, ignore_index=255)`` and
``MeanSquaredError(squared=False)`` batch after batch, so both are functions of summed
statistics: one confusion matrix (mIoU = mean IoU over the classes that occur in it)
and the sum of squared errors with its pixel count (a pixel-weighted global RMSE, not
a mean of per-image RMSEs). Each statistic and each metric is computed once, here:
the tasks (records path), the ``Metric`` classes of :mod:`dfbench.metric_classes`
(distributed reduction) and the tests all call these functions. Only torch is
imported, so data loaders that read the tasks' ignore values stay light.
"""

from __future__ import annotations

import torch


def step_confusions(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """One confusion matrix (rows = truth) per step, [K, C, C], of argmax(logits [K, C, h, w]) vs labels [K, h, w].

    One bincount for all steps: the evaluation makes thousands of these small updates,
    and torchmetrics' per-call argument formatting would dominate the run time.
    """
    steps, classes = logits.shape[:2]
    pred = logits.argmax(dim=1)
    valid = target != ignore_index
    step = torch.arange(steps, device=target.device).view(-1, 1, 1).expand_as(target)
    index = (step * classes + target) * classes + pred
    counts = torch.bincount(index[valid], minlength=steps * classes * classes)
    return counts.reshape(steps, classes, classes)


def miou_from_confusion(confusion: torch.Tensor) -> float:
    """Mean IoU (a fraction) over the classes whose row + column total is non-zero (the macro average)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = (confusion.sum(0) + confusion.sum(1)) > 0
    if not present.any():
        return float("nan")
    return float((tp[present] / union[present]).mean())


def step_squared_errors(
    depth: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step sums of squared errors and valid-pixel counts, depth [K, 1, h, w] vs target and mask [K, h, w]."""
    diff = torch.where(valid, depth[:, 0].double() - target.double(), 0.0)
    return (diff * diff).sum(dim=(1, 2)), valid.sum(dim=(1, 2))


def rmse_from_sums(sse: float, count: int) -> float:
    return float("nan") if count == 0 else (sse / count) ** 0.5
