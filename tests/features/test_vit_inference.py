"""The backbone's evaluation path (``use_inference_layers``) gives the library's features bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DINOv3ViTConfig, DINOv3ViTModel
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTLayer

from dfbench.features.dinov3 import Dinov3FeatureSpace
from dfbench.models.deltatok import DeltaTokBlock
from dfbench.models.vit_inference import InferenceDinov3Attention, InferenceDinov3Layer, use_inference_layers


def random_backbone(gated: bool, attn: str = "sdpa") -> DINOv3ViTModel:
    """A small DINOv3 with registers and LayerScale far from its 1e-5 init, so every step shows in the bits."""
    torch.manual_seed(int(gated))
    config = DINOv3ViTConfig(
        patch_size=4, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        num_register_tokens=2, use_gated_mlp=gated, hidden_act="silu" if gated else "gelu",
    )
    model = DINOv3ViTModel._from_config(config, attn_implementation=attn).eval()
    for name, parameter in model.named_parameters():
        if "layer_scale" in name:
            parameter.data.uniform_(0.5, 1.5)
    return model


def pixels(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, 3, 12, 20, generator=torch.Generator().manual_seed(seed))  # a 3 x 5 patch grid


@pytest.mark.parametrize("gated", [False, True])
def test_the_feature_space_runs_the_library_arithmetic_in_place(gated):
    library = random_backbone(gated)
    space = Dinov3FeatureSpace(copy.deepcopy(library), (0.5,) * 3, (0.25,) * 3, 1 / 255, name="small", frame_size=12)
    layers = list(space.model.model.layer)
    assert all(type(layer) is InferenceDinov3Layer for layer in layers)
    assert all(type(layer.attention) is InferenceDinov3Attention for layer in layers)
    assert space.model.state_dict().keys() == library.state_dict().keys()
    x = pixels()
    with torch.no_grad():
        fast, expected = space.model(pixel_values=x), library(pixel_values=x)
    assert torch.equal(fast.last_hidden_state, expected.last_hidden_state)
    # No layer writes into its input, which the caller may still hold (the residual stream).
    hidden = torch.randn(3, 2 + 1 + 15, 32)
    kept = hidden.clone()
    with torch.no_grad():
        layers[0](hidden, position_embeddings=space.model.rope_embeddings(x))
    assert torch.equal(hidden, kept)


@pytest.mark.parametrize("gated", [False, True])
def test_autocast_and_autograd_take_the_library_path(gated):
    library = random_backbone(gated)
    fast = use_inference_layers(copy.deepcopy(library))
    x = pixels(1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = fast(pixel_values=x).last_hidden_state
        expected = library(pixel_values=x).last_hidden_state
    assert mixed.dtype == expected.dtype and torch.equal(mixed, expected)
    leaf = x.clone().requires_grad_()
    trained = fast(pixel_values=leaf).last_hidden_state
    assert torch.equal(trained.detach(), library(pixel_values=x).last_hidden_state)
    trained.square().sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_eager_attention_keeps_the_library_forward():
    library = random_backbone(False, attn="eager")
    fast = use_inference_layers(copy.deepcopy(library))
    with torch.no_grad():
        assert torch.equal(fast(pixel_values=pixels(2)).last_hidden_state, library(pixel_values=pixels(2)).last_hidden_state)


def test_only_plain_library_layers_change_class():
    from dfbench.models.deltatok import DeltaTok, DeltaTokConfig

    tokenizer = DeltaTok(DeltaTokConfig(hidden_size=32, num_heads=2, patch_size=8, num_layers=1, intermediate_size=48))
    classes = [type(module) for module in tokenizer.modules()]
    use_inference_layers(tokenizer)
    assert [type(module) for module in tokenizer.modules()] == classes
    assert DeltaTokBlock in classes and DINOv3ViTLayer not in classes
