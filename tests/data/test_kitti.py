"""KITTI Eigen-test clips: list parsing, skipping, KB crop, depth masking, errors."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from trees import (
    KITTI_NO_DEPTH,
    KITTI_ODD,
    KITTI_SIZES,
    KITTI_WIDE,
    kitti_split_line,
    make_kitti_tree,
    write_split_file,
)

from dfbench.data.kitti import KittiDataset
from dfbench.data.kitti_split import EIGEN_TEST, SplitSource, file_sha256, locate_split_file, read_split
from dfbench.data.train_frames import TrainFrames
from dfbench.errors import DfbenchError

# A list in the Eigen format over the generated tree: kept, too-early, no-gt and
# no-depth-drive lines, in a deliberate (unsorted) order.
LINES = [
    kitti_split_line(KITTI_WIDE, 21),
    kitti_split_line(KITTI_WIDE, 10),  # frame < 19: skipped
    kitti_split_line(KITTI_ODD, 20, focal="718.856"),
    kitti_split_line(KITTI_WIDE, 25, with_depth=False),  # ground truth None: skipped
    kitti_split_line(KITTI_WIDE, 19),
    kitti_split_line(KITTI_NO_DEPTH, 30),  # drive without annotated depth: skipped
    kitti_split_line(KITTI_WIDE, 23),
]
KEPT = [f"{KITTI_WIDE}/0000000021", f"{KITTI_ODD}/0000000020", f"{KITTI_WIDE}/0000000019", f"{KITTI_WIDE}/0000000023"]


@pytest.fixture(scope="module")
def split_file(tmp_path_factory) -> Path:
    return write_split_file(tmp_path_factory.mktemp("split") / "eigen.txt", LINES)


def raw_frame(root: Path, drive: str, frame: int) -> np.ndarray:
    return np.asarray(Image.open(root / drive[:10] / drive / "image_02" / "data" / f"{frame:010d}.png").convert("RGB"))


def raw_depth(root: Path, split: str, drive: str, frame: int) -> np.ndarray:
    path = root / split / drive / "proj_depth" / "groundtruth" / "image_02" / f"{frame:010d}.png"
    return np.asarray(Image.open(path)).astype(np.float32) / 256.0


def test_list_skips_none_early_frames_and_drives_without_depth(kitti_tree, split_file):
    dataset = KittiDataset(str(kitti_tree), split_file=str(split_file))
    expected_order = list(KEPT)
    random.Random(0).shuffle(expected_order)  # the reference shuffles its kept list once
    assert dataset.sample_ids() == expected_order
    assert KittiDataset(str(kitti_tree), split_file=str(split_file)).sample_ids() == expected_order
    assert dataset.skipped_drives() == {KITTI_NO_DEPTH: 1}
    assert dataset.tasks == {"depth": 1} and dataset.fps == 10.0 and dataset.version == "1.0"


@pytest.mark.parametrize("drive,last,top,left", [(KITTI_WIDE, 23, 23, 13), (KITTI_ODD, 20, 24, 12)])
def test_frames_are_kb_cropped_then_squashed_to_512x1024(kitti_tree, split_file, drive, last, top, left):
    clip = KittiDataset(str(kitti_tree), split_file=str(split_file)).load(f"{drive}/{last:010d}")
    assert clip.frames.dtype == torch.uint8 and clip.frames.shape == (7, 3, 512, 1024)
    for t, frame in enumerate(range(last - 12, last + 1, 2)):
        cropped = raw_frame(kitti_tree, drive, frame)[top : top + 352, left : left + 1216]
        expected = cv2.resize(np.ascontiguousarray(cropped), (1024, 512), interpolation=cv2.INTER_LINEAR)
        assert torch.equal(clip.frames[t], torch.from_numpy(expected).permute(2, 0, 1)), f"frame {t}"


def test_timestamps_are_frame_index_over_fps_relative_to_first(kitti_tree, split_file):
    clip = KittiDataset(str(kitti_tree), split_file=str(split_file)).load(f"{KITTI_WIDE}/0000000023")
    stamps = torch.tensor([i / 10.0 for i in range(11, 24, 2)], dtype=torch.float32)
    assert clip.timestamps.dtype == torch.float32
    assert torch.equal(clip.timestamps, stamps - stamps[0])
    assert torch.allclose(clip.timestamps, torch.arange(7) * 0.2)


@pytest.mark.parametrize("drive,split,last", [(KITTI_WIDE, "val", 21), (KITTI_ODD, "train", 20)])
def test_every_frame_carries_masked_depth(kitti_tree, split_file, drive, split, last):
    depth = KittiDataset(str(kitti_tree), split_file=str(split_file)).load(f"{drive}/{last:010d}").labels["depth"]
    height, width = KITTI_SIZES[drive]
    top, left = height - 352, (width - 1216) // 2
    assert depth.dtype == torch.float32 and depth.shape == (7, 352, 1216)
    for t, frame in enumerate(range(last - 12, last + 1, 2)):
        cropped = raw_depth(kitti_tree, split, drive, frame)[top : top + 352, left : left + 1216]
        garg = np.zeros_like(cropped, dtype=bool)
        garg[143:349, 43:1172] = True  # int(0.40810811*352), int(0.99189189*352), ... of 1216
        valid = garg & (cropped > 1e-3) & (cropped < 80)
        assert torch.equal(depth[t], torch.from_numpy(np.where(valid, cropped, 0).astype(np.float32))), f"frame {t}"
        assert (cropped[garg] >= 80).any(), "the tree must hold far points for the range mask to matter"
    assert (depth[:, :143] == 0).all() and (depth[:, :, 1172:] == 0).all() and (depth < 80).all()
    assert not torch.equal(depth[0], depth[-1])


def test_the_real_eigen_list_gives_603_clips_with_all_drives(tmp_path, eigen_test_list):
    drives = {entry.drive for entry in read_split(eigen_test_list)}
    assert len(drives) == 28
    for drive in drives:
        (tmp_path / "val" / drive / "proj_depth" / "groundtruth" / "image_02").mkdir(parents=True)
    ids = KittiDataset(str(tmp_path), split_file=str(eigen_test_list)).sample_ids()
    # 652 lines have ground truth; 49 of them have frame numbers below 19.
    assert len(ids) == len(set(ids)) == 603
    assert ids != sorted(ids)


def test_a_partial_tree_keeps_only_the_drives_with_depth(tmp_path, eigen_test_list):
    # Drive 0002: 16 lines with ground truth and frame >= 19; drive 0048: all below 19.
    make_kitti_tree(tmp_path, {}, depth_split={})
    for drive, split in (("2011_09_26_drive_0002_sync", "train"), ("2011_09_26_drive_0048_sync", "val")):
        (tmp_path / split / drive / "proj_depth" / "groundtruth" / "image_02").mkdir(parents=True)
    dataset = KittiDataset(str(tmp_path), split_file=str(eigen_test_list), require_all_drives=False)
    assert len(dataset.sample_ids()) == 16
    assert all(i.startswith("2011_09_26_drive_0002_sync/") for i in dataset.sample_ids())
    assert len(dataset.skipped_drives()) == 26
    first = dataset.sample_ids()[0]
    frame = int(first.split("/")[1])
    make_kitti_tree(tmp_path, {"2011_09_26_drive_0002_sync": range(frame - 12, frame + 1, 2)}, depth_split={"2011_09_26_drive_0002_sync": "train"})
    clip = dataset.load(first)
    assert clip.frames.shape == (7, 3, 512, 1024) and (clip.labels["depth"] > 0).any()


def test_check_passes_on_a_complete_tree_and_reports_drives_without_depth(kitti_tree, split_file):
    problems = KittiDataset(str(kitti_tree), split_file=str(split_file)).check()
    assert [p.expected for p in problems] == [f"annotated depth of drive {KITTI_NO_DEPTH} (1 clips need it)"]
    assert KittiDataset(str(kitti_tree), split_file=str(split_file), require_all_drives=False).check() == []


def test_check_names_missing_frames_bad_depth_and_small_frames(tmp_path, kitti_tree, split_file):
    root = tmp_path / "kitti"
    shutil.copytree(kitti_tree, root)
    frames = root / "2011_09_26" / KITTI_WIDE / "image_02" / "data"
    (frames / "0000000011.png").unlink()
    depth_dir = root / "val" / KITTI_WIDE / "proj_depth" / "groundtruth" / "image_02"
    Image.fromarray(np.zeros((375, 1242), np.uint8)).save(depth_dir / "0000000017.png")  # 8-bit, not 16-bit
    Image.fromarray(np.zeros((300, 1000, 3), np.uint8)).save(frames / "0000000015.png")
    problems = KittiDataset(str(root), split_file=str(split_file), require_all_drives=False).check()
    by_path = {p.path: p.expected for p in problems}
    assert "missing frame 1 of 7 (f-12..f step 2)" in by_path[str(frames / "0000000011.png")]
    assert "mode I;16" in by_path[str(depth_dir / "0000000017.png")]
    assert "at least 352x1216, found 300x1000" in by_path[str(frames / "0000000015.png")]


def test_check_reports_a_missing_root_and_a_missing_list(tmp_path):
    assert KittiDataset(str(tmp_path / "nope"), split_file="x").check()[0].path == str(tmp_path / "nope")
    problems = KittiDataset(str(tmp_path), split_file=str(tmp_path / "missing.txt")).check()
    assert len(problems) == 1 and "--split-file" in problems[0].expected


def test_malformed_list_line_is_named(tmp_path):
    bad = write_split_file(tmp_path / "bad.txt", [kitti_split_line(KITTI_WIDE, 21), "garbage"])
    with pytest.raises(DfbenchError, match=r"bad.txt:2 is not a KITTI split line"):
        read_split(bad)


def test_split_list_comes_from_the_cache_or_a_checked_download(tmp_path, eigen_test_list):
    assert file_sha256(eigen_test_list) == EIGEN_TEST.sha256
    cache = tmp_path / "cache"
    with pytest.raises(DfbenchError, match="--split-file"):
        locate_split_file(None, EIGEN_TEST, cache=cache, download=False)
    # A file:// address exercises the real download path without the network.
    local = SplitSource("Eigen test", EIGEN_TEST.cache_name, eigen_test_list.resolve().as_uri(), EIGEN_TEST.sha256)
    cached = locate_split_file(None, local, cache=cache)
    assert cached == cache / "kitti_eigen_test.txt" and file_sha256(cached) == EIGEN_TEST.sha256
    assert locate_split_file(None, EIGEN_TEST, cache=cache, download=False) == cached
    cached.write_text(kitti_split_line(KITTI_WIDE, 21))
    with pytest.raises(DfbenchError, match="not the standard list"):
        locate_split_file(None, EIGEN_TEST, cache=cache)
    wrong = SplitSource("Eigen test", "other.txt", cached.as_uri(), EIGEN_TEST.sha256)
    with pytest.raises(DfbenchError, match="not the pinned one"):
        locate_split_file(None, wrong, cache=cache)
    gone = SplitSource("Eigen test", "gone.txt", (tmp_path / "absent.txt").as_uri(), EIGEN_TEST.sha256)
    with pytest.raises(DfbenchError, match="downloading it failed"):
        locate_split_file(None, gone, cache=cache)


def test_train_frames_use_the_kb_crop_and_the_depth_range_only(kitti_tree, tmp_path):
    train_list = write_split_file(tmp_path / "train.txt", [kitti_split_line(KITTI_ODD, 12), kitti_split_line(KITTI_WIDE, 9)])
    frames = TrainFrames("kitti", str(kitti_tree), 512, split_file=str(train_list))
    assert [frames[i].sample_id for i in range(len(frames))] == [f"{KITTI_ODD}/0000000012", f"{KITTI_WIDE}/0000000009"]
    item = frames[0]
    cropped = raw_depth(kitti_tree, "train", KITTI_ODD, 12)[24:376, 12:1228]
    assert item.task == "depth" and item.frame.shape == (3, 512, 1024)
    assert torch.equal(item.label, torch.from_numpy(np.where((cropped > 1e-3) & (cropped < 80), cropped, 0)))
    assert (item.label[:, :43] > 0).any(), "no Garg mask in training labels"
