"""The optimisation recipe of the reference: AdamW groups, warm-up then constant, clipping.

Everything here follows the reference training code (ARCHITECTURE_FACTS.md, section 8):

* AdamW with torch's defaults (betas 0.9 / 0.999, eps 1e-8);
* weight decay only on the ``.weight`` of trainable Linear and Conv modules; biases,
  LayerNorms, LayerScales, embeddings, q/k-norm weights and ``q_embed`` get none;
* the learning rate rises linearly from 0 over ``warmup_steps`` and then stays constant;
* gradient-norm clipping for the tokenizer only (1e-2), none for the predictors.

DINO-Foresight's official recipe (``train.py``, ``Dino_f.configure_optimizers``) is
expressed with the same parts: Adam (AdamW with weight decay 0 is the same update), no
warm-up, ``schedule: cosine`` (torch's CosineAnnealingLR over the run, stepped every
optimiser step, down to 0) and gradient-norm clipping at 1.0.

The losses themselves belong to the models (``log_cosh`` for DeltaTok, the predictors'
``training_loss``); :func:`delta_token_loss` is DeltaWorld's loss computed from cached
delta tokens, which saves running the frozen tokenizer on every step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import math

import torch
from torch import nn

from dfbench.models.config_io import DictConfig

SCHEDULES = ("constant", "cosine")
# Modules whose `.weight` is a matrix (or kernel) that weight decay should shrink.
DECAYED_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class Recipe(DictConfig):
    """Optimiser and schedule hyper-parameters of one training run.

    Attributes:
        lr: peak learning rate, reached at the end of warm-up and kept afterwards.
        weight_decay: AdamW decoupled weight decay of the decayed group.
        warmup_steps: linear warm-up length from 0.
        grad_clip: max gradient norm; None for no clipping (the predictors).
        betas: AdamW betas.
        eps: AdamW eps.
        schedule: after warm-up, ``constant`` or ``cosine`` (annealed to 0 at the run's last step).
    """

    lr: float
    weight_decay: float
    warmup_steps: int
    grad_clip: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "constant"

    _strict_keys: ClassVar[str] = "recipe"

    def __post_init__(self) -> None:
        self.lr, self.weight_decay, self.eps = float(self.lr), float(self.weight_decay), float(self.eps)
        self.warmup_steps = int(self.warmup_steps)
        self.betas = tuple(float(b) for b in self.betas)
        self.grad_clip = None if self.grad_clip is None else float(self.grad_clip)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"recipe.schedule must be one of {SCHEDULES}, got {self.schedule!r}")


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Splits the trainable parameters into a decayed and a non-decayed AdamW group.

    Only the ``weight`` directly owned by a Linear or Conv module is decayed. A parameter
    reachable under two names (tied weights) is listed once.

    Returns:
        ``[{"params": decayed, "weight_decay": weight_decay, "names": [...]},
        {"params": others, "weight_decay": 0.0, "names": [...]}]``; empty groups are kept
        so the optimizer state layout does not depend on the model.
    """
    decayed, others, seen = [], [], set()
    decayed_names, other_names = [], []
    for module_name, child in module.named_modules():
        for name, param in child.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{name}" if module_name else name
            if isinstance(child, DECAYED_MODULES) and name == "weight":
                decayed.append(param)
                decayed_names.append(full)
            else:
                others.append(param)
                other_names.append(full)
    return [
        {"params": decayed, "weight_decay": float(weight_decay), "names": decayed_names},
        {"params": others, "weight_decay": 0.0, "names": other_names},
    ]


def build_optimizer(module: nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, starting at learning rate 0 (the warm-up's start)."""
    groups = param_groups(module, recipe.weight_decay)
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)


def warmup_constant(step: int, warmup_steps: int) -> float:
    """Learning-rate factor of an optimiser step (0-based): linear from 0, then 1.

    Step ``s`` uses ``s / warmup_steps`` during warm-up, so the very first update has
    learning rate 0, as a warm-up "from 0" in the reference.
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def cosine_factor(step: int, total_steps: int) -> float:
    """CosineAnnealingLR's factor at optimiser step ``step`` (0-based) of ``total_steps``: 1 at 0, 0 at the end."""
    return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


def set_learning_rate(optimizer: torch.optim.Optimizer, recipe: Recipe, step: int, total_steps: int | None = None) -> float:
    """Sets every group's learning rate for ``step`` and returns it.

    Computed from the step alone (no scheduler state), so a resumed run cannot drift.
    ``total_steps`` is the run's length, which the cosine schedule anneals over.
    """
    lr = recipe.lr * warmup_constant(step, recipe.warmup_steps)
    if recipe.schedule == "cosine":
        if total_steps is None:
            raise ValueError("a cosine schedule needs the run's total_steps")
        lr *= cosine_factor(step, total_steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    """Clips the total gradient norm if ``max_norm`` is set; returns the norm before clipping."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is None:
        norms = torch.stack([p.grad.detach().norm() for p in params])
        return float(norms.norm())
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def delta_token_loss(
    model: nn.Module,
    z: torch.Tensor,
    timestamps: torch.Tensor,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DeltaWorld's training loss from precomputed context tokens.

    Equal to ``DeltaWorld.training_loss`` on the features the tokens came from (the test
    suite checks this, noise included): tokens z_1..z_{T-1} are the targets of a causal
    teacher-forced pass over z_0..z_{T-2}; with best-of-many, only the best of
    ``num_samples`` noise queries per target gets a gradient.

    Args:
        model: a :class:`~dfbench.models.DeltaWorld`.
        z: [B, T, D] tokens from ``model.context_tokens`` (frozen tokenizer, eval mode).
        timestamps: [B, T] seconds.
        num_samples: best-of-many candidates (default ``model.config.num_samples_train``).
        generator: draws the noise queries, as in ``training_loss``.
    """
    pos_k = timestamps[:, :-1, None].to(z.dtype)
    pos_q = timestamps[:, 1:, None, None].to(z.dtype)
    return model.token_loss(z, pos_k, pos_q, num_samples, generator)
