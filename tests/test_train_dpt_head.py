"""`dfbench train head` on a multi-layer PCA space: DPT heads on PCA-reconstructed features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from dfbench.cli.main import cli
from dfbench.data.relative_depth_labels import relative_disparity_uint8
from dfbench.data.synthetic import SyntheticDataset
from dfbench.features import load_feature_space
from dfbench.heads.catalog import build_head, dpt_config, load_heads
from dfbench.heads.pca_dpt import PcaDptHead
from dfbench.heads.train import head_examples, head_loss, task_labels, train_head


@pytest.fixture(scope="module")
def space():
    return load_feature_space("tiny-ml-pca")


@pytest.fixture(scope="module")
def clips(space):
    train = SyntheticDataset(frame_size=space.frame_size, split="train", num_clips=2)
    return [train.load(i) for i in train.sample_ids()]


def test_targets_come_from_the_synthetic_labels(clips):
    labels = clips[0].labels
    assert torch.equal(task_labels(labels, "seg-mo"), labels["seg"])
    depth = task_labels(labels, "reldepth256")
    assert depth.dtype == torch.uint8 and torch.equal(depth, relative_disparity_uint8(labels["depth"]))
    assert int(depth.max()) == 255


def test_whole_frames_and_full_label_maps(space, clips):
    examples = head_examples(clips, space, "reldepth256", frames_per_clip=2)
    assert len(examples) == 4 and all(ex.crop is None for ex in examples)
    assert examples[0].features.shape == (space.grid[0] * space.grid[1], space.dim)
    assert examples[0].label.shape == clips[0].labels["depth"].shape[-2:]


def test_training_lowers_the_loss_of_a_dpt_head(space, clips):
    examples = head_examples(clips, space, "seg-mo", frames_per_clip=2)
    torch.manual_seed(0)
    fresh = build_head("seg-mo", space.dim, 7, space, dpt_config("tiny-ml-pca")).eval()
    trained = train_head(examples, "seg-mo", 7, space.dim, space.grid, epochs=15, batch_size=2, lr=3e-3,
                         feature_space=space, dpt_config=dpt_config("tiny-ml-pca"))
    assert isinstance(trained, PcaDptHead) and trained.config.features == 32
    with torch.no_grad():
        before, after = head_loss(fresh, examples, space.grid, "seg-mo"), head_loss(trained, examples, space.grid, "seg-mo")
    assert after < 0.8 * before


def test_cli_writes_a_head_the_catalog_loads(space, tmp_path):
    args = ["train", "head", "--feature-space", "tiny-ml-pca", "--dataset", "synthetic", "--task", "reldepth256",
            "--limit", "1", "--frames-per-clip", "1", "--epochs", "1", "--batch-size", "1", "--out-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    path = tmp_path / "synthetic-reldepth256.safetensors"
    with safe_open(str(path), "pt") as handle:
        meta, keys = handle.metadata(), set(handle.keys())
    assert meta["head"] == "pca-dpt" and meta["classes"] == "256" and json.loads(meta["dpt"])["features"] == 32
    assert not any(k.startswith("pca.") for k in keys)
    head = load_heads(space, space.dim, "synthetic", {"reldepth256": 256}, {"reldepth256": str(path)})["reldepth256"]
    maps = torch.zeros(2, space.dim, *space.grid)
    assert head(maps).shape == (2, 256, 8 * space.grid[0], 8 * space.grid[1])


def test_a_task_the_data_set_cannot_label_is_one_line(dfbench_cli, tmp_path):
    result = dfbench_cli("train", "head", "--feature-space", "tiny-ml-pca", "--dataset", "kitti", "--task", "seg-mo",
                         "--out-dir", str(tmp_path))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "has no labels for task 'seg-mo'" in result.err and not list(tmp_path.iterdir())


def test_a_head_with_another_class_count_is_one_line_through_the_cli(dfbench_cli, space, tmp_path):
    """A depth head (256 bins) passed as the 7-class segmentation head: exit 2, one line, no result."""
    from dfbench.heads.catalog import save_head

    path = tmp_path / "depth.safetensors"
    save_head(build_head("reldepth256", space.dim, 256, space, dpt_config("tiny-ml-pca")), path, {})
    result = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthetic", "--feature-space", "tiny-ml-pca",
                         "--head", f"seg={path}", "--head", f"depth={path}", "--limit", "1", "--no-progress",
                         "--output-dir", str(tmp_path / "out"))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "predicts 256 classes but this task needs 7" in result.err
    assert not (tmp_path / "out" / "synthetic").exists()


def test_shipped_tiny_heads_decode_true_pca_features(space):
    """The shipped tiny heads, found through the catalog, on the true PCA features of val frames (Present)."""
    from dfbench.heads.linear import features_to_map
    from dfbench.tasks import get_task

    heads = load_heads(space, space.dim, "synthetic", {"seg-mo": 7, "reldepth256": 256})
    val = SyntheticDataset(frame_size=72, split="val", num_clips=4)  # native frames, as under dinoforesight
    scores = {}
    with torch.no_grad():
        for task, head in heads.items():
            assert isinstance(head, PcaDptHead) and head.config.features == 32
            definition, stats = get_task(task), None
            for sample_id in val.sample_ids():
                clip = val.load(sample_id)
                maps = features_to_map(space.encode(clip.frames[-1:]), space.grid)
                (step,) = definition.statistics(head(maps), task_labels(clip.labels, task)[-1:], head.config.num_classes)
                stats = step if stats is None else definition.merge(stats, step)
            scores[task] = definition.compute(stats)
    assert scores["seg-mo"]["miou_all"] > 70 and scores["reldepth256"]["d1"] > 35


def test_cityscapes_trains_a_relative_depth_head_from_its_depth_pngs(dfbench_cli, space, tmp_path):
    """The training split's depthv2 PNGs label the frames for reldepth256; seg-mo still reads gtFine."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from trees import cityscapes_depth_path, make_cityscapes_tree

    from dfbench.data.checks import read_label_array
    from dfbench.data.train_frames import head_training_clips

    root = tmp_path / "cityscapes"
    make_cityscapes_tree(root, split="train", cities=("aachen",), sequences=2, snippet_frames=20, relative_depth=True)
    clips = head_training_clips("cityscapes", str(root), 32, task="reldepth256")
    png = read_label_array(cityscapes_depth_path(root, "train", "aachen", "aachen_000001_000314"), np.uint8)
    assert [c.sample_id for c in clips] == ["aachen/aachen_000000_000294", "aachen/aachen_000001_000314"]
    assert clips[1].labels["reldepth256"].dtype == torch.uint8
    assert torch.equal(clips[1].labels["reldepth256"][0], torch.from_numpy(png))
    args = ["train", "head", "--feature-space", "tiny-ml-pca", "--dataset", "cityscapes", "--data-root", str(root),
            "--frame-size", "32", "--task", "reldepth256", "--task", "seg-mo", "--epochs", "1", "--batch-size", "2",
            "--out-dir", str(tmp_path / "heads")]
    result = dfbench_cli(*args)
    assert result.code == 0, result.err
    for task, classes in (("reldepth256", "256"), ("seg-mo", "19")):
        with safe_open(str(tmp_path / "heads" / f"cityscapes-{task}.safetensors"), "pt") as handle:
            assert handle.metadata()["classes"] == classes
    cityscapes_depth_path(root, "train", "aachen", "aachen_000001_000314").unlink()
    missing = dfbench_cli(*args[:-2], "--out-dir", str(tmp_path / "again"))
    errors = [line for line in missing.err.splitlines() if "Loading weights" not in line]  # the library's progress bar
    assert missing.code == 2 and len(errors) == 1
    assert "aachen_000001_000314_leftImg8bit_depth.png is missing" in errors[0]
