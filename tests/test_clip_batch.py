"""Clips batched through the backbone: one call, the features and label halves of one call per clip."""

from __future__ import annotations

import pytest
import torch

from dfbench.clip_batch import encode_clips
from dfbench.data.base import SEG_IGNORE, Clip
from dfbench.evaluate import encode_clip
from dfbench.feature_cache import FeatureCache
from dfbench.features import load_feature_space


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


def clip(seed: int, height: int, width: int) -> Clip:
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (7, 3, height, width), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 5, (7, 2 * height, 2 * width), generator=generator)
    labels[:3] = SEG_IGNORE
    return Clip(f"clip-{seed}", frames, torch.arange(7, dtype=torch.float32) / 10, {"seg": labels})


def backbone_calls(space) -> list[int]:
    """Frames per call of the backbone's encode, from now on."""
    calls: list[int] = []
    real = space.encode

    def counting(frames):
        calls.append(frames.shape[0])
        return real(frames)

    space.encode = counting
    return calls


@pytest.mark.parametrize("threads", [1, 2])
def test_clips_encoded_together_equal_clips_encoded_alone(tiny, threads):
    side = tiny.frame_size
    clips = [clip(0, side, 2 * side), clip(1, side, 2 * side - 2), clip(2, side, 2 * side), clip(3, 2 * side, 2 * side)]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        alone = [encode_clip(c, tiny, torch.device("cpu")) for c in clips]
        calls = backbone_calls(tiny)
        together = encode_clips(clips, tiny, torch.device("cpu"))
    finally:
        del tiny.encode
        torch.set_num_threads(previous)
    # Two crops of 7 frames for each 2:1 and near-2:1 clip (one size), one crop of another size for the square one.
    assert sorted(calls) == [7, 42]
    for a, b in zip(alone, together):
        assert a.clip is b.clip and a.grid == b.grid
        assert torch.equal(a.features, b.features) and torch.equal(a.crops, b.crops)
        assert a.halves.keys() == b.halves.keys() and all(torch.equal(a.halves[t], b.halves[t]) for t in a.halves)


def test_cached_clips_skip_the_backbone_and_new_ones_are_cached(tiny, tmp_path):
    side = tiny.frame_size
    clips = [clip(0, side, 2 * side), clip(1, side, 2 * side)]
    cache = FeatureCache(tmp_path)
    first = encode_clips(clips[:1], tiny, torch.device("cpu"), cache, ("key",))
    calls = backbone_calls(tiny)
    try:
        both = encode_clips(clips, tiny, torch.device("cpu"), cache, ("key",))
        again = encode_clips(clips, tiny, torch.device("cpu"), cache, ("key",))
    finally:
        del tiny.encode
    assert calls == [14]  # only the clip not yet cached, once
    assert torch.equal(both[0].features, first[0].features)
    assert all(torch.equal(a.features, b.features) for a, b in zip(both, again))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (GPU path)")
def test_clips_encoded_together_equal_clips_encoded_alone_on_cuda():
    """Not yet run on a GPU: if kernels chosen by batch shape change bits, features depend on --batch-size there."""
    space = load_feature_space("tiny", device="cuda")
    side = space.frame_size
    clips = [clip(seed, side, 2 * side) for seed in range(3)]
    device = torch.device("cuda")
    alone = [encode_clip(c, space, device) for c in clips]
    together = encode_clips(clips, space, device)
    assert all(torch.equal(a.features, b.features) for a, b in zip(alone, together))
