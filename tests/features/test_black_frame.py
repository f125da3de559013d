"""Black-frame features belong to the feature space: computed once, shared by its models."""

from __future__ import annotations

import torch

from dfbench.adapters.base import Context
from dfbench.evaluate import row_generator
from dfbench.features.tiny import load_tiny
from dfbench.registry import get_model_class


class CountingTiny:
    """Counts the tiny encoder's calls on all-black frames, the real encoder still runs."""

    def __init__(self, space):
        self.calls = 0
        self.encode = space.encode
        space.encode = self

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        self.calls += int(not frames.any())
        return self.encode(frames)


def _predict(model, space, side: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 4, 3, side, side), dtype=torch.uint8, generator=g)
    features = space.encode(frames.flatten(0, 1)).reshape(2, 4, -1, space.dim)
    stamps = torch.arange(7, dtype=torch.float32).expand(2, -1) / 10
    grid = (side // space.patch_size, side // space.patch_size)
    context = Context(frames, stamps[:, :4], features, grid, [row_generator(0, f"c{r}", 0, "mid") for r in range(2)])
    return model.predict(context, stamps[:, 4:], num_samples=2).features


def test_models_on_one_feature_space_share_one_black_frame():
    space = load_tiny()
    counter = CountingTiny(space)
    first, second = (get_model_class(name)(space) for name in ("deltaworld", "deltaworld-nobom"))
    _predict(first, space)
    _predict(second, space)
    _predict(first, space)
    assert counter.calls == 1
    assert space.black_frame(64, 64) is space.black_frame(64, 64)
    # Another crop size is another frame.
    assert space.black_frame(32, 32).shape == (16, space.dim)
    assert counter.calls == 2


def test_the_black_frame_is_the_encoded_zero_frame_and_follows_the_weights():
    space = load_tiny()
    cached = space.black_frame(64, 64)
    assert cached.dtype == torch.float32
    assert torch.equal(cached, space.encode(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))[0])
    with torch.no_grad():
        space.double()  # moving or casting the weights drops what they computed
    assert space.black_frame(64, 64) is not cached
