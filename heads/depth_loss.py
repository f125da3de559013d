"""The scale-invariant log loss (SigLoss) for metric depth heads.

DINOv2's public depth probes train this same linear bins head with it (after AdaBins):
it scores log-depth errors up to a shared offset, so the head is pushed to get the
relative layout of a scene right rather than to sit on the per-row depth prior that the
squared error in metres rewards.
"""

from __future__ import annotations

import torch

# λ = 0.85, as DINOv2's SigLoss (var(g) + 0.15·mean(g)² = mean(g²) − 0.85·mean(g)²): mostly
# scale-invariant, yet still charges a global scale error, which metric depth must get right.
SILOG_LAMBDA = 0.85
# Added to both depths before the log so that near-zero predictions keep finite gradients (DINOv2's eps).
SILOG_EPS = 1e-3


def silog_loss(pred: torch.Tensor, target: torch.Tensor, lam: float = SILOG_LAMBDA) -> torch.Tensor:
    """sqrt(mean(g²) − λ·mean(g)²) with g = log(pred) − log(target), over the given (valid) pixels.

    Pooled over all pixels passed in (a whole batch, as DINOv2 does), not per image. No ×10
    factor (AdaBins has one, DINOv2 does not): AdamW's steps do not depend on the loss scale.
    """
    if pred.numel() == 0:
        return pred.sum() * 0.0
    g = torch.log(pred + SILOG_EPS) - torch.log(target + SILOG_EPS)
    # Clamped at zero: with λ < 1 the variance term is never negative, but rounding can be.
    return torch.sqrt(torch.clamp((g**2).mean() - lam * g.mean() ** 2, min=1e-12))
