"""Cityscapes segmentation scored as DINO-Foresight does: mIoU and MO-mIoU from one confusion matrix.

MO-mIoU is the mean IoU of the moving-object classes (trainIds 11..18: person, rider, car,
truck, bus, train, motorcycle, bicycle). Unlike the ``seg`` task, every class counts in the
mean, with IoU 0 when it occurs in neither prediction nor ground truth (torchmetrics'
``zero_division=0``, FACTS.md, section 9); on the full validation set both agree.
"""

from __future__ import annotations

from typing import ClassVar

from typing import Any

import torch
from torch import nn

from dfbench.errors import DfbenchError
from dfbench.tasks.base import MetricDef
from dfbench.tasks.relative_depth import to_label_size
from dfbench.tasks.segmentation import Segmentation

MOVING_CLASSES = tuple(range(11, 19))  # Cityscapes trainIds of things that move


def moving_task_name(moving_classes: tuple[int, ...]) -> str:
    """The task name for these moving classes: ``seg-mo`` for Cityscapes', ``seg-mo[5,6]`` for others.

    The classes are part of the name, so records and results say what MO-mIoU averages
    and any process rebuilds the same task from them (:func:`dfbench.tasks.get_task`).
    """
    classes = tuple(int(c) for c in moving_classes)
    return "seg-mo" if classes == MOVING_CLASSES else f"seg-mo[{','.join(map(str, classes))}]"


def class_ious(confusion: torch.Tensor) -> torch.Tensor:
    """IoU per class (float64) from a confusion matrix (rows = truth); 0 where the union is empty."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), 0.0)


class MovingObjectSegmentation(Segmentation):
    """Class logits per pixel at label size; statistics are one [C, C] confusion matrix."""

    name: ClassVar[str] = "seg-mo"
    display: ClassVar[str] = "Semantic segmentation (all and moving objects)"
    metrics: ClassVar[tuple[MetricDef, ...]] = (
        MetricDef("miou_all", "mIoU", True, 1, "%"),
        MetricDef("mo_miou", "MO-mIoU", True, 1, "%"),
    )
    head_family: ClassVar[str] = "dpt"
    moving_classes: tuple[int, ...] = MOVING_CLASSES

    def __init__(self, moving_classes: tuple[int, ...] | None = None) -> None:
        if moving_classes is not None and tuple(moving_classes) != MOVING_CLASSES:
            self.moving_classes = tuple(int(c) for c in moving_classes)
            self.name = moving_task_name(self.moving_classes)

    def with_parameters(self, text: str) -> MovingObjectSegmentation:
        """``seg-mo[5,6]``: the task with another data set's moving classes (see :func:`moving_task_name`)."""
        try:
            classes = tuple(int(c) for c in text.split(",") if c.strip())
        except ValueError:
            classes = ()
        if not classes or min(classes) < 0:
            raise DfbenchError(f"task 'seg-mo[{text}]' must list moving class ids, e.g. seg-mo[5,6].")
        return MovingObjectSegmentation(classes)

    def build_head(self, dim: int, num_classes: int) -> nn.Module:
        from dfbench.heads.dpt import DPTConfig, DPTHead

        return DPTHead(DPTConfig(num_classes=num_classes, in_channels=dim // 4))

    def statistics(self, outputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[torch.Tensor | None]:
        """Confusions of argmax(outputs) after bicubic upsampling to the label size (when smaller)."""
        return super().statistics(to_label_size(outputs, labels), labels, num_classes)

    def training_loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        return super().training_loss(to_label_size(outputs, labels), labels)

    def compute(self, stats: torch.Tensor) -> dict[str, float]:
        """mIoU over all classes and over the moving ones, in %; a class the matrix lacks counts as 0."""
        ious = class_ious(stats)
        moving = torch.tensor([float(ious[c]) if c < len(ious) else 0.0 for c in self.moving_classes], dtype=torch.float64)
        return {"miou_all": 100.0 * float(ious.mean()), "mo_miou": 100.0 * float(moving.mean())}

    def compute_fractions(self, stats: torch.Tensor) -> dict[str, Any]:
        """The official values: per-class IoU and both means as fractions (what the official code logs / 100)."""
        values = self.compute(stats)
        return {"iou_per_class": class_ious(stats), "miou": values["miou_all"] / 100, "mo_miou": values["mo_miou"] / 100}
