"""Label maps resized with PIL's ``Image.resize(size, NEAREST)``.

DINO-Foresight validates its heads on labels nearest-resized to the network input
(``Downstream/transforms.py``; FACTS.md, section 11). PIL's nearest pick accumulates the
scale step in double precision, which decides some pixels, so PIL itself does the resize.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from dfbench.errors import DfbenchError


def resize_label_nearest(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """label [H, W] of values 0..255 (any integer dtype) -> [h, w] of the same dtype, PIL NEAREST."""
    if label.ndim != 2:
        raise DfbenchError(f"a label map is [H, W], got shape {tuple(label.shape)}; pass one image's labels.")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise DfbenchError(f"label size {tuple(size)} is empty; declare a positive label size in the protocol.")
    if label.size and (int(label.min()) < 0 or int(label.max()) > 255):
        raise DfbenchError(f"label values {int(label.min())}..{int(label.max())} do not fit 8 bits; resize 8-bit label maps only.")
    image = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8))
    return np.asarray(image.resize((width, height), Image.NEAREST)).astype(label.dtype)
