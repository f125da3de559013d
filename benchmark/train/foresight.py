"""DINO-Foresight's training objective, as the official ``Dino_f.training_step`` computes it.

With the released flags (``--masking simple_replace --train_mask_mode full_mask``,
``train_mask_frames`` 1, ``--loss_type SmoothL1``, ``beta_smoothl1`` 0.1):

* every slot of the 5-frame clip is embedded, then every token of the last slot is replaced
  by the learned ``replace_vector`` (``get_mask_tokens``);
* the transformer runs in training mode (dropout 0.1);
* the loss is SmoothL1 with beta 0.1 between output and input PCA features at the masked
  tokens only (``forward_loss``: ``x_pred[mask]`` against ``x[mask]``).

The high-resolution stage starts from the low-resolution weights with the row and column
position tables resized by bilinear interpolation (``Dino_f.on_load_checkpoint`` with
``--high_res_adapt``); :meth:`ForesightObjective.load_init` does the same.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from dfbench.errors import DfbenchError
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig
from dfbench.train.clips import ClipFeatureCache
from dfbench.train.config import TrainConfig

SMOOTH_L1_BETA = 0.1
# The position tables indexed by token row and column; the time table keeps its size.
GRID_TABLES = {"maskvit.pos_embd.emb.d_1": 0, "maskvit.pos_embd.emb.d_2": 1}


def full_mask(batch: int, frames: int, grid: tuple[int, int], mask_frames: int = 1, device=None) -> torch.Tensor:
    """``full_mask`` mode: bool [B, T, h, w], every token of the last ``mask_frames`` slots masked."""
    mask = torch.zeros(batch, frames, *grid, dtype=torch.bool, device=device)
    mask[:, frames - mask_frames :] = True
    return mask


def masked_tokens(model: DinoForesight, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``simple_replace``: embed every slot, then put the learned vector at every masked token."""
    return torch.where(mask[..., None], model.replace_vector, model.embed(x))


def foresight_loss(model: DinoForesight, x: torch.Tensor, mask: torch.Tensor, beta: float = SMOOTH_L1_BETA) -> torch.Tensor:
    """SmoothL1 between the predictor's output and its input PCA features [B, T, h, w, K] at the masked tokens."""
    out = model.maskvit(masked_tokens(model, x, mask))
    return F.smooth_l1_loss(out[mask], x[mask], beta=beta)


def resize_position_tables(state: dict[str, torch.Tensor], grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Row/column tables [L, C] resized to ``grid`` as ``--high_res_adapt`` does (bilinear on [1, 1, L, C])."""
    out = dict(state)
    for key, axis in GRID_TABLES.items():
        table = state.get(key)
        if table is not None and table.shape[0] != grid[axis]:
            size = (grid[axis], table.shape[1])
            out[key] = F.interpolate(table[None, None].float(), size=size, mode="bilinear")[0, 0].to(table.dtype)
    return out


def official_init(model: DinoForesight) -> DinoForesight:
    """The official starting point: position tables truncated N(0, 0.02), ``fc_out`` weight zero,
    replace vector N(0, 0.02) (``attention_masked.py``, ``dino_f.py``); other layers keep torch's defaults."""
    with torch.no_grad():
        for table in model.maskvit.pos_embd.emb.values():
            nn.init.trunc_normal_(table, 0.0, 0.02)
        model.maskvit.fc_out.weight.zero_()
        nn.init.normal_(model.replace_vector, std=0.02)
    return model


class ForesightObjective:
    """A DINO-Foresight predictor on cached PCA features of whole-frame clips.

    The cache holds the PCA features [M, T, h*w, K] of the clips; T is the model's number of
    slots (5 in the released recipe) and (h, w) the feature space's grid at this stage.
    """

    def __init__(self, config: TrainConfig, feature_space: nn.Module, cache: ClipFeatureCache, variant: str) -> None:
        if not config.clips.full_frame:
            raise DfbenchError("DINO-Foresight trains on whole frames (no square crops): set clips.full_frame: true and clips.frame_width.")
        image_size = getattr(feature_space, "image_size", None)
        if image_size is not None and tuple(image_size) != config.clips.view_size:
            raise DfbenchError(
                f"clips are {config.clips.view_size} but feature space '{config.feature_space}' reads {tuple(image_size)}; "
                "set clips.frame_size / frame_width to its input size."
            )
        arch = dict(config.architecture.get("predictor", {}))
        self.model_config = ForesightConfig(pca_dim=feature_space.dim, frames=config.clips.num_frames, grid=tuple(cache.grid), **arch)
        self.model = official_init(DinoForesight(self.model_config))
        self.cache, self.variant = cache, variant
        self.mask_frames = int(config.architecture.get("mask_frames", 1))
        self.metadata = {
            "model": variant,
            "architecture": "dino-foresight",
            "config": self.model_config.to_dict(),
            "feature_space": config.feature_space,
        }

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """PCA features [B, T, h, w, K] of cached clips ``index``."""
        feats = self.cache.features[index]
        return feats.reshape(*feats.shape[:2], *self.cache.grid, feats.shape[-1])

    def loss(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self.batch(index)
        mask = full_mask(x.shape[0], x.shape[1], self.cache.grid, self.mask_frames, x.device)
        return foresight_loss(self.model, x, mask)

    def load_init(self, path: str | Path) -> None:
        """Starts from a previous stage's weights, position tables resized to this stage's grid."""
        from dfbench.checkpoints import load_into

        if not Path(path).is_file():
            raise DfbenchError(f"init weights '{path}' not found; train the previous stage first (or fix `init`).")
        state = resize_position_tables(load_file(str(path)), self.model_config.grid)
        load_into(self.model, state, self.variant)
