"""The evaluator's forecast step, and the demo figure that is drawn from it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dfbench.adapters.base import Context, Forecast, WorldModel
from dfbench.config import load_protocol
from dfbench.data.base import SEG_IGNORE, Clip
from dfbench.evaluate import Evaluator, crop_rows
from dfbench.features import load_feature_space
from dfbench.figure import demo_panels
from dfbench.registry import get_model_spec


class TwoSamples(WorldModel):
    """An oracle with two samples around the truth: one feature far off, or all slightly off.

    Sample 0 misses one feature by 0.3 * N * D, sample 1 misses every feature by 0.6. By
    L1 (a small smooth-L1 beta) sample 0 is closer, by squared error (a large beta)
    sample 1 is: the chosen sample shows which beta was used.
    """

    name = "two-samples"
    stochastic = True
    oracle = True

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        return Forecast(torch.stack(two_samples(context.future_features), dim=1))


def two_samples(truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    far = truth.clone()
    far[..., 0, 0] += 0.3 * truth.shape[-2] * truth.shape[-1]
    return far, truth + 0.6


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


@pytest.mark.parametrize("beta, best", [(1e-3, 0), (100.0, 1)])
def test_forecast_chooses_the_best_sample_under_the_protocols_loss(tiny, beta, best):
    protocol = dataclasses.replace(load_protocol(), loss_beta=beta)
    evaluator = Evaluator(TwoSamples(tiny), tiny, {}, protocol, num_samples=2, horizons=["mid"])
    side, frames = tiny.frame_size, protocol.clip_length
    pixels = torch.randint(0, 256, (frames, 3, side, 2 * side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    encoded = evaluator.encode(Clip("clip-0", pixels, torch.arange(frames, dtype=torch.float32) / 10))
    (window,) = evaluator.windows()
    scored = evaluator.forecast([encoded], window)
    assert set(scored) == {"best", "mean"}
    # a 2:1 clip is two square crops, each row choosing by its own loss
    assert len(crop_rows([encoded])) == scored["best"].shape[0] == 2
    far, near = two_samples(encoded.features[:, list(window.targets)])
    assert torch.equal(scored["best"], (far, near)[best])
    torch.testing.assert_close(scored["mean"], (far + near) / 2)


def test_the_figure_shows_each_models_forecast_through_the_evaluator():
    panels = demo_panels(["present", "copy-last"], num_samples=2)
    present, copy_last = (get_model_spec(m).display for m in ("present", "copy-last"))
    assert [f.model for f in panels.forecasts] == [present, copy_last]
    assert all(f.stat == "single" for f in panels.forecasts) and not panels.strips
    truth = panels.truth["seg"]
    num_classes = len(panels.class_names)
    agreement = {}
    for forecast in panels.forecasts:
        maps = forecast.maps["seg"]
        assert len(maps) == len(truth) == len(panels.steps) and all(m.shape == t.shape for m, t in zip(maps, truth))
        assert all(m.min() >= 0 and m.max() < num_classes for m in maps)
        assert all(d.shape == t.shape for d, t in zip(forecast.maps["depth"], panels.truth["depth"]))
        valid = [t != SEG_IGNORE for t in truth]
        agreement[forecast.model] = np.mean(np.concatenate([(m == t)[v] for m, t, v in zip(maps, truth, valid)]))
    # The oracle is handed the true future features: its panels follow the truth better.
    assert agreement[present] > agreement[copy_last] + 0.05, agreement
