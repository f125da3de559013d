"""Several clips through the backbone in one call, each clip otherwise encoded by ``encode_clip``.

``encode_clip`` stays the one place that decides what a clip's backbone input is (its
crops) and what is kept (features, label halves, cache entries). Here it runs twice per
clip: first against a stand-in feature space that only records the frames it would
encode, then, after one backbone call over every clip's frames, against a stand-in that
hands back that clip's share of the output.

Batching changes no bit on the CPU: features of clips encoded together equal those of
each clip alone (torch.equal) for the tiny backbone and a ViT-B-size DINOv3 at 1 and 2
threads (``scripts/backbone_batch_bits.py``; tests/test_clip_batch.py checks the tiny one).
"""

from __future__ import annotations

from typing import Any

import torch

from dfbench.data.base import Clip
from dfbench.evaluate import EncodedClip, encode_clip
from dfbench.feature_cache import FeatureCache
from dfbench.features.base import FeatureSpace


class _Deferred(Exception):
    """Raised by the recording stand-in once it holds a clip's backbone input."""


class _StandIn:
    """A feature space whose ``encode`` records its input, or returns a precomputed output."""

    def __init__(self, space: FeatureSpace, output: torch.Tensor | None = None) -> None:
        self._space = space
        self._output = output
        self.frames: torch.Tensor | None = None

    def __getattr__(self, name: str) -> Any:  # patch size, name...: the real space's
        return getattr(self._space, name)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if self._output is None:
            self.frames = frames
            raise _Deferred
        if self._output.shape[0] != frames.shape[0]:
            raise RuntimeError("encode_clips: a clip's backbone input changed between its two passes")
        return self._output


@torch.no_grad()
def encode_clips(
    clips: list[Clip],
    feature_space: FeatureSpace,
    device: torch.device,
    feature_cache: FeatureCache | None = None,
    cache_key: tuple[str, ...] = (),
    crops_mode: str = "square",
    frames: list[int] | None = None,
) -> list[EncodedClip]:
    """``[encode_clip(c, ...) for c in clips]`` with one backbone call per crop size.

    Clips already in ``feature_cache`` are not encoded again.
    """
    done: dict[int, EncodedClip] = {}
    pending: dict[int, torch.Tensor] = {}
    for index, clip in enumerate(clips):
        recorder = _StandIn(feature_space)
        try:
            done[index] = encode_clip(clip, recorder, device, feature_cache, cache_key, crops_mode, frames)
        except _Deferred:
            pending[index] = recorder.frames
    for indices in _same_shape(pending).values():
        outputs = feature_space.encode(torch.cat([pending[i] for i in indices]))
        for index, output in zip(indices, outputs.split([pending[i].shape[0] for i in indices])):
            done[index] = encode_clip(clips[index], _StandIn(feature_space, output), device, feature_cache, cache_key,
                                      crops_mode, frames)
    return [done[i] for i in range(len(clips))]


def _same_shape(pending: dict[int, torch.Tensor]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for index, frames in pending.items():
        groups.setdefault((tuple(frames.shape[1:]), frames.dtype, frames.device), []).append(index)
    return groups


__all__ = ["encode_clips"]
