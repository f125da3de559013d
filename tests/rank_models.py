"""A model that fails in one rank only, for the torchrun tests (imported by the test and the launched script)."""

from __future__ import annotations

import os

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel, randn_rows
from dfbench.registry import register_model

# The rank that fails, and after how many predictions (two per clip: short and mid).
FAILING_RANK_VARIABLE = "DFBENCH_TEST_FAILING_RANK"
FAIL_AFTER = 2


@register_model("test-rank-fail")
class FailsInOneRank(WorldModel):
    """Copy-last plus noise; raises on its second clip in the rank named by the variable."""

    stochastic = True
    calls = 0

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        type(self).calls += 1
        failing = os.environ.get(FAILING_RANK_VARIABLE)
        if failing is not None and os.environ.get("RANK") == failing and type(self).calls > FAIL_AFTER:
            raise RuntimeError("out of memory (simulated)")
        last = context.features[:, -1][:, None, None]
        noise = randn_rows(context.generators, (num_samples, target_timestamps.shape[1], *last.shape[-2:]))
        return Forecast(last + 0.5 * noise)
