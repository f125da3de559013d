"""The released feature space's sources: hub folders, key layouts at full size, offline messages."""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.errors import DfbenchError
from dfbench.features.dinov2 import (
    Dinov2Weights, block_outputs, build_dinov2, dinov2_to_hf_keys, load_dinov2_folder, resolve_dinov2, to_model_keys,
)
from dfbench.features.foresight_space import RECIPES, VITB14_REG_CONFIG, load_multilayer_pca
from foresight_helpers import DEFAULT_FIXTURE


def test_absent_files_name_the_download_command(offline_hub):
    with pytest.raises(DfbenchError) as err:
        load_multilayer_pca("dinov2-vitb14-reg-pca1152")
    assert "\n" not in str(err.value) and "'hf download Sta8is/DINO-Foresight dinof_highres.ckpt'" in str(err.value)
    with pytest.raises(DfbenchError) as err:
        resolve_dinov2()
    assert "'hf download facebook/dinov2-with-registers-base'" in str(err.value) and "huggingface-cli" not in str(err.value)
    with pytest.raises(DfbenchError, match="float32 only"):
        load_multilayer_pca("dinov2-vitb14-reg-pca1152", dtype=torch.bfloat16)


def test_a_local_backbone_folder_loads_through_transformers(fx, parts, tmp_path):
    parts.space.model.save_pretrained(tmp_path / "backbone", safe_serialization=True)
    width = fx["config"]["feature_dim"]
    with pytest.raises(DfbenchError, match=f"width {width}, expected patch 14 and width 768"):
        load_dinov2_folder(tmp_path / "backbone")
    model = load_dinov2_folder(tmp_path / "backbone", Dinov2Weights(dim=width))
    pixels = parts.space.preprocess(torch.zeros(1, 3, *fx["config"]["label_size"], dtype=torch.uint8))
    blocks = fx["config"]["d_layers"]
    for got, want in zip(block_outputs(model, pixels, blocks), block_outputs(parts.space.model, pixels, blocks)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    with pytest.raises(DfbenchError, match="not a directory"):
        load_dinov2_folder(tmp_path / "absent")


def test_released_backbone_keys_convert_onto_transformers_at_full_size():
    layout_file = DEFAULT_FIXTURE.parent / "checkpoint_layout.json"
    if not layout_file.is_file():
        pytest.skip("checkpoint_layout.json not found beside the fixture")
    layout = json.loads(layout_file.read_text())
    hub = layout["dinov2_vitb14_reg (torch.hub, dinov2 format)"]["state_dict"]
    with torch.device("meta"):
        converted = dinov2_to_hf_keys({k: torch.empty(shape) for k, (shape, _) in hub.items()})
        model = build_dinov2(VITB14_REG_CONFIG)
    expected = layout["dinov2_vitb14_reg (HF hub format, facebook/dinov2-with-registers-base)"]["state_dict"]
    assert {k: list(v.shape) for k, v in converted.items()} == {k: v[0] for k, v in expected.items()}
    in_model = to_model_keys(model, converted)
    assert {k: v.shape for k, v in in_model.items()} == {k: v.shape for k, v in model.state_dict().items()}
    dinof = layout["dinof_highres.ckpt"]["state_dict"]
    recipe = RECIPES["dinov2-vitb14-reg-pca1152"]
    assert dinof["pca_components"][0] == [recipe.components, recipe.backbone.dim * len(recipe.blocks)]
