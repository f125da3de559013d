"""Copy-last: the lower bound that repeats the last context frame's features."""

from __future__ import annotations

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel


class CopyLast(WorldModel):
    """Predicts no change: every future step is the last context frame."""

    stochastic = False

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        steps = target_timestamps.shape[1]
        last = context.features[:, -1]
        return Forecast(last[:, None, None].expand(-1, 1, steps, -1, -1))
