"""The DINO-Foresight adapter: the masked feature transformer over a multi-layer PCA feature space.

The harness hands over the PCA features of the four context frames; the adapter appends the
slot to predict (masked, so its content is never read) and runs the official rollout
(:meth:`dfbench.models.dino_foresight.DinoForesight.unroll`): one pass per future step, each
prediction shifted into the context of the next, so the mid horizon's three steps are the
official three autoregressive passes (FACTS.md, sections 5 and 6). Deterministic: one sample.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from dfbench.adapters.base import Context, Forecast, WorldModel
from dfbench.adapters.spec import ModelSpec
from dfbench.errors import DfbenchError


class DinoForesightModel(WorldModel):
    """DINO-Foresight with weights for its feature space: released (hub), shipped (tiny) or ``--checkpoint``.

    The registry subclasses it with ``spec`` set (``get_model_class("dino-foresight")``).
    """

    spec: ClassVar[ModelSpec]
    stochastic = False

    def __init__(self, feature_space, checkpoint: str | None = None, **options) -> None:
        super().__init__(feature_space, checkpoint)
        from dfbench.checkpoints import sha256_file
        from dfbench.models.foresight_weights import load_foresight_weights, same_pca

        pca = getattr(feature_space, "pca", None)
        if pca is None or not callable(getattr(feature_space, "decode", None)):
            raise DfbenchError(
                f"{self.name} predicts multi-layer PCA features, but feature space '{feature_space.name}' is not one; "
                f"use --feature-space {self.spec.default_feature_space} (or a multi-layer PCA space such as tiny-ml-pca)."
            )
        path = self._resolve(checkpoint)
        weights = load_foresight_weights(path, feature_width=pca.width, components=pca.components)
        if weights.pca is not None and not same_pca(weights.pca, pca):
            raise DfbenchError(
                f"'{path}' was trained in another PCA than feature space '{feature_space.name}' holds; "
                "pass the predictor trained in this feature space."
            )
        self.net = weights.predictor.eval()
        self._files = {self.name: sha256_file(path)}

    def _resolve(self, checkpoint: str | None):
        """The local file of ``--checkpoint`` or of the spec's weights for this feature space."""
        from dfbench.checkpoints import resolve_checkpoint

        declared = self.spec.weight(self.feature_space.name, "predictor")
        source = checkpoint or (declared.location if declared is not None else None)
        if source is None:
            raise DfbenchError(
                f"no {self.name} weights for feature space '{self.feature_space.name}'; pass --checkpoint PATH "
                f"(a dinof_*.ckpt or a predictor trained with 'dfbench train predictor --model {self.name}')."
            )
        filename = declared.filename if declared is not None and declared.hub_id == source else "model.safetensors"
        return resolve_checkpoint(source, filename)

    def to(self, device):
        self.net.to(device)
        return self

    def checkpoint_files(self) -> dict[str, str]:
        return dict(self._files)

    @torch.no_grad()
    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        """Context features [B, C, N, K] -> forecasts [B, 1, steps, N, K], one pass per step."""
        rows, frames, tokens, dim = context.features.shape
        height, width = context.grid
        steps = target_timestamps.shape[1]
        feats = context.features.float().reshape(rows, frames, height, width, dim)
        state = torch.cat([feats, feats[:, -1:]], dim=1)  # the slot to predict: masked, its content unread
        _, _, outputs = self.net.unroll(state, steps)
        preds = torch.stack([out[:, -1] for out in outputs], dim=1)
        return Forecast(preds.reshape(rows, 1, steps, tokens, dim))
