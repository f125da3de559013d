"""The task contract: what a dense prediction task means to the harness.

A task owns everything the harness would otherwise branch on by name: its metrics
(name, direction, decimals, unit), the label value that marks pixels without ground
truth, its head family, and the per-clip sufficient statistics from which its metrics
are computed (their JSON form, merge and compute). The harness only calls these
methods, so a new task (relative depth, surface normals...) is one file.

Statistics are summed, never averaged, so a data set's number is the same whatever
the batching, sharding or resume point, and can be recomputed from the records.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # listing tasks must not import torch
    import torch
    from torch import nn


@dataclass(frozen=True)
class MetricDef:
    """One metric a task reports, and how tables print it."""

    name: str  # the key written into results ("miou")
    display: str  # the column heading ("mIoU")
    higher_is_better: bool
    decimals: int  # as printed in the paper's tables
    unit: str  # of the value ``Task.compute`` returns ("%", "m")


class Task(abc.ABC):
    """A dense prediction task scored from summed per-clip statistics.

    Subclasses set the class attributes and implement ``build_head``, ``statistics``,
    ``compute`` and ``training_loss``; ``valid`` needs overriding only when more than
    the ``ignore_value`` marks missing ground truth. The default statistics are a
    dict of numbers that ``merge`` sums field by field and JSON stores as is; tasks
    whose statistics are tensors override ``merge``, ``to_json`` and ``from_json``.
    """

    name: ClassVar[str]  # the key in data sets' ``tasks``, heads and records ("seg")
    display: ClassVar[str]
    metrics: ClassVar[tuple[MetricDef, ...]]
    ignore_value: ClassVar[int | float]  # label of pixels without ground truth; pads label halves
    head_family: ClassVar[str]  # the head architecture ``build_head`` makes ("linear")

    @abc.abstractmethod
    def build_head(self, dim: int, num_classes: int) -> nn.Module:
        """A fresh head mapping feature maps [M, dim, h, w] to outputs [M, C, h, w]."""

    def valid(self, labels: torch.Tensor) -> torch.Tensor:
        """Boolean mask [..., h, w] of the pixels that have ground truth."""
        return labels != self.ignore_value

    def has_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Per leading index of labels [K, h, w]: whether any pixel has ground truth."""
        return self.valid(labels).flatten(1).any(dim=1)

    @abc.abstractmethod
    def statistics(self, outputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[Any | None]:
        """Per-step statistics of outputs [K, C, h, w] against labels [K, h, w] (or [K, C', h, w]).

        None for a step without a valid pixel: as in the reference, such a step is no
        metric update, so a metric that never saw a valid pixel does not exist.
        """

    @abc.abstractmethod
    def compute(self, stats: Any) -> dict[str, float]:
        """Metric name -> value in the unit of its MetricDef, from summed statistics."""

    @abc.abstractmethod
    def training_loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed loss over the valid pixels of outputs [M, C, h, w] and their count (head training)."""

    def with_parameters(self, text: str) -> Task:
        """The task named ``<name>[text]`` (a data set's variant of it); most tasks take none."""
        from dfbench.errors import DfbenchError

        raise DfbenchError(f"task '{self.name}' takes no parameters, got '{self.name}[{text}]'; use '{self.name}'.")

    def merge(self, a: Any, b: Any) -> Any:
        """The statistics of the union of two sets of pixels."""
        return {key: a[key] + b[key] for key in a}

    def to_json(self, stats: Any) -> dict[str, Any]:
        return dict(stats)

    def from_json(self, data: dict[str, Any], num_classes: int) -> Any:
        return dict(data)
