"""SigLoss for depth heads: the formula, and training a linear depth head with it."""

from __future__ import annotations

import math

import pytest
import torch

from dfbench.data.synthetic import SyntheticDataset
from dfbench.errors import DfbenchError
from dfbench.features import load_feature_space
from dfbench.heads.depth_loss import silog_loss
from dfbench.heads.train import head_examples, head_loss, train_head


def test_silog_matches_a_direct_computation():
    pred, target = [2.0, 5.0, 10.0, 30.0], [2.5, 4.0, 12.0, 20.0]
    g = [math.log(p + 1e-3) - math.log(t + 1e-3) for p, t in zip(pred, target)]
    mean, mean_sq = sum(g) / len(g), sum(x * x for x in g) / len(g)
    expected = math.sqrt(mean_sq - 0.85 * mean**2)
    got = silog_loss(torch.tensor(pred, dtype=torch.float64), torch.tensor(target, dtype=torch.float64))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # λ = 1 forgives a global scale entirely; 0.85 still charges 15% of it.
    scaled = torch.tensor([2.0, 4.0, 8.0], dtype=torch.float64)
    assert silog_loss(3 * scaled, scaled, lam=1.0).item() < 1e-3  # only eps keeps it above 0
    assert silog_loss(3 * scaled, scaled).item() == pytest.approx(math.sqrt(0.15) * math.log(3), rel=1e-3)


@pytest.fixture(scope="module")
def space():
    return load_feature_space("tiny")


@pytest.fixture(scope="module")
def examples(space):
    train = SyntheticDataset(frame_size=space.frame_size, split="train", num_clips=4)
    return head_examples([train.load(i) for i in train.sample_ids()], space, "depth")


def _grid(space):
    return (space.frame_size // space.patch_size,) * 2


def test_head_loss_pools_valid_pixels_of_the_batch(space, examples):
    torch.manual_seed(0)
    head = train_head(examples[:2], "depth", 0, space.dim, _grid(space), epochs=0).eval()
    with torch.no_grad():
        got = head_loss(head, examples, _grid(space), "depth", "silog")
        squared = head_loss(head, examples, _grid(space), "depth")
    assert 0 < got.item() < 10 and got.item() != pytest.approx(squared.item())


def test_silog_training_lowers_the_silog_loss(space, examples):
    fresh = train_head(examples, "depth", 0, space.dim, _grid(space), epochs=0)
    trained = train_head(examples, "depth", 0, space.dim, _grid(space), epochs=4, batch_size=8, loss="silog")
    with torch.no_grad():
        before = head_loss(fresh, examples, _grid(space), "depth", "silog")
        after = head_loss(trained, examples, _grid(space), "depth", "silog")
    assert after < 0.8 * before


def test_silog_on_a_segmentation_task_is_one_line(dfbench_cli, tmp_path):
    with pytest.raises(DfbenchError, match="metric depth heads only"):
        train_head([], "seg", 7, 8, (2, 2), loss="silog")
    result = dfbench_cli("train", "head", "--feature-space", "tiny", "--dataset", "synthetic", "--task", "seg",
                         "--loss", "silog", "--out-dir", str(tmp_path / "out"))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "--loss silog" in result.err
