"""DINO-Foresight's evaluation horizons and baselines, in PCA space (FACTS.md, sections 5, 6 and 11).

Both horizons load five frames at stride 3 of a 30-frame snippet whose frame 19 is labelled.
Short: frames 7, 10, 13, 16 predict 19 in one pass. Mid: frames 1, 4, 7, 10, 13 are loaded
and three autoregressive passes predict 13, 16, 19 (the real frame 13 is discarded).
Copy-last repeats the last context slot (frame 16 short, frame 10 mid); the heads then read
its PCA reconstruction like any prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dfbench.errors import DfbenchError
from dfbench.models.dino_foresight import DinoForesight


@dataclass(frozen=True)
class ForesightHorizon:
    """Which snippet frames a horizon loads and how many passes it runs."""

    name: str
    frames: tuple[int, ...]
    passes: int
    label_frame: int = 19


HORIZONS = {
    "short": ForesightHorizon("short", (7, 10, 13, 16, 19), passes=1),
    "mid": ForesightHorizon("mid", (1, 4, 7, 10, 13), passes=3),
}


def horizon(name: str) -> ForesightHorizon:
    if name not in HORIZONS:
        raise DfbenchError(f"unknown DINO-Foresight horizon '{name}'; use one of {', '.join(HORIZONS)}.")
    return HORIZONS[name]


@torch.no_grad()
def forecast(predictor: DinoForesight, pca_feats: torch.Tensor, name: str) -> torch.Tensor:
    """PCA features [B, 5, h, w, K] of the horizon's loaded frames -> the forecast of frame 19 [B, h, w, K]."""
    if predictor.training:
        raise DfbenchError("DINO-Foresight is in training mode (dropout on); call .eval() before evaluating.")
    state, _, _ = predictor.unroll(pca_feats, horizon(name).passes)
    return state[:, -1]


def copy_last(pca_feats: torch.Tensor) -> torch.Tensor:
    """The Copy-last forecast [B, h, w, K]: the last context slot (the official baseline)."""
    return pca_feats[:, -2]
