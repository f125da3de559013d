"""The cross-attention predictor shared by DeltaWorld and DINO-world.

Queries only attend to the keys/values (past tokens or frames), never to each other, so
each query token is predicted independently given the past. Positions are real numbers
(timestamps in seconds, grid coordinates) fed to a multi-axis RoPE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from transformers import DINOv3ViTConfig
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTLayerScale, DINOv3ViTMLP

from dfbench.models.config_io import DictConfig
from dfbench.models.rope import AxisTables, apply_axis_tables, axis_tables

# Noise queries of a rollout: a callable step -> [B, S, 1, Dp], or a tensor [K, B, S, 1, Dp].
NoiseSource = Union[Callable[[int], torch.Tensor], torch.Tensor]


@dataclass
class PredictorConfig(DictConfig):
    """Sizes of a predictor.

    Attributes:
        input_size: backbone width D: kv input width and head output width.
        hidden_size: predictor width Dp.
        num_layers: cross-attention blocks.
        num_heads: attention heads; head size = hidden_size / num_heads.
        rope_axis_sizes: head-dimension block per position axis: (60,) for DeltaWorld's
            time axis, (20, 20, 20) for DINO-world's (t, w, h).
        rope_unrotated_size: trailing head dimensions left unrotated.
        mlp_ratio: GELU MLP width = hidden_size * mlp_ratio.
        layer_scale_init: LayerScale init (irrelevant when loading weights).
        initializer_range: std of the trunc-normal init.
    """

    input_size: int = 768
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    rope_axis_sizes: tuple[int, ...] = (60,)
    rope_unrotated_size: int = 4
    mlp_ratio: int = 4
    layer_scale_init: float = 1e-5
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        self.rope_axis_sizes = tuple(int(s) for s in self.rope_axis_sizes)
        head = self.hidden_size // self.num_heads
        if head * self.num_heads != self.hidden_size:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if sum(self.rope_axis_sizes) + self.rope_unrotated_size != head:
            raise ValueError(
                f"RoPE sizes {self.rope_axis_sizes} + {self.rope_unrotated_size} must sum to the head size {head}"
            )

    @classmethod
    def from_fixture_section(cls, section: dict[str, Any], input_size: int) -> PredictorConfig:
        """Reads a fixture's 'deltaworld' or 'dinoworld' config section."""
        return cls(
            input_size=input_size,
            hidden_size=section["predictor_hidden_size"],
            num_layers=section["predictor_num_hidden_layers"],
            num_heads=section["predictor_num_heads"],
            rope_axis_sizes=tuple(section["rope_axis_sizes"]),
            rope_unrotated_size=section["rope_unrotated_size"],
            mlp_ratio=section["mlp_ratio"],
            layer_scale_init=section["layer_scale_init"],
            initializer_range=section["initializer_range"],
        )

    def block_config(self) -> DINOv3ViTConfig:
        """DINOv3 config for the LayerScale and GELU MLP reused from transformers."""
        return DINOv3ViTConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_heads,
            intermediate_size=self.hidden_size * self.mlp_ratio,
            hidden_act="gelu",
            mlp_bias=True,
            layerscale_value=self.layer_scale_init,
        )


def world_fixture_fields(config: dict[str, Any], section: str) -> dict[str, Any]:
    """The fields of a world-model config (DeltaWorld or DINO-world) from a reference fixture.

    Args:
        config: the fixture's ``config`` dict.
        section: its model section, "deltaworld" or "dinoworld".

    Returns:
        ``predictor``, ``use_bom``, ``noise_std``, ``num_samples_train`` and ``num_samples_eval``.
    """
    model = config[section]
    return {
        "predictor": PredictorConfig.from_fixture_section(model, config["backbone_config"]["hidden_size"]),
        "use_bom": model["use_bom"],
        "noise_std": config["backbone_config"]["initializer_range"],
        "num_samples_train": model["num_samples_train"],
        "num_samples_eval": model["num_samples_eval"],
    }


def learned_query(config: PredictorConfig) -> nn.Embedding:
    """The one learned query vector of a world model without best-of-many (trunc-normal init)."""
    embed = nn.Embedding(1, config.hidden_size)
    nn.init.trunc_normal_(embed.weight, std=config.initializer_range)
    return embed


class CrossAttention(nn.Module):
    """Multi-head cross-attention with multi-axis RoPE on q and k.

    Written here because no library attention takes raw (un-normed) kv of another width
    through one fused kv projection together with this RoPE. Keys and values are
    projected by :meth:`project_kv` apart from the queries, so that a rollout projects
    the context once and reuses it for every sample and step (:class:`ContextKV`).
    """

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.kv_proj = nn.Linear(config.input_size, 2 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _rotate(self, x: torch.Tensor, tables: AxisTables) -> torch.Tensor:
        return apply_axis_tables(x, tables, self.config.rope_axis_sizes, self.config.rope_unrotated_size)

    def project_kv(self, kv: torch.Tensor, tables_k: AxisTables) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotated keys and values [B, heads, Lk, head_dim] of raw tokens kv [B, Lk, D]."""
        batch, len_k, _ = kv.shape
        key, value = self.kv_proj(kv).chunk(2, dim=-1)
        key = key.reshape(batch, len_k, self.num_heads, self.head_dim).transpose(1, 2)
        value = value.reshape(batch, len_k, self.num_heads, self.head_dim).transpose(1, 2)
        return self._rotate(key, tables_k), value

    def forward(
        self,
        q: torch.Tensor,
        tables_q: AxisTables,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, len_q, _ = q.shape
        query = self.q_proj(q).view(batch, len_q, self.num_heads, self.head_dim).transpose(1, 2)
        query = self._rotate(query, tables_q)
        if mask is not None:
            mask = mask.to(query.dtype)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, len_q, -1))


class PredictorBlock(nn.Module):
    """q += ls1 * xattn(LN1(q), kv); q += ls2 * mlp(LN2(q)). No self-attention."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        block_config = config.block_config()
        self.norm1 = nn.LayerNorm(config.hidden_size)
        self.attention = CrossAttention(config)
        self.layer_scale1 = DINOv3ViTLayerScale(block_config)
        self.norm2 = nn.LayerNorm(config.hidden_size)
        self.mlp = DINOv3ViTMLP(block_config)
        self.layer_scale2 = DINOv3ViTLayerScale(block_config)

    def forward(self, q, tables_q, key, value, mask=None):
        q = q + self.layer_scale1(self.attention(self.norm1(q), tables_q, key, value, mask))
        return q + self.layer_scale2(self.mlp(self.norm2(q)))


@dataclass
class ContextKV:
    """Every block's rotated keys and values of context tokens, projected once.

    A rollout's context is the same for all S samples of an item and for every step, so
    it is projected at the items' batch B; :meth:`Predictor.forward` repeats it to the
    B*S sample rows (batch-major) and appends the keys of the tokens predicted so far.

    Attributes:
        keys: per block, [B, heads, Lc, head_dim] (RoPE applied).
        values: per block, [B, heads, Lc, head_dim].
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    def block(
        self, index: int, rows: int, key: torch.Tensor | None, value: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``index``'s keys/values for ``rows`` query rows, followed by ``key``/``value`` if given."""
        ctx_key, ctx_value = self.keys[index], self.values[index]
        repeats = rows // ctx_key.shape[0]
        if repeats * ctx_key.shape[0] != rows:
            raise ValueError(f"{rows} query rows are not a multiple of the context's {ctx_key.shape[0]} rows")
        if repeats > 1:
            ctx_key, ctx_value = ctx_key.repeat_interleave(repeats, 0), ctx_value.repeat_interleave(repeats, 0)
        if key is None:
            return ctx_key, ctx_value
        return torch.cat([ctx_key, key], dim=2), torch.cat([ctx_value, value], dim=2)


class Predictor(nn.Module):
    """Stack of cross-attention blocks, final LayerNorm and a head back to the backbone width.

    Args:
        config: sizes; see :class:`PredictorConfig`.
    """

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(PredictorBlock(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.hidden_size)
        self.head = nn.Linear(config.hidden_size, config.input_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference initialisation (only matters for training from scratch)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=self.config.initializer_range)
                nn.init.zeros_(module.bias)

    def tables(self, positions: torch.Tensor, rows: int | None = None) -> AxisTables:
        """fp32 RoPE tables of positions [B, L, num_axes], shared by every block and head."""
        return axis_tables(positions, self.config.rope_axis_sizes, torch.float32, rows)

    def project_context(self, kv: torch.Tensor, pos_k: torch.Tensor) -> ContextKV:
        """Every block's keys/values of context tokens kv [B, Lc, D] at positions [B, Lc, num_axes]."""
        tables_k = self.tables(pos_k)
        pairs = [block.attention.project_kv(kv, tables_k) for block in self.blocks]
        # Contiguous values let the fused projection's key half go (kept for the rollout).
        return ContextKV([k for k, _ in pairs], [v.contiguous() for _, v in pairs])

    def forward(
        self,
        q: torch.Tensor,
        kv: torch.Tensor | None,
        pos_q: torch.Tensor,
        pos_k: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        context: ContextKV | None = None,
    ) -> torch.Tensor:
        """Predicts one backbone-width vector per query.

        Args:
            q: [R, Lq, Dp] queries (noise, or a learned embedding).
            kv: [R, Lk, D] past tokens or frame features, used raw (no norm); with
                ``context``, only the tokens after it (None or Lk = 0 for none).
            pos_q: [R, Lq, num_axes] query positions, or [B, Lq, num_axes] shared by the
                R / B consecutive rows of each item.
            pos_k: [R, Lk, num_axes] key positions of ``kv`` (or [B, Lk, num_axes], as pos_q).
            mask: optional additive float mask broadcastable to [R, heads, Lq, Lc + Lk].
            context: keys/values of tokens before ``kv``, from :meth:`project_context`.

        Returns:
            [R, Lq, D].
        """
        rows = q.shape[0]
        tables_q = self.tables(pos_q, rows)
        own = kv is not None and kv.shape[1] > 0
        tables_k = self.tables(pos_k, rows) if own else None
        if not own and context is None:
            raise ValueError("the predictor needs keys: pass kv, a context, or both")
        for index, block in enumerate(self.blocks):
            key, value = block.attention.project_kv(kv, tables_k) if own else (None, None)
            if context is not None:
                key, value = context.block(index, rows, key, value)
            q = block(q, tables_q, key, value, mask)
        return self.head(self.norm(q))


def causal_mask(query_index: torch.Tensor, key_index: torch.Tensor) -> torch.Tensor:
    """Additive mask [1, 1, Lq, Lk]: -inf where the key's frame is not before the query's.

    Args:
        query_index: [Lq] index of the frame each query predicts.
        key_index: [Lk] index of the frame each key comes from.
    """
    blocked = key_index[None, :] >= query_index[:, None]
    mask = torch.zeros(blocked.shape, dtype=torch.float32, device=blocked.device)
    return mask.masked_fill(blocked, float("-inf"))[None, None]


def smooth_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The world models' criterion, elementwise (beta 0.1, as in the reference)."""
    return F.smooth_l1_loss(prediction, target, reduction="none", beta=0.1)


def step_queries(
    noise: NoiseSource, step: int, batch: int, samples: int, width: int
) -> torch.Tensor:
    """The noise queries of one rollout step as [B*S, 1, Dp], row b*S + s (batch-major).

    Args:
        noise: a callable ``step -> [B, S, 1, Dp]`` or a tensor [K, B, S, 1, Dp], already
            scaled to the model's noise std.
        step: rollout step, 0-based.
    """
    drawn = noise(step) if callable(noise) else noise[step]
    if drawn.numel() != batch * samples * width:
        expected = f"[{batch}, {samples}, 1, {width}]"
        raise ValueError(f"noise for step {step} has shape {tuple(drawn.shape)}, expected {expected}")
    return drawn.reshape(batch * samples, 1, width)


def best_of_many_loss(
    predictor: nn.Module,
    candidates: torch.Tensor,
    kv: torch.Tensor,
    pos_q: torch.Tensor,
    pos_k: torch.Tensor,
    query_frame: torch.Tensor,
    key_frame: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """Best-of-many training loss: only the best of S candidate queries per target is trained.

    A first pass scores every candidate without gradient, on detached parameters (through
    ``torch.func.functional_call``, so nothing of it enters autograd); the gradient pass
    then runs on the winning queries only.

    Args:
        predictor: the :class:`Predictor`.
        candidates: [B, L, S, M, Dp] candidate queries: L targets, S samples, M query
            tokens per target (1 delta token, or N patches for DINO-world).
        kv: [B, Lk, D] teacher-forced keys/values.
        pos_q: [B, L, M, A] query positions; pos_k: [B, Lk, A] key positions.
        query_frame: [L] frame index each target predicts; key_frame: [Lk] frame of each key.
        target: [B, L, M, D] what each target should predict.

    Returns:
        Scalar mean smooth-L1 loss of the winning candidates.
    """
    batch, targets, samples, tokens, width = candidates.shape
    axes = pos_q.shape[-1]
    all_pos_q = pos_q[:, :, None].expand(batch, targets, samples, tokens, axes).reshape(batch, -1, axes)
    all_mask = causal_mask(query_frame.repeat_interleave(samples * tokens), key_frame)
    detached = {name: p.detach() for name, p in predictor.named_parameters()}
    with torch.no_grad():
        scored = functional_call(
            predictor, detached, (candidates.reshape(batch, -1, width), kv, all_pos_q, pos_k, all_mask)
        )
        scored = scored.reshape(batch, targets, samples, tokens, -1)
        losses = smooth_l1(scored, target[:, :, None].expand_as(scored)).mean(dim=(-2, -1))  # [B, L, S]
        best = losses.argmin(dim=-1)
    index = best[:, :, None, None, None].expand(batch, targets, 1, tokens, width)
    chosen = candidates.gather(2, index).reshape(batch, targets * tokens, width)
    mask = causal_mask(query_frame.repeat_interleave(tokens), key_frame)
    prediction = predictor(chosen, kv, pos_q.reshape(batch, -1, axes), pos_k, mask)
    return smooth_l1(prediction, target.reshape(prediction.shape)).mean()
