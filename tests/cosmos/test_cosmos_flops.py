"""`dfbench flops` for the Cosmos models: whole frames, transformer x steps, VAE decoder, AR decoding."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from dfbench.adapters.cosmos_configs import AUTOREGRESSIVE
from dfbench.cli.flops import flops_command
from dfbench.flops import MODELS, PIXEL_FAMILY, component_flops, total_gflops
from dfbench.tables import load_flops

pytest.importorskip("diffusers", reason='diffusers is not installed (pip install "dfbench[cosmos]")')


def test_every_cosmos_model_is_countable():
    cosmos = [name for name, model in MODELS.items() if model.family == PIXEL_FAMILY]
    assert {"cosmos-4b", "cosmos-12b", "cosmos-predict2-2b", "cosmos1-7b-v2w", "cosmos-predict2.5-2b"} <= set(cosmos)


def test_diffusion_total_is_samples_times_guided_steps_plus_the_decoder():
    rows = {row["key"]: row for row in component_flops("cosmos-predict2-2b", num_samples=3)}
    step, decoder = rows["transformer_step"], rows["vae_decoder"]
    assert step["repeats"] == 3 * 35 * 2 and decoder["repeats"] == 3  # 35 steps, guidance doubles each
    assert step["crops"] == decoder["crops"] == 1  # whole frames, not two square crops
    expected = 3 * (70 * step["gflops"] + decoder["gflops"])
    assert total_gflops("cosmos-predict2-2b", num_samples=3) == pytest.approx(expected)
    # At most 2 x 2e9 parameters x 10560 tokens (3 latent frames of 44 x 80) before attention; less, as the
    # cross-attention keys and values see the 512 text tokens only.
    assert 3.0e4 < step["gflops"] - step["attention_gflops"] < 4.3e4


def test_the_bigger_models_cost_more_and_resolution_does_not_apply():
    assert total_gflops("cosmos1-14b-v2w", num_samples=1) > total_gflops("cosmos1-7b-v2w", num_samples=1)
    assert total_gflops("cosmos-4b", resolution=256) == total_gflops("cosmos-4b", resolution=512)


def test_autoregressive_decoding_matches_its_closed_form():
    (row,) = component_flops("cosmos-12b", num_samples=20)
    size = AUTOREGRESSIVE["cosmos-12b"]
    per_frame, context, generated = 40 * 64, 2 * 40 * 64, 3 * 40 * 64  # 9 frames in, 24 out, DV8x16x16
    assert (per_frame, row["repeats"]) == (2560, 20)
    linear = 2 * size["layers"] * (2 * 5120**2 + 2 * 5120 * 1280 + 3 * 5120 * size["mlp"]) + 2 * 5120 * size["vocab"]
    attention = 4 * size["layers"] * 5120 * (generated * context + generated * (generated + 1) // 2)
    assert row["gflops"] == pytest.approx((generated * linear + attention) / 1e9)
    # about 2 x 12e9 parameters x 7680 tokens
    assert 1.5e5 < row["gflops"] < 3.0e5


def test_cli_writes_cosmos_rows_for_the_main_table(tmp_path):
    result = CliRunner().invoke(flops_command, ["--model", "cosmos-4b", "--model", "deltaworld", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    totals = load_flops(tmp_path / "flops.csv")
    assert totals["cosmos-4b"] > 50 * totals["deltaworld"]
    frame = pd.read_csv(tmp_path / "flops.csv").set_index("model")
    assert frame.loc["cosmos-4b", "crops"] == 1 and frame.loc["deltaworld", "crops"] == 2
    assert "whole frame" in result.output
