"""Held-out check of a trained DINO-Foresight in PCA space, against Copy-last, on synthetic clips.

Each synthetic evaluation clip has 7 frames one simulation step apart; the last is the
target at both horizons, as frame 19 is on Cityscapes (FACTS.md, sections 5-6):

* short: frames 2, 3, 4, 5 observed, frame 6 predicted in one pass; Copy-last is frame 5;
* mid: frames 0, 1, 2, 3 (and 4, loaded then discarded) -> 4, 5, 6 in three autoregressive
  passes; Copy-last is frame 3.

Losses are the training loss (SmoothL1, beta 0.1) and the mean squared error, both on the
PCA features of the target frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dfbench.models.dino_foresight import DinoForesight
from dfbench.train.foresight import SMOOTH_L1_BETA

CLIP_FRAMES = 7
TARGET = 6
SHORT_SLOTS = slice(2, 7)
MID_SLOTS = slice(0, 5)
MID_STEPS = 3


@dataclass(frozen=True)
class HorizonLosses:
    """Losses of the model and of Copy-last at one horizon."""

    model_smooth_l1: float
    copy_last_smooth_l1: float
    model_mse: float
    copy_last_mse: float

    @property
    def beats_copy_last(self) -> bool:
        return self.model_smooth_l1 < self.copy_last_smooth_l1


def synthetic_clip_features(space, split: str = "val", clips: int = 64, batch: int = 16) -> torch.Tensor:
    """PCA features [clips, 7, h, w, K] of the synthetic clips ``(split, 0 .. clips-1)``."""
    from dfbench.data.synthetic import generate

    out = []
    for start in range(0, clips, batch):
        frames = np.stack([generate(split, i, CLIP_FRAMES).frames for i in range(start, min(clips, start + batch))])
        pixels = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3)))
        feats = space.encode(pixels)
        out.append(feats.reshape(*feats.shape[:2], *space.grid, feats.shape[-1]))
    return torch.cat(out)


def _losses(pred: torch.Tensor, copy: torch.Tensor, target: torch.Tensor) -> HorizonLosses:
    return HorizonLosses(
        model_smooth_l1=float(F.smooth_l1_loss(pred, target, beta=SMOOTH_L1_BETA)),
        copy_last_smooth_l1=float(F.smooth_l1_loss(copy, target, beta=SMOOTH_L1_BETA)),
        model_mse=float(F.mse_loss(pred, target)),
        copy_last_mse=float(F.mse_loss(copy, target)),
    )


@torch.no_grad()
def holdout_losses(model: DinoForesight, feats: torch.Tensor) -> dict[str, HorizonLosses]:
    """Short and mid losses of ``model`` (set to eval mode here) on clip features [B, 7, h, w, K]."""
    model.eval()
    target = feats[:, TARGET]
    short = model(feats[:, SHORT_SLOTS])[:, -1]
    final, _, _ = model.unroll(feats[:, MID_SLOTS], MID_STEPS)
    return {
        "short": _losses(short, feats[:, SHORT_SLOTS][:, -2], target),
        "mid": _losses(final[:, -1], feats[:, MID_SLOTS][:, -2], target),
    }
