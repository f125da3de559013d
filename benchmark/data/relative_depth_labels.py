"""Relative-depth pseudo-labels in DINO-Foresight's 8-bit format, made from metric depth.

DINO-Foresight's Cityscapes depth targets are Depth-Anything-V2 relative disparity,
min-max normalised per image to 0..255 and truncated to uint8, with 0 (the farthest
pixels) invalid (FACTS.md, section 1). Data sets that carry metric depth (the synthetic
world, KITTI) get their targets under that protocol through the same normalisation of
the true disparity 1 / depth, so the relative-depth task reads one format everywhere.
"""

from __future__ import annotations

import torch

INVALID_METRIC_DEPTH = 0.0  # dfbench's metric-depth ignore value (metres)


def relative_disparity_uint8(depth: torch.Tensor) -> torch.Tensor:
    """Metric depth [..., H, W] (0 = invalid) -> uint8 relative disparity per image (0 = invalid).

    Each image's valid disparities are min-max normalised to 0..255 and truncated, as the
    official preprocessing does; an image with one distinct valid depth (or none) is all 0.
    """
    depth = depth.float()
    valid = depth > INVALID_METRIC_DEPTH
    disparity = torch.where(valid, 1.0 / depth.clamp_min(1e-12), torch.zeros_like(depth))
    flat_valid = valid.flatten(-2)
    flat = disparity.flatten(-2)
    inf = torch.tensor(float("inf"))
    low = torch.where(flat_valid, flat, inf).amin(-1, keepdim=True)
    high = torch.where(flat_valid, flat, -inf).amax(-1, keepdim=True)
    span = (high - low).unsqueeze(-1)
    scaled = (disparity - low.unsqueeze(-1)) / torch.where(span > 0, span, torch.ones_like(span)) * 255.0
    scaled = torch.where(valid & (span > 0), scaled, torch.zeros_like(scaled))
    return scaled.to(torch.uint8)  # truncation, as numpy's astype(uint8) in the official script
