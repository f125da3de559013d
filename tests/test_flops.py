"""FLOPs counting: attention on the CPU, the paper's Table B and Table 2, and `dfbench flops`."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from dfbench.cli.flops import flops_command
from dfbench.errors import DfbenchError
from dfbench.flops import (
    _module,
    component_flops,
    count_flops,
    reported_gflops,
    total_from_components,
    total_gflops,
)
from dfbench.models import DeltaTok, DeltaTokConfig, DeltaWorld, DeltaWorldConfig, DINOWorld, DINOWorldConfig
from dfbench.tables import load_flops

TABLE_B, TABLE_2 = reported_gflops()


def _attention_flops(batch: int, heads: int, len_q: int, len_k: int, head_dim: int) -> int:
    # q k^T and (softmax) v, each 2 FLOPs per multiply-add.
    return 2 * (2 * batch * heads * len_q * len_k * head_dim)


def _by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["key"]: row for row in rows}


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("masked", [False, True])
def test_single_sdpa_call_is_counted(device: str, masked: bool) -> None:
    q = torch.randn(2, 3, 5, 8, device=device)
    k = torch.randn(2, 3, 7, 8, device=device)
    mask = torch.zeros(1, 1, 5, 7, device=device) if masked else None
    count = count_flops(lambda: F.scaled_dot_product_attention(q, k, k, attn_mask=mask))
    assert count.total == count.attention == _attention_flops(2, 3, 5, 7, 8)


def test_cpu_and_meta_count_the_same_tokenizer() -> None:
    config = DeltaTokConfig(hidden_size=64, num_heads=2, num_layers=2, intermediate_size=96)
    counts = {}
    for device in ("cpu", "meta"):
        with torch.device(device):
            tokenizer = DeltaTok(config).eval()
        x = torch.randn(3, 16, 64, device=device)
        counts[device] = count_flops(lambda: tokenizer.decode(tokenizer.encode(x, x, (4, 4)), x, (4, 4)))
    assert counts["cpu"] == counts["meta"]
    # encoder on 1 + 2N tokens, decoder on 1 + N, two layers each.
    expected = 2 * (_attention_flops(3, 2, 33, 33, 32) + _attention_flops(3, 2, 17, 17, 32))
    assert counts["cpu"].attention == expected


@pytest.mark.parametrize("resolution", [256, 512])
def test_decoder_matches_closed_form(resolution: int) -> None:
    d, heads, inner, layers = 768, 12, 2048, 12
    length = 1 + (resolution // 16) ** 2  # the token z and the previous frame's patches
    # q, k, v, o projections, the per-head gate and the SwiGLU MLP, per token.
    linear = 2 * length * (4 * d * d + d * heads + 3 * d * inner)
    expected = layers * (linear + _attention_flops(1, heads, length, length, d // heads))
    rows = component_flops("deltaworld", resolution=resolution, num_samples=1)
    assert _by_key(rows)["decoder_step"]["gflops"] * 1e9 == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("key", ["predictor_ctx4", "predictor_ctx5", "predictor_ctx6", "decoder_step"])
def test_deltaworld_reproduces_table_b(key: str) -> None:
    rows = component_flops("deltaworld")
    assert rows[0]["key"] == "backbone" and rows[1]["key"] == "encoder"
    assert _by_key(rows)[key]["gflops"] == pytest.approx(TABLE_B[("deltaworld", key)], rel=0.02)


@pytest.mark.parametrize("context", [4, 5, 6])
def test_dino_world_table_b_counts_predictor_attention_twice(context: int) -> None:
    row = _by_key(component_flops("dino-world"))[f"predictor_ctx{context}"]
    reported = TABLE_B[("dino-world", f"predictor_ctx{context}")]
    assert row["paper_convention_gflops"] == pytest.approx(reported, rel=0.02)
    assert row["paper_convention_gflops"] == pytest.approx(row["gflops"] + row["attention_gflops"])
    # The correct count is well below the paper's: the doubled attention is not noise.
    assert row["gflops"] < 0.92 * reported


@pytest.mark.parametrize("model", ["dino-world", "dino-world-bom", "deltaworld-frame", "deltaworld"])
def test_totals_reproduce_table_2(model: str) -> None:
    assert total_gflops(model, paper_convention=True) == pytest.approx(TABLE_2[model], rel=0.02)


def test_totals_are_two_crops_of_shared_plus_samples() -> None:
    rows = component_flops("deltaworld", num_samples=7)
    parts = _by_key(rows)
    per_sample = sum(r["gflops"] for r in rows if r["group"] == "per sample")
    shared = parts["backbone"]["gflops"] + parts["encoder"]["gflops"]
    assert total_from_components(rows) == pytest.approx(2 * (shared + 7 * per_sample))
    # Deterministic models draw one future whatever num_samples says.
    assert total_gflops("dino-world", num_samples=7) == total_gflops("dino-world", num_samples=1)


def test_components_compose_into_the_real_rollouts() -> None:
    samples, ctx, steps, n, d, grid = 2, 4, 3, 256, 768, (16, 16)
    with torch.device("meta"):
        deltaworld = DeltaWorld(_module("tokenizer", "meta"), DeltaWorldConfig.vitb()).eval()
        dino_world = DINOWorld(DINOWorldConfig.vitb()).eval().requires_grad_(False)

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device="meta")

    def noise(step: int) -> torch.Tensor:
        return zeros(1, samples, 1, d)

    args = (zeros(1, ctx, n, d), zeros(1, ctx), zeros(1, steps), grid)
    black = zeros(n, d)
    counted = {
        "deltaworld": count_flops(lambda: deltaworld.rollout(*args, num_samples=samples, noise=noise, x_black=black)),
        "dino-world": count_flops(lambda: dino_world.rollout(*args)),
    }
    # The rollouts reuse work the paper's per-call counts repeat: the context's kv
    # projection (2 * D * 2Dp FLOPs per token and block) is done once instead of once per
    # sample and step, and DeltaTok's last encoder block computes only the z row.
    frames = zeros(ctx, n, d)
    tokenizer = deltaworld.tokenizer
    encoder_saved = count_flops(lambda: tokenizer.encode(frames, frames, grid)).total - count_flops(
        lambda: tokenizer.encode(frames, frames, grid, z_only=True)
    ).total
    kv_flops = 12 * 2 * d * 2 * d  # per context token, all 12 blocks
    saved = {
        "deltaworld": encoder_saved + kv_flops * ctx * (samples * steps - 1),
        "dino-world": kv_flops * ctx * n * (1 * steps - 1),
    }
    assert encoder_saved > 0
    for model, count in counted.items():
        rows = component_flops(model, context=ctx, num_samples=samples, steps=steps)
        # The rollouts start from features: everything but the backbone.
        expected = sum(r["gflops"] * r["repeats"] for r in rows if r["key"] != "backbone")
        assert count.total == pytest.approx(expected * 1e9 - saved[model], rel=1e-12)


def test_unknown_model_and_bad_resolution_are_user_errors() -> None:
    with pytest.raises(DfbenchError, match="deltaworld"):
        component_flops("deltawrld")
    with pytest.raises(DfbenchError, match="multiple"):
        component_flops("deltaworld", resolution=250)


def test_cli_writes_components_totals_and_latex(tmp_path) -> None:
    runner = CliRunner()
    args = ["--model", "deltaworld", "--model", "dino-world", "--out", str(tmp_path)]
    result = runner.invoke(flops_command, args)
    assert result.exit_code == 0, result.output
    assert "Predictor (4-frame context)" in result.output

    totals = load_flops(tmp_path / "flops.csv")  # what `dfbench table main` reads
    assert set(totals) == {"deltaworld", "dino-world"}
    assert totals["deltaworld"] == pytest.approx(TABLE_2["deltaworld"], rel=0.02)
    assert totals["dino-world"] < 0.95 * TABLE_2["dino-world"]  # the correct count by default

    components = pd.read_csv(tmp_path / "flops_components.csv")
    assert len(components) == 8 + 4
    decoder = components[(components.model == "deltaworld") & (components.key == "decoder_step")]
    assert list(decoder.repeats) == [20, 20, 20] and (decoder.reported_gflops == 46.12).all()
    tex = (tmp_path / "flops.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "DeltaTok decoder (step 3)" in tex

    result = runner.invoke(flops_command, [*args, "--paper-convention"])
    assert result.exit_code == 0, result.output
    paper = load_flops(tmp_path / "flops.csv")
    assert paper["dino-world"] == pytest.approx(TABLE_2["dino-world"], rel=0.02)


def test_reported_numbers_only_apply_at_the_papers_settings(tmp_path) -> None:
    result = CliRunner().invoke(flops_command, ["--model", "deltaworld", "--resolution", "512", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    components = pd.read_csv(tmp_path / "flops_components.csv")
    assert components.reported_gflops.isna().all() and (components.resolution == 512).all()
    assert math.isnan(pd.read_csv(tmp_path / "flops.csv").reported_gflops[0])


@pytest.mark.slow
def test_vitb_decoder_on_cpu_counts_attention() -> None:
    tokenizer = _module("tokenizer", "cpu")
    x = torch.randn(1, 256, 768)
    count = count_flops(lambda: tokenizer.decode(x[:, :1], x, (16, 16)))
    assert count.total / 1e9 == pytest.approx(TABLE_B[("deltaworld", "decoder_step")], rel=0.02)
    assert count.attention == 12 * _attention_flops(1, 12, 257, 257, 64)
