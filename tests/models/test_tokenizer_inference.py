"""The tokenizer's evaluation fast paths give the library's bits: RoPE (``rotate_patches``) and
the blocks' in-place element-wise steps."""

from __future__ import annotations

import pytest
import torch
from transformers.models.dinov3_vit.modeling_dinov3_vit import apply_rotary_pos_emb

from dfbench.models.rope import rotate_patches


@pytest.mark.parametrize(
    ("tokens", "tables", "prefix"),
    [(torch.float32, torch.float32, 1), (torch.float32, torch.float32, 0), (torch.bfloat16, torch.float32, 1),
     (torch.bfloat16, torch.bfloat16, 5), (torch.float16, torch.float32, 2)],
)
def test_rotate_patches_equals_the_library_rotation(tokens, tables, prefix):
    generator = torch.Generator().manual_seed(prefix)
    x = (torch.randn(2, 3, prefix + 24, 16, generator=generator) * 3).to(tokens)
    cos, sin = (torch.randn(24, 16, generator=generator).to(tables) for _ in range(2))
    expected, _ = apply_rotary_pos_emb(x, x, cos, sin)
    rotated = rotate_patches(x, cos, sin)
    assert rotated.dtype == expected.dtype and torch.equal(rotated, expected)
    assert torch.equal(rotated[..., :prefix, :], x[..., :prefix, :].to(rotated.dtype))  # the prefix is kept
    assert not torch.equal(rotated[..., prefix:, :], x[..., prefix:, :].to(rotated.dtype))
    # Under autograd (tokenizer training) the library's function runs, and gradients flow.
    leaf = x.float().requires_grad_()
    trained = rotate_patches(leaf, cos.float(), sin.float())
    assert torch.equal(trained.detach(), apply_rotary_pos_emb(leaf, leaf, cos.float(), sin.float())[0].detach())
    trained.sum().backward()
    assert leaf.grad is not None


@pytest.mark.parametrize("autocast", [False, True])
def test_the_tokenizer_gives_the_same_bits_as_through_the_library(monkeypatch, autocast):
    """Encoding and decoding a small tokenizer (random LayerScale) with the fast paths, then with the
    library's RoPE, layer forward and gate product; also under bf16 autocast, where products are
    promoted to fp32 and an in-place write would round them back."""
    from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTLayer

    import dfbench.models.deltatok as deltatok
    import dfbench.models.vit_inference as vit_inference
    from dfbench.models.deltatok import DeltaTok, DeltaTokBlock, DeltaTokConfig

    torch.manual_seed(0)
    tokenizer = DeltaTok(DeltaTokConfig(hidden_size=32, num_heads=2, patch_size=8, num_layers=2,
                                        intermediate_size=48)).eval()
    for name, parameter in tokenizer.named_parameters():
        if "layer_scale" in name:
            parameter.data.uniform_(0.5, 1.5)  # the init's 1e-5 would hide the MLP's bits
    prev, cur = torch.randn(2, 12, 32), torch.randn(2, 12, 32)

    def outputs():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return (tokenizer.encode(prev, cur, (3, 4)), tokenizer.encode(prev, cur, (3, 4), z_only=True),
                    tokenizer.reconstruct(prev, cur, (3, 4)))

    fast = outputs()
    with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        trained = tokenizer.reconstruct(prev, cur, (3, 4)).detach()  # training goes through the library's path
    library_rope = lambda x, cos, sin: apply_rotary_pos_emb(x, x, cos, sin)[0]  # noqa: E731
    monkeypatch.setattr(deltatok, "rotate_patches", library_rope)
    monkeypatch.setattr(vit_inference, "rotate_patches", library_rope)
    monkeypatch.setattr(deltatok, "in_place_allowed", lambda *args: False)
    monkeypatch.setattr(vit_inference, "in_place_allowed", lambda *args: False)
    monkeypatch.setattr(DeltaTokBlock, "forward", DINOv3ViTLayer.forward)
    library = outputs()
    assert all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(fast, library))
    assert torch.equal(trained, library[2])
