"""DINO-Foresight's masked feature transformer (Karypidis et al., NeurIPS 2025).

The predictor works in the PCA space of multi-layer DINOv2 features: every context
frame is embedded, the frame to predict is replaced wholesale by a learned vector, and a
stack of separable space-time layers (temporal attention, spatial attention, MLP) maps
the slots back to PCA features. Evaluation is one deterministic pass (short horizon) or
three autoregressive passes (mid horizon); see ../shared/reference/dino_foresight/FACTS.md,
sections 4-6. Module and parameter names follow the released Lightning checkpoints
(``embed``, ``replace_vector``, ``maskvit.*``), so their state dicts load unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from dfbench.errors import DfbenchError


@dataclass(frozen=True)
class ForesightConfig:
    """Sizes of the predictor; ``released()`` is dinof_highres.ckpt.

    Attributes:
        pca_dim: K, the width of the PCA features it reads and writes.
        hidden_dim: transformer width (divisible by 3 for the position tables and by ``heads``).
        layers: number of separable space-time layers.
        heads: attention heads of every attention.
        mlp_dim: hidden width of each MLP.
        frames: T, the slots per pass (the last one is predicted).
        grid: (h, w) token grid the position tables cover.
        dropout: training dropout (off at evaluation).
    """

    pca_dim: int = 1152
    hidden_dim: int = 1152
    layers: int = 12
    heads: int = 8
    mlp_dim: int = 4608
    frames: int = 5
    grid: tuple[int, int] = (32, 64)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.hidden_dim % 3 or self.hidden_dim % self.heads:
            raise DfbenchError(
                f"DINO-Foresight width {self.hidden_dim} must be divisible by 3 and by its {self.heads} heads; fix the config."
            )

    @classmethod
    def released(cls, grid: tuple[int, int] = (32, 64)) -> ForesightConfig:
        """The released size; grid (16, 32) is dinof_lowres.ckpt."""
        return cls(grid=tuple(grid))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grid": list(self.grid)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForesightConfig:
        return cls(**{**data, "grid": tuple(data["grid"])})


class PositionTables(nn.Module):
    """Three learned tables (time, row, column), each a third of the width, concatenated per token."""

    def __init__(self, frames: int, grid: tuple[int, int], dim: int) -> None:
        super().__init__()
        third = dim // 3
        self.emb = nn.ParameterDict(
            {"d_0": nn.Parameter(torch.zeros(frames, third)), "d_1": nn.Parameter(torch.zeros(grid[0], third)),
             "d_2": nn.Parameter(torch.zeros(grid[1], third))}
        )

    def forward(self, frames: int, height: int, width: int) -> torch.Tensor:
        """Embeddings [T, h, w, C] for the first ``frames`` slots of an h x w grid."""
        t = self.emb["d_0"][:frames, None, None].expand(frames, height, width, -1)
        i = self.emb["d_1"][None, :height, None].expand(frames, height, width, -1)
        j = self.emb["d_2"][None, None, :width].expand(frames, height, width, -1)
        return torch.cat([t, i, j], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    """``fn(LayerNorm(x))``; the residual is added by the caller."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class SeparableTransformer(nn.Module):
    """Layers of (temporal attention, spatial attention, MLP), each pre-norm with a residual."""

    def __init__(self, config: ForesightConfig) -> None:
        super().__init__()
        dim = config.hidden_dim
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [PreNorm(dim, Attention(dim, config.heads, config.dropout)), PreNorm(dim, Attention(dim, config.heads, config.dropout)),
                 PreNorm(dim, FeedForward(dim, config.mlp_dim, config.dropout))]
            )
            for _ in range(config.layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens [B, T, h, w, C] -> [B, T, h, w, C]."""
        b, t, h, w, c = x.shape
        for temporal, spatial, feed_forward in self.layers:
            x = x.permute(0, 2, 3, 1, 4).reshape(b * h * w, t, c)  # each position over its slots
            x = x + temporal(x)
            x = x.reshape(b, h, w, t, c).permute(0, 3, 1, 2, 4).reshape(b * t, h * w, c)  # each slot over its grid
            x = x + spatial(x)
            x = x.reshape(b, t * h * w, c)
            x = x + feed_forward(x)
            x = x.reshape(b, t, h, w, c)
        return x


class MaskVit(nn.Module):
    def __init__(self, config: ForesightConfig) -> None:
        super().__init__()
        self.pos_embd = PositionTables(config.frames, config.grid, config.hidden_dim)
        self.transformer = SeparableTransformer(config)
        self.fc_out = nn.Linear(config.hidden_dim, config.pca_dim, bias=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, t, h, w, _ = tokens.shape
        return self.fc_out(self.transformer(tokens + self.pos_embd(t, h, w)))


class DinoForesight(nn.Module):
    """PCA features of T slots -> predicted PCA features of the last slot.

    ``forward`` returns every slot's output, as the official model does; only the last is a
    prediction. Call ``.eval()`` for evaluation: dropout is the only randomness.
    """

    def __init__(self, config: ForesightConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.pca_dim, config.hidden_dim)
        self.replace_vector = nn.Parameter(torch.zeros(1, 1, 1, 1, config.hidden_dim))
        self.maskvit = MaskVit(config)

    def tokens(self, pca_feats: torch.Tensor) -> torch.Tensor:
        """The transformer's input [B, T, h, w, C]: embedded slots, the last replaced by the learned vector."""
        self._check(pca_feats)
        tokens = self.embed(pca_feats)
        masked = torch.zeros(tokens.shape[1], dtype=torch.bool, device=tokens.device)
        masked[-1] = True
        return torch.where(masked.view(1, -1, 1, 1, 1), self.replace_vector, tokens)

    def forward(self, pca_feats: torch.Tensor) -> torch.Tensor:
        """PCA features [B, T, h, w, K] -> outputs [B, T, h, w, K] (slot T-1 is the forecast)."""
        return self.maskvit(self.tokens(pca_feats))

    def predict_next(self, context: torch.Tensor) -> torch.Tensor:
        """One pass: context [B, T-1, h, w, K] -> the next frame's PCA features [B, h, w, K]."""
        slots = torch.cat([context, context[:, -1:]], dim=1)  # the last slot's content is never read
        return self(slots)[:, -1]

    def unroll(self, state: torch.Tensor, steps: int) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The official autoregressive rollout (FACTS.md, section 6).

        Each step predicts the last slot and shifts the window by one, so the slot after the
        context is discarded at the first step, exactly as the released evaluation does.

        Args:
            state: PCA features [B, T, h, w, K] of the T loaded frames.
            steps: passes (3 for the mid horizon).

        Returns:
            the final state [B, T, h, w, K] (its last slot is the forecast), and per step the
            transformer inputs and outputs.
        """
        inputs, outputs = [], []
        for _ in range(steps):
            inputs.append(self.tokens(state))
            out = self.maskvit(inputs[-1])
            outputs.append(out)
            state = torch.cat([state[:, :-1], out[:, -1:]], dim=1)
            state = torch.cat([state[:, 1:], state[:, -1:]], dim=1)
        return state, inputs, outputs

    def _check(self, pca_feats: torch.Tensor) -> None:
        config = self.config
        if pca_feats.dim() != 5 or pca_feats.shape[-1] != config.pca_dim:
            raise DfbenchError(
                f"DINO-Foresight takes PCA features [B, T, h, w, {config.pca_dim}], got {tuple(pca_feats.shape)}; "
                "use the feature space its checkpoint was trained on."
            )
        t, h, w = pca_feats.shape[1:4]
        if t > config.frames or h > config.grid[0] or w > config.grid[1]:
            raise DfbenchError(
                f"DINO-Foresight's position tables cover {config.frames} frames of {config.grid[0]}x{config.grid[1]} "
                f"tokens, got {t} frames of {h}x{w}; use the checkpoint trained at this resolution."
            )
