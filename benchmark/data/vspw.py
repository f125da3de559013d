"""VSPW validation clips (124-class video semantic segmentation), as the reference builds them.

Layout under the root (``VSPW_480p`` as released, or its parent folder)::

    val.txt                         one video folder name a line
    data/<video>/origin/<name>.jpg  frames
    data/<video>/mask/<name>.png    palette PNGs, 0 = unlabelled, 1..124 = classes, 255 = ignore

Within each video the frames are sorted by name (macOS ``._`` resource files left out)
and numbered by position. Every 20th position (19, 39, 59, ...) ends one clip of
positions end-18, end-15, ..., end (stride int(0.2 s * 15 fps) = 3); clips that would
start before position 0 are dropped. Every frame is labelled with mask - 1, values
outside 0..123 becoming 255. Timestamps are position / 15. Clips are shuffled with
``random.Random(0)`` like the reference. Download: https://www.vspwdataset.com/ (VSPW_480p).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dfbench.data.base import SEG_IGNORE, Clip, DataProblem
from dfbench.data.checks import check_clip_images, missing_dirs, read_label_array, read_rgb
from dfbench.data.common import RootDataset, clip_indices
from dfbench.data.spec import DatasetSpec
from dfbench.data.train_frames import TrainItem
from dfbench.errors import DfbenchError

NUM_FRAMES = 7
FPS = 15.0
STRIDE = int(0.2 * FPS)  # 3 positions = 0.2 s
EVAL_INTERVAL = 20  # every 20th frame ends a clip (DINO-world's VSPW protocol)
NUM_CLASSES = 124
MASK_MODES = ("P", "L")
RELEASE_FOLDER = "VSPW_480p"

SPEC = DatasetSpec(
    name="vspw",
    display="VSPW",
    version="1.0",
    tasks={"seg": NUM_CLASSES},
    fps=FPS,
    env="VSPW_ROOT",
    train_frames="dfbench.data.vspw:TRAIN_FRAMES",
)


def mask_to_labels(mask: np.ndarray) -> np.ndarray:
    """VSPW mask values -> int64 class labels: value - 1, anything outside 0..123 -> 255."""
    labels = mask.astype(np.int64) - 1
    labels[(labels < 0) | (labels >= NUM_CLASSES)] = SEG_IGNORE
    return labels


def sorted_frames(origin: Path) -> list[Path]:
    """A video's frames in the reference's order: sorted paths, ``._`` files left out."""
    return sorted(path for path in origin.glob("*.jpg") if not path.name.startswith("._"))


def clip_end_positions(num_frames: int) -> list[int]:
    """End positions of the clips of a video with ``num_frames`` frames."""
    first_start = (NUM_FRAMES - 1) * STRIDE
    return [end for end in range(EVAL_INTERVAL - 1, num_frames, EVAL_INTERVAL) if end >= first_start]


@dataclass(frozen=True)
class _Sample:
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]
    positions: tuple[int, ...]


class VspwDataset(RootDataset):
    """VSPW val: 7-frame clips at 15 fps, every frame labelled with 124 classes.

    Clip ids are ``<video>/<name of the last frame>``, in the reference's shuffled order.

    Args:
        root: the ``VSPW_480p`` folder (or its parent); None resolves it from
            ``$VSPW_ROOT`` or the data config.
        frame_size: short side after the protocol resize.
        split: the video list to read, ``<split>.txt`` ("val" for the benchmark).
        config_path: data config file to read instead of the default.
    """

    spec = SPEC
    _splits: ClassVar[tuple[str, ...]] = ("val", "train", "test")
    _split_error: ClassVar[str] = "vspw has no split '{split}'; use 'val', 'train' or 'test'."

    _videos: list[str] | None = None  # the list file's videos, read on first use

    def _locate_root(self, root: Path) -> Path:
        # Accept the folder that holds the unpacked release as well as the release itself.
        listed = f"{self.split}.txt"
        if not (root / listed).exists() and (root / RELEASE_FOLDER / listed).exists():
            return root / RELEASE_FOLDER
        return root

    @property
    def list_file(self) -> Path:
        return self.root / f"{self.split}.txt"

    def videos(self) -> list[str]:
        """Video folder names of the split, in the order of the list file."""
        if self._videos is None:
            if not self.list_file.is_file():
                raise DfbenchError(
                    f"vspw list {self.list_file} does not exist; point --data-root at VSPW_480p "
                    "(it holds data/ and val.txt)."
                )
            self._videos = [line.strip() for line in self.list_file.read_text().splitlines() if line.strip()]
        return self._videos

    def _index(self) -> dict[str, _Sample]:
        if self._samples is None:
            data = self.root / "data"
            if not data.is_dir():
                raise DfbenchError(f"vspw root {self.root} has no data/ folder; point --data-root at VSPW_480p.")
            samples: list[tuple[str, _Sample]] = []
            for video in self.videos():
                frames = sorted_frames(data / video / "origin")
                for end in clip_end_positions(len(frames)):
                    positions = clip_indices(end, NUM_FRAMES, STRIDE)
                    chosen = tuple(frames[p] for p in positions)
                    masks = tuple(data / video / "mask" / path.name.replace(".jpg", ".png") for path in chosen)
                    samples.append((f"{video}/{frames[end].stem}", _Sample(chosen, masks, positions)))
            random.Random(0).shuffle(samples)  # the reference's fixed shuffle of the clip list
            self._samples = dict(samples)
        return self._samples

    def load(self, sample_id: str) -> Clip:
        sample = self._index()[sample_id]
        frames = np.stack([read_rgb(path) for path in sample.frame_paths])
        labels = np.stack([mask_to_labels(read_label_array(path)) for path in sample.mask_paths])
        return self._clip(sample_id, frames, sample.positions, {"seg": torch.from_numpy(labels)})

    def check(self, deep: bool = False) -> list[DataProblem]:
        """Layout, every listed video's folders, then the 7 frames and 7 masks of every clip."""
        problems = missing_dirs(self.root, {"data": "data/<video>/origin and mask folders"})
        if not self.list_file.is_file():
            problems.append(DataProblem(str(self.list_file), f"the {self.split} video list ({self.split}.txt)"))
        if problems:
            return problems
        for video in self.videos():
            for kind, what in (("origin", "the video's JPEG frames"), ("mask", "the video's PNG masks")):
                folder = self.root / "data" / video / kind
                if not folder.is_dir():
                    problems.append(DataProblem(str(folder), f"folder {kind}/ of listed video {video} ({what})"))
        samples = self._index()
        if not samples and not problems:
            problems.append(DataProblem(str(self.root / "data"), f"videos of {self.split}.txt with at least 20 frames"))
        for sample_id, sample in samples.items():
            problems += check_clip_images(
                sample_id,
                "end-18..end step 3",
                sample.frame_paths,
                sample.mask_paths,
                "mask",
                label_modes=MASK_MODES,
                deep=deep,
            )
        return problems


class VspwTrainFrames:
    """Head training frames: every ``every``-th frame (option, default 1) of the ``train.txt`` videos."""

    def items(self, root: Path, frame_size: int, options: dict[str, Any]) -> list[TrainItem]:
        dataset = VspwDataset(str(root), frame_size, split="train")
        items = []
        for video in dataset.videos():
            folder = dataset.root / "data" / video
            for path in sorted_frames(folder / "origin")[:: int(options.get("every", 1))]:
                items.append(TrainItem(f"{video}/{path.stem}", path, folder / "mask" / path.name.replace(".jpg", ".png")))
        return items

    def read(self, item: TrainItem) -> tuple[np.ndarray, torch.Tensor]:
        return read_rgb(item.frame_path), torch.from_numpy(mask_to_labels(read_label_array(item.label_path)))


TRAIN_FRAMES = VspwTrainFrames()
