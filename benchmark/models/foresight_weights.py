"""DINO-Foresight predictors in dfbench's own format: safetensors with the config as metadata.

The released Lightning files are read by :mod:`dfbench.models.foresight_checkpoint`; the
predictors dfbench trains (the tiny one shipped in ``adapters/assets``) are saved here, like
every other dfbench model (``{"model": ..., "config": ...}`` metadata, see
:func:`dfbench.checkpoints.save_safetensors`). The PCA the predictor was trained in may be
stored beside it under the released names (``mean``, ``std``, ``pca_mean``,
``pca_components``), so loading can check it is the feature space's PCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dfbench.errors import DfbenchError
from dfbench.features.multilayer_pca import PCA_KEYS, PcaProjection
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig

MODEL_NAME = "dino-foresight"  # the ``model`` metadata: which model a file holds
WHAT = "a DINO-Foresight predictor (.safetensors written by dfbench, or dinof_*.ckpt)"


@dataclass
class ForesightWeights:
    """A loaded predictor, the PCA stored with it (None if the file has none) and its metadata."""

    predictor: DinoForesight
    pca: PcaProjection | None
    metadata: dict[str, Any] = field(default_factory=dict)


def save_foresight_safetensors(
    path: str | Path, predictor: DinoForesight, pca: PcaProjection | None = None, metadata: dict[str, Any] | None = None
) -> Path:
    """Write the predictor (and optionally its PCA) as safetensors with its config in the metadata.

    Args:
        path: output file, ``*.safetensors``.
        predictor: the network; its ``config`` is stored so the file loads without other input.
        pca: the projection of the feature space it predicts in (recommended: loading checks it).
        metadata: more JSON values to store (a training recipe, a feature-space name).
    """
    from dfbench.checkpoints import save_safetensors

    tensors = dict(predictor.state_dict())
    if pca is not None:
        tensors.update(pca.state_dict())
    info = {**(metadata or {}), "model": MODEL_NAME, "config": predictor.config.to_dict()}
    return save_safetensors(tensors, path, info)


def _check_pca(pca: PcaProjection | None, path: Path, feature_width: int | None, components: int | None) -> None:
    if pca is None:
        return
    if feature_width is not None and pca.width != feature_width:
        raise DfbenchError(
            f"the PCA in '{path}' is fitted on {pca.width}-wide features but the feature space gives {feature_width}; "
            "pass the predictor trained in this feature space."
        )
    if components is not None and pca.components != components:
        raise DfbenchError(
            f"the PCA in '{path}' has {pca.components} components but the feature space has {components}; "
            "pass the predictor trained in this feature space."
        )


def load_foresight_safetensors(
    path: str | Path, *, feature_width: int | None = None, components: int | None = None
) -> ForesightWeights:
    """Read a predictor written by :func:`save_foresight_safetensors`, in eval mode.

    Args:
        path: the file.
        feature_width: the concatenated layer width L*E of the feature space it must fit.
        components: the feature space's PCA size K (the predictor's input width).

    Raises:
        DfbenchError: not such a file, another model's file, or sizes that do not fit; one line each.
    """
    from safetensors.torch import load_file

    from dfbench.checkpoints import read_safetensors_metadata

    path = Path(path)
    if not path.is_file():
        raise DfbenchError(f"DINO-Foresight predictor '{path}' does not exist; pass the path of the file.")
    metadata = read_safetensors_metadata(path)
    holder = metadata.get("model")
    if holder != MODEL_NAME:
        what = f"a '{holder}' model" if holder else "no dfbench model metadata"
        raise DfbenchError(f"'{path}' holds {what}, not a DINO-Foresight predictor; pass {WHAT}.")
    try:
        config = ForesightConfig.from_dict(dict(metadata["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise DfbenchError(f"'{path}' has an unreadable DINO-Foresight config ({error}); re-save it.") from None
    state = load_file(str(path))
    pca = PcaProjection.from_state_dict(state) if all(k in state for k in PCA_KEYS) else None
    _check_pca(pca, path, feature_width, components)
    if components is not None and config.pca_dim != components:
        raise DfbenchError(
            f"the predictor in '{path}' reads {config.pca_dim} PCA components but the feature space has {components}; "
            "pass the predictor trained in this feature space."
        )
    predictor = DinoForesight(config)
    try:
        predictor.load_state_dict({k: v for k, v in state.items() if k not in PCA_KEYS}, strict=True)
    except RuntimeError as error:
        raise DfbenchError(f"'{path}' does not fit its own config ({str(error).splitlines()[0]}); re-save it.") from None
    return ForesightWeights(predictor.eval(), pca, metadata)


def load_foresight_weights(
    path: str | Path, *, feature_width: int | None = None, components: int | None = None, heads: int | None = None
) -> ForesightWeights:
    """A predictor from either format: dfbench safetensors, or a released Lightning ``dinof_*.ckpt``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_foresight_safetensors(path, feature_width=feature_width, components=components)
    from dfbench.models.foresight_checkpoint import load_foresight_checkpoint

    ckpt = load_foresight_checkpoint(path, heads=heads, feature_width=feature_width, components=components)
    return ForesightWeights(ckpt.predictor, ckpt.pca, {"args": ckpt.args})


def same_pca(a: PcaProjection, b: PcaProjection) -> bool:
    """Whether two projections are the same (the predictor's and the feature space's)."""
    return a.pca_components.shape == b.pca_components.shape and all(
        torch.equal(getattr(a, k).cpu(), getattr(b, k).cpu()) for k in PCA_KEYS
    )
