"""The embedded ``tiny`` feature space: a small DINOv3 ViT whose weights ship with dfbench.

It runs everything offline on a laptop CPU: patch 8, width 96, 4 layers, 4 registers,
fed 64-pixel crops (an 8x8 patch grid). The weights in ``dfbench/assets/tiny-dinov3`` are
made by ``scripts/make_tiny_feature_space.py`` and load through the same transformers code
path as the released DINOv3 backbones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dfbench.features.dinov3 import Dinov3FeatureSpace

TINY_NAME = "tiny"
# The protocol's short side for tiny: 64-pixel square crops give an 8x8 grid at patch 8.
TINY_FRAME_SIZE = 64
TINY_FOLDER = Path(__file__).resolve().parents[1] / "assets" / "tiny-dinov3"


def load_tiny(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> Dinov3FeatureSpace:
    """Load the tiny feature space from the package (or from ``path``, a folder of the same layout).

    Args:
        path: a model folder to use instead of the embedded one.
        device: where the model runs.
        dtype: ``torch.bfloat16`` for bf16 autocast on CUDA; fp32 by default.
    """
    folder = Path(path) if path is not None else TINY_FOLDER
    return Dinov3FeatureSpace.from_pretrained(folder, name=TINY_NAME, frame_size=TINY_FRAME_SIZE, device=device, dtype=dtype)
