"""Rotary position embeddings of the tokenizer (2-D, DINOv3's) and of the predictor (multi-axis).

The tokenizer uses DINOv3's own 2-D RoPE over patch centres, taken from transformers so
that the tables match the backbone's. The predictor's RoPE has no library equivalent: it
rotates consecutive blocks of the head dimension by real-valued positions (timestamps in
seconds, grid coordinates), pairs dimension ``i`` with ``i + half`` inside each block and
leaves a few trailing dimensions unrotated, so it is written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding


def patch_rope_tables(
    rope_embeddings: DINOv3ViTRopePositionEmbedding, grid: tuple[int, int], dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """DINOv3's 2-D RoPE tables (cos, sin), each [h*w, head_dim], for a grid of patches.

    Theta 100, patch centres, rotate-half layout. In training mode the module applies
    DINOv3's log-uniform coordinate rescale, as the tokenizer was trained with it; in eval
    mode the tables equal the backbone's. Angles are computed in fp32; the tables are
    returned in ``dtype`` (that of the tokens they rotate).
    """
    h, w = grid
    patch = rope_embeddings.config.patch_size
    # The library computes tables from an image's shape only; an empty tensor of that
    # shape avoids materialising pixels we do not have (we start from features).
    shape_only = torch.empty(1, 0, h * patch, w * patch, device=rope_embeddings.inv_freq.device, dtype=dtype)
    return rope_embeddings(shape_only)


def axis_inv_freq(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Inverse frequencies of one predictor RoPE axis block: 100 down to 0.01, log-spaced."""
    if size % 2:
        raise ValueError(f"a RoPE axis block must have an even size, got {size}")
    return 1.0 / (10.0 ** torch.linspace(-2.0, 2.0, size // 2, dtype=torch.float32, device=device))


def rotate_axes(
    x: torch.Tensor, positions: torch.Tensor, axis_sizes: Sequence[int], unrotated_size: int
) -> torch.Tensor:
    """Applies the predictor's multi-axis RoPE.

    Args:
        x: [B, heads, L, head_dim] queries or keys.
        positions: [B, L, num_axes] real positions, one column per axis block.
        axis_sizes: size of each rotated block of the head dimension, in order.
        unrotated_size: trailing dimensions left untouched.

    Returns:
        The rotated tensor, same shape as ``x``.
    """
    head_dim = x.shape[-1]
    if sum(axis_sizes) + unrotated_size != head_dim:
        raise ValueError(f"RoPE sizes {tuple(axis_sizes)} + {unrotated_size} must sum to the head size {head_dim}")
    if positions.shape[-1] != len(axis_sizes):
        raise ValueError(f"got {positions.shape[-1]} position axes for {len(axis_sizes)} RoPE blocks")
    parts, start = [], 0
    for axis, size in enumerate(axis_sizes):
        half = size // 2
        inv = axis_inv_freq(size, x.device)
        # (2*pi*pos) * inv in this order, in fp32, as the reference computes the angle.
        angle = (2 * math.pi * positions[..., axis].float())[..., None] * inv  # [B, L, half]
        cos = angle.cos()[:, None].to(x.dtype)
        sin = angle.sin()[:, None].to(x.dtype)
        x1, x2 = x[..., start : start + half], x[..., start + half : start + size]
        parts += [x1 * cos - x2 * sin, x1 * sin + x2 * cos]
        start += size
    parts.append(x[..., start:])
    return torch.cat(parts, dim=-1)


def grid_coordinates(
    grid: tuple[int, int], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """DINO-world's (w, h) token coordinates, each [h*w], row-major.

    ``linspace(-1, 1)`` includes the end points, unlike DINOv3's patch centres.
    """
    h, w = grid
    rows = torch.linspace(-1.0, 1.0, h, dtype=torch.float32, device=device)
    cols = torch.linspace(-1.0, 1.0, w, dtype=torch.float32, device=device)
    hh, ww = torch.meshgrid(rows, cols, indexing="ij")
    return ww.flatten(), hh.flatten()
