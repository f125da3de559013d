"""DeltaWorld: a frozen DeltaTok plus a predictor that forecasts one delta token per frame.

Context frames are tokenized in parallel from ground-truth pairs (the first token encodes
"black frame -> first context frame"). Each rollout step predicts the next token from
noise queries by cross-attending to all past tokens, and the tokenizer's decoder turns it
into features on top of the previous reconstruction. With ``use_bom=False`` the noise is
replaced by a learned query (the discriminative "no best-of-many" variant of Table C).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from dfbench.models.config_io import DictConfig
from dfbench.models.deltatok import DeltaTok
from dfbench.models.pair_memo import PairTokenMemo
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


@dataclass
class DeltaWorldConfig(DictConfig):
    """Predictor sizes and sampling settings of a DeltaWorld model.

    Attributes:
        predictor: the predictor's sizes (one RoPE axis: time in seconds).
        use_bom: noise queries with best-of-many training; False for a learned query.
        noise_std: std of the noise queries, the backbone config's ``initializer_range``
            (0.02 for DINOv3).
        num_samples_train: best-of-many candidates per target in training (256 in the paper).
        num_samples_eval: samples per rollout in the reference evaluation (20).
    """

    predictor: PredictorConfig = field(default_factory=lambda: PredictorConfig(rope_axis_sizes=(60,)))
    use_bom: bool = True
    noise_std: float = 0.02
    num_samples_train: int = 256
    num_samples_eval: int = 20

    _nested_configs: ClassVar[dict[str, type]] = {"predictor": PredictorConfig}

    @classmethod
    def vitb(cls, use_bom: bool = True) -> DeltaWorldConfig:
        """The released DeltaWorld predictor on DINOv3 ViT-B/16."""
        return cls(use_bom=use_bom)

    @classmethod
    def from_fixture_config(cls, config: dict[str, Any]) -> DeltaWorldConfig:
        """Builds the config of a reference fixture from its ``config`` dict."""
        return cls(**world_fixture_fields(config, "deltaworld"))


def _black_rows(x_black: torch.Tensor, batch: int) -> torch.Tensor:
    return x_black.expand(batch, *x_black.shape[-2:]) if x_black.dim() == 2 else x_black


class DeltaWorld(nn.Module):
    """DeltaTok tokenizer (frozen, always in eval mode) and a token predictor.

    :meth:`rollout` remembers the context tokens of its previous call by frame content
    (:class:`~dfbench.models.pair_memo.PairTokenMemo`), so the windows of one clip encode
    each distinct frame pair once.

    Args:
        tokenizer: a loaded :class:`DeltaTok` (delta or frame-token variant); it is frozen
            here, so load its checkpoint before building the world model.
        config: see :class:`DeltaWorldConfig`.
    """

    def __init__(self, tokenizer: DeltaTok, config: DeltaWorldConfig) -> None:
        super().__init__()
        if tokenizer.config.hidden_size != config.predictor.input_size:
            raise ValueError(
                f"tokenizer width {tokenizer.config.hidden_size} != predictor input {config.predictor.input_size}"
            )
        self.config = config
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.predictor = Predictor(config.predictor)
        if not config.use_bom:
            self.q_embed = learned_query(config.predictor)
        self._pair_memo = PairTokenMemo()

    @property
    def stochastic(self) -> bool:
        return self.config.use_bom

    def clear_memo(self) -> None:
        """Forgets the remembered context tokens (see :class:`PairTokenMemo`)."""
        self._pair_memo.clear()

    def train(self, mode: bool = True) -> DeltaWorld:
        super().train(mode)
        # The tokenizer stays in eval mode: no RoPE coordinate augmentation.
        self.tokenizer.eval()
        return self

    def context_tokens(self, y_ctx: torch.Tensor, x_black: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Delta tokens [B, C, D] of the context, from ground-truth pairs in parallel."""
        with torch.no_grad():
            return self.tokenizer.tokenize_offline(_black_rows(x_black, y_ctx.shape[0]), y_ctx, grid)[:, :, 0]

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
        return_tokens: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Autoregressive rollout of ``num_samples`` futures, all samples in one batch.

        Args:
            y_ctx: [B, C, N, D] context features.
            ctx_timestamps: [B, C] seconds.
            target_timestamps: [B, K] seconds of the frames to predict.
            grid: (h, w), N = h * w.
            num_samples: S; must be 1 without best-of-many.
            noise: noise queries (std ``config.noise_std``), a callable ``step -> [B, S, 1, Dp]``
                or a tensor [K, B, S, 1, Dp]; fresh per step. Unused without best-of-many.
            x_black: [N, D] or [B, N, D] black-frame features (required).
            return_tokens: also return the predicted tokens.

        Returns:
            Features [B, S, K, N, D]; with ``return_tokens`` also tokens [B, S, K, D].
        """
        if x_black is None:
            raise ValueError("DeltaWorld needs the black-frame features x_black")
        batch, ctx, n, d = y_ctx.shape
        steps, samples = target_timestamps.shape[1], num_samples
        if not self.config.use_bom and samples != 1:
            raise ValueError("without best-of-many DeltaWorld is deterministic: num_samples must be 1")
        if self.config.use_bom and noise is None:
            raise ValueError("DeltaWorld with best-of-many needs noise queries")
        z = self._pair_memo.tokens(self.tokenizer, _black_rows(x_black, batch), y_ctx, grid)
        times = torch.cat([ctx_timestamps, target_timestamps], dim=1).to(y_ctx.device, torch.float32)[..., None]
        # The context tokens' keys/values are projected once for every sample and step.
        context = self.predictor.project_context(z, times[:, :ctx])
        # Batch-major sample expansion: row b*S + s is sample s of item b.
        x = y_ctx[:, -1].repeat_interleave(samples, dim=0)
        width = self.config.predictor.hidden_size
        features, tokens = [], []
        for step in range(steps):
            if self.config.use_bom:
                q = step_queries(noise, step, batch, samples, width).to(y_ctx)
            else:
                q = self.q_embed.weight.expand(batch * samples, 1, width)
            known = ctx + step
            past = torch.cat(tokens, dim=1) if tokens else None
            z_hat = self.predictor(q, past, times[:, known : known + 1], times[:, ctx:known], context=context)
            # Decoded on the previous reconstruction (the last context frame at step 0).
            x = self.tokenizer.decode(z_hat, x, grid)
            features.append(x)
            tokens.append(z_hat)
        out = torch.stack(features, dim=1).reshape(batch, samples, steps, n, d)
        if return_tokens:
            return out, torch.cat(tokens, dim=1).reshape(batch, samples, steps, d)
        return out

    def training_loss(
        self,
        y: torch.Tensor,
        x_black: torch.Tensor,
        timestamps: torch.Tensor,
        grid: tuple[int, int],
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Teacher-forced loss on the delta tokens of a clip.

        Targets are the tokens z_1..z_{T-1}, keys z_0..z_{T-2} under a causal mask. With
        best-of-many only the best of ``num_samples`` noise queries per target is trained.

        Args:
            y: [B, T, N, D] features of the clip's frames.
            x_black: [N, D] or [B, N, D] black-frame features.
            timestamps: [B, T] seconds.
            grid: (h, w).
            num_samples: best-of-many candidates (default ``config.num_samples_train``).
            generator: draws the noise queries (on its own device).

        Returns:
            Scalar smooth-L1 (beta 0.1) loss.
        """
        z = self.context_tokens(y, x_black, grid)  # [B, T, D]
        timestamps = timestamps.to(y.device, torch.float32)
        return self.token_loss(z, timestamps[:, :-1, None], timestamps[:, 1:, None, None], num_samples, generator)

    def token_loss(
        self,
        z: torch.Tensor,
        pos_k: torch.Tensor,
        pos_q: torch.Tensor,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The teacher-forced loss of :meth:`training_loss` on a clip's delta tokens.

        Args:
            z: [B, T, D] context tokens of the clip.
            pos_k: [B, T-1, 1] timestamps of the key tokens z_0..z_{T-2}.
            pos_q: [B, T-1, 1, 1] timestamps of the targets z_1..z_{T-1}.
            num_samples: best-of-many candidates (default ``config.num_samples_train``).
            generator: draws the noise queries (on its own device).

        Returns:
            Scalar smooth-L1 (beta 0.1) loss.
        """
        batch, frames = z.shape[:2]
        kv, target = z[:, :-1], z[:, 1:]
        query_frame = torch.arange(1, frames, device=z.device)
        key_frame = torch.arange(0, frames - 1, device=z.device)
        width, targets = self.config.predictor.hidden_size, frames - 1
        if not self.config.use_bom:
            q = self.q_embed.weight.expand(batch, targets, width)
            prediction = self.predictor(q, kv, pos_q[:, :, 0], pos_k, causal_mask(query_frame, key_frame))
            return smooth_l1(prediction, target).mean()
        samples = num_samples or self.config.num_samples_train
        device = generator.device if generator is not None else z.device
        noise = torch.randn(batch, targets, samples, width, generator=generator, device=device)
        candidates = (noise * self.config.noise_std).to(z)[:, :, :, None]  # [B, L, S, 1, Dp]
        return best_of_many_loss(
            self.predictor, candidates, kv, pos_q, pos_k, query_frame, key_frame, target[:, :, None]
        )
