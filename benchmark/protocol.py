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
    # numpy's transpose copy is several times faster here than torch's permute().contiguous()
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))


def is_wide(height: int, width: int) -> bool | None:
    """True for landscape, False for portrait, None for square frames."""
    if height == width:
        return None
    return width > height


def crops_overlap(height: int, width: int) -> bool:
    """Whether the two square crops share pixels; square frames are not cropped at all.

    The reference compares long/short with 2.0, so Cityscapes and KITTI (exactly 2:1
    after the resize cap) do not overlap, while most VSPW frames do.
    """
    if height == width:
        return False
    return max(height, width) / min(height, width) < 2.0


def square_crops(frames: torch.Tensor) -> torch.Tensor:
    """Frames [..., H, W] -> crops [R, ..., S, S] with S the short side.

    R = 2 (top-left, then bottom-right) for non-square frames and R = 1 for square ones.
    """
    height, width = frames.shape[-2:]
    side = min(height, width)
    if height == width:
        return frames.unsqueeze(0)
    first = frames[..., :side, :side]
    second = frames[..., height - side :, width - side :]
    return torch.stack([first, second])


def crop_views(frames: torch.Tensor, mode: str = "square") -> torch.Tensor:
    """Frames [..., H, W] -> [R, ..., h, w]: the square crops, or (mode "none") the whole frames as R = 1."""
    return frames.unsqueeze(0) if mode == "none" else square_crops(frames)


def label_views(labels: torch.Tensor, frame_height: int, frame_width: int, fill: float, mode: str = "square") -> torch.Tensor:
    """Labels [..., h, w] -> [R, ...] matching :func:`crop_views`: halves, or the whole labels."""
    return labels.unsqueeze(0) if mode == "none" else label_halves(labels, frame_height, frame_width, fill)


def token_grid(feature_space, frames: torch.Tensor) -> tuple[int, int]:
    """(h, w) tokens of one crop view [..., H, W]: the feature space's own grid when it resizes frames."""
    grid = getattr(feature_space, "grid", None)
    if isinstance(grid, tuple):
        return grid
    return frames.shape[-2] // feature_space.patch_size, frames.shape[-1] // feature_space.patch_size


def label_halves(labels: torch.Tensor, frame_height: int, frame_width: int, fill: float) -> torch.Tensor:
    """Labels [..., h, w] -> halves [R, ..., h', w'] matching :func:`square_crops`.

    Non-square frames cut the labels at ``w // 2`` (``h // 2`` for portrait frames) into
    two non-overlapping halves; when they differ by one, the first half is padded at
    its far side with ``fill``, the task's ignore value, so both have the same size.
    """
    wide = is_wide(frame_height, frame_width)
    if wide is None:
        return labels.unsqueeze(0)
    dim = -1 if wide else -2
    size = labels.shape[dim]
    mid = size // 2
    first, second = labels.narrow(dim, 0, mid), labels.narrow(dim, mid, size - mid)
    pad = second.shape[dim] - first.shape[dim]
    if pad:
        pad_spec = (0, pad) if wide else (0, 0, 0, pad)
        first = F.pad(first, pad_spec, value=fill)
    return torch.stack([first, second])


def align_to_labels(
    outputs: torch.Tensor, crop_index: int, label_size: tuple[int, int], frame_height: int, frame_width: int
) -> torch.Tensor:
    """Upsamples head outputs [M, C, h, w] of one crop to its label half [M, C, lh, lw].

    Overlapping crops are first upsampled to a square of the label half's long side and
    then cut: the first crop keeps the top-left corner, the second the far columns
    (wide) or rows (tall), so each output pixel lands on the label it was predicted for.
    """
    lh, lw = label_size
    if not crops_overlap(frame_height, frame_width):
        return F.interpolate(outputs, size=(lh, lw), mode="bilinear", align_corners=False)
    side = max(lh, lw)
    square = F.interpolate(outputs, size=(side, side), mode="bilinear", align_corners=False)
    if crop_index == 0:
        return square[..., :lh, :lw]
    if is_wide(frame_height, frame_width):
        return square[..., :lh, side - lw :]
    return square[..., side - lh :, :lw]


@dataclass(frozen=True)
class Window:
    """One (context, horizon) slice of a clip, as the reference slices it."""

    horizon_name: str
    horizon: int
    context: tuple[int, ...]
    targets: tuple[int, ...]


def windows(clip_length: int, context_length: int, horizons: dict[str, int]) -> list[Window]:
    """Windows ending at the clip's last frame; timestamps keep the clip's origin.

    With 7 frames, context 4: short (1 step) uses context 2..5 and target 6; mid
    (3 steps) uses context 0..3 and targets 4, 5, 6.
    """
    out = []
    for name, horizon in horizons.items():
        start = clip_length - context_length - horizon
        if start < 0:
            continue
        ctx = tuple(range(start, start + context_length))
        out.append(Window(name, horizon, ctx, tuple(range(ctx[-1] + 1, clip_length))))
    return out
