"""Proper scores of a stochastic model's samples in feature space, as summable statistics.

Best-of-S and mean-of-S say how good the best and the average sample are; these say
how good the samples are as a distribution (per crop, window step and token, on
the S sampled features against the true features):

- the fair energy score ``E||X - y|| - 1/2 E||X - X'||`` (Euclidean norm over the
  feature channels of a token; the second expectation over distinct sample pairs,
  which makes it unbiased for the score of the sampling distribution), averaged over
  tokens. Its first term is the skill, its second (``energy_spread``) the diversity;
- the spread-skill ratio ``sqrt((S+1)/S * var) / rmse`` of the sample mean (Fortin et
  al. 2014): 1 for a calibrated ensemble, below 1 for overconfident samples;
- the expected best-of-k curve for k = 1..S: the protocol's feature loss of the best
  of k samples drawn at random from the S, by order statistics (``k = S`` is the
  best-of-S loss, ``k = 1`` the mean sample's), scored at the window's last step as
  best-of-S chooses there.

Records keep them under ``samples/<horizon>/<step>/ensemble`` as sums, so they are
merged, resumed and bootstrapped like the tasks' statistics. scoringrules is not a
dependency: its package is not in the index this project installs from, and the two
formulas are a few lines here, tested against brute force over sample pairs and subsets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from dfbench.tasks.base import MetricDef

if TYPE_CHECKING:
    import torch

ENSEMBLE = "samples"  # the task part of the records' keys
STAT = "ensemble"  # their stat part, and the stat of their metric entries
BEST_OF_K_PREFIX = "best_of_"


class EnsembleStats:
    """Merges and computes the sample scores the way a Task does its statistics.

    Statistics: ``skill`` and ``spread`` (energy terms summed over tokens), ``tokens``,
    ``sse`` (squared error of the sample mean) and ``var`` ((S+1)/S times the unbiased
    sample variance, summed over tokens and channels); at a window's last step also
    ``best_of_k`` (per k, summed over crops) and ``crops``.
    """

    name: ClassVar[str] = ENSEMBLE
    metrics: ClassVar[tuple[MetricDef, ...]] = (
        MetricDef("energy", "Energy score", False, 4, "feature"),
        MetricDef("energy_skill", "Energy skill", False, 4, "feature"),
        MetricDef("energy_spread", "Energy spread", True, 4, "feature"),
        MetricDef("spread_skill", "Spread/skill", None, 3, "ratio"),  # best at 1: no direction
    )

    def merge(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {k: [x + y for x, y in zip(v, b[k])] if isinstance(v, list) else v + b[k] for k, v in a.items()}

    def compute(self, stats: dict[str, Any]) -> dict[str, float]:
        tokens, sse = stats["tokens"], stats["sse"]
        out = {
            "energy": (stats["skill"] - 0.5 * stats["spread"]) / tokens if tokens else math.nan,
            "energy_skill": stats["skill"] / tokens if tokens else math.nan,
            "energy_spread": 0.5 * stats["spread"] / tokens if tokens else math.nan,
            "spread_skill": math.sqrt(stats["var"] / sse) if sse > 0 else math.nan,
        }
        crops = stats.get("crops", 0)
        for k, total in enumerate(stats.get("best_of_k", []), start=1):
            out[f"{BEST_OF_K_PREFIX}{k}"] = total / crops if crops else math.nan
        return out

    def to_json(self, stats: dict[str, Any]) -> dict[str, Any]:
        return dict(stats)

    def from_json(self, data: dict[str, Any], num_classes: int = 1) -> dict[str, Any]:
        return dict(data)


def stats_owner(name: str) -> Any:
    """What merges and computes the statistics whose keys start with ``name``: a Task or the sample scores."""
    from dfbench.tasks import get_task

    return EnsembleStats() if name == ENSEMBLE else get_task(name)


def best_of_k_weights(num_samples: int, device=None) -> torch.Tensor:
    """[k, i]: the probability that the i-th smallest of S losses is the minimum of a random k-subset."""
    import torch

    from dfbench.uncertainty import best_of_k_weights as weights

    return torch.from_numpy(weights(num_samples)).to(device)


def ensemble_statistics(preds: torch.Tensor, targets: torch.Tensor, beta: float) -> list[list[dict[str, Any]]]:
    """Per crop row, per step: the sample-score statistics of preds [B, S, K, N, D] against targets [B, K, N, D].

    Computed in float64, one crop and step at a time, so memory stays at one [S, N, D] block.
    """
    import torch

    from dfbench.scoring import feature_loss

    rows, samples, steps, tokens, _ = preds.shape
    weights = best_of_k_weights(samples, preds.device)
    out = []
    for row in range(rows):
        # Row by row, so a crop's numbers do not depend on the batch it came in.
        losses = feature_loss(preds[row, :, -1].double(), targets[row, -1][None].double(), beta)
        best_of_k = torch.sort(losses).values @ weights.T  # [k]
        per_step = []
        for step in range(steps):
            x = preds[row, :, step].double()  # [S, N, D]
            y = targets[row, step].double()  # [N, D]
            skill = (x - y).norm(dim=-1).mean(dim=0).sum()
            per_token = x.transpose(0, 1)  # [N, S, S'] distances below
            pairs = torch.cdist(per_token, per_token, compute_mode="donot_use_mm_for_euclid_dist")
            spread = pairs.sum(dim=(1, 2)).sum() / (samples * (samples - 1))
            sse = ((x.mean(dim=0) - y) ** 2).sum()
            var = x.var(dim=0, unbiased=True).sum() * (samples + 1) / samples
            stats = {"skill": float(skill), "spread": float(spread), "tokens": tokens, "sse": float(sse),
                     "var": float(var)}
            if step == steps - 1:
                stats.update(best_of_k=[float(v) for v in best_of_k], crops=1)
            per_step.append(stats)
        out.append(per_step)
    return out


def clip_sample_scores(record: dict[str, Any]) -> dict[tuple[str, int], dict[str, float]]:
    """One clip's sample scores, (horizon, step) -> metric -> value, from its record (JSON form)."""
    from dfbench.results import parse_stat_key

    owner, out = EnsembleStats(), {}
    for key, data in record["stats"].items():
        task, horizon, step, _ = parse_stat_key(key)
        if task == ENSEMBLE:
            out[(horizon, step)] = owner.compute(owner.from_json(data))
    return out
