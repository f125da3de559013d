"""The feature-space contract: a frozen vision foundation model and its preprocessing."""

from __future__ import annotations

import abc

import torch
from torch import nn


class FeatureSpace(nn.Module, abc.ABC):
    """Frozen image encoder whose patch features are what world models predict.

    Attributes:
        name: registry name, e.g. "dinov3-vitb16" or "tiny".
        patch_size: pixels per patch side.
        dim: feature width D.
        noise_std: the backbone config's ``initializer_range``; DeltaWorld draws its
            noise queries with this standard deviation.
        frame_size: the protocol's short side (512 for the paper, smaller for tiny).
    """

    name: str
    patch_size: int
    dim: int
    noise_std: float
    frame_size: int

    @abc.abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [..., 3, H, W] -> patch features [..., N, D], N = (H/p)*(W/p).

        CLS and register tokens are dropped; tokens are in row-major raster order.
        """

    def black_frame(self, height: int, width: int) -> torch.Tensor:
        """Features [N, D] of an all-zero uint8 frame (DeltaWorld's first context), as fp32.

        Computed once per frame size, device and autocast dtype and shared by every model
        on this feature space (the encoder is frozen). Callers must not modify the result.
        """
        device = next(self.parameters()).device
        autocast = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
        key = (height, width, device, autocast)
        cache = self.__dict__.setdefault("_black_frames", {})
        if key not in cache:
            zeros = torch.zeros(1, 3, height, width, dtype=torch.uint8, device=device)
            with torch.no_grad():
                cache[key] = self.encode(zeros)[0].float()
        return cache[key]

    def _apply(self, fn, *args, **kwargs):
        # .to(), .half() and friends may change the weights the cached features came from.
        self.__dict__.pop("_black_frames", None)
        return super()._apply(fn, *args, **kwargs)
