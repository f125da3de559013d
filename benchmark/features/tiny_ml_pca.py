"""``tiny-ml-pca``: DINO-Foresight's feature-space recipe over the embedded tiny backbone.

The tiny DINOv3 (patch 8, width 96, 4 blocks) is read at all four blocks, each through its
final LayerNorm, concatenated to 384 channels, standardised and projected on 64 principal
components fitted on the synthetic world's training split. Frames are resized whole (no
square crops, as DINO-Foresight's protocol) to 64 x 128, close to the synthetic frames'
72 x 142, giving an 8 x 16 token grid. ``tiny-ml-pca-lowres`` is the same space at 32 x 64
for the low-resolution training stage; like the released pair it shares one PCA
(the official low-resolution stage also uses the 448 x 896 PCA).

The PCA ships as ``dfbench/assets/tiny-ml-pca.safetensors`` and is refitted with::

    dfbench train pca --feature-space tiny-ml-pca --dataset synthetic \\
        --out benchmark/assets/tiny-ml-pca.safetensors
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from dfbench.errors import DfbenchError
from dfbench.features.multilayer_pca import PCA_KEYS, MultiLayerPcaSpace, PcaProjection
from dfbench.features.pca_fit import PcaFit, fit_pca, identity_projection
from dfbench.features.tiny import TINY_FOLDER

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FIT_COMMAND = (
    "dfbench train pca --feature-space tiny-ml-pca --dataset synthetic --out benchmark/assets/tiny-ml-pca.safetensors"
)


@dataclass(frozen=True)
class TinyPcaRecipe:
    """A multi-layer PCA space over the embedded tiny backbone, and how its PCA is fitted.

    Attributes:
        name: registry name.
        blocks: 0-based blocks, in concatenation order.
        image_size: (H, W) every frame is resized to.
        components: K.
        asset: the PCA file's name in ``dfbench/assets``.
        fit_clips: synthetic training clips the PCA sees.
        fit_frames: which frames of each clip (one frame per snippet is the official choice;
            three spread frames give more varied scenes per rendered clip).
    """

    name: str
    blocks: tuple[int, ...] = (0, 1, 2, 3)
    image_size: tuple[int, int] = (64, 128)
    components: int = 64
    asset: str = "tiny-ml-pca.safetensors"
    fit_clips: int = 512
    fit_frames: tuple[int, ...] = (0, 3, 6)


TINY_RECIPES: dict[str, TinyPcaRecipe] = {
    "tiny-ml-pca": TinyPcaRecipe("tiny-ml-pca"),
    "tiny-ml-pca-lowres": TinyPcaRecipe("tiny-ml-pca-lowres", image_size=(32, 64)),
}


def tiny_recipe(name: str) -> TinyPcaRecipe:
    if name not in TINY_RECIPES:
        raise DfbenchError(f"no PCA recipe for feature space '{name}'; fit one of {sorted(TINY_RECIPES)} (the released PCA comes from its checkpoint).")
    return TINY_RECIPES[name]


def tiny_backbone(path: str | Path | None = None):
    folder = Path(path) if path is not None else TINY_FOLDER
    if not folder.is_dir():
        raise DfbenchError(f"tiny backbone folder '{folder}' not found; pass a folder with config.json and model.safetensors.")
    return AutoModel.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32, use_safetensors=True)


def read_pca(path: str | Path, width: int, components: int) -> PcaProjection:
    """The four PCA tensors of a safetensors file, checked against the space's width and K."""
    path = Path(path)
    if not path.is_file():
        raise DfbenchError(f"PCA file '{path}' not found; fit it with: {FIT_COMMAND}")
    projection = PcaProjection.from_state_dict(load_file(str(path)))
    if projection.width != width or projection.components != components:
        raise DfbenchError(
            f"PCA '{path}' is {projection.components} x {projection.width}, this space needs {components} x {width}; refit it with: {FIT_COMMAND}"
        )
    return projection


def build_space(recipe: TinyPcaRecipe, pca: PcaProjection | None = None, backbone: str | Path | None = None) -> MultiLayerPcaSpace:
    """The space of ``recipe`` with ``pca`` (default: its shipped asset; identity before a fit)."""
    model = tiny_backbone(backbone)
    width = int(model.config.hidden_size) * len(recipe.blocks)
    if pca is None:
        pca = read_pca(ASSETS / recipe.asset, width, recipe.components)
    return MultiLayerPcaSpace(model, recipe.blocks, pca, recipe.image_size, name=recipe.name)


def load_tiny_ml_pca(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> MultiLayerPcaSpace:
    """The embedded tiny multi-layer PCA space (``path``: another tiny backbone folder)."""
    return _load("tiny-ml-pca", path, device, dtype)


def load_tiny_ml_pca_lowres(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> MultiLayerPcaSpace:
    """The same space at half the input size, for the low-resolution training stage."""
    return _load("tiny-ml-pca-lowres", path, device, dtype)


def _load(name: str, path: str | None, device: str, dtype: torch.dtype | None) -> MultiLayerPcaSpace:
    if dtype not in (None, torch.float32):
        raise DfbenchError(f"feature space '{name}' runs in float32 only, got {dtype}; drop the dtype option.")
    return build_space(TINY_RECIPES[name], backbone=path).to(device)


def synthetic_fit_frames(recipe: TinyPcaRecipe, split: str = "train", clips: int | None = None) -> torch.Tensor:
    """uint8 frames [N, 3, H, W] of the synthetic clips the PCA is fitted on, at native size."""
    from dfbench.data.synthetic import generate

    count = recipe.fit_clips if clips is None else clips
    last = max(recipe.fit_frames) + 1
    frames = [generate(split, index, last).frames[list(recipe.fit_frames)] for index in range(count)]
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(frames).transpose(0, 3, 1, 2)))


def layer_tokens(space: MultiLayerPcaSpace, frames: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Concatenated block features of every token of ``frames``: float32 [N*h*w, L*E]."""
    parts = [space.layer_features(chunk).flatten(0, 1) for chunk in frames.split(batch)]
    return torch.cat(parts)


def fit_tiny_pca(name: str, dataset: str = "synthetic", clips: int | None = None, components: int | None = None) -> PcaFit:
    """Fits the PCA of a tiny space on its data set's training frames (the official ``pca.py`` recipe)."""
    if dataset != "synthetic":
        raise DfbenchError(f"the tiny PCA is fitted on the synthetic world, not '{dataset}'; pass --dataset synthetic.")
    recipe = tiny_recipe(name)
    model = tiny_backbone()
    width = int(model.config.hidden_size) * len(recipe.blocks)
    raw = MultiLayerPcaSpace(model, recipe.blocks, identity_projection(width), recipe.image_size, name=recipe.name)
    features = layer_tokens(raw, synthetic_fit_frames(recipe, clips=clips))
    return fit_pca(features, components or recipe.components)


def save_pca(fit: PcaFit, path: str | Path, name: str, metadata: dict | None = None) -> Path:
    """Writes the four tensors (the names PcaProjection.from_state_dict reads) and what produced them."""
    from dfbench.checkpoints import save_safetensors

    recipe = tiny_recipe(name)
    tensors = {key: getattr(fit.projection, key) for key in PCA_KEYS}
    info = {
        "feature_space": recipe.name,
        "blocks": list(recipe.blocks),
        "image_size": list(recipe.image_size),
        "components": fit.projection.components,
        "explained_variance": round(fit.explained_total, 6),
        "tokens": fit.samples,
        "command": FIT_COMMAND,
        **(metadata or {}),
    }
    return save_safetensors(tensors, path, info)
