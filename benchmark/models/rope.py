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
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding, apply_rotary_pos_emb


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


def rotate_patches(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' DINOv3 ``apply_rotary_pos_emb`` for one tensor, bit for bit, with fewer copies.

    ``x`` [B, heads, L, d]: its last ``cos.shape[-2]`` tokens are rotated (rotate-half layout),
    the prefix before them is kept. The library builds ``rotate_half`` with a negation and a
    concatenation, then concatenates prefix and patches: four full-size copies per call. Here
    each half is written into one output in place. Every element gets the same operations in
    the same order (``x * cos + (-x2) * sin``; negation is exact), so the bits are the same;
    the element-wise work is most of what a tokenizer block spends outside its matrix products.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, cos, sin)):
        return apply_rotary_pos_emb(x, x, cos, sin)[0]  # training: out= writes cannot be differentiated
    patches, half = cos.shape[-2], x.shape[-1] // 2
    prefix = x.shape[-2] - patches
    out = torch.empty(x.shape, dtype=torch.result_type(x, cos), device=x.device)
    out[..., :prefix, :] = x[..., :prefix, :]
    rotated, source = out[..., prefix:, :], x[..., prefix:, :]
    torch.mul(source, cos, out=rotated)
    first = torch.mul(source[..., half:], sin[..., :half]).neg_()
    rotated[..., :half] += first
    rotated[..., half:] += source[..., :half] * sin[..., half:]
    return out


def axis_inv_freq(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Inverse frequencies of one predictor RoPE axis block: 100 down to 0.01, log-spaced."""
    if size % 2:
        raise ValueError(f"a RoPE axis block must have an even size, got {size}")
    return 1.0 / (10.0 ** torch.linspace(-2.0, 2.0, size // 2, dtype=torch.float32, device=device))


# Per rotated axis block, the (cos, sin) tables [B, 1, L, size/2] of L positions.
AxisTables = list[tuple[torch.Tensor, torch.Tensor]]


def axis_tables(
    positions: torch.Tensor, axis_sizes: Sequence[int], dtype: torch.dtype = torch.float32, rows: int | None = None
) -> AxisTables:
    """The predictor's RoPE tables for real positions, computed once per token.

    Every head and every block rotates with the same tables, so callers compute them
    once per set of tokens and pass them to :func:`apply_axis_tables`.

    Args:
        positions: [B, L, num_axes] real positions, one column per axis block.
        axis_sizes: size of each rotated block of the head dimension, in order.
        dtype: dtype of the tables (:func:`apply_axis_tables` casts them to the rotated
            tensor's, so fp32 tables also serve bf16 tensors under autocast).
        rows: batch the tables are for, a multiple of B: row b of ``positions`` serves
            rows b*r .. b*r + r-1 (the samples of item b), r = rows / B.

    Returns:
        One (cos, sin) pair [rows, 1, L, size/2] per axis block.
    """
    if positions.shape[-1] != len(axis_sizes):
        raise ValueError(f"got {positions.shape[-1]} position axes for {len(axis_sizes)} RoPE blocks")
    repeats = 1 if rows is None else rows // positions.shape[0]
    if repeats * positions.shape[0] != (rows or positions.shape[0]):
        raise ValueError(f"{rows} rows are not a multiple of the {positions.shape[0]} rows of positions")
    tables = []
    for axis, size in enumerate(axis_sizes):
        inv = axis_inv_freq(size, positions.device)
        # (2*pi*pos) * inv in this order, in fp32, as the reference computes the angle.
        angle = (2 * math.pi * positions[..., axis].float())[..., None] * inv  # [B, L, half]
        cos, sin = angle.cos()[:, None].to(dtype), angle.sin()[:, None].to(dtype)
        if repeats > 1:
            cos, sin = cos.repeat_interleave(repeats, dim=0), sin.repeat_interleave(repeats, dim=0)
        tables.append((cos, sin))
    return tables


def apply_axis_tables(
    x: torch.Tensor, tables: AxisTables, axis_sizes: Sequence[int], unrotated_size: int
) -> torch.Tensor:
    """Rotates ``x`` [B, heads, L, head_dim] with tables from :func:`axis_tables`.

    The tables are cast to ``x.dtype`` here, as the reference casts its fp32 angles.
    """
    head_dim = x.shape[-1]
    if sum(axis_sizes) + unrotated_size != head_dim:
        raise ValueError(f"RoPE sizes {tuple(axis_sizes)} + {unrotated_size} must sum to the head size {head_dim}")
    parts, start = [], 0
    for (cos, sin), size in zip(tables, axis_sizes):
        half = size // 2
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        x1, x2 = x[..., start : start + half], x[..., start + half : start + size]
        parts += [x1 * cos - x2 * sin, x1 * sin + x2 * cos]
        start += size
    parts.append(x[..., start:])
    return torch.cat(parts, dim=-1)


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
    return apply_axis_tables(x, axis_tables(positions, axis_sizes, x.dtype), axis_sizes, unrotated_size)


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
