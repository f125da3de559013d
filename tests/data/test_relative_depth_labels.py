"""Relative-disparity pseudo-labels: the official per-image min-max normalisation."""

import numpy as np
import torch

from dfbench.data.relative_depth_labels import relative_disparity_uint8


def test_matches_the_official_formula_on_random_depth():
    rng = np.random.default_rng(0)
    depth = rng.uniform(2.0, 80.0, size=(3, 9, 11)).astype(np.float32)
    depth[:, 0, :4] = 0.0  # unlabelled pixels
    out = relative_disparity_uint8(torch.from_numpy(depth)).numpy()
    for image, got in zip(depth, out):
        valid = image > 0
        disparity = np.where(valid, 1.0 / np.where(valid, image, 1.0), 0.0).astype(np.float32)
        low, high = disparity[valid].min(), disparity[valid].max()
        expected = np.where(valid, (disparity - low) / (high - low) * 255.0, 0.0).astype(np.uint8)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # float32 rounding at a level edge
        assert got[~valid].max() == 0 and got[valid].max() == 255
        assert got[image == image[valid].max()].max() == 0  # the farthest pixel becomes invalid, as officially


def test_nearer_is_larger_and_degenerate_images_are_invalid():
    depth = torch.tensor([[1.0, 2.0], [4.0, 8.0]])
    out = relative_disparity_uint8(depth)
    assert out.dtype == torch.uint8 and out[0, 0] == 255 and out[1, 1] == 0
    assert out[0, 1] > out[1, 0] > 0
    assert relative_disparity_uint8(torch.full((2, 2), 5.0)).max() == 0
    assert relative_disparity_uint8(torch.zeros(2, 2)).max() == 0
