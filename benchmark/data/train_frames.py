"""Labelled frames from the training splits, for fitting the linear task heads.

A data set's spec names its lister (``train_frames``, a ``"module:attr"`` target in the
data set's own module); :class:`TrainFrames` reads any of them.

The heads are fitted on frozen backbone features of the training split of each
evaluation data set (paper, appendix B). Frames get the same protocol resize as the
evaluation clips (short side ``frame_size``, each side capped at twice that, KB crop
first for KITTI) and labels stay at their native resolution, decoded exactly as in
evaluation:

* ``cityscapes``: ``gtFine/train/<city>/*_gtFine_labelIds.png`` -> 19 trainIds, frame
  from ``leftImg8bit/train`` (or ``leftImg8bit_sequence/train`` when only the sequence
  package is present);
* ``vspw``: every ``every``-th frame of the videos of ``train.txt`` with mask - 1;
* ``kitti``: the Eigen train list (see :mod:`dfbench.data.kitti_split`), lines with
  ground truth; depth after the KB crop with 1e-3 < d < 80 kept and 0 elsewhere (the
  Garg region is an evaluation convention and is not applied here).

Items come in a fixed order (sorted paths, list order); shuffling belongs to the head
training loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from dfbench.data.checks import read_rgb
from dfbench.data.roots import resolve_root
from dfbench.errors import DfbenchError
from dfbench.protocol import resize_frames


@dataclass
class TrainFrame:
    """One training frame.

    Attributes:
        sample_id: stable id of the frame.
        frame: uint8 [3, H, W], resized per protocol.
        label: [h, w] at native resolution: int64 with 255 = ignore for "seg",
            float32 metres with 0 = invalid for "depth".
        task: the data set's task ("seg" or "depth").
    """

    sample_id: str
    frame: torch.Tensor
    label: torch.Tensor
    task: str


@dataclass(frozen=True)
class TrainItem:
    """Where one labelled training frame lives; ``task``: the lister task its label serves (None: the data set's)."""

    sample_id: str
    frame_path: Path
    label_path: Path
    task: str | None = None


class TrainFrameLister(Protocol):
    """What a data set's spec points ``train_frames`` at (one per data set, in its module).

    A lister whose labels serve more than the data set's own task declares ``tasks``
    (task -> classes) and takes the one to list as the ``task`` option of :meth:`items`.
    """

    def items(self, root: Path, frame_size: int, options: dict[str, Any]) -> list[TrainItem]:
        """The labelled training frames under ``root`` in a fixed order."""

    def read(self, item: TrainItem) -> tuple[np.ndarray, torch.Tensor]:
        """The frame as uint8 [H, W, 3] before the protocol resize, and its decoded label."""


def read_frame(item: TrainItem) -> np.ndarray:
    return read_rgb(item.frame_path)


class TrainFrames(Dataset):
    """Map-style data set of :class:`TrainFrame` over a training split (usable with DataLoader).

    Args:
        dataset_name: a registered data set whose spec names a training-frame lister.
        root: data root; None resolves it (see :mod:`dfbench.data.roots`).
        frame_size: short side after the protocol resize.
        limit: keep only the first ``limit`` frames.
        config_path: data config file to read instead of the default.
        task: the task whose labels to read: the data set's own (default) or one of the
            lister's ``tasks`` (Cityscapes: ``reldepth256`` from DINO-Foresight's depth PNGs).
        **options: lister options, e.g. ``every`` (VSPW: every n-th frame of each video)
            or ``split_file`` (KITTI: the Eigen train list).
    """

    def __init__(
        self,
        dataset_name: str,
        root: str | None = None,
        frame_size: int = 512,
        *,
        limit: int | None = None,
        config_path: str | None = None,
        task: str | None = None,
        **options,
    ):
        from dfbench.registry import DATASETS, get_dataset_spec, resolve_target

        spec = get_dataset_spec(dataset_name)
        lister = resolve_target(spec.train_frames) if spec.train_frames else None
        if not hasattr(lister, "items"):
            with_frames = [n for n in DATASETS.builtin_names() if hasattr(_lister(n), "items")]
            raise DfbenchError(f"no single training frames for '{dataset_name}'; use one of {', '.join(with_frames)}.")
        if len(spec.tasks) != 1:
            raise DfbenchError(f"{dataset_name} training frames must serve one task, its spec has {sorted(spec.tasks)}.")
        self.dataset_name = dataset_name
        (self.task,) = spec.tasks
        if task is not None and task != self.task:
            if task not in lister_tasks(dataset_name):
                raise DfbenchError(f"{dataset_name} has no training labels for task '{task}'; "
                                   f"train one of {', '.join(sorted({self.task, *lister_tasks(dataset_name)}))}.")
            self.task, options = task, {**options, "task": task}
        self.lister: TrainFrameLister = lister
        self.root = resolve_root(dataset_name, root, config_path, env=spec.env)
        self.frame_size = frame_size
        items = self.lister.items(self.root, frame_size, options)
        self.items = items[:limit] if limit is not None else items
        if not self.items:
            raise DfbenchError(f"no {dataset_name} training frames found under {self.root}; check the folder layout.")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> TrainFrame:
        item = self.items[index]
        for path in (item.frame_path, item.label_path):
            if not path.is_file():
                raise DfbenchError(f"{self.dataset_name} training file {path} is missing; fix the tree.")
        frame, label = self.lister.read(item)
        return TrainFrame(item.sample_id, resize_frames(frame[None], self.frame_size)[0], label, self.task)


def _lister(dataset_name: str):
    from dfbench.registry import get_dataset_spec, resolve_target

    target = get_dataset_spec(dataset_name).train_frames
    return resolve_target(target) if target else None


def lister_tasks(dataset_name: str) -> dict[str, int]:
    """Tasks beyond the data set's own whose training labels its lister reads (task -> classes)."""
    return dict(getattr(_lister(dataset_name), "tasks", {}))


def head_training_clips(
    dataset_name: str, root: str | None, frame_size: int, limit: int | None = None, task: str | None = None
) -> list:
    """What ``dfbench train head`` fits heads on, as Clips, from the lister the spec names.

    A lister with a ``clips`` method (the synthetic world: whole labelled clips) gives
    them directly; otherwise each labelled training frame is a one-frame clip, labelled
    for ``task`` (the data set's own task by default, or one of :func:`lister_tasks`).
    """
    from dfbench.data.base import Clip

    lister = _lister(dataset_name)
    if hasattr(lister, "clips"):
        return lister.clips(frame_size, limit)
    return [
        Clip(f.sample_id, f.frame[None], torch.zeros(1), {f.task: f.label[None]})
        for f in iter_train_frames(dataset_name, root, frame_size, limit=limit, task=task)
    ]


def iter_train_frames(
    dataset_name: str, root: str | None = None, frame_size: int = 512, limit: int | None = None, **options
) -> Iterator[TrainFrame]:
    """Yields the training frames of a data set in a fixed order (see :class:`TrainFrames`)."""
    frames = TrainFrames(dataset_name, root, frame_size, limit=limit, **options)
    for index in range(len(frames)):
        yield frames[index]
