"""Labels resized as PIL's ``Image.resize(size, NEAREST)`` does, without PIL.

DINO-Foresight validates its heads on labels nearest-resized to the network input
(``Downstream/transforms.py``; FACTS.md, section 11). PIL picks source pixel
``int(a/2 + i*a)`` with ``a = in/out``, summing ``a`` step by step in double precision;
the sum's rounding decides some pixels, so it is repeated here, not written in closed form.
"""

from __future__ import annotations

import numpy as np

from dfbench.errors import DfbenchError


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Source index of every output pixel along one axis, as PIL's nearest affine scale accumulates it."""
    step = size_in / size_out
    position = step * 0.5
    out = np.empty(size_out, dtype=np.int64)
    for i in range(size_out):
        out[i] = min(int(position), size_in - 1)
        position += step
    return out


def resize_label_nearest(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """label [H, W] (any integer dtype) -> [h, w] of the same dtype, PIL NEAREST."""
    if label.ndim != 2:
        raise DfbenchError(f"a label map is [H, W], got shape {tuple(label.shape)}; pass one image's labels.")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise DfbenchError(f"label size {size} is empty; declare a positive label size in the protocol.")
    rows = nearest_indices(label.shape[0], height)
    cols = nearest_indices(label.shape[1], width)
    return np.ascontiguousarray(label[rows][:, cols])
