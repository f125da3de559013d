"""Linear segmentation and depth heads, state-dict compatible with the released heads.

Keys: ``bn.{weight,bias,running_mean,running_var,num_batches_tracked}`` and
``head.{weight,bias}`` (a 1x1 convolution), as in the released ``seg-head-*`` and
``depth-head-kitti`` files.
"""

from __future__ import annotations

import torch
from torch import nn


def features_to_map(features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Token features [..., N, D] -> feature maps [M, D, h, w] (raster order, row-major)."""
    height, width = grid
    flat = features.reshape(-1, features.shape[-2], features.shape[-1])
    return flat.transpose(1, 2).reshape(flat.shape[0], flat.shape[2], height, width)


class SegHead(nn.Module):
    """BatchNorm + 1x1 linear to class logits (19 Cityscapes, 124 VSPW classes)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(dim)
        self.head = nn.Conv2d(dim, num_classes, kernel_size=1)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """[M, D, h, w] -> logits [M, C, h, w] at feature resolution."""
        return self.head(self.bn(feature_map))


class DepthHead(nn.Module):
    """DINOv3-style depth head: BatchNorm + 1x1 linear to bins, expectation over bins.

    Logits are rectified and shifted by 0.1, normalised into a distribution over
    ``num_bins`` uniformly spaced depths in [min_depth, max_depth], and the output is
    the expected depth.
    """

    def __init__(self, dim: int, min_depth: float = 1e-3, max_depth: float = 80.0, num_bins: int = 256) -> None:
        super().__init__()
        self.min_depth, self.max_depth, self.num_bins = min_depth, max_depth, num_bins
        self.bn = nn.BatchNorm2d(dim)
        self.head = nn.Conv2d(dim, num_bins, kernel_size=1)
        self.register_buffer("bins", torch.linspace(min_depth, max_depth, num_bins), persistent=False)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """[M, D, h, w] -> depth in metres [M, 1, h, w] at feature resolution."""
        weights = torch.relu(self.head(self.bn(feature_map))) + 0.1
        weights = weights / weights.sum(dim=1, keepdim=True)
        return (weights * self.bins.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
