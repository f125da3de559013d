"""transformers' DINOv3 layer at evaluation: the library's arithmetic with fewer temporaries.

The backbone and both halves of DeltaTok are stacks of transformers' ``DINOv3ViTLayer``.
At evaluation its element-wise steps (the RoPE's negation and three concatenations, the
two LayerScales, the two residual adds) each allocate an activation-sized tensor; at ViT-B
on the CPU they cost about as much time as the attention itself. Here the same operations
run on the same values in the same order, writing in place, so the outputs are equal bit
for bit (tests/features/test_vit_inference.py checks it against the library's forward). No library
offers this: ``torch.compile`` would fuse the steps and so change the rounding.

The in-place path is taken only where it cannot change a value: without autograd, in eval
mode, without autocast, and with activations of the weights' dtype (so no product is
promoted to a wider type that an in-place write would round back). Everything else, and
any attention implementation other than SDPA, runs the library's own forward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import GELUActivation, SiLUActivation
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTAttention, DINOv3ViTLayer

from dfbench.models.rope import rotate_patches


def in_place_allowed(module: nn.Module, hidden_states: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether writing ``module``'s element-wise steps in place gives the library's values."""
    return not (
        torch.is_grad_enabled()
        or module.training
        or autocast_on(hidden_states.device)
        or hidden_states.dtype != weight.dtype
    )


def autocast_on(device: torch.device) -> bool:
    """Whether autocast is on for ``device``; devices without autocast (meta, for FLOP counts) never are."""
    try:
        return torch.is_autocast_enabled(device.type)
    except RuntimeError:
        return False


def rotated_qkv(
    attention: DINOv3ViTAttention, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries and keys after the library's RoPE (one output each), and values: [B, heads, L, d]."""
    batch, length, _ = hidden_states.shape
    split = (batch, length, attention.num_heads, attention.head_dim)
    q = attention.q_proj(hidden_states).view(split).transpose(1, 2)
    k = attention.k_proj(hidden_states).view(split).transpose(1, 2)
    v = attention.v_proj(hidden_states).view(split).transpose(1, 2)
    cos, sin = position_embeddings
    return rotate_patches(q, cos, sin), rotate_patches(k, cos, sin), v


class InferenceDinov3Attention(DINOv3ViTAttention):
    """The library's SDPA attention, with the RoPE written into one output per tensor."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        if (
            kwargs
            or attention_mask is not None
            or self.config._attn_implementation != "sdpa"
            or not in_place_allowed(self, hidden_states, self.q_proj.weight)
        ):
            return super().forward(hidden_states, attention_mask, position_embeddings, **kwargs)
        batch, length, _ = hidden_states.shape
        q, k, v = rotated_qkv(self, hidden_states, position_embeddings)
        # The library's SDPA call for a non-causal layer without a mask, scale included.
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, scale=self.scaling, is_causal=False)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1)), None


class InferenceDinov3Layer(DINOv3ViTLayer):
    """The library's pre-norm layer; at evaluation LayerScale and the residual adds write in place."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if kwargs or not in_place_allowed(self, hidden_states, self.layer_scale1.lambda1):
            return super().forward(hidden_states, attention_mask, position_embeddings, **kwargs)
        attended, _ = self.attention(self.norm1(hidden_states), attention_mask, position_embeddings)
        # attended * lambda1 + residual, as the library; the attention output is ours to overwrite.
        hidden = attended.mul_(self.layer_scale1.lambda1).add_(hidden_states)
        return self.mlp_output(self.norm2(hidden)).mul_(self.layer_scale2.lambda1).add_(hidden)

    def mlp_output(self, normed: torch.Tensor) -> torch.Tensor:
        """The library's MLP (plain or gated), with the activation and gate product written in place."""
        mlp = self.mlp
        if hasattr(mlp, "gate_proj"):
            return mlp.down_proj(activate_in_place(mlp.act_fn, mlp.gate_proj(normed)).mul_(mlp.up_proj(normed)))
        return mlp.down_proj(activate_in_place(mlp.act_fn, mlp.up_proj(normed)))


def activate_in_place(act_fn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act_fn(x)`` written into ``x`` for the library's exact GELU and SiLU (the same kernels)."""
    if type(act_fn) in (SiLUActivation, nn.SiLU):
        return F.silu(x, inplace=True)
    if type(act_fn) is GELUActivation and act_fn.act is F.gelu:
        return torch.ops.aten.gelu_(x)
    return act_fn(x)


def use_inference_layers(model: PreTrainedModel) -> PreTrainedModel:
    """Gives every plain ``DINOv3ViTLayer`` of ``model`` the in-place evaluation path.

    The modules keep their parameters, names and state-dict keys; only their class changes
    to the subclass above, whose forward falls back to the library's wherever it could
    differ. Layers of other classes (subclasses with a forward of their own) are left alone.
    """
    for module in model.modules():
        if type(module) is DINOv3ViTLayer:
            module.__class__ = InferenceDinov3Layer
        elif type(module) is DINOv3ViTAttention:
            module.__class__ = InferenceDinov3Attention
    return model
