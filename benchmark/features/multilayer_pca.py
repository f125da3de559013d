"""Multi-layer features compressed by a PCA: DINO-Foresight's feature space, over any ViT backbone.

Frames are resized to a fixed input size (PIL-style antialiased bilinear on uint8),
normalised, run through a frozen DINOv2/DINOv3-style backbone, and the patch tokens of
several blocks (each through the final LayerNorm) are concatenated, standardised and
projected on K principal components (FACTS.md, sections 1-3). The heads read the inverse:
the concatenated layers rebuilt from the K components.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from dfbench.errors import DfbenchError
from dfbench.features.base import FeatureSpace
from dfbench.features.dinov2 import block_outputs

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The state-dict names DINO-Foresight gives the PCA tensors (dino_f.py:160-167).
PCA_KEYS = ("mean", "std", "pca_mean", "pca_components")


class PcaProjection(nn.Module):
    """Standardise, centre and project on K components; ``inverse`` is the exact transpose path.

    The operations and their order are those of the official code (standardise, then subtract
    the PCA mean, then project), which decides the last bits of every downstream number.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, pca_mean: torch.Tensor, components: torch.Tensor) -> None:
        super().__init__()
        width = components.shape[1]
        if components.dim() != 2 or any(t.shape != (width,) for t in (mean, std, pca_mean)):
            raise DfbenchError(
                f"PCA tensors do not fit together (components {tuple(components.shape)}, mean {tuple(mean.shape)}, "
                f"std {tuple(std.shape)}, pca_mean {tuple(pca_mean.shape)}); pass the four tensors of one PCA."
            )
        for name, value in zip(PCA_KEYS, (mean, std, pca_mean, components)):
            self.register_buffer(name, value.detach().float().clone())

    @property
    def components(self) -> int:
        return int(self.pca_components.shape[0])

    @property
    def width(self) -> int:
        return int(self.pca_components.shape[1])

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor]) -> PcaProjection:
        missing = [key for key in PCA_KEYS if key not in state_dict]
        if missing:
            raise DfbenchError(f"the checkpoint has no PCA tensors {missing}; pass a DINO-Foresight checkpoint (dinof_*.ckpt).")
        return cls(*(state_dict[key] for key in PCA_KEYS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features [..., width] -> PCA coordinates [..., K]."""
        return ((x - self.mean) / self.std - self.pca_mean) @ self.pca_components.T

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """PCA coordinates [..., K] -> reconstructed features [..., width]."""
        return (z @ self.pca_components + self.pca_mean) * self.std + self.mean


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 frames [B, 3, H, W] -> uint8 [B, 3, h, w], as PIL's ``Image.resize(BILINEAR)``.

    torch's antialiased bilinear on uint8 CPU tensors is PIL's fixed-point algorithm (the
    tests check it equals the official PIL output bit for bit), so no PIL round trip is needed.
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    resized = F.interpolate(frames.cpu(), size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return resized.to(frames.device)


class MultiLayerPcaSpace(FeatureSpace):
    """A frozen ViT read at several blocks, concatenated and PCA-compressed.

    ``encode`` gives the PCA coordinates [..., N, K] that the predictor forecasts;
    ``decode`` rebuilds the concatenated layers [..., N, L*E] for the heads, and
    ``split_layers`` cuts them into the L per-layer blocks the DPT head reads.

    Args:
        model: a DINOv2-with-registers or DINOv3 model from transformers; frozen here.
        blocks: 0-based blocks to read, in concatenation order (2, 5, 8, 11 for ViT-B).
        pca: the projection fitted on those concatenated features.
        image_size: (H, W) every frame is resized to before the backbone.
        name: registry name.
        image_mean: per-channel normalisation mean (RGB).
        image_std: per-channel normalisation std (RGB).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        blocks: Sequence[int],
        pca: PcaProjection,
        image_size: tuple[int, int],
        *,
        name: str,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        config = model.config
        self.model = model.eval().requires_grad_(False)
        self.blocks = tuple(int(b) for b in blocks)
        self.layer_dim = int(config.hidden_size)
        if pca.width != self.layer_dim * len(self.blocks):
            raise DfbenchError(
                f"the PCA is {pca.width} wide but {len(self.blocks)} blocks of width {self.layer_dim} give "
                f"{self.layer_dim * len(self.blocks)}; pass the PCA fitted on this backbone and these blocks."
            )
        self.pca = pca
        self.name = name
        self.patch_size = int(config.patch_size)
        self.dim = pca.components
        self.noise_std = float(getattr(config, "initializer_range", 0.02))
        self.image_size = (int(image_size[0]), int(image_size[1]))
        if self.image_size[0] % self.patch_size or self.image_size[1] % self.patch_size:
            raise DfbenchError(f"input size {self.image_size} is not a multiple of the patch size {self.patch_size}; fix the feature-space config.")
        self.frame_size = self.image_size[0]
        self.register_buffer("image_mean", torch.tensor(image_mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(image_std, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> MultiLayerPcaSpace:
        return super().train(False)

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (h, w) of every frame."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [B, 3, H, W] -> normalised float32 [B, 3, *image_size] (ToTensor, then Normalize)."""
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
            raise DfbenchError(
                f"feature space '{self.name}' takes uint8 frames [B, 3, H, W], got {frames.dtype} {tuple(frames.shape)}; pass raw RGB frames."
            )
        x = resize_frames(frames, self.image_size).to(self.image_mean.device).float() / 255
        return (x - self.image_mean) / self.image_std

    @torch.no_grad()
    def layer_features(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [..., 3, H, W] -> concatenated block features [..., N, L*E]."""
        lead = frames.shape[:-3]
        pixels = self.preprocess(frames.reshape(-1, *frames.shape[-3:]))
        feats = torch.cat(block_outputs(self.model, pixels, self.blocks), dim=-1)
        return feats.reshape(*lead, *feats.shape[-2:])

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [..., 3, H, W] -> PCA features [..., N, K], N = h*w of ``grid`` (row-major)."""
        return self.pca(self.layer_features(frames))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """PCA features [..., K] -> reconstructed concatenated block features [..., L*E]."""
        return self.pca.inverse(z)

    def split_layers(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """Concatenated features [..., L*E] -> the L per-block tensors [..., E], in block order."""
        return list(feats.split(self.layer_dim, dim=-1))
