"""DINO-world: the feature-space baseline that predicts whole frames of backbone features.

Every patch of a future frame is one query (a learned embedding, or with ``use_bom`` one
noise vector per sample shared by all patches); queries differ only by their (t, w, h)
RoPE positions and cross-attend to the features of all past frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from dfbench.models.config_io import DictConfig
from dfbench.models.predictor import (
    NoiseSource,
    Predictor,
    PredictorConfig,
    best_of_many_loss,
    causal_mask,
    learned_query,
    smooth_l1,
    step_queries,
    world_fixture_fields,
)
from dfbench.models.rope import grid_coordinates


@dataclass
class DINOWorldConfig(DictConfig):
    """Predictor sizes and sampling settings of a DINO-world model.

    Attributes:
        predictor: the predictor's sizes (three RoPE axes: t, w, h).
        use_bom: noise queries with best-of-many training; False (the default) for the
            learned query of the deterministic model.
        noise_std: std of the noise queries (the backbone's ``initializer_range``).
        num_samples_train: best-of-many candidates per target frame in training.
        num_samples_eval: samples per rollout in the reference evaluation.
    """

    predictor: PredictorConfig = field(default_factory=lambda: PredictorConfig(rope_axis_sizes=(20, 20, 20)))
    use_bom: bool = False
    noise_std: float = 0.02
    num_samples_train: int = 16
    num_samples_eval: int = 20

    _nested_configs: ClassVar[dict[str, type]] = {"predictor": PredictorConfig}

    @classmethod
    def vitb(cls, use_bom: bool = False) -> DINOWorldConfig:
        """The released DINO-world predictor on DINOv3 ViT-B/16."""
        return cls(use_bom=use_bom)

    @classmethod
    def from_fixture_config(cls, config: dict[str, Any], use_bom: bool | None = None) -> DINOWorldConfig:
        """Builds the config of a reference fixture from its ``config`` dict."""
        values = world_fixture_fields(config, "dinoworld")
        if use_bom is not None:
            values["use_bom"] = use_bom
        return cls(**values)


def frame_positions(timestamps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(t, w, h) positions [B, F*N, 3] of every patch of F frames with timestamps [B, F]."""
    batch, frames = timestamps.shape
    w, h = grid_coordinates(grid, timestamps.device)
    n = w.numel()
    t = timestamps.float()[:, :, None].expand(batch, frames, n)
    wh = torch.stack([w, h], dim=-1).expand(batch, frames, n, 2)
    return torch.cat([t[..., None], wh], dim=-1).reshape(batch, frames * n, 3)


class DINOWorld(nn.Module):
    """Frame-level predictor on backbone features (no tokenizer).

    Args:
        config: see :class:`DINOWorldConfig`.
    """

    def __init__(self, config: DINOWorldConfig) -> None:
        super().__init__()
        if len(config.predictor.rope_axis_sizes) != 3:
            raise ValueError("DINO-world's predictor needs three RoPE axes (t, w, h)")
        self.config = config
        self.predictor = Predictor(config.predictor)
        if not config.use_bom:
            self.q_embed = learned_query(config.predictor)

    @property
    def stochastic(self) -> bool:
        return self.config.use_bom

    @torch.no_grad()
    def rollout(
        self,
        y_ctx: torch.Tensor,
        ctx_timestamps: torch.Tensor,
        target_timestamps: torch.Tensor,
        grid: tuple[int, int],
        num_samples: int = 1,
        noise: NoiseSource | None = None,
        x_black: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Autoregressive rollout; each predicted frame is appended to the keys/values.

        Args:
            y_ctx: [B, C, N, D] context features.
            ctx_timestamps: [B, C] seconds.
            target_timestamps: [B, K] seconds.
            grid: (h, w), N = h * w.
            num_samples: S; must be 1 for the deterministic (learned-query) model.
            noise: with ``use_bom``: a callable ``step -> [B, S, 1, Dp]`` or a tensor
                [K, B, S, 1, Dp] (std ``config.noise_std``); one vector per sample, shared
                by all patches of the frame.
            x_black: unused (accepted so DeltaWorld and DINO-world share one call).

        Returns:
            Features [B, S, K, N, D], rows batch-major.
        """
        batch, ctx, n, d = y_ctx.shape
        steps, samples = target_timestamps.shape[1], num_samples
        if not self.config.use_bom and samples != 1:
            raise ValueError("DINO-world without best-of-many is deterministic: num_samples must be 1")
        if self.config.use_bom and noise is None:
            raise ValueError("DINO-world with best-of-many needs noise queries")
        width = self.config.predictor.hidden_size
        device = y_ctx.device
        # The context's keys/values are projected once, for all samples and steps; only
        # the frames predicted so far are projected per sample.
        context = self.predictor.project_context(
            y_ctx.reshape(batch, ctx * n, d), frame_positions(ctx_timestamps.to(device), grid)
        )
        pos_targets = frame_positions(target_timestamps.to(device), grid)  # [B, K*N, 3], shared by samples
        frames: list[torch.Tensor] = []
        for step in range(steps):
            if self.config.use_bom:
                q = step_queries(noise, step, batch, samples, width).to(y_ctx).expand(-1, n, -1)
            else:
                q = self.q_embed.weight.expand(batch * samples, n, width)
            pos_q = pos_targets[:, step * n : (step + 1) * n]
            past = torch.cat(frames, dim=1) if frames else None
            y_hat = self.predictor(q, past, pos_q, pos_targets[:, : step * n], context=context)
            frames.append(y_hat)
        return torch.stack(frames, dim=1).reshape(batch, samples, steps, n, d)

    def training_loss(
        self,
        y: torch.Tensor,
        timestamps: torch.Tensor,
        grid: tuple[int, int],
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Teacher-forced loss predicting the features of frames 1..T-1 under a block-causal mask.

        Args:
            y: [B, T, N, D] features.
            timestamps: [B, T] seconds.
            grid: (h, w).
            num_samples: best-of-many candidates (default ``config.num_samples_train``).
            generator: draws the noise queries (on its own device); best-of-many only.

        Returns:
            Scalar smooth-L1 (beta 0.1) loss.
        """
        batch, frames, n, d = y.shape
        targets, width = frames - 1, self.config.predictor.hidden_size
        kv = y[:, :-1].reshape(batch, targets * n, d)
        timestamps = timestamps.to(y.device)
        pos_k = frame_positions(timestamps[:, :-1], grid)
        pos_q = frame_positions(timestamps[:, 1:], grid).reshape(batch, targets, n, 3)
        query_frame = torch.arange(1, frames, device=y.device)
        key_frame = torch.arange(0, frames - 1, device=y.device).repeat_interleave(n)
        target = y[:, 1:]
        if not self.config.use_bom:
            q = self.q_embed.weight.expand(batch, targets * n, width)
            mask = causal_mask(query_frame.repeat_interleave(n), key_frame)
            prediction = self.predictor(q, kv, pos_q.reshape(batch, targets * n, 3), pos_k, mask)
            return smooth_l1(prediction, target.reshape(prediction.shape)).mean()
        samples = num_samples or self.config.num_samples_train
        device = generator.device if generator is not None else y.device
        noise = torch.randn(batch, targets, samples, 1, width, generator=generator, device=device)
        candidates = (noise * self.config.noise_std).to(y).expand(-1, -1, -1, n, -1)
        return best_of_many_loss(self.predictor, candidates, kv, pos_q, pos_k, query_frame, key_frame, target)
