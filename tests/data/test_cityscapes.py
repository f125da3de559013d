"""Cityscapes validation clips: sample list, frames f-18..f, trainId labels, checks."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from trees import cityscapes_frame_name, make_cityscapes_tree

from dfbench.data.cityscapes import CityscapesDataset
from dfbench.data.train_frames import TrainFrames, iter_train_frames
from dfbench.errors import DfbenchError

# The 19 evaluation classes of cityscapesScripts (labelId -> trainId).
EVAL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def test_one_clip_per_fine_label_in_sorted_order(cityscapes_tree):
    root, expected = cityscapes_tree
    dataset = CityscapesDataset(str(root), frame_size=16)
    assert dataset.sample_ids() == expected  # sorted paths; _color/_instanceIds files ignored
    assert CityscapesDataset(str(root)).sample_ids() == expected
    assert len(dataset) == 4 and dataset.tasks == {"seg": 19} and dataset.fps == 16.0 and dataset.version == "1.0"


def test_frames_are_f_minus_18_to_f_step_3_resized_with_cv2(cityscapes_tree):
    root, _ = cityscapes_tree
    clip = CityscapesDataset(str(root), frame_size=16).load("lindau/lindau_000001_000314")
    assert clip.frames.dtype == torch.uint8 and clip.frames.shape == (7, 3, 16, 32)
    for t, frame in enumerate(range(296, 315, 3)):
        path = root / "leftImg8bit_sequence" / "val" / "lindau" / cityscapes_frame_name("lindau", 1, frame)
        decoded = np.asarray(Image.open(path).convert("RGB"))
        expected = cv2.resize(decoded, (32, 16), interpolation=cv2.INTER_LINEAR)
        assert torch.equal(clip.frames[t], torch.from_numpy(expected).permute(2, 0, 1)), f"frame {t}"


def test_timestamps_are_multiples_of_0_1875_s(cityscapes_tree):
    root, ids = cityscapes_tree
    clip = CityscapesDataset(str(root), frame_size=16).load(ids[0])
    stamps = torch.tensor([i / 16.0 for i in range(276, 295, 3)], dtype=torch.float32)
    assert torch.equal(clip.timestamps, stamps - stamps[0])
    assert clip.timestamps.tolist() == [k * 0.1875 for k in range(7)]


def test_label_ids_map_to_train_ids_on_the_last_frame_only(cityscapes_tree):
    root, ids = cityscapes_tree
    clip = CityscapesDataset(str(root), frame_size=16).load(ids[0])
    label_ids = np.asarray(Image.open(root / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_labelIds.png"))
    seg = clip.labels["seg"]
    assert seg.dtype == torch.int64 and seg.shape == (7, *label_ids.shape)
    assert (seg[:6] == 255).all()
    for label_id in range(34):
        where = torch.from_numpy(label_ids == label_id)
        assert where.any(), "the tree should hold every label id"
        expected = EVAL_IDS.index(label_id) if label_id in EVAL_IDS else 255
        assert (seg[-1][where] == expected).all(), f"labelId {label_id}"


@pytest.mark.slow
def test_protocol_size_of_a_full_resolution_frame(tmp_path):
    make_cityscapes_tree(tmp_path, cities=("bonn",), sequences=1, size=(1024, 2048), snippet_frames=20)
    clip = CityscapesDataset(str(tmp_path), frame_size=512).load("bonn/bonn_000000_000294")
    assert clip.frames.shape == (7, 3, 512, 1024) and clip.labels["seg"].shape == (7, 1024, 2048)


def test_check_passes_then_names_each_broken_file(tmp_path, cityscapes_tree):
    source, ids = cityscapes_tree
    assert CityscapesDataset(str(source)).check() == []
    root = tmp_path / "cs"
    shutil.copytree(source, root)
    frames = root / "leftImg8bit_sequence" / "val" / "frankfurt"
    missing = frames / cityscapes_frame_name("frankfurt", 0, 279)
    missing.unlink()
    truncated = frames / cityscapes_frame_name("frankfurt", 1, 314)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    label = root / "gtFine" / "val" / "lindau" / "lindau_000000_000294_gtFine_labelIds.png"
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(label)  # a colour image where labelIds belong
    problems = {p.path: p.expected for p in CityscapesDataset(str(root)).check()}
    assert set(problems) == {str(missing), str(truncated), str(label)}
    assert problems[str(missing)] == f"missing frame 2 of 7 (f-18..f step 3) of clip {ids[0]}"
    assert "truncated" in problems[str(truncated)]
    assert "mode L, found mode RGB" in problems[str(label)]


def test_check_reports_a_wrong_layout_and_a_missing_root(tmp_path):
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    problems = CityscapesDataset(str(tmp_path)).check()
    assert [p.path for p in problems] == [str(tmp_path / "leftImg8bit_sequence" / "val")]
    assert CityscapesDataset(str(tmp_path / "absent")).check()[0].expected == "an existing data root folder"
    (tmp_path / "leftImg8bit_sequence" / "val").mkdir(parents=True)
    assert "fine label files" in CityscapesDataset(str(tmp_path)).check()[0].expected
    with pytest.raises(DfbenchError, match="check-data"):
        CityscapesDataset(str(tmp_path / "absent")).sample_ids()


def test_unknown_split_and_options_are_refused(cityscapes_tree):
    root, _ = cityscapes_tree
    with pytest.raises(DfbenchError, match="no split 'test'"):
        CityscapesDataset(str(root), split="test")
    with pytest.raises(DfbenchError, match="split_file"):
        CityscapesDataset(str(root), split_file="eigen.txt")
    assert CityscapesDataset(str(root), split_file=None).sample_ids()  # None options are ignored


def test_train_frames_pair_each_fine_label_with_its_frame(tmp_path):
    make_cityscapes_tree(tmp_path, split="train", cities=("aachen",), sequences=2)
    items = list(iter_train_frames("cityscapes", str(tmp_path), 16))
    assert [item.sample_id for item in items] == ["aachen/aachen_000000_000294", "aachen/aachen_000001_000314"]
    frame_path = tmp_path / "leftImg8bit_sequence" / "train" / "aachen" / cityscapes_frame_name("aachen", 0, 294)
    expected = cv2.resize(np.asarray(Image.open(frame_path).convert("RGB")), (32, 16), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(items[0].frame, torch.from_numpy(expected).permute(2, 0, 1))
    assert items[0].label.shape == (32, 64) and items[0].task == "seg"
    assert set(items[0].label.unique().tolist()) == set(range(19)) | {255}
    assert len(TrainFrames("cityscapes", str(tmp_path), 16, limit=1)) == 1
