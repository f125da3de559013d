"""The data set contract: every evaluation data set yields protocol-ready clips.

A data set is responsible for reading files, the protocol resize
(:func:`dfbench.protocol.resize_frames`), label decoding and timestamps. Everything
after that (square crops, label halves, windows) belongs to the harness.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from dfbench.data.spec import DatasetSpec

SEG_IGNORE = 255  # label value ignored by segmentation metrics
DEPTH_INVALID = 0.0  # depth value marking pixels without ground truth


@dataclass
class Clip:
    """One evaluation clip.

    Attributes:
        sample_id: stable identifier, the same on every run and machine.
        frames: uint8 [T, 3, H, W], already resized per protocol.
        timestamps: float32 [T] seconds, relative to the first frame.
        labels: task name ("seg" or "depth") -> label maps [T, h, w] at label
            resolution (not resized): int64 with 255 = ignore for "seg", float32
            metres with 0 = invalid for "depth". Frames without labels are all-ignore.
    """

    sample_id: str
    frames: torch.Tensor
    timestamps: torch.Tensor
    labels: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong with a data root, found before any model runs."""

    path: str
    expected: str


class EvalDataset(abc.ABC):
    """A validation split made of fixed-length clips.

    Subclasses set ``spec`` (a :class:`DatasetSpec`; ``name``, ``tasks`` and ``fps``
    follow from it) and implement ``sample_ids`` and ``load``. A class that sets only
    ``name``, ``tasks`` and ``fps`` still works: its spec is derived from them.
    """

    spec: ClassVar[DatasetSpec]
    name: ClassVar[str]
    tasks: ClassVar[dict[str, int]]  # task -> number of classes (seg) or 1 (depth)
    fps: ClassVar[float]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if isinstance(spec, DatasetSpec):
            cls.name, cls.tasks, cls.fps = spec.name, dict(spec.tasks), spec.fps

    @abc.abstractmethod
    def sample_ids(self) -> list[str]:
        """The clips of the split, in evaluation order."""

    @abc.abstractmethod
    def load(self, sample_id: str) -> Clip:
        """Reads one clip (frames resized per protocol, labels untouched)."""

    def check(self, deep: bool = False) -> list[DataProblem]:
        """Validates the files behind every clip; returns the problems found.

        Args:
            deep: open and decode every file; otherwise only cheap existence and
                header checks.
        """
        return []

    @property
    def version(self) -> str:
        """The data set's version, written into results and the feature-cache key."""
        return dataset_spec(type(self)).version

    def __len__(self) -> int:
        return len(self.sample_ids())

    def __getitem__(self, index: int) -> Clip:
        return self.load(self.sample_ids()[index])


def dataset_spec(cls: type) -> DatasetSpec:
    """The spec a data set class declares, or one derived from its class attributes."""
    spec = getattr(cls, "spec", None)
    return spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_class(cls)
