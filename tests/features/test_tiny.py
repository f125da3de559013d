"""The embedded tiny feature space: ships with the package, loads offline, encodes any 8-multiple frame."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from dfbench.features import load_feature_space
from dfbench.features.dinov3 import Dinov3FeatureSpace
from dfbench.features.tiny import TINY_FOLDER, TINY_FRAME_SIZE, load_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Dinov3FeatureSpace:
    # Prove the weights need no network: an empty cache and offline mode.
    with pytest.MonkeyPatch.context() as patch:
        from huggingface_hub import constants

        cache = tmp_path_factory.mktemp("hf")
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        patch.setattr(constants, "HF_HUB_CACHE", str(cache))
        return load_feature_space("tiny")


def frames(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_tiny_ships_as_a_small_hugging_face_folder():
    names = {p.name for p in TINY_FOLDER.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    total = sum(p.stat().st_size for p in TINY_FOLDER.iterdir())
    assert total < 5 * 2**20
    config = json.loads((TINY_FOLDER / "config.json").read_text())
    assert config["model_type"] == "dinov3_vit"
    # Stored in the hub convention or the nested one; either loads (see to_model_keys).
    assert all(t.dtype == torch.float32 for t in load_file(TINY_FOLDER / "model.safetensors").values())


def test_tiny_describes_itself(tiny):
    assert isinstance(tiny, Dinov3FeatureSpace)
    assert (tiny.name, tiny.patch_size, tiny.dim, tiny.frame_size) == ("tiny", 8, 96, TINY_FRAME_SIZE)
    assert tiny.noise_std == tiny.model.config.initializer_range == 0.02
    assert tiny.num_prefix_tokens == 5
    assert not any(p.requires_grad for p in tiny.parameters())


def test_tiny_encodes_frames_and_crops(tiny):
    frame = frames(2, 3, 64, 128)
    crops = frames(2, 5, 3, 64, 64, seed=1)
    assert tiny.encode(frame).shape == (2, 8 * 16, 96)
    assert tiny.encode(crops).shape == (2, 5, 64, 96)
    # A crop's tokens are those of the crop alone, whatever else is in the batch.
    torch.testing.assert_close(tiny.encode(crops[1, 2]), tiny.encode(crops)[1, 2], atol=1e-5, rtol=0)


def test_tiny_is_deterministic_and_batch_independent(tiny):
    crops = frames(6, 3, 64, 64, seed=2)
    whole = tiny.encode(crops)
    assert torch.equal(whole, tiny.encode(crops))
    reloaded = load_tiny()
    torch.testing.assert_close(reloaded.encode(crops[:2]), whole[:2], atol=1e-5, rtol=0)


def test_tiny_black_frame_is_the_zero_frame(tiny):
    black = tiny.black_frame(64, 64)
    assert black.shape == (64, 96)
    assert torch.equal(black, tiny.encode(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))[0])
    assert not torch.equal(black, tiny.encode(torch.full((1, 3, 64, 64), 255, dtype=torch.uint8))[0])


def test_tiny_features_separate_colours_and_positions(tiny):
    # What a linear head needs: flat colours of different brightness give different tokens,
    # and the same colour at different rows does too (depth on a ground plane is a row cue).
    grey, white = (torch.full((1, 3, 64, 64), v, dtype=torch.uint8) for v in (100, 200))
    cosine = torch.nn.functional.cosine_similarity(tiny.encode(grey)[0], tiny.encode(white)[0], dim=-1)
    assert cosine.mean() < 0.9
    tokens = tiny.encode(grey)[0].view(8, 8, 96)
    top_bottom = torch.nn.functional.cosine_similarity(tokens[0], tokens[-1], dim=-1)
    assert top_bottom.mean() < 0.99


def test_tiny_loads_from_an_explicit_path(tmp_path, tiny):
    tiny.save_pretrained(tmp_path)
    copy = load_feature_space("tiny", path=str(tmp_path))
    crops = frames(2, 3, 64, 64, seed=3)
    assert torch.equal(copy.encode(crops), tiny.encode(crops))
