"""Finds and loads the frozen head for a (feature space, data set, task)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from dfbench.config import load_yaml
from dfbench.errors import DfbenchError
from dfbench.tasks import get_task


def build_head(task: str, dim: int, num_classes: int) -> nn.Module:
    """A fresh head of the task's family; raises for an unknown task name."""
    return get_task(task).build_head(dim, num_classes)


def head_source(feature_space: str, dataset: str, task: str) -> str:
    """The file path or hub id of the configured head; raises if none is configured."""
    catalog = load_yaml("heads.yaml")
    entry = catalog.get(feature_space, {}).get(dataset, {}).get(task)
    if entry is None:
        raise DfbenchError(
            f"no {task} head for feature space '{feature_space}' on '{dataset}'; train one with "
            f"'dfbench train head --feature-space {feature_space} --dataset {dataset}' and pass it with --head {task}=PATH."
        )
    if "file" in entry:
        return str(files("dfbench.heads").joinpath("assets", entry["file"]))
    return f"{entry['hub']}::{entry.get('filename', 'pytorch_model.bin')}"


def load_head(source: str, task: str, dim: int, num_classes: int) -> nn.Module:
    """Builds the head and loads its weights from a safetensors/bin file or a hub id."""
    from dfbench.checkpoints import load_into, load_state_dict

    head = build_head(task, dim, num_classes)
    # Every source goes through the checked reader: a text file or a foreign pickle is one line, not a traceback.
    repo, _, filename = source.partition("::")
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
    feature_space_name: str, dim: int, dataset: str, tasks: dict[str, int], overrides: dict[str, str] | None = None
) -> dict[str, nn.Module]:
    """Task -> frozen head in eval mode, for every task of the data set."""
    overrides = overrides or {}
    heads = {}
    for task, num_classes in tasks.items():
        source = overrides.get(task) or head_source(feature_space_name, dataset, task)
        heads[task] = load_head(source, task, dim, num_classes)
    return heads


__all__ = ["build_head", "head_source", "load_head", "load_heads", "save_head"]
