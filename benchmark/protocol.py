"""The evaluation protocol of the reference: resize, square crops, label halves, windows.

Every function here mirrors one step of the reference evaluation exactly (see
ARCHITECTURE_FACTS.md, section 7); the comments name the quirks that matter for
bit-compatible numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dfbench.data.base import DEPTH_INVALID, SEG_IGNORE


def resize_sizes(height: int, width: int, frame_size: int = 512, max_aspect: float = 2.0) -> tuple[int, int]:
    """Target (height, width): the short side becomes ``frame_size``, each side capped.

    The cap is ``frame_size * max_aspect`` per side and uses Python's round, so a
    KITTI frame after the KB crop (352x1216) is squashed to 512x1024.
    """
    scale = frame_size / min(height, width)
    cap = int(frame_size * max_aspect)
    return min(round(height * scale), cap), min(round(width * scale), cap)


def resize_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 HxWx3 -> uint8 resized with cv2 bilinear, as the reference loader does."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_frames(frames: np.ndarray | torch.Tensor, frame_size: int, max_aspect: float = 2.0) -> torch.Tensor:
    """Frames [T, H, W, 3] uint8 (numpy or tensor) -> uint8 tensor [T, 3, H', W'] per protocol."""
    frames = np.asarray(frames)
    size = resize_sizes(frames.shape[1], frames.shape[2], frame_size, max_aspect)
    out = np.stack([resize_frame(np.ascontiguousarray(f), size) for f in frames])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
