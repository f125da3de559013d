"""The masked feature transformer against the official predictor at both horizons."""

from __future__ import annotations

import pytest
import torch

from dfbench.errors import DfbenchError
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig
from dfbench.models.foresight_eval import copy_last, forecast, horizon
from foresight_helpers import close, snippet_frames


def test_horizons_are_the_official_frames(fx):
    data = fx["data"]
    assert list(horizon("short").frames) == list(data["short_frame_indices"])
    assert list(horizon("mid").frames) == list(data["mid_frame_indices"])
    assert horizon("short").label_frame == data["gt_frame_index"]
    assert horizon("mid").passes == len(fx["stages"]["mid"]["unroll_predictor_out"])
    with pytest.raises(DfbenchError, match="unknown DINO-Foresight horizon 'long'"):
        horizon("long")


def test_short_horizon_single_pass(fx, parts):
    short = fx["stages"]["short"]
    tokens = parts.predictor.tokens(short["pca_feats"])
    close(tokens, short["predictor_in"])
    with torch.no_grad():
        close(parts.predictor(short["pca_feats"]), short["predictor_out"])
    close(parts.space.decode(forecast(parts.predictor, short["pca_feats"], "short")), short["pred_feats"])


def test_mid_horizon_three_autoregressive_passes(fx, parts):
    mid = fx["stages"]["mid"]
    with torch.no_grad():
        state, inputs, outputs = parts.predictor.unroll(mid["pca_feats"], len(mid["unroll_predictor_out"]))
    for got, expected in zip(inputs, mid["unroll_predictor_in"]):
        close(got, expected)
    for got, expected in zip(outputs, mid["unroll_predictor_out"]):
        close(got, expected)
    close(state, mid["final_state_pca"])
    close(parts.space.decode(forecast(parts.predictor, mid["pca_feats"], "mid")), mid["pred_feats"])


@pytest.mark.parametrize("name", ["short", "mid"])
def test_every_clip_from_uint8_frames(fx, parts, name):
    """The whole chain frames -> PCA -> forecast -> inverse PCA, and Copy-last, for all batches."""
    h, w = parts.grid
    stages = fx["stages"]
    preds, copies = [], []
    for batch in parts.batches:
        pca = parts.space.encode(snippet_frames(fx, batch, list(horizon(name).frames))).unflatten(2, (h, w))
        preds.append(parts.space.decode(forecast(parts.predictor, pca, name)))
        copies.append(parts.space.decode(copy_last(pca)))
    close(torch.cat(preds), stages[name]["pred_feats_all_clips"])
    close(torch.cat(copies), stages[f"copy_last_{name}"]["pred_feats_all_clips"])


def test_evaluation_is_deterministic_and_refuses_training_mode(fx, parts):
    pca = fx["stages"]["short"]["pca_feats"]
    assert torch.equal(forecast(parts.predictor, pca, "short"), forecast(parts.predictor, pca, "short"))
    # The masked slot's content never reaches the network.
    noisy = pca.clone()
    noisy[:, -1] = torch.randn_like(noisy[:, -1])
    assert torch.equal(forecast(parts.predictor, noisy, "short"), forecast(parts.predictor, pca, "short"))
    parts.predictor.train()
    try:
        with pytest.raises(DfbenchError, match="training mode"):
            forecast(parts.predictor, pca, "short")
    finally:
        parts.predictor.eval()


def test_sizes_and_bad_inputs(fx, parts):
    with pytest.raises(DfbenchError, match="divisible by 3"):
        ForesightConfig(hidden_dim=50, heads=2)
    config = parts.predictor.config
    with pytest.raises(DfbenchError, match="takes PCA features"):
        parts.predictor(torch.zeros(1, config.frames, *config.grid, config.pca_dim + 1))
    with pytest.raises(DfbenchError, match="position tables cover"):
        parts.predictor(torch.zeros(1, config.frames, config.grid[0] + 1, config.grid[1], config.pca_dim))
    assert ForesightConfig.from_dict(config.to_dict()) == config


def test_released_size_has_the_released_parameter_count(fx):
    """dinof_highres / dinof_lowres predictor sizes (FACTS.md, section 13), built without memory."""
    expected = {(32, 64): 257_763_072, (16, 32): 257_744_640}
    for grid, count in expected.items():
        with torch.device("meta"):
            model = DinoForesight(ForesightConfig.released(grid))
        assert sum(p.numel() for p in model.parameters()) == count
