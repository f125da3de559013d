"""DeltaTok: compresses the change between two frames' VFM features into one delta token.

The encoder reads ``[z slot, previous frame, current frame]`` and keeps the z slot; the
decoder reads ``[z, previous frame]`` and returns the current frame. Blocks are DINOv3
layers (transformers) whose attention adds QK-norm after RoPE and a per-head sigmoid gate
from the normed block input; the MLP is SwiGLU. The frozen backbone is not part of this
module: it takes patch features [B, N, D] directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DINOv3ViTConfig
from transformers.models.dinov3_vit.modeling_dinov3_vit import (
    DINOv3ViTAttention,
    DINOv3ViTRopePositionEmbedding,
)

from dfbench.models.config_io import DictConfig
from dfbench.models.rope import patch_rope_tables, rotate_patches
from dfbench.models.vit_inference import InferenceDinov3Layer, in_place_allowed, rotated_qkv


@dataclass
class DeltaTokConfig(DictConfig):
    """Sizes of a DeltaTok tokenizer.

    Attributes:
        hidden_size: backbone feature width D (the tokenizer works at the backbone's width).
        num_heads: attention heads (the backbone's).
        patch_size: backbone patch size; only used to size the RoPE tables.
        num_layers: blocks in the encoder, and again in the decoder.
        intermediate_size: SwiGLU width, ``(2 * 3072) // 3 = 2048`` for ViT-B.
        use_delta: True for delta tokens; False for the frame-token ablation (Table 2).
        rope_theta: DINOv3 RoPE base.
        rope_rescale: DINOv3's log-uniform coordinate rescale used in training mode.
        layer_norm_eps: every LayerNorm's eps.
        layer_scale_init: LayerScale init (irrelevant when loading weights).
        initializer_range: std of the trunc-normal init.
    """

    hidden_size: int = 768
    num_heads: int = 12
    patch_size: int = 16
    num_layers: int = 12
    intermediate_size: int = 2048
    use_delta: bool = True
    rope_theta: float = 100.0
    rope_rescale: float | None = 2.0
    layer_norm_eps: float = 1e-5
    layer_scale_init: float = 1e-5
    initializer_range: float = 0.02

    @classmethod
    def vitb(cls, use_delta: bool = True) -> DeltaTokConfig:
        """The released tokenizer on DINOv3 ViT-B/16."""
        return cls(use_delta=use_delta)

    @classmethod
    def from_fixture_config(cls, config: dict[str, Any]) -> DeltaTokConfig:
        """Builds the config of a reference fixture from its ``config`` dict."""
        backbone, template, tok = config["backbone_config"], config["template_config"], config["deltatok"]
        return cls(
            hidden_size=backbone["hidden_size"],
            num_heads=backbone["num_attention_heads"],
            patch_size=backbone["patch_size"],
            num_layers=tok["num_hidden_layers"],
            intermediate_size=tok["swiglu_intermediate_size"],
            use_delta=tok["use_delta"],
            rope_theta=template["rope_theta"],
            rope_rescale=template["pos_embed_rescale"],
            layer_norm_eps=template["layer_norm_eps"],
            layer_scale_init=tok["layer_scale_init"],
            initializer_range=template["initializer_range"],
        )

    def block_config(self) -> DINOv3ViTConfig:
        """The DINOv3 layer config the tokenizer blocks are built from."""
        return DINOv3ViTConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_heads,
            patch_size=self.patch_size,
            intermediate_size=self.intermediate_size,
            hidden_act="silu",
            use_gated_mlp=True,
            mlp_bias=True,
            query_bias=True,
            key_bias=False,
            value_bias=True,
            proj_bias=True,
            layerscale_value=self.layer_scale_init,
            layer_norm_eps=self.layer_norm_eps,
            rope_theta=self.rope_theta,
            pos_embed_rescale=self.rope_rescale,
            pos_embed_shift=None,
            pos_embed_jitter=None,
            initializer_range=self.initializer_range,
            num_register_tokens=0,
        )


class GatedQKNormAttention(DINOv3ViTAttention):
    """DINOv3 attention plus QK-norm after RoPE and a per-head sigmoid output gate.

    transformers' DINOv3 attention has neither the QK-norm nor the gate, so the forward is
    written here; projections and their names are the library's, and the RoPE rotation is the
    library's arithmetic (:func:`~dfbench.models.rope.rotate_patches`, the same bits).
    """

    def __init__(self, config: DINOv3ViTConfig) -> None:
        super().__init__(config)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps, bias=False)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=config.layer_norm_eps, bias=False)
        self.attn_gate = nn.Linear(self.embed_dim, self.num_heads)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        batch, length, _ = hidden_states.shape
        q, k, v = rotated_qkv(self, hidden_states, position_embeddings)  # the library's RoPE, fewer copies
        # QK-norm comes after RoPE in the reference, and also covers the unrotated prefix.
        q, k = self.q_norm(q), self.k_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
        # One gate per token and head, from the normed block input (this layer's input).
        gate = torch.sigmoid(self.attn_gate(hidden_states))  # [B, L, heads]
        if in_place_allowed(self, hidden_states, self.q_proj.weight):
            out = out.transpose(1, 2).mul_(gate[..., None])  # SDPA's output is ours to overwrite
        else:  # autograd keeps SDPA's output for its backward
            out = out.transpose(1, 2) * gate[..., None]
        return self.o_proj(out.reshape(batch, length, self.embed_dim)), None

    def forward_prefix(
        self, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor], keep: int
    ) -> torch.Tensor:
        """:meth:`forward`'s outputs of the first ``keep`` (unrotated prefix) tokens only.

        Every token still provides keys and values; only the queries, gate and output
        projection are limited to the prefix, whose rows equal those of the full forward.
        """
        batch, length, _ = hidden_states.shape
        cos, sin = position_embeddings
        if keep > length - cos.shape[-2]:
            raise ValueError(f"only the {length - cos.shape[-2]} unrotated prefix tokens can be kept, not {keep}")
        split = (batch, length, self.num_heads, self.head_dim)
        prefix = hidden_states[:, :keep]
        q = self.q_proj(prefix).view(batch, keep, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(split).transpose(1, 2)
        v = self.v_proj(hidden_states).view(split).transpose(1, 2)
        k = rotate_patches(k, cos, sin)  # prefix queries are not rotated
        q, k = self.q_norm(q), self.k_norm(k)
        out = F.scaled_dot_product_attention(q, k, v)
        gate = torch.sigmoid(self.attn_gate(prefix))
        out = out.transpose(1, 2) * gate[..., None]
        return self.o_proj(out.reshape(batch, keep, self.embed_dim))


class DeltaTokBlock(InferenceDinov3Layer):
    """A pre-norm DINOv3 layer (LayerScale, SwiGLU) with the gated QK-norm attention.

    At evaluation its element-wise steps write in place (:class:`InferenceDinov3Layer`).
    """

    def __init__(self, config: DINOv3ViTConfig) -> None:
        super().__init__(config)
        self.attention = GatedQKNormAttention(config)

    def forward_prefix(
        self, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor], keep: int
    ) -> torch.Tensor:
        """The layer's outputs of the first ``keep`` tokens: the encoder's last block keeps only z."""
        residual = hidden_states[:, :keep]
        attended = self.attention.forward_prefix(self.norm1(hidden_states), position_embeddings, keep)
        hidden = self.drop_path(self.layer_scale1(attended)) + residual
        residual = hidden
        hidden = self.layer_scale2(self.mlp(self.norm2(hidden)))
        return self.drop_path(hidden) + residual


class DeltaTok(nn.Module):
    """The DeltaTok tokenizer on top of a frozen backbone's patch features.

    Args:
        config: sizes; see :class:`DeltaTokConfig`.
    """

    def __init__(self, config: DeltaTokConfig) -> None:
        super().__init__()
        self.config = config
        block_config = config.block_config()
        self.z_embed = nn.Embedding(1, config.hidden_size)
        self.xy_embed = nn.Embedding(2, config.hidden_size)
        self.encoder_blocks = nn.ModuleList(DeltaTokBlock(block_config) for _ in range(config.num_layers))
        self.decoder_blocks = nn.ModuleList(DeltaTokBlock(block_config) for _ in range(config.num_layers))
        # Applied to the encoder's z output only; the decoder returns its raw residual stream.
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # Non-persistent inv_freq buffer only: never part of a checkpoint.
        self.rope_embeddings = DINOv3ViTRopePositionEmbedding(block_config)
        self.reset_parameters()

    @property
    def use_delta(self) -> bool:
        return self.config.use_delta

    def reset_parameters(self) -> None:
        """The reference initialisation (only matters for training from scratch)."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.z_embed.weight, std=std)
        nn.init.trunc_normal_(self.xy_embed.weight, std=std)

    def init_buffers(self) -> None:
        """Recomputes the non-persistent RoPE frequencies on the weights' device.

        Needed only after building on the meta device and loading weights with
        ``assign`` (:func:`dfbench.checkpoints.load_into` calls it): no checkpoint holds them.
        """
        config = self.rope_embeddings.config
        self.rope_embeddings = DINOv3ViTRopePositionEmbedding(config).to(self.z_embed.weight.device)

    def rope_tables(
        self, grid: tuple[int, int], dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) [h*w, head_dim] for the grid (augmented in training mode), in ``dtype``."""
        return patch_rope_tables(self.rope_embeddings, grid, dtype)

    @staticmethod
    def _run(blocks: nn.ModuleList, tokens: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        for block in blocks:
            tokens = block(tokens, position_embeddings=rope)
        return tokens

    def encode(
        self, x_prev: torch.Tensor | None, y_cur: torch.Tensor, grid: tuple[int, int], z_only: bool = False
    ) -> torch.Tensor:
        """Delta token of the change from ``x_prev`` to ``y_cur``.

        Args:
            x_prev: [B, N, D] previous-frame features (ignored by the frame-token variant).
            y_cur: [B, N, D] current-frame features.
            grid: (h, w), N = h * w.
            z_only: compute only the z row in the last block, the one row read out: the
                same token for about 7% fewer FLOPs at ViT-B. Off by default, so that the
                FLOP counts (``dfbench flops``) stay those of the full network, as the paper's.

        Returns:
            [B, 1, D] the normed token.
        """
        batch = y_cur.shape[0]
        cos, sin = self.rope_tables(grid, y_cur.dtype)
        z = self.z_embed.weight.expand(batch, 1, -1)
        current = y_cur + self.xy_embed.weight[1]
        if self.use_delta:
            tokens = torch.cat([z, x_prev + self.xy_embed.weight[0], current], dim=1)
            # Previous and current tokens at the same patch share one rotation.
            cos, sin = torch.cat([cos, cos]), torch.cat([sin, sin])
        else:
            tokens = torch.cat([z, current], dim=1)
        if not z_only:
            return self.norm(self._run(self.encoder_blocks, tokens, (cos, sin))[:, :1])
        tokens = self._run(self.encoder_blocks[:-1], tokens, (cos, sin))
        return self.norm(self.encoder_blocks[-1].forward_prefix(tokens, (cos, sin), 1))

    def decode(self, z: torch.Tensor, x_prev: torch.Tensor | None, grid: tuple[int, int]) -> torch.Tensor:
        """Reconstructs the current frame's features from a token and the previous frame.

        Args:
            z: [B, 1, D] token (used as given, no embedding added).
            x_prev: [B, N, D] previous-frame features; ignored by the frame-token variant,
                whose decoder starts from the learned ``xy_embed[0]`` at every patch.
            grid: (h, w).

        Returns:
            [B, N, D] predicted current-frame features.
        """
        h, w = grid
        if self.use_delta:
            base = x_prev
        else:
            base = self.xy_embed.weight[0].expand(z.shape[0], h * w, -1)
        tokens = self._run(self.decoder_blocks, torch.cat([z, base], dim=1), self.rope_tables(grid, z.dtype))
        return tokens[:, 1:]

    def tokenize_offline(self, x_black: torch.Tensor, y: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Tokens of every frame from ground-truth pairs, computed in parallel.

        Args:
            x_black: [N, D] or [B, N, D] features of an all-black frame; the first token
                always encodes "black -> first frame".
            y: [B, T, N, D] features.
            grid: (h, w).

        Returns:
            [B, T, 1, D] tokens z_t = encode(y_{t-1}, y_t) with y_{-1} = black.
        """
        batch, frames, n, d = y.shape
        black = x_black.expand(batch, n, d) if x_black.dim() == 2 else x_black
        prev = torch.cat([black[:, None].to(y.dtype), y[:, :-1]], dim=1)
        z = self.encode(prev.reshape(batch * frames, n, d), y.reshape(batch * frames, n, d), grid, z_only=True)
        return z.reshape(batch, frames, 1, d)

    def rollout(
        self, y: torch.Tensor, horizon: int, x_black: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        """Closed-loop reconstruction of the last ``horizon`` frames (the reference's eval).

        Each token encodes the previous *reconstruction* paired with the current ground
        truth, and is decoded on that reconstruction. The start state is the ground truth
        of the frame before the horizon, or the black frame when the horizon covers all
        frames.

        Args:
            y: [B, T, N, D] features of all frames.
            horizon: number of frames reconstructed, 1..T.
            x_black: [N, D] or [B, N, D] black-frame features.
            grid: (h, w).

        Returns:
            [B, horizon, N, D] reconstructions of frames T-horizon .. T-1.
        """
        batch, frames, n, d = y.shape
        if not 1 <= horizon <= frames:
            raise ValueError(f"horizon must be in 1..{frames}, got {horizon}")
        if horizon == frames:
            x = x_black.expand(batch, n, d) if x_black.dim() == 2 else x_black
        else:
            x = y[:, frames - horizon - 1]
        outputs = []
        for t in range(frames - horizon, frames):
            z = self.encode(x, y[:, t], grid)
            x = self.decode(z, x, grid)
            outputs.append(x)
        return torch.stack(outputs, dim=1)

    def reconstruct(self, y_prev: torch.Tensor, y_cur: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Teacher-forced reconstruction decode(encode(y_prev, y_cur), y_prev), [B, N, D]."""
        return self.decode(self.encode(y_prev, y_cur, grid), y_prev, grid)


def log_cosh(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The tokenizer's training loss, mean of log(cosh(d)) in its overflow-free form."""
    d = (prediction - target).abs()
    return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean()
