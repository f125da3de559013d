"""The pixel-space contract: world models that generate frames, not features.

A video generator (Cosmos, any diffusers video-to-world pipeline) cannot take square
crops or return features. It sees whole context frames in its own input format
(declared by a :class:`~dfbench.adapters.spec.PixelInput`) and returns future frames;
the harness (:mod:`dfbench.pixels`) removes the padding, takes the protocol's square
crops, encodes every predicted crop with the feature space and scores them like any
forecast. Randomness comes only from the per-clip generators in the context.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel
from dfbench.adapters.spec import PixelInput
from dfbench.errors import DfbenchError

SEED_RANGE = 1 << 62


@dataclass
class PixelContext:
    """What a pixel model may look at for a batch of B whole clips.

    Attributes:
        frames: uint8 [B, F, 3, H, W]: the ``num_frames`` input frames picked by the
            input's ``context_map``, resized and padded to the input shape H x W.
        timestamps: float32 [B, F] seconds of those frames (repeated frames repeat them).
        valid_size: (h, w) of the real image inside the padding (top-left corner).
        generators: one CPU ``torch.Generator`` per clip; draw all noise of clip b from
            ``generators[b]`` (see :func:`sample_generators`).
        protocol_step: seconds between two protocol frames.
    """

    frames: torch.Tensor
    timestamps: torch.Tensor
    valid_size: tuple[int, int]
    generators: Sequence[torch.Generator]
    protocol_step: float

    @property
    def batch_size(self) -> int:
        return self.frames.shape[0]


class PixelWorldModel(WorldModel):
    """Base class of pixel-space world models (video generators).

    Class attributes (besides :class:`WorldModel`'s):
        pixel_input: the :class:`PixelInput` it takes; variants of a family declare it
            in their spec instead (``spec.pixel_input``).
    """

    pixel_input: ClassVar[PixelInput | None] = None

    @classmethod
    def input_format(cls) -> PixelInput:
        """The model's declared input format (class attribute, else its spec's)."""
        declared = cls.pixel_input or getattr(getattr(cls, "spec", None), "pixel_input", None)
        if declared is None:
            raise DfbenchError(f"pixel model {cls.__name__} declares no pixel_input; set it on the class or its spec.")
        return declared

    @abc.abstractmethod
    def generate(self, context: PixelContext, target_timestamps: torch.Tensor, num_samples: int) -> torch.Tensor:
        """Frames at ``target_timestamps`` [B, K]: uint8 [B, S, K, 3, H, W] at the input shape.

        S is ``num_samples`` for a stochastic model and 1 for a deterministic one; the
        padding area may hold anything (the harness cuts it off).
        """

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        raise DfbenchError(
            f"{type(self).__name__} is a pixel model: the harness calls generate() on whole frames, not predict() on crops."
        )

    def describe_input(self) -> dict:
        """How the model saw the context, for the results' provenance."""
        return self.input_format().as_dict()


def sample_generators(generator: torch.Generator, num_samples: int) -> list[torch.Generator]:
    """One CPU generator per sample, seeded from the clip's generator.

    For pipelines that take ``generator=[...]`` (one per batch entry): sample s of a
    clip is the same whatever else shares its batch.
    """
    seeds = torch.randint(0, SEED_RANGE, (num_samples,), generator=generator)
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds]


def target_frame_indices(context: PixelContext, target_timestamps: torch.Tensor, stride: int) -> list[int]:
    """Indices (0 = first generated frame) of the generated frames at the target timestamps.

    The model generates ``stride`` frames per protocol step after the last context
    frame; every clip of a batch shares the protocol's spacing.
    """
    offsets = (target_timestamps[0] - context.timestamps[0, -1]) / context.protocol_step
    indices = [round(float(o) * stride) - 1 for o in offsets]
    if min(indices) < 0:
        raise DfbenchError("a target timestamp is not after the last context frame; check the data set's timestamps.")
    return indices
