"""VSPW validation clips: every 20th frame, positions end-18..end, mask - 1 labels, checks."""

from __future__ import annotations

import random
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from trees import make_vspw_tree

from dfbench.data.train_frames import TrainFrames
from dfbench.data.vspw import VspwDataset
from dfbench.errors import DfbenchError


def frame_names(release, video):
    return sorted(p.name for p in (release / "data" / video / "origin").glob("*.jpg") if not p.name.startswith("._"))


def test_clips_end_at_every_20th_position_in_the_reference_order(vspw_tree):
    # Frame names start at 00000001, so the clip ending at position 19 ends at name 00000020.
    in_list_order = ["1001_long/00000020", "1001_long/00000040", "1001_long/00000060", "1003_mid/00000020", "1003_mid/00000040"]
    random.Random(0).shuffle(in_list_order)
    dataset = VspwDataset(str(vspw_tree), frame_size=16)
    assert dataset.sample_ids() == in_list_order
    assert VspwDataset(str(vspw_tree.parent)).sample_ids() == in_list_order  # the release's parent works too
    assert dataset.tasks == {"seg": 124} and dataset.fps == 15.0 and dataset.version == "1.0"


def test_frames_are_positions_end_minus_18_to_end_step_3(vspw_tree):
    clip = VspwDataset(str(vspw_tree), frame_size=16).load("1001_long/00000040")
    names = frame_names(vspw_tree, "1001_long")
    assert clip.frames.shape == (7, 3, 16, 29)  # 24x43 -> short side 16, long round(28.67)
    for t, position in enumerate(range(21, 40, 3)):
        decoded = np.asarray(Image.open(vspw_tree / "data" / "1001_long" / "origin" / names[position]).convert("RGB"))
        expected = cv2.resize(decoded, (29, 16), interpolation=cv2.INTER_LINEAR)
        assert torch.equal(clip.frames[t], torch.from_numpy(expected).permute(2, 0, 1)), f"frame {t}"
    stamps = torch.tensor([p / 15.0 for p in range(21, 40, 3)], dtype=torch.float32)
    assert torch.equal(clip.timestamps, stamps - stamps[0])
    assert torch.allclose(clip.timestamps, torch.arange(7) * 0.2)


def test_every_frame_is_labelled_with_mask_minus_one(vspw_tree):
    clip = VspwDataset(str(vspw_tree), frame_size=16).load("1003_mid/00000020")
    names = frame_names(vspw_tree, "1003_mid")
    seg = clip.labels["seg"]
    assert seg.dtype == torch.int64 and seg.shape == (7, 24, 43)
    for t, position in enumerate(range(1, 20, 3)):
        mask = np.asarray(Image.open(vspw_tree / "data" / "1003_mid" / "mask" / names[position].replace(".jpg", ".png")))
        expected = np.where((mask >= 1) & (mask <= 124), mask.astype(np.int64) - 1, 255)
        assert torch.equal(seg[t], torch.from_numpy(expected)), f"frame {t}"
    assert {0, 123, 255} <= set(seg.unique().tolist()) and seg[seg != 255].max() == 123


def test_check_passes_then_names_missing_masks_folders_and_corrupt_frames(tmp_path, vspw_tree):
    assert VspwDataset(str(vspw_tree)).check() == []
    release = tmp_path / "VSPW_480p"
    shutil.copytree(vspw_tree, release)
    mask = release / "data" / "1003_mid" / "mask" / "00000040.png"
    mask.unlink()
    frame = release / "data" / "1001_long" / "origin" / "00000057.jpg"
    frame.write_bytes(frame.read_bytes()[: len(frame.read_bytes()) // 2])
    (release / "val.txt").write_text((release / "val.txt").read_text() + "1004_absent\n")
    problems = {p.path: p.expected for p in VspwDataset(str(release)).check()}
    assert problems[str(mask)] == "missing mask 7 of 7 (end-18..end step 3) of clip 1003_mid/00000040"
    assert "frame 6 of 7" in problems[str(frame)]
    assert "listed video 1004_absent" in problems[str(release / "data" / "1004_absent" / "origin")]
    assert len(problems) == 4


def test_check_reports_missing_list_and_data_folder(tmp_path):
    problems = VspwDataset(str(tmp_path)).check()
    assert sorted(p.path for p in problems) == sorted([str(tmp_path / "data"), str(tmp_path / "val.txt")])
    with pytest.raises(DfbenchError, match="VSPW_480p"):
        VspwDataset(str(tmp_path)).sample_ids()


def test_train_frames_take_every_nth_frame_of_the_train_videos(tmp_path):
    release = make_vspw_tree(tmp_path, {"2001_a": 12, "2002_b": 7}, split="train", resource_forks=True)
    frames = TrainFrames("vspw", str(release), 16, every=5)
    assert [frames[i].sample_id for i in range(len(frames))] == [
        "2001_a/00000001", "2001_a/00000006", "2001_a/00000011", "2002_b/00000001", "2002_b/00000006",
    ]  # fmt: skip
    item = frames[1]
    mask = np.asarray(Image.open(release / "data" / "2001_a" / "mask" / "00000006.png"))
    assert torch.equal(item.label, torch.from_numpy(np.where((mask >= 1) & (mask <= 124), mask.astype(np.int64) - 1, 255)))
    assert item.frame.shape == (3, 16, 29) and item.task == "seg"
