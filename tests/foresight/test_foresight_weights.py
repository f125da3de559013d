"""dfbench's own DINO-Foresight predictor files: saved, loaded back exactly, refused when foreign."""

from __future__ import annotations

import pytest
import torch

from dfbench.checkpoints import save_safetensors
from dfbench.errors import DfbenchError
from dfbench.features.multilayer_pca import PcaProjection
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig
from dfbench.models.foresight_checkpoint import save_foresight_checkpoint
from dfbench.models.foresight_weights import load_foresight_safetensors, load_foresight_weights, save_foresight_safetensors

CONFIG = ForesightConfig(pca_dim=6, hidden_dim=12, layers=1, heads=2, mlp_dim=24, frames=5, grid=(2, 3))


def tiny_parts(seed: int = 0) -> tuple[DinoForesight, PcaProjection]:
    torch.manual_seed(seed)
    predictor = DinoForesight(CONFIG)
    for p in predictor.parameters():
        torch.nn.init.normal_(p, std=0.2)
    width = 16
    pca = PcaProjection(torch.randn(width), torch.rand(width) + 0.5, torch.randn(width) * 0.01, torch.randn(6, width))
    return predictor.eval(), pca


def test_round_trip_gives_the_same_predictions(tmp_path):
    predictor, pca = tiny_parts()
    path = save_foresight_safetensors(tmp_path / "p.safetensors", predictor, pca, {"feature_space": "x"})
    loaded = load_foresight_safetensors(path, feature_width=16, components=6)
    assert loaded.metadata["feature_space"] == "x" and loaded.predictor.config == CONFIG
    torch.testing.assert_close(loaded.pca.pca_components, pca.pca_components, rtol=0, atol=0)
    x = torch.randn(2, 5, 2, 3, 6)
    torch.testing.assert_close(loaded.predictor(x), predictor(x), rtol=0, atol=0)
    assert not loaded.predictor.training


def test_lightning_and_safetensors_load_through_one_function(tmp_path):
    predictor, pca = tiny_parts()
    save_foresight_checkpoint(tmp_path / "p.ckpt", predictor, pca)
    loaded = load_foresight_weights(tmp_path / "p.ckpt", feature_width=16, components=6)
    x = torch.randn(1, 5, 2, 3, 6)
    torch.testing.assert_close(loaded.predictor(x), predictor(x), rtol=0, atol=0)


def test_other_widths_and_other_models_are_refused(tmp_path):
    predictor, pca = tiny_parts()
    path = save_foresight_safetensors(tmp_path / "p.safetensors", predictor, pca)
    with pytest.raises(DfbenchError, match="fitted on 16-wide"):
        load_foresight_safetensors(path, feature_width=32)
    with pytest.raises(DfbenchError, match="6 components"):
        load_foresight_safetensors(path, components=8)
    other = save_safetensors({"w": torch.zeros(2)}, tmp_path / "o.safetensors", {"model": "dino-world", "config": {}})
    with pytest.raises(DfbenchError, match="'dino-world' model"):
        load_foresight_safetensors(other)
