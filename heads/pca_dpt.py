"""The DPT head as the harness calls it on a multi-layer PCA feature space.

World models on such a space (DINO-Foresight) predict PCA coordinates; the harness hands
every head feature maps [B, K, h, w] of those. The official evaluation decodes them with
the inverse PCA, cuts the L per-block slices and runs the DPT head on them
(FACTS.md, sections 7-8); ``PcaDptHead`` is exactly that chain, so the harness needs no
special case. The PCA tensors belong to the feature space: they are not in the head's
state dict, which stays the released ``DPTHead`` layout.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dfbench.errors import DfbenchError
from dfbench.features.multilayer_pca import PCA_KEYS, PcaProjection
from dfbench.heads.dpt import DPTConfig, DPTHead, check_dpt_state, fill_dpt_head, read_dpt_state

LAYERS = 4  # the DPT head reads four blocks


class PcaDptHead(DPTHead):
    """PCA feature maps [B, K, h, w] -> inverse PCA -> four block slices -> logits [B, C, 8h, 8w].

    Args:
        config: the DPT sizes; ``in_channels`` is one block's width E.
        pca: the feature space's projection (copied; its width must be 4 E).
    """

    def __init__(self, config: DPTConfig, pca: PcaProjection) -> None:
        super().__init__(config)
        if pca.width != LAYERS * config.in_channels:
            raise DfbenchError(
                f"the PCA rebuilds {pca.width}-wide features but the DPT head reads {LAYERS} x {config.in_channels}; "
                "pass a head trained on this feature space."
            )
        self.pca = PcaProjection(pca.mean, pca.std, pca.pca_mean, pca.pca_components).requires_grad_(False)
        # Kept out of the state dict: saved heads hold the DPT weights only, as released.
        self.pca._non_persistent_buffers_set.update(PCA_KEYS)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """PCA feature maps [B, K, h, w] -> logits [B, C, 8h, 8w]."""
        k = self.pca.components
        if feature_map.dim() != 4 or feature_map.shape[1] != k:
            raise DfbenchError(
                f"the PCA-DPT head takes PCA feature maps [B, {k}, h, w], got {tuple(feature_map.shape)}; "
                "pass the feature space's PCA features."
            )
        height, width = feature_map.shape[-2:]
        tokens = feature_map.flatten(2).transpose(1, 2)  # [B, h*w, K], row-major as the official reshape
        layers = self.pca.inverse(tokens).split(self.config.in_channels, dim=-1)
        return self.forward_tokens(list(layers), (height, width))


def build_pca_dpt_head(pca: PcaProjection, num_classes: int, config: DPTConfig | None = None) -> PcaDptHead:
    """A fresh head (released sizes unless ``config`` says otherwise) on the space's PCA."""
    base = config or DPTConfig()
    sizes = DPTConfig(num_classes=num_classes, in_channels=pca.width // LAYERS, features=base.features,
                      out_channels=tuple(base.out_channels), use_bn=base.use_bn)
    return PcaDptHead(sizes, pca)


def load_pca_dpt_head(path: str | Path, num_classes: int, pca: PcaProjection) -> PcaDptHead:
    """A DPT head file (released Lightning ``.ckpt`` or dfbench safetensors) on the space's PCA, in eval mode.

    Raises:
        DfbenchError: another class count, layers of another width, or not a DPT head (one line).
    """
    state = read_dpt_state(path)
    config = check_dpt_state(state, path, num_classes, pca.width // LAYERS)
    return fill_dpt_head(PcaDptHead(config, pca), state, path)
