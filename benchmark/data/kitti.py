"""KITTI Eigen-test clips (monocular depth), as the reference builds them.

Layout under the root: the raw drives (``raw_data_downloader`` zips) and the annotated
depth (``data_depth_annotated.zip``) unpacked into the same folder::

    2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png           raw left colour frames
    train/2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/0000000005.png  16-bit depth * 256
    val/2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png

One clip per line of the Eigen test list (see :mod:`dfbench.data.kitti_split`) whose
ground truth is not ``None`` and whose frame number is at least 19: frames f-12, f-10,
..., f (stride int(0.2 s * 10 fps) = 2). Depth for all 7 frames comes from the drive's
``proj_depth/groundtruth/image_02`` under ``val/`` first, then ``train/``; drives
with neither are skipped, as the reference does. Frames and depth get the KB crop
(bottom 352 rows, centred 1216 columns) before the resize; depth keeps only the Garg
region and 1e-3 < d < 80, everything else is 0. Clips are shuffled with
``random.Random(0)`` like the reference; with the complete data there are 603.
Download: https://www.cvlibs.net/datasets/kitti/raw_data.php (the drives of the list,
synced+rectified) and https://www.cvlibs.net/datasets/kitti/eval_depth.php?benchmark=depth_prediction
(``data_depth_annotated.zip``), both unpacked into the root.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dfbench.data.base import Clip, DataProblem
from dfbench.data.checks import check_clip_images, read_label_array, read_rgb
from dfbench.data.common import RootDataset, clip_indices
from dfbench.data.kitti_split import EIGEN_TEST, EIGEN_TRAIN, SplitEntry, locate_split_file, read_split
from dfbench.data.spec import DatasetSpec
from dfbench.data.train_frames import TrainItem
from dfbench.errors import DfbenchError

NUM_FRAMES = 7
FPS = 10.0
STRIDE = int(0.2 * FPS)  # 2 frames = 0.2 s
MIN_LAST_FRAME = 19  # the reference skips list entries with a lower frame number

# KB crop (Kuznietsov et al.; the crop of the KITTI depth benchmark images).
KB_CROP_HEIGHT = 352
KB_CROP_WIDTH = 1216
# Garg et al. (ECCV 2016) evaluation region, as fractions of the cropped map.
GARG_TOP, GARG_BOTTOM = 0.40810811, 0.99189189
GARG_LEFT, GARG_RIGHT = 0.03594771, 0.96405229
MIN_DEPTH, MAX_DEPTH = 1e-3, 80.0
DEPTH_SCALE = 256.0  # KITTI depth PNGs store metres * 256 as uint16
DEPTH_MODES = ("I;16", "I;16B", "I")  # how PIL opens 16-bit grey PNGs

SPEC = DatasetSpec(
    name="kitti",
    display="KITTI",
    version="1.0",
    tasks={"depth": 1},
    fps=FPS,
    env="KITTI_ROOT",
    train_frames="dfbench.data.kitti:TRAIN_FRAMES",
)


def kb_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """The bottom 352 rows and centred 1216 columns of a frame or depth map of the given size."""
    top = height - KB_CROP_HEIGHT
    left = (width - KB_CROP_WIDTH) // 2
    return array[top : top + KB_CROP_HEIGHT, left : left + KB_CROP_WIDTH]


def garg_valid_mask(depth: np.ndarray) -> np.ndarray:
    """Pixels inside the Garg region of a cropped depth map with 1e-3 < d < 80."""
    height, width = depth.shape
    region = np.zeros(depth.shape, dtype=bool)
    region[int(GARG_TOP * height) : int(GARG_BOTTOM * height), int(GARG_LEFT * width) : int(GARG_RIGHT * width)] = True
    return region & (depth > MIN_DEPTH) & (depth < MAX_DEPTH)


def read_depth(path: Path) -> np.ndarray:
    """A KITTI depth PNG -> float32 metres [H, W] (0 where the map has no measurement)."""
    return read_label_array(path, np.float32) / DEPTH_SCALE


def eval_depth(depths: list[np.ndarray]) -> torch.Tensor:
    """Depth maps of one clip -> float32 [T, 352, 1216], 0 outside the Garg region and range.

    The crop box comes from the first map, as in the reference.
    """
    height, width = depths[0].shape
    out = []
    for depth in depths:
        cropped = kb_crop(depth, height, width)
        out.append(torch.from_numpy(cropped * garg_valid_mask(cropped)))
    return torch.stack(out)


def find_depth_dir(root: Path, drive: str) -> Path | None:
    """The drive's annotated depth folder, under ``val/`` first and then ``train/``."""
    for split in ("val", "train"):
        folder = root / split / drive / "proj_depth" / "groundtruth" / "image_02"
        if folder.exists():
            return folder
    return None


@dataclass(frozen=True)
class _Sample:
    frame_paths: tuple[Path, ...]
    depth_paths: tuple[Path, ...]
    frame_indices: tuple[int, ...]


class KittiDataset(RootDataset):
    """KITTI Eigen test: 7-frame clips at 10 fps with depth on every frame.

    Clip ids are ``<drive>/<frame:010d>``, in the reference's shuffled order.

    Args:
        root: the KITTI folder (raw date folders plus ``train/`` and ``val/`` of the
            annotated depth); None resolves it from ``$KITTI_ROOT`` or the data config.
        frame_size: short side after the protocol resize.
        split: "val" (the Eigen test list is the benchmark's validation split).
        split_file: the Eigen test list; None looks in the cache, then downloads it.
        config_path: data config file to read instead of the default.
        require_all_drives: whether :meth:`check` reports drives of the list that have
            no annotated depth (the loader skips them either way, as the reference does,
            but the numbers then differ from the published ones).
    """

    spec = SPEC
    _splits: ClassVar[tuple[str, ...]] = ("val", "test")
    _split_error: ClassVar[str] = "kitti evaluates on the Eigen test list only; use split 'val', not '{split}'."

    def __init__(
        self,
        root: str | None = None,
        frame_size: int = 512,
        split: str = "val",
        *,
        split_file: str | None = None,
        config_path: str | None = None,
        require_all_drives: bool = True,
        **options,
    ):
        super().__init__(root, frame_size, split, config_path=config_path, **options)
        self.split_file = split_file
        self.require_all_drives = require_all_drives
        self._skipped_drives: dict[str, int] = {}

    def entries(self) -> list[SplitEntry]:
        """The lines of the Eigen test list (located as :func:`locate_split_file` says)."""
        return read_split(locate_split_file(self.split_file, EIGEN_TEST))

    def _index(self) -> dict[str, _Sample]:
        if self._samples is None:
            if not self.root.is_dir():
                raise DfbenchError(f"kitti root {self.root} does not exist; pass --data-root or set $KITTI_ROOT.")
            samples: list[tuple[str, _Sample]] = []
            depth_dirs: dict[str, Path | None] = {}
            for entry in self.entries():
                if entry.depth is None or entry.frame < MIN_LAST_FRAME:
                    continue
                indices = clip_indices(entry.frame, NUM_FRAMES, STRIDE)
                if entry.drive not in depth_dirs:
                    depth_dirs[entry.drive] = find_depth_dir(self.root, entry.drive)
                depth_dir = depth_dirs[entry.drive]
                if depth_dir is None:
                    self._skipped_drives[entry.drive] = self._skipped_drives.get(entry.drive, 0) + 1
                    continue
                frames_dir = self.root / entry.date / entry.drive / "image_02" / "data"
                sample = _Sample(
                    frame_paths=tuple(frames_dir / f"{i:010d}.png" for i in indices),
                    depth_paths=tuple(depth_dir / f"{i:010d}.png" for i in indices),
                    frame_indices=indices,
                )
                samples.append((f"{entry.drive}/{entry.frame:010d}", sample))
            # The reference shuffles its clip list once with a fixed seed; the order feeds
            # nothing numeric but keeps our ids in the reference's evaluation order.
            random.Random(0).shuffle(samples)
            self._samples = dict(samples)
        return self._samples

    def skipped_drives(self) -> dict[str, int]:
        """Drives of the list without annotated depth -> how many clips were skipped."""
        self._index()
        return dict(self._skipped_drives)

    def load(self, sample_id: str) -> Clip:
        sample = self._index()[sample_id]
        frames = [read_rgb(path) for path in sample.frame_paths]
        height, width = frames[0].shape[:2]
        frames = np.stack([kb_crop(frame, height, width) for frame in frames])
        depth = eval_depth([read_depth(path) for path in sample.depth_paths])
        return self._clip(sample_id, frames, sample.frame_indices, {"depth": depth})

    def check(self, deep: bool = False) -> list[DataProblem]:
        """Root, list, drives with depth, then the 7 frames and 7 depth maps of every clip."""
        if not self.root.is_dir():
            return [DataProblem(str(self.root), "an existing KITTI root folder (raw drives and annotated depth)")]
        try:
            samples = self._index()
        except DfbenchError as error:
            return [DataProblem(str(self.split_file or EIGEN_TEST.cache_name), str(error))]
        problems: list[DataProblem] = []
        if self.require_all_drives:
            for drive, count in self._skipped_drives.items():
                folder = f"{{val,train}}/{drive}/proj_depth/groundtruth/image_02"
                problems.append(
                    DataProblem(str(self.root / folder), f"annotated depth of drive {drive} ({count} clips need it)")
                )
        if not samples and not problems:
            problems.append(DataProblem(str(self.root / "val"), "annotated depth for at least one drive of the list"))
        minimum = (KB_CROP_HEIGHT, KB_CROP_WIDTH)
        for sample_id, sample in samples.items():
            problems += check_clip_images(
                sample_id,
                "f-12..f step 2",
                sample.frame_paths,
                sample.depth_paths,
                "16-bit depth PNG",
                label_modes=DEPTH_MODES,
                min_size=minimum,
                deep=deep,
            )
        return problems


class KittiTrainFrames:
    """Head training frames: the Eigen train list's lines with ground truth (option ``split_file``).

    Depth after the KB crop with 1e-3 < d < 80 kept and 0 elsewhere; the Garg region is an
    evaluation convention and is not applied here.
    """

    def items(self, root: Path, frame_size: int, options: dict[str, Any]) -> list[TrainItem]:
        items = []
        depth_dirs: dict[str, Path | None] = {}
        for entry in read_split(locate_split_file(options.get("split_file"), EIGEN_TRAIN)):
            if entry.depth is None:
                continue
            if entry.drive not in depth_dirs:
                depth_dirs[entry.drive] = find_depth_dir(root, entry.drive)
            if depth_dirs[entry.drive] is None:
                continue
            items.append(
                TrainItem(f"{entry.drive}/{entry.frame:010d}", root / entry.image, depth_dirs[entry.drive] / Path(entry.depth).name)
            )
        return items

    def read(self, item: TrainItem) -> tuple[np.ndarray, torch.Tensor]:
        frame = read_rgb(item.frame_path)
        depth = read_depth(item.label_path)
        depth = kb_crop(depth, *depth.shape)
        label = np.where((depth > MIN_DEPTH) & (depth < MAX_DEPTH), depth, 0).astype(np.float32)
        return kb_crop(frame, *frame.shape[:2]), torch.from_numpy(label)


TRAIN_FRAMES = KittiTrainFrames()
