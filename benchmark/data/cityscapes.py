"""Cityscapes validation clips (19-class semantic segmentation), as the reference builds them.

Layout under the root (the official ``leftImg8bit_sequence_trainvaltest.zip`` and
``gtFine_trainvaltest.zip`` unpacked side by side)::

    leftImg8bit_sequence/val/<city>/<city>_<seq>_<frame:06d>_leftImg8bit.png   30-frame snippets
    gtFine/val/<city>/<city>_<seq>_<frame:06d>_gtFine_labelIds.png              the 20th frame of each
    leftImg8bit_sequence_depthv2/val/<city>/<city>_<seq>_<frame:06d>_leftImg8bit_depth.png
        8-bit relative depth of the labelled frames (DINO-Foresight's, read under its protocol only)

One clip per fine label: frames f-18, f-15, ..., f (stride int(0.1875 s * 16 fps) = 3),
only the last frame labelled. Clips follow the sorted label paths (the reference does
not shuffle Cityscapes). Download (account needed): https://www.cityscapes-dataset.com/downloads/;
head training also reads ``leftImg8bit/train`` (``leftImg8bit_trainvaltest.zip``) when present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dfbench.data.base import SEG_IGNORE, Clip, DataProblem
from dfbench.data.checks import check_clip_images, check_image, missing_dirs, read_label_array, read_rgb
from dfbench.data.common import RootDataset, clip_indices
from dfbench.data.label_resize import resize_label_nearest
from dfbench.data.spec import DatasetSpec
from dfbench.data.train_frames import TrainItem
from dfbench.errors import DfbenchError

NUM_FRAMES = 7
FPS = 16.0
STRIDE = int(0.1875 * FPS)  # 3 frames = 0.1875 s, the DINO-world stride for Cityscapes
LABEL_SUFFIX = "_gtFine_labelIds.png"
FRAME_SUFFIX = "_leftImg8bit.png"
DEPTH_FOLDER = "leftImg8bit_sequence_depthv2"  # DINO-Foresight's Depth-Anything-V2 pseudo-labels
DEPTH_SUFFIX = "_leftImg8bit_depth.png"

# Cityscapes labelIds -> the 19 evaluation trainIds (cityscapesScripts' labels.py); all
# other ids, including void and the rarely-labelled classes, become ignore.
LABEL_ID_TO_TRAIN_ID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


NUM_CLASSES = len(set(LABEL_ID_TO_TRAIN_ID.values()))

SPEC = DatasetSpec(
    name="cityscapes",
    display="Cityscapes",
    version="1.0",
    tasks={"seg": NUM_CLASSES},
    fps=FPS,
    env="CITYSCAPES_ROOT",
    train_frames="dfbench.data.cityscapes:TRAIN_FRAMES",
    moving_classes=tuple(range(11, 19)),  # person, rider, car, truck, bus, train, motorcycle, bicycle
    # relative depth from the depthv2 PNGs
    protocol_tasks={"dinoforesight": {"depth": 1}, "dinoforesight-downstream": {"depth": 1}},
)


def train_id_lookup() -> np.ndarray:
    """A 256-entry table mapping every uint8 labelId to its trainId (255 = ignore)."""
    table = np.full(256, SEG_IGNORE, dtype=np.int64)
    for label_id, train_id in LABEL_ID_TO_TRAIN_ID.items():
        table[label_id] = train_id
    return table


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """labelIds [h, w] -> int64 trainIds [h, w]."""
    return train_id_lookup()[label_ids.astype(np.int64)]


@dataclass(frozen=True)
class _Sample:
    frame_paths: tuple[Path, ...]
    frame_indices: tuple[int, ...]
    label_path: Path
    depth_path: Path


class CityscapesDataset(RootDataset):
    """Cityscapes val: 500 clips of 7 frames at 16 fps, the last frame labelled with 19 classes.

    Clip ids are ``<city>/<city>_<seq>_<frame>``, in sorted label order.

    Args:
        root: folder holding ``leftImg8bit_sequence/`` and ``gtFine/``; None resolves it
            from ``$CITYSCAPES_ROOT`` or the data config (see :mod:`dfbench.data.roots`).
        frame_size: short side after the protocol resize.
        split: "val" (the benchmark) or "train".
        config_path: data config file to read instead of the default.
        label_size: (H, W) labels are resized to with PIL NEAREST (a protocol's ``labels.size``); None: as recorded.
        clip_order: "sorted" label paths, or "listdir" (cities, then label files, in os.listdir order).
    """

    spec = SPEC
    _splits: ClassVar[tuple[str, ...]] = ("val", "train")
    _split_error: ClassVar[str] = (
        "cityscapes has no split '{split}' with sequences and fine labels; use 'val' or 'train'."
    )

    def __init__(self, *args, label_size: tuple[int, int] | None = None, clip_order: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_size = tuple(int(v) for v in label_size) if label_size is not None else None
        if clip_order not in (None, "sorted", "listdir"):
            raise DfbenchError(f"cityscapes has no clip order '{clip_order}'; use sorted or listdir.")
        self.clip_order = clip_order or "sorted"

    def _label_paths(self) -> list[Path]:
        """The fine label files in evaluation order."""
        if self.clip_order == "sorted":  # sorted full paths, as the reference orders its clips
            return sorted(self.labels_dir.rglob(f"*{LABEL_SUFFIX}"))
        return [self.labels_dir / city / name for city in os.listdir(self.labels_dir) if (self.labels_dir / city).is_dir()
                for name in os.listdir(self.labels_dir / city) if name.endswith(LABEL_SUFFIX)]

    def _resized(self, label: np.ndarray) -> np.ndarray:
        return label if self.label_size is None else resize_label_nearest(label, self.label_size)

    @property
    def frames_dir(self) -> Path:
        return self.root / "leftImg8bit_sequence" / self.split

    @property
    def labels_dir(self) -> Path:
        return self.root / "gtFine" / self.split

    @property
    def depth_dir(self) -> Path:
        return self.root / DEPTH_FOLDER / self.split

    @property
    def reads_depth(self) -> bool:
        return "depth" in self.labels.values()

    def _layout(self) -> dict[str, str]:
        layout = {
            f"leftImg8bit_sequence/{self.split}": "the 30-frame snippets, leftImg8bit_sequence_trainvaltest.zip",
            f"gtFine/{self.split}": "the fine labels, gtFine_trainvaltest.zip",
        }
        if self.reads_depth:
            layout[f"{DEPTH_FOLDER}/{self.split}"] = "DINO-Foresight's relative depth PNGs (its preprocess_scripts/run_depth_cs.py)"
        return layout

    def _index(self) -> dict[str, _Sample]:
        if self._samples is None:
            problems = missing_dirs(self.root, self._layout())
            if problems:
                raise DfbenchError(
                    f"cityscapes root {self.root} is not usable: missing {problems[0].expected}; "
                    "run 'dfbench check-data --dataset cityscapes'."
                )
            self._samples = {}
            for label_path in self._label_paths():
                city, sequence, frame = label_path.name[: -len(LABEL_SUFFIX)].split("_")
                last = int(frame)
                indices = clip_indices(last, NUM_FRAMES, STRIDE)
                folder = self.frames_dir / label_path.parent.name
                paths = tuple(folder / f"{city}_{sequence}_{i:06d}{FRAME_SUFFIX}" for i in indices)
                sample_id = f"{label_path.parent.name}/{city}_{sequence}_{frame}"
                depth = self.depth_dir / label_path.parent.name / f"{city}_{sequence}_{frame}{DEPTH_SUFFIX}"
                self._samples[sample_id] = _Sample(paths, indices, label_path, depth)
        return self._samples

    def load(self, sample_id: str) -> Clip:
        sample = self._index()[sample_id]
        frames = np.stack([read_rgb(path) for path in sample.frame_paths])
        train_ids = label_ids_to_train_ids(self._resized(read_label_array(sample.label_path)))
        labels = torch.full((NUM_FRAMES, *train_ids.shape), SEG_IGNORE, dtype=torch.int64)
        labels[-1] = torch.from_numpy(train_ids)
        out = {"seg": labels}
        if self.reads_depth:
            out["depth"] = self._depth(sample)
        return self._clip(sample_id, frames, sample.frame_indices, out)

    def _depth(self, sample: _Sample) -> torch.Tensor:
        """uint8 relative depth [T, h, w] of the labelled (last) frame; the other frames 0 (no label)."""
        if not sample.depth_path.is_file():
            raise DfbenchError(
                f"relative depth PNG {sample.depth_path} does not exist; make the depth PNGs with DINO-Foresight's "
                "preprocess_scripts/run_depth_cs.py into the cityscapes root, or score segmentation only."
            )
        depth = torch.from_numpy(self._resized(read_label_array(sample.depth_path, np.uint8)))
        out = torch.zeros((NUM_FRAMES, *depth.shape), dtype=torch.uint8)
        out[-1] = depth
        return out

    def check(self, deep: bool = False) -> list[DataProblem]:
        """Layout, then every frame and label of every clip (header and tail; ``deep`` decodes)."""
        problems = missing_dirs(self.root, self._layout())
        if problems:
            return problems
        samples = self._index()
        if not samples:
            return [DataProblem(str(self.labels_dir), f"<city>/*{LABEL_SUFFIX} fine label files")]
        for sample_id, sample in samples.items():
            problems += check_clip_images(sample_id, "f-18..f step 3", sample.frame_paths, deep=deep)
            if problem := check_image(sample.label_path, f"labelIds PNG of clip {sample_id}", modes=("L",), deep=deep):
                problems.append(problem)
            if self.reads_depth and (
                problem := check_image(sample.depth_path, f"relative depth PNG of clip {sample_id}", modes=("L",), deep=deep)
            ):
                problems.append(problem)
        return problems


class CityscapesTrainFrames:
    """Head training frames: every ``gtFine/train`` fine label with its frame (19 trainIds).

    With the ``task`` option ``reldepth256`` the same frames are labelled instead with
    DINO-Foresight's 8-bit relative depth, ``leftImg8bit_sequence_depthv2/train/<city>/
    <stem>_leftImg8bit_depth.png`` (its preprocessing run over the training split, in the
    layout of the validation PNGs), for the DPT depth head of the dinoforesight protocol.
    """

    tasks: ClassVar[dict[str, int]] = {"reldepth256": 256}

    def items(self, root: Path, frame_size: int, options: dict[str, Any]) -> list[TrainItem]:
        labels = root / "gtFine" / "train"
        if not labels.is_dir():
            raise DfbenchError(f"{labels} does not exist; unpack gtFine_trainvaltest.zip into the cityscapes root.")
        frames = root / "leftImg8bit" / "train"
        if not frames.is_dir():
            frames = root / "leftImg8bit_sequence" / "train"
        task = options.get("task")
        depth = root / DEPTH_FOLDER / "train"
        if task is not None and not depth.is_dir():
            raise DfbenchError(f"{depth} does not exist; make the training depth PNGs with DINO-Foresight's "
                               "preprocess_scripts/run_depth_cs.py into the cityscapes root.")
        items = []
        for label in sorted(labels.rglob(f"*{LABEL_SUFFIX}")):
            stem, city = label.name[: -len(LABEL_SUFFIX)], label.parent.name
            target = label if task is None else depth / city / f"{stem}{DEPTH_SUFFIX}"
            items.append(TrainItem(f"{city}/{stem}", frames / city / f"{stem}{FRAME_SUFFIX}", target, task))
        return items

    def read(self, item: TrainItem) -> tuple[np.ndarray, torch.Tensor]:
        if item.task is None:
            return read_rgb(item.frame_path), torch.from_numpy(label_ids_to_train_ids(read_label_array(item.label_path)))
        return read_rgb(item.frame_path), torch.from_numpy(read_label_array(item.label_path, np.uint8))


TRAIN_FRAMES = CityscapesTrainFrames()
