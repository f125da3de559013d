"""The samples' energy score, spread-skill ratio and best-of-k curve against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from dfbench.sample_scores import EnsembleStats, ensemble_statistics
from dfbench.scoring import feature_loss

BETA = 0.1


def brute_force(preds: torch.Tensor, targets: torch.Tensor, row: int, step: int) -> dict[str, float]:
    """Loops over tokens and sample pairs, straight from the definitions."""
    samples, tokens = preds.shape[1], preds.shape[3]
    x, y = preds[row, :, step].double(), targets[row, step].double()
    skill = spread = 0.0
    for n in range(tokens):
        skill += sum(float(torch.linalg.norm(x[i, n] - y[n])) for i in range(samples)) / samples
        pairs = [float(torch.linalg.norm(x[i, n] - x[j, n])) for i in range(samples) for j in range(samples) if i != j]
        spread += sum(pairs) / len(pairs)
    mean = x.mean(dim=0)
    sse = float(((mean - y) ** 2).sum())
    var = sum(float(((x[i] - mean) ** 2).sum()) for i in range(samples)) / (samples - 1)
    return {"skill": skill, "spread": spread, "sse": sse, "var": var * (samples + 1) / samples}


def test_statistics_match_brute_force():
    gen = torch.Generator().manual_seed(0)
    preds, targets = torch.randn(2, 4, 3, 5, 6, generator=gen), torch.randn(2, 3, 5, 6, generator=gen)
    found = ensemble_statistics(preds, targets, BETA)
    assert len(found) == 2 and all(len(steps) == 3 for steps in found)
    for row in range(2):
        for step in range(3):
            expected = brute_force(preds, targets, row, step)
            for name, value in expected.items():
                assert found[row][step][name] == pytest.approx(value, rel=1e-9), (row, step, name)
            assert found[row][step]["tokens"] == 5
        # Best-of-k at the last step: the mean minimum over every k-subset of the samples' losses.
        losses = feature_loss(preds[row, :, -1], targets[row, -1][None], BETA).tolist()
        for k in range(1, 5):
            subsets = [min(s) for s in itertools.combinations(losses, k)]
            assert found[row][2]["best_of_k"][k - 1] == pytest.approx(sum(subsets) / len(subsets), rel=1e-6)
        assert "best_of_k" not in found[row][0] and found[row][2]["crops"] == 1


def test_metrics_from_summed_statistics():
    gen = torch.Generator().manual_seed(1)
    preds, targets = torch.randn(3, 5, 1, 4, 8, generator=gen), torch.randn(3, 1, 4, 8, generator=gen)
    owner = EnsembleStats()
    per_crop = [steps[0] for steps in ensemble_statistics(preds, targets, BETA)]
    total = per_crop[0]
    for stats in per_crop[1:]:
        total = owner.merge(total, stats)
    metrics = owner.compute(total)
    tokens = 3 * 4
    assert metrics["energy"] == pytest.approx((total["skill"] - 0.5 * total["spread"]) / tokens)
    assert metrics["energy_spread"] == pytest.approx(0.5 * total["spread"] / tokens)
    assert metrics["spread_skill"] == pytest.approx(math.sqrt(total["var"] / total["sse"]))
    curve = [metrics[f"best_of_{k}"] for k in range(1, 6)]
    assert curve == sorted(curve, reverse=True)  # more samples never make the best worse
    means = feature_loss(preds[:, :, -1], targets[:, None, -1], BETA).mean(dim=1)
    assert curve[0] == pytest.approx(float(means.mean()), rel=1e-6)


def test_identical_samples_have_no_spread_and_a_perfect_forecast_scores_zero():
    target = torch.randn(1, 2, 3, 4)
    same = target[:, None].expand(1, 3, 2, 3, 4).clone()
    (steps,) = ensemble_statistics(same, target, BETA)
    metrics = EnsembleStats().compute(steps[-1])
    assert metrics["energy"] == pytest.approx(0.0, abs=1e-12) and metrics["energy_spread"] == 0.0
    assert math.isnan(metrics["spread_skill"])  # no error to compare the spread with


def test_a_clips_scores_are_read_from_its_record():
    from dfbench.evaluate import finalize_stats
    from dfbench.sample_scores import clip_sample_scores

    gen = torch.Generator().manual_seed(2)
    preds, targets = torch.randn(1, 3, 2, 4, 5, generator=gen), torch.randn(1, 2, 4, 5, generator=gen)
    (steps,) = ensemble_statistics(preds, targets, BETA)
    record = finalize_stats({"sample_id": "a", "stats": {f"samples/mid/{k}/ensemble": s for k, s in enumerate(steps)}})
    scores = clip_sample_scores(record)
    assert set(scores) == {("mid", 0), ("mid", 1)} and "best_of_3" in scores[("mid", 1)]
    assert scores[("mid", 0)]["energy"] == pytest.approx(EnsembleStats().compute(steps[0])["energy"])
