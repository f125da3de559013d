"""GFLOPs of DINO-Foresight per forecast, counted like the other models (:mod:`dfbench.flops`).

DINO-Foresight sees whole frames (448 x 896, no square crops), so a clip is one "crop"
(as for the pixel models) and ``--resolution`` does not apply. Counted, on the meta
device by ``FlopCounterMode`` while the real modules run, at 2 FLOPs per multiply-add:

* shared, once per clip: the DINOv2 ViT-B/14-reg backbone (transformers) on the C = 4
  context frames (32 x 64 patches plus CLS and 4 registers each), and the PCA projection
  of their concatenated blocks (3072 -> 1152). The official code also encodes the masked
  fifth slot's frame, whose features it never reads; a forecast does not need it, so it
  is not counted, as the black frame of DeltaWorld is not.
* per forecast step: one pass of the released predictor (``ForesightConfig.released()``:
  5 slots of 32 x 64 tokens, 12 layers of temporal and spatial attention and MLP). The
  short horizon is one pass; the mid horizon (``steps`` = 3, the default like the other
  models' Table 2 totals) is three passes of the same cost.

The heads are left out, as for every other model. ``nn.MultiheadAttention`` takes its
decomposed path on the meta device, which the counter sees in full; its fused CPU kernel
(``_native_multi_head_attention``) has no formula in torch and would count as zero, so the
predictor is always counted on the meta device. The attention share of a pass (q k^T and
attention times v, ``4 x T x (h w)^2 x C`` spatial plus ``4 x h w x T^2 x C`` temporal per
layer) is computed from the config, because on that path the counter files the input
projections under the same ``bmm`` op as the attention itself.
"""

from __future__ import annotations

from functools import cache

import torch

from dfbench.flops import FlopCount, count_flops

FAMILY = "dino-foresight"
CONTEXT_FRAMES = 4
IMAGE_SIZE = (448, 896)


def predictor_attention_flops(config) -> int:
    """FLOPs of the attention matrices of one pass (q k^T and attention x v, 2 FLOPs per multiply-add)."""
    t, (h, w), c = config.frames, config.grid, config.hidden_dim
    spatial = 4 * t * (h * w) ** 2 * c
    temporal = 4 * (h * w) * t**2 * c
    return config.layers * (spatial + temporal)


@cache
def predictor_pass(config=None) -> FlopCount:
    """One forward pass of the predictor on one clip (batch 1), meta device."""
    from dfbench.models.dino_foresight import DinoForesight, ForesightConfig

    config = config or ForesightConfig.released()
    with torch.device("meta"):
        model = DinoForesight(config).eval().requires_grad_(False)
        slots = torch.zeros(1, config.frames, *config.grid, config.pca_dim)
    total = count_flops(lambda: model(slots)).total
    return FlopCount(total=total, attention=predictor_attention_flops(config))


@cache
def backbone_and_pca(context: int, device: str = "meta") -> tuple[FlopCount, FlopCount]:
    """The DINOv2 ViT-B/14-reg backbone and the PCA projection on ``context`` frames."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    from dfbench.features.foresight_space import VITB14_REG_CONFIG
    from dfbench.features.multilayer_pca import PcaProjection

    config = Dinov2WithRegistersConfig(**VITB14_REG_CONFIG)
    config._attn_implementation = "sdpa"
    width, components = 4 * config.hidden_size, 1152
    grid = (IMAGE_SIZE[0] // config.patch_size, IMAGE_SIZE[1] // config.patch_size)
    with torch.device(device):
        backbone = Dinov2WithRegistersModel(config).eval().requires_grad_(False)
        pca = PcaProjection(*(torch.zeros(width) for _ in range(3)), torch.zeros(components, width))
        pixels = torch.zeros(context, 3, *IMAGE_SIZE)
        feats = torch.zeros(context, grid[0] * grid[1], width)
    return count_flops(lambda: backbone(pixel_values=pixels)), count_flops(lambda: pca(feats))


def foresight_component_rows(model: str, context: int, steps: int, device: str = "meta") -> list[dict]:
    """Rows of ``component_flops`` for DINO-Foresight: one clip (``crops`` 1), one sample."""
    backbone, pca = backbone_and_pca(context, "meta" if device == "meta" else str(device))
    step = predictor_pass()
    parts = [("shared", f"DINOv2 backbone ({context} frames, 448x896)", "backbone", backbone, False),
             ("shared", f"PCA projection ({context} frames)", "pca", pca, False)]
    parts += [("per sample", f"Predictor (pass {k})", f"predictor_pass{k}", step, True) for k in range(1, steps + 1)]
    return [
        {
            "model": model, "group": group, "component": label, "key": key, "repeats": 1, "crops": 1,
            "gflops": count.total / 1e9, "attention_gflops": count.attention / 1e9,
            "paper_convention_gflops": (count.total + count.attention if predictor else count.total) / 1e9,
        }
        for group, label, key, count, predictor in parts
    ]
