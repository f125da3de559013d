"""What the real data sets (Cityscapes, KITTI, VSPW) share: options, root, clip index, clips."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dfbench.data.base import Clip, EvalDataset, dataset_spec
from dfbench.data.checks import clip_timestamps, reject_unknown_options
from dfbench.data.protocol_labels import protocol_labels
from dfbench.data.roots import resolve_root
from dfbench.errors import DfbenchError
from dfbench.protocol import resize_frames


def clip_indices(last: int, num_frames: int, stride: int) -> tuple[int, ...]:
    """The ``num_frames`` frame indices (or positions) ``stride`` apart that end at ``last``."""
    return tuple(range(last - (num_frames - 1) * stride, last + 1, stride))


def as_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] -> uint8 tensor [T, 3, H, W], not resized."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(frames).transpose(0, 3, 1, 2)))


class RootDataset(EvalDataset):
    """A data set whose clips are indexed from the files under one data root.

    Subclasses set ``_splits`` and ``_split_error`` and implement ``_index`` (clip id ->
    the files of the clip, built on first use and kept in ``_samples``).

    Args:
        root: the data root; None resolves it (see :mod:`dfbench.data.roots`).
        frame_size: short side after the protocol resize; None: frames as recorded.
        split: one of ``_splits``.
        config_path: data config file to read instead of the default.
        labels: task to produce -> the data set's task its labels come from (a protocol's
            renaming, e.g. ``{"seg-mo": "seg"}``); None: the data set's own tasks.
        resize: False keeps the frames as recorded (the feature space resizes them).
        **options: further options, rejected unless None.
    """

    _splits: ClassVar[tuple[str, ...]]
    _split_error: ClassVar[str]  # the error for another split, formatted with ``split``

    def __init__(
        self,
        root: str | None = None,
        frame_size: int | None = 512,
        split: str = "val",
        *,
        config_path: str | None = None,
        labels: dict[str, str] | None = None,
        resize: bool = True,
        **options,
    ):
        reject_unknown_options(self.name, options)
        self.labels = dict(labels) if labels is not None else {task: task for task in self.tasks}
        unknown = sorted(set(self.labels.values()) - set(self.label_sources()))
        if unknown:
            raise DfbenchError(f"{self.name} has no {', '.join(unknown)} labels; it has {', '.join(self.label_sources())}.")
        if split not in self._splits:
            raise DfbenchError(self._split_error.format(split=split))
        self.frame_size = frame_size if resize else None
        self.split = split
        self.root = self._locate_root(resolve_root(self.name, root, config_path, env=dataset_spec(type(self)).env))
        self._samples: dict[str, Any] | None = None

    def _locate_root(self, root: Path) -> Path:
        """The folder to read below the resolved data root (the root itself unless overridden)."""
        return root

    def label_sources(self) -> list[str]:
        """The tasks this data set can read labels for (its own, and those some protocol adds)."""
        spec = dataset_spec(type(self))
        return list(dict.fromkeys([*spec.tasks, *(t for extra in spec.protocol_tasks.values() for t in extra)]))

    @abc.abstractmethod
    def _index(self) -> dict[str, Any]:
        """Clip id -> the clip's files, in evaluation order."""

    def sample_ids(self) -> list[str]:
        """Clip ids in evaluation order (their form is given in the class docstring)."""
        return list(self._index())

    def _clip(
        self, sample_id: str, frames: np.ndarray, frame_indices: Sequence[int], labels: dict[str, torch.Tensor]
    ) -> Clip:
        """The clip of uint8 frames [T, H, W, 3] at ``frame_indices`` of a video at ``fps``.

        A ``frame_size`` of None keeps the frames as recorded (a protocol whose feature space resizes).
        """
        return Clip(
            sample_id=sample_id,
            frames=as_frames(frames) if self.frame_size is None else resize_frames(frames, self.frame_size),
            timestamps=clip_timestamps(frame_indices, self.fps),
            labels=protocol_labels(labels, self.labels),
        )
