"""Single labelled frames from the training splits, for fitting the linear task heads.

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

import numpy as np
import torch
from torch.utils.data import Dataset

from dfbench.data import cityscapes, kitti, vspw
from dfbench.data.checks import read_label_array, read_rgb
from dfbench.data.kitti_split import EIGEN_TRAIN, locate_split_file, read_split
from dfbench.data.roots import resolve_root
from dfbench.errors import DfbenchError
from dfbench.protocol import resize_frames

TASKS: dict[str, tuple[str, int]] = {"cityscapes": ("seg", 19), "vspw": ("seg", 124), "kitti": ("depth", 1)}


@dataclass
class TrainFrame:
    """One training frame.

    Attributes:
        sample_id: stable id of the frame.
        frame: uint8 [3, H, W], resized per protocol.
        label: [h, w] at native resolution: int64 with 255 = ignore for "seg",
            float32 metres with 0 = invalid for "depth".
        task: "seg" or "depth".
    """

    sample_id: str
    frame: torch.Tensor
    label: torch.Tensor
    task: str


@dataclass(frozen=True)
class _Item:
    sample_id: str
    frame_path: Path
    label_path: Path


class TrainFrames(Dataset):
    """Map-style data set of :class:`TrainFrame` over a training split (usable with DataLoader).

    Args:
        dataset_name: "cityscapes", "vspw" or "kitti".
        root: data root; None resolves it (see :mod:`dfbench.data.roots`).
        frame_size: short side after the protocol resize.
        limit: keep only the first ``limit`` frames.
        every: VSPW only: keep every ``every``-th frame of each video.
        split_file: KITTI only: the Eigen train list (None: cache, then pinned download).
        config_path: data config file to read instead of the default.
    """

    def __init__(
        self,
        dataset_name: str,
        root: str | None = None,
        frame_size: int = 512,
        *,
        limit: int | None = None,
        every: int = 1,
        split_file: str | None = None,
        config_path: str | None = None,
    ):
        if dataset_name not in TASKS:
            raise DfbenchError(f"no training frames for '{dataset_name}'; use one of {', '.join(TASKS)}.")
        self.dataset_name = dataset_name
        self.task = TASKS[dataset_name][0]
        self.root = resolve_root(dataset_name, root, config_path)
        self.frame_size = frame_size
        list_items = {"cityscapes": self._cityscapes, "vspw": lambda: self._vspw(every), "kitti": lambda: self._kitti(split_file)}
        items = list_items[dataset_name]()
        self.items = items[:limit] if limit is not None else items
        if not self.items:
            raise DfbenchError(f"no {dataset_name} training frames found under {self.root}; check the folder layout.")

    def _cityscapes(self) -> list[_Item]:
        labels = self.root / "gtFine" / "train"
        if not labels.is_dir():
            raise DfbenchError(f"{labels} does not exist; unpack gtFine_trainvaltest.zip into the cityscapes root.")
        frames = self.root / "leftImg8bit" / "train"
        if not frames.is_dir():
            frames = self.root / "leftImg8bit_sequence" / "train"
        items = []
        for label in sorted(labels.rglob(f"*{cityscapes.LABEL_SUFFIX}")):
            stem = label.name[: -len(cityscapes.LABEL_SUFFIX)]
            items.append(_Item(f"{label.parent.name}/{stem}", frames / label.parent.name / f"{stem}{cityscapes.FRAME_SUFFIX}", label))
        return items

    def _vspw(self, every: int) -> list[_Item]:
        dataset = vspw.VspwDataset(str(self.root), self.frame_size, split="train")
        self.root = dataset.root
        items = []
        for video in dataset.videos():
            folder = dataset.root / "data" / video
            for path in vspw.sorted_frames(folder / "origin")[::every]:
                items.append(_Item(f"{video}/{path.stem}", path, folder / "mask" / path.name.replace(".jpg", ".png")))
        return items

    def _kitti(self, split_file: str | None) -> list[_Item]:
        items = []
        depth_dirs: dict[str, Path | None] = {}
        for entry in read_split(locate_split_file(split_file, EIGEN_TRAIN)):
            if entry.depth is None:
                continue
            if entry.drive not in depth_dirs:
                depth_dirs[entry.drive] = kitti.find_depth_dir(self.root, entry.drive)
            if depth_dirs[entry.drive] is None:
                continue
            items.append(
                _Item(f"{entry.drive}/{entry.frame:010d}", self.root / entry.image, depth_dirs[entry.drive] / Path(entry.depth).name)
            )
        return items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> TrainFrame:
        item = self.items[index]
        for path in (item.frame_path, item.label_path):
            if not path.is_file():
                raise DfbenchError(f"{self.dataset_name} training file {path} is missing; fix the tree.")
        frame = read_rgb(item.frame_path)
        if self.dataset_name == "kitti":
            height, width = frame.shape[:2]
            frame = kitti.kb_crop(frame, height, width)
            depth = kitti.read_depth(item.label_path)
            depth = kitti.kb_crop(depth, *depth.shape)
            label = torch.from_numpy(np.where((depth > kitti.MIN_DEPTH) & (depth < kitti.MAX_DEPTH), depth, 0).astype(np.float32))
        elif self.dataset_name == "cityscapes":
            label = torch.from_numpy(cityscapes.label_ids_to_train_ids(read_label_array(item.label_path)))
        else:
            label = torch.from_numpy(vspw.mask_to_labels(read_label_array(item.label_path)))
        return TrainFrame(item.sample_id, resize_frames(frame[None], self.frame_size)[0], label, self.task)


def iter_train_frames(
    dataset_name: str, root: str | None = None, frame_size: int = 512, limit: int | None = None, **options
) -> Iterator[TrainFrame]:
    """Yields the training frames of a data set in a fixed order (see :class:`TrainFrames`)."""
    frames = TrainFrames(dataset_name, root, frame_size, limit=limit, **options)
    for index in range(len(frames)):
        yield frames[index]
