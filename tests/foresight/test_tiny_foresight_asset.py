"""The shipped tiny DINO-Foresight: its file, its recipe, and that it forecasts better than Copy-last."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dfbench.checkpoints import load_checkpoint, read_safetensors_metadata
from dfbench.features import load_feature_space
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig
from dfbench.train.foresight_holdout import holdout_losses, synthetic_clip_features

ROOT = Path(__file__).resolve().parents[2]
ASSET = ROOT / "adapters" / "assets" / "tiny-dino-foresight.safetensors"
CONFIG = ROOT / "configs" / "train" / "tiny-dino-foresight.yaml"


@pytest.fixture(scope="module")
def model() -> DinoForesight:
    config = ForesightConfig.from_dict(read_safetensors_metadata(ASSET)["config"])
    net = DinoForesight(config)
    load_checkpoint(net, str(ASSET), "dino-foresight")
    return net.eval()


def test_asset_is_the_recipe_s_final_stage(model):
    meta = read_safetensors_metadata(ASSET)
    recipe = yaml.safe_load(CONFIG.read_text())
    assert meta["model"] == "dino-foresight" and meta["feature_space"] == recipe["feature_space"] == "tiny-ml-pca"
    assert meta["run"] == "tiny-dino-foresight-highres" and meta["step"] == recipe["steps"]
    arch = recipe["architecture"]["predictor"]
    config = model.config
    assert (config.hidden_dim, config.layers, config.heads, config.mlp_dim) == tuple(arch[k] for k in ("hidden_dim", "layers", "heads", "mlp_dim"))
    space = load_feature_space("tiny-ml-pca")
    assert config.grid == space.grid and config.pca_dim == space.dim and config.frames == 5
    assert any("--export adapters/assets/tiny-dino-foresight.safetensors" in c for c in recipe["commands"])


def test_beats_copy_last_on_held_out_synthetic_clips(model):
    feats = synthetic_clip_features(load_feature_space("tiny-ml-pca"), split="val", clips=64)
    losses = holdout_losses(model, feats)
    for horizon in ("short", "mid"):
        assert losses[horizon].beats_copy_last, (horizon, losses[horizon])
