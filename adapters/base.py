"""The world-model contract every adapter implements.

A world model sees the context of a batch of square crops and returns ``num_samples``
rollouts of predicted features at the requested future timestamps, in one call. The
protocol (crops, windows, scoring, heads, metrics) belongs to the harness, never to
an adapter. Randomness comes only from the per-row generators in the context, so a
row's samples do not depend on the batch it was evaluated in.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from dfbench.features.base import FeatureSpace


@dataclass
class Context:
    """What a world model may look at for a batch of B crops.

    Attributes:
        frames: uint8 [B, C, 3, S, S] context crops.
        timestamps: float32 [B, C] seconds (window timestamps, not re-zeroed).
        features: [B, C, N, D] the harness's cached feature-space features.
        grid: (h, w) patch grid of one crop, N = h * w.
        generators: one CPU ``torch.Generator`` per row; draw all noise of row b from
            ``generators[b]`` (see :func:`randn_rows`).
        future_features: [B, K, N, D] ground truth; set only for oracle adapters.
    """

    frames: torch.Tensor
    timestamps: torch.Tensor
    features: torch.Tensor
    grid: tuple[int, int]
    generators: Sequence[torch.Generator]
    future_features: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.features.shape[0]


@dataclass
class Forecast:
    """Predicted features [B, S, K, N, D]: S samples, K future steps."""

    features: torch.Tensor


class WorldModel(abc.ABC):
    """Base class of every adapter.

    Class attributes:
        name: registry name used by ``dfbench run --model``.
        spec: the model's :class:`~dfbench.adapters.spec.ModelSpec`, set by the registry
            (declared for built-ins, derived from these attributes for third-party classes).
        stochastic: True if samples differ (scored best-of-N and mean-of-N), False if
            the model is deterministic (one sample, scored "single").
        oracle: True only for upper bounds that are handed the future features.
        one_clip_per_call: True for a model whose batched kernels give other last bits
            when other clips share the call: the evaluator then hands it one clip's crops
            at a time, so its numbers are those of ``--batch-size 1`` at any batch size.
    """

    name: ClassVar[str]
    stochastic: ClassVar[bool] = False
    oracle: ClassVar[bool] = False
    one_clip_per_call: ClassVar[bool] = False

    def __init__(self, feature_space: FeatureSpace, checkpoint: str | None = None, **options) -> None:
        self.feature_space = feature_space
        self.checkpoint = checkpoint

    @abc.abstractmethod
    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        """Rolls the context forward to ``target_timestamps`` [B, K].

        Returns ``num_samples`` rollouts for a stochastic model and exactly one for a
        deterministic one.
        """

    @classmethod
    def runs_offline(cls, feature_space_name: str) -> bool:
        """Whether weights for this feature space ship with dfbench (``dfbench demo`` runs it).

        Read from the model's spec (``cls.spec``, set by the registry) when it has one.
        """
        spec = getattr(cls, "spec", None)
        return True if spec is None else spec.runs_offline(feature_space_name)

    def to(self, device: torch.device | str) -> WorldModel:
        """Moves the model's weights; adapters with modules override this."""
        return self

    def checkpoint_files(self) -> dict[str, str]:
        """Weight files used, name -> sha256, for the results' provenance."""
        return {}


def randn_rows(
    generators: Sequence[torch.Generator], shape: Sequence[int], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard normal noise [B, *shape], row b drawn only from ``generators[b]``.

    Drawn on the CPU and then moved, so numbers do not depend on the device either.
    """
    rows = [torch.randn(*shape, generator=g) for g in generators]
    return torch.stack(rows).to(device)
