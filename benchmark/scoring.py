"""Turning N sampled rollouts into the numbers the paper reports: best, mean, single."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def feature_loss(preds: torch.Tensor, target: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Smooth L1 (beta 0.1) between features, averaged over tokens and channels.

    Args:
        preds: [..., N, D]; target: broadcastable to ``preds``.

    Returns:
        [...] one loss per leading index.
    """
    target = target.expand_as(preds)
    return F.smooth_l1_loss(preds, target, beta=beta, reduction="none").mean(dim=(-2, -1))


def best_of(preds: torch.Tensor, targets: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Best-of-N: the sample closest to the truth at the last step, used for every step.

    Args:
        preds: [B, S, K, N, D] sampled rollouts of B crops.
        targets: [B, K, N, D] ground-truth features.

    Returns:
        The chosen rollouts [B, K, N, D] and the chosen sample index per crop [B].
    """
    losses = feature_loss(preds[:, :, -1], targets[:, None, -1], beta)
    index = losses.argmin(dim=1)
    chosen = preds[torch.arange(preds.shape[0], device=preds.device), index]
    return chosen, index


def mean_of(preds: torch.Tensor) -> torch.Tensor:
    """Mean-of-N: average the sampled features [B, S, K, N, D] before the head."""
    return preds.mean(dim=1)


def score_rollouts(
    preds: torch.Tensor, targets: torch.Tensor | None, stochastic: bool, beta: float = 0.1
) -> dict[str, torch.Tensor]:
    """Stat name ("best", "mean" or "single") -> features [B, K, N, D] to feed the heads.

    ``targets`` may be None where no choice is made: a deterministic model, or one sample,
    which is its own best and (exactly: a sum of one, divided by one) its own mean.
    """
    if not stochastic:
        return {"single": preds[:, 0]}
    if preds.shape[1] == 1:
        return {"best": preds[:, 0], "mean": preds[:, 0]}
    if targets is None:
        raise ValueError("best-of-N needs the targets' features")
    best, _ = best_of(preds, targets, beta)
    return {"best": best, "mean": mean_of(preds)}
