"""Semantic segmentation: mIoU over a data set's summed confusion matrix."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dfbench.metrics import miou_from_confusion, step_confusions
from dfbench.tasks.base import MetricDef, Task

IGNORE_INDEX = 255  # label of void / unlabelled pixels, as in Cityscapes' trainIds


class Segmentation(Task):
    """Class logits per pixel; statistics are one [C, C] confusion matrix (rows = truth)."""

    name: ClassVar[str] = "seg"
    display: ClassVar[str] = "Semantic segmentation"
    metrics: ClassVar[tuple[MetricDef, ...]] = (MetricDef("miou", "mIoU", True, 1, "%"),)
    ignore_value: ClassVar[int] = IGNORE_INDEX
    head_family: ClassVar[str] = "linear"

    def build_head(self, dim: int, num_classes: int) -> nn.Module:
        from dfbench.heads.linear import SegHead

        return SegHead(dim, num_classes)

    def statistics(self, outputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[torch.Tensor | None]:
        present = self.has_labels(labels).tolist()
        confusions = step_confusions(outputs, labels, self.ignore_value).cpu()
        return [confusions[step] if has else None for step, has in enumerate(present)]

    def merge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def compute(self, stats: torch.Tensor) -> dict[str, float]:
        return {"miou": 100.0 * miou_from_confusion(stats)}

    def to_json(self, stats: torch.Tensor) -> dict[str, Any]:
        """Sparse [row, col, count] triplets: VSPW's 124x124 matrix is mostly zeros."""
        rows, cols = stats.nonzero(as_tuple=True)
        return {"confusion": [[int(r), int(c), int(stats[r, c])] for r, c in zip(rows.tolist(), cols.tolist())]}

    def from_json(self, data: dict[str, Any], num_classes: int) -> torch.Tensor:
        out = torch.zeros(num_classes, num_classes, dtype=torch.long)
        triplets = torch.tensor(data["confusion"], dtype=torch.long).reshape(-1, 3)
        # One scatter, not a Python loop: bootstrap intervals read every clip's matrix.
        out.index_put_((triplets[:, 0], triplets[:, 1]), triplets[:, 2], accumulate=True)
        return out

    def training_loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        loss = F.cross_entropy(outputs, labels, ignore_index=self.ignore_value, reduction="sum")
        return loss, int(self.valid(labels).sum())
