"""DINO-Foresight's GFLOPs: the counter against a hand formula, and its rows in `dfbench flops`."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from dfbench.cli.flops import flops_command
from dfbench.flops import component_flops, total_gflops
from dfbench.flops_foresight import predictor_attention_flops, predictor_pass
from dfbench.models.dino_foresight import ForesightConfig


def hand_count(c: ForesightConfig) -> tuple[int, int]:
    """(all matmuls, attention matrices) of one pass, 2 FLOPs per multiply-add, batch 1."""
    t, (h, w), d, k, m = c.frames, c.grid, c.hidden_dim, c.pca_dim, c.mlp_dim
    n = t * h * w
    per_layer_linear = 2 * (2 * n * d * 3 * d + 2 * n * d * d) + 2 * (2 * n * d * m)  # two attentions' q/k/v/out, MLP
    attention = 4 * t * (h * w) ** 2 * d + 4 * (h * w) * t**2 * d  # spatial, temporal: q k^T and attn x v
    linear = 2 * n * k * d + c.layers * per_layer_linear + 2 * n * d * k  # embed, layers, fc_out
    return linear + c.layers * attention, c.layers * attention


def test_predictor_count_matches_the_hand_formula_at_a_tiny_config():
    tiny = ForesightConfig(pca_dim=12, hidden_dim=24, layers=2, heads=2, mlp_dim=48, frames=5, grid=(3, 4))
    total, attention = hand_count(tiny)
    count = predictor_pass(tiny)
    assert (count.total, count.attention) == (total, attention) == (1923840, 195840)
    assert predictor_attention_flops(tiny) == attention


def test_released_forecast_is_backbone_pca_and_one_pass_per_step():
    released = ForesightConfig.released()
    assert released.frames * released.grid[0] * released.grid[1] == 10240  # tokens per forecast
    total, _ = hand_count(released)
    assert predictor_pass().total == total and round(total / 1e9, 2) == 6435.22
    rows = component_flops("dino-foresight", steps=3)
    assert [r["key"] for r in rows] == ["backbone", "pca", "predictor_pass1", "predictor_pass2", "predictor_pass3"]
    assert all(r["crops"] == 1 and r["repeats"] == 1 for r in rows)
    # PCA: [4 x 2048, 3072] @ [3072, 1152].
    assert rows[1]["gflops"] == pytest.approx(2 * 4 * 2048 * 3072 * 1152 / 1e9)
    short, mid = total_gflops("dino-foresight", steps=1), total_gflops("dino-foresight", steps=3)
    assert mid - short == pytest.approx(2 * total / 1e9)
    assert short == pytest.approx(sum(r["gflops"] for r in rows[:3]))


def test_cli_counts_dino_foresight(tmp_path):
    result = CliRunner().invoke(flops_command, ["--model", "dino-foresight", "--steps", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    totals = pd.read_csv(tmp_path / "flops.csv").set_index("model")
    assert totals.loc["dino-foresight", "crops"] == 1
    assert totals.loc["dino-foresight", "gflops"] == pytest.approx(total_gflops("dino-foresight", steps=1))
