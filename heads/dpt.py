"""The DPT head DINO-Foresight decodes (inverse-PCA) multi-layer features with.

Four per-layer token maps are projected, brought to strides 1/4, 1/2, 1 and 2 of the
token grid, fused coarse-to-fine by residual refinement blocks, and classified at 8x the
grid (FACTS.md, section 8). Module names follow the released head checkpoints
(``head_segm_pca1152.ckpt``, ``head_depth_pca1152.ckpt``) without their ``head.`` prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dfbench.errors import DfbenchError


@dataclass(frozen=True)
class DPTConfig:
    """Sizes of a DPT head; the defaults are the released ones at 19 classes."""

    num_classes: int = 19
    in_channels: int = 768
    features: int = 256
    out_channels: tuple[int, int, int, int] = (128, 256, 512, 512)
    use_bn: bool = True


class ResidualConvUnit(nn.Module):
    """``x + BN(conv(ReLU(BN(conv(ReLU(x))))))``; the input is left unmodified."""

    def __init__(self, features: int, use_bn: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(features) if use_bn else nn.Identity()
        self.bn2 = nn.BatchNorm2d(features) if use_bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv1(F.relu(x)))
        y = self.bn2(self.conv2(F.relu(y)))
        return y + x


class FusionBlock(nn.Module):
    """Adds the refined skip input, refines, upsamples (bilinear, align_corners=True), projects."""

    def __init__(self, features: int, use_bn: bool) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features, use_bn)  # unused by the coarsest block, as released
        self.resConfUnit2 = ResidualConvUnit(features, use_bn)
        self.out_conv = nn.Conv2d(features, features, 1, bias=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size: Sequence[int] | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    def __init__(self, config: DPTConfig) -> None:
        super().__init__()
        f = config.features
        for i, channels in enumerate(config.out_channels, start=1):
            setattr(self, f"layer{i}_rn", nn.Conv2d(channels, f, 3, padding=1, bias=False))
            setattr(self, f"refinenet{i}", FusionBlock(f, config.use_bn))
        # This BatchNorm exists whatever use_bn says (dpt.py:237-248).
        self.output_conv = nn.Sequential(
            nn.Conv2d(f, f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU(), nn.Dropout(0.1),
            nn.Conv2d(f, config.num_classes, 1, bias=True),
        )


class DPTHead(nn.Module):
    """Four per-layer features on an h x w grid -> logits [B, C, 8h, 8w].

    ``forward`` takes the concatenated layers as a map [B, 4E, h, w] (the harness's head
    contract); ``forward_tokens`` takes the official list of four [B, h*w, E] tensors.
    """

    # Its outputs differ in the last bits between a batch of one and larger ones (up to ~1e-6),
    # so the harness runs it on one clip's entries per call (dfbench.head_stats).
    batch_dependent_bits = True

    def __init__(self, config: DPTConfig = DPTConfig()) -> None:
        super().__init__()
        self.config = config
        oc = config.out_channels
        self.projects = nn.ModuleList(nn.Conv2d(config.in_channels, c, 1, bias=True) for c in oc)
        self.resize_layers = nn.ModuleList(
            [nn.ConvTranspose2d(oc[0], oc[0], 4, stride=4), nn.ConvTranspose2d(oc[1], oc[1], 2, stride=2), nn.Identity(),
             nn.Conv2d(oc[3], oc[3], 3, stride=2, padding=1)]
        )
        self.scratch = Scratch(config)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Concatenated layer features [B, 4E, h, w] -> logits [B, C, 8h, 8w]."""
        expected = 4 * self.config.in_channels
        if feats.dim() != 4 or feats.shape[1] != expected:
            raise DfbenchError(f"the DPT head takes features [B, {expected}, h, w], got {tuple(feats.shape)}; decode the PCA features first.")
        return self._decode(list(feats.split(self.config.in_channels, dim=1)))

    def forward_tokens(self, layers: Sequence[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        """Four token tensors [B, h*w, E] (row-major) on ``grid`` -> logits [B, C, 8h, 8w]."""
        h, w = grid
        return self._decode([x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w) for x in layers])

    def _decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        scratch = self.scratch
        rn = [
            getattr(scratch, f"layer{i + 1}_rn")(self.resize_layers[i](self.projects[i](x))) for i, x in enumerate(maps)
        ]
        path = scratch.refinenet4(rn[3], size=rn[2].shape[2:])
        path = scratch.refinenet3(path, rn[2], size=rn[1].shape[2:])
        path = scratch.refinenet2(path, rn[1], size=rn[0].shape[2:])
        path = scratch.refinenet1(path, rn[0])
        return scratch.output_conv(path)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Head logits -> label size by bicubic interpolation (align_corners=False), as the evaluation does."""
    return F.interpolate(logits, size=tuple(size), mode="bicubic", align_corners=False)


def config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> DPTConfig:
    """The DPT sizes a state dict was saved at (read from its weight shapes)."""
    try:
        return DPTConfig(
            num_classes=int(state_dict["scratch.output_conv.4.weight"].shape[0]),
            in_channels=int(state_dict["projects.0.weight"].shape[1]),
            features=int(state_dict["scratch.layer1_rn.weight"].shape[0]),
            out_channels=tuple(int(state_dict[f"projects.{i}.weight"].shape[0]) for i in range(4)),
            use_bn="scratch.refinenet1.resConfUnit1.bn1.weight" in state_dict,
        )
    except KeyError as error:
        raise DfbenchError(f"the head has no weight {error}; pass a DPT head checkpoint (head_*_pca1152.ckpt).") from None


def check_dpt_state(state: dict[str, torch.Tensor], source: str | Path, num_classes: int,
                    in_channels: int | None = None) -> DPTConfig:
    """The sizes of a DPT head state dict, refused in one line when they do not fit the task or space."""
    config = config_from_state_dict(state)
    if config.num_classes != num_classes:
        raise DfbenchError(
            f"head '{source}' predicts {config.num_classes} classes but this task needs {num_classes}; pass the head of this task."
        )
    if in_channels is not None and config.in_channels != in_channels:
        raise DfbenchError(
            f"head '{source}' reads {config.in_channels}-wide layers but the feature space gives {in_channels}; pass a head for this feature space."
        )
    return config


def fill_dpt_head(head: DPTHead, state: dict[str, torch.Tensor], source: str | Path) -> DPTHead:
    """Loads ``state`` strictly into ``head``; returns it in eval mode."""
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise DfbenchError(f"head '{source}' does not fit the DPT layout ({str(error).splitlines()[0]}); pass a DPT head checkpoint.") from None
    return head.eval()


def read_dpt_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A DPT head's state dict from a Lightning checkpoint (``head.``-prefixed keys, read with the
    safe reader), a bare state dict, or a dfbench-trained safetensors file."""
    if Path(path).suffix == ".safetensors":
        from dfbench.checkpoints import load_state_dict

        state = load_state_dict(path)
    else:
        from dfbench.lightning_checkpoint import read_lightning_checkpoint

        state = read_lightning_checkpoint(path, "a DPT head checkpoint").state_dict
    return {k[len("head."):] if k.startswith("head.") else k: v for k, v in state.items()}


def load_dpt_head(path: str | Path, num_classes: int, in_channels: int | None = None) -> DPTHead:
    """A released (or dfbench-trained) DPT head checkpoint, in eval mode.

    Args:
        path: a Lightning checkpoint whose state dict keys are ``head.<DPTHead key>``
            (or a bare DPTHead state dict, or a safetensors file of one).
        num_classes: classes the task needs (19 segmentation, 256 depth bins).
        in_channels: per-layer feature width the head must take, when known.
    """
    state = read_dpt_state(path)
    config = check_dpt_state(state, path, num_classes, in_channels)
    return fill_dpt_head(DPTHead(config), state, path)
