"""Loading DINO-Foresight's released Lightning checkpoints (dinof_highres.ckpt, dinof_lowres.ckpt).

Each holds, under ``state_dict``, the predictor (``embed.*``, ``replace_vector``, ``maskvit.*``),
the PCA tensors (``mean``, ``std``, ``pca_mean``, ``pca_components``) and the frozen DINOv2
(``dino_v2.*``); ``hyper_parameters['args']`` is the training Namespace. The PCA is taken from
here, so the scikit-learn pickle ``dinov2_pca_448_l[2_5_8_11]_1152.pth`` is never needed (and
is refused: it pickles objects that would run code). Sizes come from the weights' shapes;
the head count, which no shape shows, from the Namespace (``heads``) or the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dfbench.errors import DfbenchError
from dfbench.features.multilayer_pca import PcaProjection
from dfbench.lightning_checkpoint import read_lightning_checkpoint
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig

HUB_REPO = "Sta8is/DINO-Foresight"
RELEASED_FILES = ("dinof_highres.ckpt", "dinof_lowres.ckpt")
RELEASED_HEADS = 8
PREDICTOR_PREFIXES = ("embed.", "replace_vector", "maskvit.")
BACKBONE_PREFIX = "dino_v2."
WHAT = "a DINO-Foresight checkpoint (dinof_highres.ckpt or dinof_lowres.ckpt)"


@dataclass
class ForesightCheckpoint:
    """What a DINO-Foresight checkpoint holds, split by part.

    Attributes:
        predictor: the masked feature transformer, weights loaded, in eval mode.
        pca: the projection its PCA features are in.
        backbone_state: the ``dino_v2.*`` weights without the prefix (torch.hub key layout);
            empty when the file does not carry them.
        args: the training arguments (the Namespace as a dict; empty if absent).
    """

    predictor: DinoForesight
    pca: PcaProjection
    backbone_state: dict[str, torch.Tensor] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)


def config_from_state(state: dict[str, torch.Tensor], heads: int, dropout: float = 0.1) -> ForesightConfig:
    """Predictor sizes read from the weight shapes (the head count is given)."""
    layers = 1 + max(int(key.split(".")[3]) for key in state if key.startswith("maskvit.transformer.layers."))
    emb = {axis: state[f"maskvit.pos_embd.emb.d_{axis}"] for axis in range(3)}
    return ForesightConfig(
        pca_dim=int(state["embed.weight"].shape[1]),
        hidden_dim=int(state["embed.weight"].shape[0]),
        layers=layers,
        heads=int(heads),
        mlp_dim=int(state["maskvit.transformer.layers.0.2.fn.net.0.weight"].shape[0]),
        frames=int(emb[0].shape[0]),
        grid=(int(emb[1].shape[0]), int(emb[2].shape[0])),
        dropout=dropout,
    )


def _check_training_args(args: dict[str, Any], path: Path) -> None:
    """Refuse variants this predictor does not implement (other masking, joint attention)."""
    masking = args.get("masking", "simple_replace")
    if masking != "simple_replace":
        raise DfbenchError(f"'{path}' was trained with masking '{masking}'; dfbench implements the released 'simple_replace' only.")
    if "seperable_attention" in args and not args["seperable_attention"]:
        raise DfbenchError(f"'{path}' uses joint space-time attention; dfbench implements the released separable attention only.")


def load_foresight_checkpoint(
    path: str | Path, *, heads: int | None = None, feature_width: int | None = None, components: int | None = None
) -> ForesightCheckpoint:
    """Read a DINO-Foresight checkpoint with torch's weights-only loader.

    Args:
        path: a ``dinof_*.ckpt`` (or a file of the same layout at another size).
        heads: attention heads, when the file's Namespace does not say (default 8, as released).
        feature_width: the concatenated width L*E of the feature space it must fit (3072 for ViT-B, 4 blocks).
        components: the PCA size the feature space expects (1152 as released).

    Raises:
        DfbenchError: another model's checkpoint, a pickle of other objects, a PCA of another
            width or size, or weights that do not fit together; one line each.
    """
    ckpt = read_lightning_checkpoint(path, WHAT)
    state, args = ckpt.state_dict, dict(ckpt.hparams.get("args") or {})
    if not all(any(key.startswith(prefix) for key in state) for prefix in PREDICTOR_PREFIXES):
        raise DfbenchError(f"'{path}' is not a DINO-Foresight checkpoint (no embed/replace_vector/maskvit weights); pass {WHAT}.")
    _check_training_args(args, Path(path))
    pca = PcaProjection.from_state_dict(state)
    if feature_width is not None and pca.width != feature_width:
        raise DfbenchError(
            f"the PCA in '{path}' is fitted on {pca.width}-wide features but the feature space gives {feature_width}; "
            "pass the checkpoint made for this backbone and these blocks."
        )
    if components is not None and pca.components != components:
        raise DfbenchError(f"the PCA in '{path}' has {pca.components} components, expected {components}; pass the matching checkpoint.")
    predictor_state = {k: v for k, v in state.items() if k.startswith(PREDICTOR_PREFIXES)}
    try:
        config = config_from_state(predictor_state, heads or args.get("heads") or RELEASED_HEADS, float(args.get("dropout", 0.1)))
    except (KeyError, ValueError) as error:
        raise DfbenchError(f"'{path}' lacks predictor weight {error}; pass {WHAT}.") from None
    if config.pca_dim != pca.components:
        raise DfbenchError(
            f"the predictor in '{path}' reads {config.pca_dim} PCA components but its PCA has {pca.components}; the file is inconsistent."
        )
    predictor = DinoForesight(config)
    try:
        predictor.load_state_dict(predictor_state, strict=True)
    except RuntimeError as error:
        raise DfbenchError(f"'{path}' does not fit the DINO-Foresight layout ({str(error).splitlines()[0]}); pass {WHAT}.") from None
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    return ForesightCheckpoint(predictor.eval(), pca, backbone, args)


def save_foresight_checkpoint(
    path: str | Path,
    predictor: DinoForesight,
    pca: PcaProjection,
    backbone_state: dict[str, torch.Tensor] | None = None,
    args: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint in the released layout (tensors and plain values only, no Namespace)."""
    state = {**{f"{BACKBONE_PREFIX}{k}": v for k, v in (backbone_state or {}).items()},
             **{k: v for k, v in pca.state_dict().items()}, **predictor.state_dict()}
    hparams = {"args": {"heads": predictor.config.heads, "masking": "simple_replace", "seperable_attention": True, **(args or {})}}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, Path(path))


def resolve_released(filename: str = RELEASED_FILES[0]) -> Path:
    """A released file of Sta8is/DINO-Foresight from the Hugging Face cache (downloading when online)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(HUB_REPO, filename))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError) as error:
        raise DfbenchError(
            f"{filename} of {HUB_REPO} is not in the Hugging Face cache and cannot be downloaded here: run "
            f"'hf download {HUB_REPO} {filename}' on a machine with internet, or pass the file's path."
        ) from error
