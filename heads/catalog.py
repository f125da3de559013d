"""Finds and loads the frozen head for a (feature space, data set, task).

The head's kind follows from the feature space: a multi-layer PCA space (DINO-Foresight's)
is decoded by DPT heads behind its inverse PCA (:class:`~dfbench.heads.pca_dpt.PcaDptHead`),
any other space by the task's own head family.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from typing import TYPE_CHECKING

from safetensors.torch import save_file
from torch import nn

from dfbench.config import load_yaml
from dfbench.errors import DfbenchError
from dfbench.tasks import get_task

if TYPE_CHECKING:
    from dfbench.features.base import FeatureSpace


def space_pca(feature_space: FeatureSpace | str | None):
    """The PCA of a multi-layer PCA feature space (its heads are PCA-DPT heads), else None."""
    from dfbench.features.multilayer_pca import MultiLayerPcaSpace

    return feature_space.pca if isinstance(feature_space, MultiLayerPcaSpace) else None


def build_head(task: str, dim: int, num_classes: int, feature_space: FeatureSpace | None = None,
               config=None) -> nn.Module:
    """A fresh head: PCA-DPT on a multi-layer PCA space (``config``: its DPT sizes), else the task's family."""
    pca = space_pca(feature_space)
    if pca is not None:
        from dfbench.heads.pca_dpt import build_pca_dpt_head

        get_task(task)  # an unknown task name is one line here too
        return build_pca_dpt_head(pca, num_classes, config)
    return get_task(task).build_head(dim, num_classes)


def head_kind(feature_space: str) -> str:
    """``linear`` (the task's own head family) or ``pca-dpt``, as configs/heads.yaml declares per feature space."""
    return str(load_yaml("heads.yaml").get(feature_space, {}).get("head", "linear"))


def dpt_config(feature_space: str):
    """The DPT sizes heads of a PCA-DPT feature space are trained at (``dpt`` in configs/heads.yaml;
    the released sizes by default)."""
    from dfbench.heads.dpt import DPTConfig

    sizes = load_yaml("heads.yaml").get(feature_space, {}).get("dpt", {})
    if "out_channels" in sizes:
        sizes = {**sizes, "out_channels": tuple(int(c) for c in sizes["out_channels"])}
    return DPTConfig(**sizes)


def head_source(feature_space: str, dataset: str, task: str) -> str:
    """The file path or hub id of the configured head; raises if none is configured."""
    catalog = load_yaml("heads.yaml")
    declared = catalog.get(feature_space, {}).get(dataset, {})
    # A parametrised task (seg-mo[5,6]: MO-mIoU over a data set's own moving classes) scores
    # differently but reads the same head as its family (seg-mo).
    entry = declared.get(task, declared.get(type(get_task(task)).name))
    if entry is None:
        raise DfbenchError(
            f"no {task} head for feature space '{feature_space}' on '{dataset}'; train one with "
            f"'dfbench train head --feature-space {feature_space} --dataset {dataset}' and pass it with --head {task}=PATH."
        )
    if "file" in entry:
        return str(files("dfbench.heads").joinpath("assets", entry["file"]))
    return f"{entry['hub']}::{entry.get('filename', 'pytorch_model.bin')}"


def load_head(source: str, task: str, dim: int, num_classes: int, feature_space: FeatureSpace | None = None) -> nn.Module:
    """Builds the head and loads its weights from a safetensors/bin/ckpt file or a hub id ("repo::file").

    On a multi-layer PCA space the file is a DPT head (a released Lightning ``.ckpt`` or a
    dfbench safetensors file); its sizes are read from its weights.
    """
    from dfbench.checkpoints import load_into, load_state_dict, resolve_checkpoint

    repo, _, filename = source.partition("::")
    pca = space_pca(feature_space)
    if pca is not None:
        from dfbench.heads.pca_dpt import load_pca_dpt_head

        get_task(task)
        path = resolve_checkpoint(repo, filename) if filename else resolve_checkpoint(repo)
        return load_pca_dpt_head(path, num_classes, pca)
    head = build_head(task, dim, num_classes)
    # Every source goes through the checked reader: a text file or a foreign pickle is one line, not a traceback.
    state = load_state_dict(repo, filename or "pytorch_model.bin")

    load_into(head, state, f"{task} head")
    return head.eval()


def save_head(head: nn.Module, path: str | Path, metadata: dict[str, str]) -> None:
    """Saves a head as safetensors (written to a temp name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(tmp), metadata=metadata)
    from dfbench.files import file_mode

    tmp.chmod(file_mode())  # safetensors writes 0600; a trained head is shared like any other file
    tmp.replace(path)


def load_heads(
    feature_space: FeatureSpace | str, dim: int, dataset: str, tasks: dict[str, int], overrides: dict[str, str] | None = None
) -> dict[str, nn.Module]:
    """Task -> frozen head in eval mode, for every task of the data set.

    Args:
        feature_space: the loaded feature space (its kind picks the heads: PCA-DPT on a
            multi-layer PCA space), or its name (a PCA-DPT space is then loaded once more,
            with its default weights, for its PCA).
    """
    from dfbench.features.base import FeatureSpace

    space = feature_space if isinstance(feature_space, FeatureSpace) else None
    name = space.name if space is not None else feature_space
    if space is None and head_kind(name) == "pca-dpt":
        # The heads decode the space's PCA. Callers that hold the loaded space pass it (no
        # second load, and a space loaded from another path keeps its own PCA).
        from dfbench.features import load_feature_space

        space = load_feature_space(name)
    overrides = overrides or {}
    heads = {}
    for task, num_classes in tasks.items():
        source = overrides.get(task) or head_source(name, dataset, task)
        heads[task] = load_head(source, task, dim, num_classes, space)
    return heads


__all__ = ["build_head", "dpt_config", "head_kind", "head_source", "load_head", "load_heads", "save_head", "space_pca"]
