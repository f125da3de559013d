"""The DINOv3 feature space against the reference fixture, its loading routes and its errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from dfbench.errors import DfbenchError
from dfbench.features import load_feature_space
from dfbench.features.dinov3 import DINOV3_WEIGHTS, Dinov3FeatureSpace, load_dinov3_vitb16, to_model_keys


@pytest.fixture(scope="module")
def fixture(fixture_a) -> dict:
    """The reference fixture of tests/conftest.py (tiny_fixture_a.pt or $DFBENCH_FIXTURE_A)."""
    return fixture_a


def space_of(fixture: dict, state_dict: dict, **options) -> Dinov3FeatureSpace:
    """The fixture's backbone at the crop side its validation runs used."""
    side = fixture["config"]["validation"]["frame_size"]
    return Dinov3FeatureSpace.from_config_and_state_dict(
        fixture["config"], state_dict, frame_size=side, name="fixture", **options
    )


@pytest.fixture(scope="module")
def fixture_space(fixture) -> Dinov3FeatureSpace:
    return space_of(fixture, fixture["state_dicts"]["backbone_hf"])


def test_preprocessing_is_bit_exact_with_the_reference(fixture, fixture_space):
    frames = fixture["inputs"]["frames"].flatten(0, 1)
    expected = fixture["outputs"]["backbone"]["pixel_values"]
    assert torch.equal(fixture_space.preprocess(frames), expected)


def test_features_match_the_reference(fixture, fixture_space):
    expected = fixture["outputs"]["backbone"]
    frames = fixture["inputs"]["frames"]
    features = fixture_space.encode(frames)
    assert features.shape == expected["features"].shape
    torch.testing.assert_close(features, expected["features"], atol=1e-5, rtol=0)
    full = fixture_space.hidden_states(frames.flatten(0, 1))
    torch.testing.assert_close(full, expected["last_hidden_state_full"], atol=1e-5, rtol=0)


def test_black_frame_matches_the_reference(fixture, fixture_space):
    _, _, _, height, width = fixture["inputs"]["frames"].shape
    black = fixture_space.black_frame(height, width)
    for row in fixture["outputs"]["backbone"]["black_frame_features"]:
        torch.testing.assert_close(black, row, atol=1e-5, rtol=0)


def test_both_key_conventions_load_to_the_same_model(fixture, fixture_space):
    hub_keys = fixture["state_dicts"]["backbone_hf"]
    assert any(k.startswith("layer.") for k in hub_keys)
    nested = {(f"model.{k}" if k.startswith("layer.") else k): v for k, v in hub_keys.items()}
    space = space_of(fixture, nested)
    frames = fixture["inputs"]["frames"][0]
    assert torch.equal(space.encode(frames), fixture_space.encode(frames))
    # Renaming is idempotent and never touches keys the model already uses.
    model_keys = to_model_keys(space.model, nested)
    assert set(to_model_keys(space.model, model_keys)) == set(space.model.state_dict())


def test_mismatched_state_dict_is_rejected(fixture):
    weights = dict(fixture["state_dicts"]["backbone_hf"])
    weights.pop("norm.weight")
    with pytest.raises(RuntimeError, match="norm.weight"):
        space_of(fixture, weights)


def test_fixture_space_describes_itself(fixture, fixture_space):
    backbone = fixture["config"]["backbone_config"]
    assert fixture_space.patch_size == backbone["patch_size"]
    assert fixture_space.dim == backbone["hidden_size"]
    assert fixture_space.noise_std == backbone["initializer_range"]
    assert fixture_space.num_prefix_tokens == 1 + backbone["num_register_tokens"]
    assert fixture_space.model.config._attn_implementation == "sdpa"
    assert not fixture_space.train().training and not fixture_space.model.training


def _small_model(seed: int = 0) -> DINOv3ViTModel:
    torch.manual_seed(seed)
    config = DINOv3ViTConfig(
        patch_size=4, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_register_tokens=2
    )
    return DINOv3ViTModel(config)


def test_local_folder_round_trip(tmp_path):
    space = Dinov3FeatureSpace(_small_model(), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 1 / 255, name="small", frame_size=16)
    space.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors", "preprocessor_config.json"}
    loaded = Dinov3FeatureSpace.from_pretrained(tmp_path, name="small", frame_size=16)
    frames = torch.randint(0, 256, (2, 3, 16, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(loaded.preprocess(frames), space.preprocess(frames))
    assert torch.equal(loaded.encode(frames), space.encode(frames))
    assert loaded.encode(frames).shape == (2, 4 * 6, 32)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="the transformers DINOv3 processor needs torchvision")
def test_preprocessing_matches_the_transformers_processor(tmp_path):
    from transformers import AutoImageProcessor

    space = Dinov3FeatureSpace(_small_model(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1 / 255, name="s", frame_size=16)
    space.save_pretrained(tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    frames = torch.randint(0, 256, (3, 3, 16, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    expected = processor(list(frames), do_resize=False, do_center_crop=False, return_tensors="pt")["pixel_values"]
    assert torch.equal(space.preprocess(frames), expected)


def test_loader_checks_the_folder_holds_the_named_backbone(tmp_path):
    space = Dinov3FeatureSpace(_small_model(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1 / 255, name="s", frame_size=16)
    space.save_pretrained(tmp_path)
    with pytest.raises(DfbenchError, match="patch 16 and width 768"):
        load_dinov3_vitb16(str(tmp_path))


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(DfbenchError, match="not a directory"):
        load_feature_space("dinov3-vitb16", path=str(tmp_path / "absent"))
    with pytest.raises(DfbenchError, match="cannot load a DINOv3 model"):
        load_feature_space("dinov3-vitb16", path=str(tmp_path))


def test_absent_weights_name_the_fix(offline_hub):
    with pytest.raises(DfbenchError) as error:
        load_feature_space("dinov3-vitb16")
    message = str(error.value)
    assert "\n" not in message
    assert "hf download facebook/dinov3-vitb16-pretrain-lvd1689m" in message
    assert "--feature-space-path" in message and "license" in message


def test_weight_cards_keep_source_feed_and_provenance():
    assert set(DINOV3_WEIGHTS) == {"dinov3-vits16", "dinov3-vitb16", "dinov3-vitl16"}
    card = DINOV3_WEIGHTS["dinov3-vitb16"]
    assert card.hub_id == "facebook/dinov3-vitb16-pretrain-lvd1689m"
    assert (card.patch_size, card.dim, card.frame_size) == (16, 768, 512)
    assert "DINOv3" in card.license


def test_encode_rejects_bad_frames(fixture_space):
    side = 4 * fixture_space.patch_size
    with pytest.raises(DfbenchError, match="uint8"):
        fixture_space.encode(torch.zeros(1, 3, side, side))
    with pytest.raises(DfbenchError, match="multiple of the patch size"):
        fixture_space.encode(torch.zeros(1, 3, side - 1, side, dtype=torch.uint8))


def test_bfloat16_is_rejected_only_when_unsupported(fixture):
    with pytest.raises(DfbenchError, match="dtype"):
        space_of(fixture, fixture["state_dicts"]["backbone_hf"], dtype=torch.float16)
    # On CPU the bf16 option leaves the forward pass in fp32.
    space = space_of(fixture, fixture["state_dicts"]["backbone_hf"], dtype=torch.bfloat16)
    frames = fixture["inputs"]["frames"][0]
    torch.testing.assert_close(space.encode(frames), fixture["outputs"]["backbone"]["features"][0], atol=1e-5, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bfloat16_autocast_on_cuda_stays_close(fixture):
    space = space_of(fixture, fixture["state_dicts"]["backbone_hf"], device="cuda", dtype=torch.bfloat16)
    features = space.encode(fixture["inputs"]["frames"].cuda())
    assert features.dtype == torch.float32
    expected = fixture["outputs"]["backbone"]["features"].cuda()
    cosine = torch.nn.functional.cosine_similarity(features, expected, dim=-1)
    assert cosine.min() > 0.98
