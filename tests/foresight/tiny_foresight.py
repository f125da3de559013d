"""A tiny DINO-Foresight built in the tests: a multi-layer PCA space over the embedded backbone,
random predictor weights and DPT heads, each saved as the real files ``dfbench run`` reads.

The feature space is registered in-process as ``test-ml-pca`` (the shipped tiny space is
another name), so the real CLI, called in-process, can evaluate in it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from safetensors.torch import save_file

from dfbench.features.multilayer_pca import MultiLayerPcaSpace, PcaProjection
from dfbench.features.tiny import TINY_FOLDER
from dfbench.heads.dpt import DPTConfig, DPTHead
from dfbench.heads.linear import SegHead
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig
from dfbench.models.foresight_weights import save_foresight_safetensors

SPACE = "test-ml-pca"
IMAGE_SIZE = (32, 64)  # a 4 x 8 token grid at the tiny backbone's patch 8
BLOCKS = (0, 1, 2, 3)
COMPONENTS = 24


@functools.cache
def backbone():
    from transformers import AutoModel

    return AutoModel.from_pretrained(TINY_FOLDER, attn_implementation="sdpa", dtype=torch.float32, use_safetensors=True)


def pca(width: int, components: int = COMPONENTS, seed: int = 0) -> PcaProjection:
    """A seeded projection on orthonormal components (the harness needs no fitted one)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(width, components, generator=g))
    return PcaProjection(torch.randn(width, generator=g) * 0.1, torch.rand(width, generator=g) + 0.5,
                         torch.randn(width, generator=g) * 1e-3, basis.T.contiguous())


def load_space(path: str | None = None, device: str = "cpu", dtype=None) -> MultiLayerPcaSpace:
    """The ``test-ml-pca`` feature space (a feature-space loader: path and dtype are not used)."""
    model = backbone()
    width = int(model.config.hidden_size) * len(BLOCKS)
    return MultiLayerPcaSpace(model, BLOCKS, pca(width), IMAGE_SIZE, name=SPACE).to(device)


def register_space() -> None:
    from dfbench.registry import FEATURE_SPACES

    if SPACE not in FEATURE_SPACES.names():
        FEATURE_SPACES.register(SPACE, load_space)


def predictor(grid: tuple[int, int], components: int = COMPONENTS, seed: int = 0) -> DinoForesight:
    torch.manual_seed(seed)
    net = DinoForesight(ForesightConfig(pca_dim=components, hidden_dim=24, layers=1, heads=2, mlp_dim=48, frames=5, grid=grid))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return net.eval()


def save_predictor(path: Path, space: MultiLayerPcaSpace, projection: PcaProjection | None = None) -> Path:
    return save_foresight_safetensors(path, predictor(space.grid, space.dim), projection or space.pca)


def save_dpt_head(path: Path, in_channels: int, num_classes: int, seed: int = 0) -> Path:
    """A random DPT head at the tasks' default size, saved as safetensors (BatchNorm statistics included)."""
    torch.manual_seed(seed)
    head = DPTHead(DPTConfig(num_classes=num_classes, in_channels=in_channels)).eval()
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path))
    return path


def save_linear_head(path: Path, dim: int, num_classes: int, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    head = SegHead(dim, num_classes).eval()
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path))
    return path
