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

# The tasks own these values; loaders write them into the labels they decode.
from dfbench.tasks.depth import INVALID_DEPTH as DEPTH_INVALID
from dfbench.tasks.segmentation import IGNORE_INDEX as SEG_IGNORE


@dataclass
class Clip:
    """One evaluation clip.

    Attributes:
        sample_id: stable identifier, the same on every run and machine.
        frames: uint8 [T, 3, H, W], already resized per protocol.
        timestamps: float32 [T] seconds, relative to the first frame.
        labels: task name (see :mod:`dfbench.tasks`) -> label maps [T, h, w] (or
            [T, C, h, w] for vector labels such as normals) at label resolution
            (not resized), pixels without ground truth set to the
            task's ``ignore_value`` (class ids with 255 for segmentation, metres with
            0 for depth). Frames without labels are all-ignore.
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
    tasks: ClassVar[dict[str, int]]  # task name -> number of classes (1 for regression tasks)
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


__all__ = ["DEPTH_INVALID", "SEG_IGNORE", "Clip", "DataProblem", "EvalDataset", "dataset_spec"]
