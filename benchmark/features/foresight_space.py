"""DINO-Foresight's released feature space: DINOv2 ViT-B/14-reg, blocks 2/5/8/11, PCA to 1152.

The backbone comes from the Hugging Face hub folder ``facebook/dinov2-with-registers-base``
(cache or a local folder) or, identically, from the ``dino_v2.*`` weights inside a
DINO-Foresight checkpoint; the PCA always comes from that checkpoint (FACTS.md, section 13).
The ``-raw`` space is the same backbone and blocks with an identity projection: its heads read
the raw concatenated features, which scores the oracle without the PCA round trip (section 11).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dfbench.errors import DfbenchError
from dfbench.features.dinov2 import DINOV2_VITB14_REG, Dinov2Weights, dinov2_from_state_dict, load_dinov2_folder, resolve_dinov2
from dfbench.features.multilayer_pca import MultiLayerPcaSpace
from dfbench.features.pca_fit import identity_projection

# dinov2_vitb14_reg as transformers configures it (FACTS.md, section 2).
VITB14_REG_CONFIG = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
    "num_register_tokens": 4,
    "layer_norm_eps": 1e-6,
}


@dataclass(frozen=True)
class MultiLayerPcaRecipe:
    """One multi-layer PCA feature space: which backbone, blocks, input size and PCA file.

    Attributes:
        name: registry name.
        blocks: 0-based blocks, in concatenation order.
        image_size: (H, W) frames are resized to.
        components: PCA size K.
        backbone: where the backbone's weights are.
        checkpoint: the DINO-Foresight file (hub ``Sta8is/DINO-Foresight``) whose PCA it uses.
        raw: the projection is the identity (the raw features; ``components`` is then the
            checkpoint's PCA size, only checked when the backbone is read from it).
    """

    name: str
    blocks: tuple[int, ...] = (2, 5, 8, 11)
    image_size: tuple[int, int] = (448, 896)
    components: int = 1152
    backbone: Dinov2Weights = DINOV2_VITB14_REG
    checkpoint: str = "dinof_highres.ckpt"
    raw: bool = False


RECIPES: dict[str, MultiLayerPcaRecipe] = {
    "dinov2-vitb14-reg-pca1152": MultiLayerPcaRecipe("dinov2-vitb14-reg-pca1152"),
    "dinov2-vitb14-reg-pca1152-lowres": MultiLayerPcaRecipe(
        "dinov2-vitb14-reg-pca1152-lowres", image_size=(224, 448), checkpoint="dinof_lowres.ckpt"
    ),
    "dinov2-vitb14-reg-raw": MultiLayerPcaRecipe("dinov2-vitb14-reg-raw", raw=True),
}


def raw_space(space: MultiLayerPcaSpace, name: str) -> MultiLayerPcaSpace:
    """The same backbone, blocks and input size with an identity projection: its PCA-DPT heads read raw features.

    ((x - 0) / 1 - 0) @ I and back is exact in float32, so nothing of the PCA round trip remains.
    """
    pca = identity_projection(space.pca.width).to(space.pca.pca_components.device)
    return MultiLayerPcaSpace(space.model, space.blocks, pca, space.image_size, name=name,
                              image_mean=space.image_mean.flatten().tolist(), image_std=space.image_std.flatten().tolist())


def load_multilayer_pca(
    name: str, path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None, checkpoint: str | None = None
) -> MultiLayerPcaSpace:
    """Build a registered multi-layer PCA feature space.

    Args:
        name: one of :data:`RECIPES`.
        path: a DINO-Foresight checkpoint file (backbone and PCA both from it), or a
            backbone model folder; ``None`` reads the Hugging Face cache.
        device: where the backbone runs.
        dtype: only fp32 is supported (the official evaluation numbers are fp32 here).
        checkpoint: the DINO-Foresight checkpoint for the PCA when ``path`` is a folder.
    """
    from dfbench.models.foresight_checkpoint import load_foresight_checkpoint, resolve_released

    if dtype not in (None, torch.float32):
        raise DfbenchError(f"feature space '{name}' runs in float32 only, got {dtype}; drop the dtype option.")
    recipe = RECIPES[name]
    width = recipe.backbone.dim * len(recipe.blocks)
    source = Path(path) if path is not None else None
    if recipe.raw and not (source is not None and source.is_file()):
        # No PCA is read: the backbone folder (or the hub cache) is all the raw space needs.
        model = load_dinov2_folder(source if source is not None else resolve_dinov2(recipe.backbone), recipe.backbone)
        space = MultiLayerPcaSpace(model, recipe.blocks, identity_projection(width), recipe.image_size, name=recipe.name)
        return space.to(device)
    if source is not None and source.is_file():
        ckpt_path = source
    else:
        ckpt_path = Path(checkpoint) if checkpoint is not None else resolve_released(recipe.checkpoint)
    ckpt = load_foresight_checkpoint(ckpt_path, feature_width=width, components=recipe.components)
    if source is not None and source.is_file():
        if not ckpt.backbone_state:
            raise DfbenchError(f"'{source}' carries no dino_v2.* backbone weights; pass the backbone folder as the path instead.")
        model = dinov2_from_state_dict(VITB14_REG_CONFIG, ckpt.backbone_state)
    else:
        model = load_dinov2_folder(source if source is not None else resolve_dinov2(recipe.backbone), recipe.backbone)
    pca = identity_projection(width) if recipe.raw else ckpt.pca
    space = MultiLayerPcaSpace(model, recipe.blocks, pca, recipe.image_size, name=recipe.name)
    return space.to(device)


def load_dinov2_vitb14_reg_pca1152(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> MultiLayerPcaSpace:
    """The released DINO-Foresight feature space at 448 x 896."""
    return load_multilayer_pca("dinov2-vitb14-reg-pca1152", path, device, dtype)


def load_dinov2_vitb14_reg_pca1152_lowres(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> MultiLayerPcaSpace:
    """The low-resolution stage's feature space at 224 x 448 (dinof_lowres.ckpt's PCA)."""
    return load_multilayer_pca("dinov2-vitb14-reg-pca1152-lowres", path, device, dtype)


def load_dinov2_vitb14_reg_raw(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> MultiLayerPcaSpace:
    """The released backbone and blocks at 448 x 896 without the PCA (the raw-feature oracle's space)."""
    return load_multilayer_pca("dinov2-vitb14-reg-raw", path, device, dtype)
