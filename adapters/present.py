"""Present: the upper bound that is handed the ground-truth future features."""

from __future__ import annotations

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel


class Present(WorldModel):
    """An oracle: its forecast is the feature space's encoding of the true future."""

    stochastic = False
    oracle = True

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        if context.future_features is None:
            raise ValueError("Present needs context.future_features; the harness sets it for oracle models.")
        return Forecast(context.future_features[:, None])
