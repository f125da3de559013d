"""What only pays on an accelerator: compiled networks and clips copied while the GPU computes."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from dfbench.data.base import Clip
from dfbench.errors import DfbenchError

# Marks a compiled run in its identity's precision field and in the feature-cache key:
# torch.compile may reorder floating-point operations, so its numbers are kept apart.
COMPILED = "+compile"


def _compile_children(module: object) -> None:
    """Compiles every direct sub-network in place, so adapters calling them by attribute get it."""
    if not isinstance(module, nn.Module):
        return
    children = [child for child in module.children() if any(True for _ in child.parameters())]
    for child in children or [module]:
        child.compile()


def compile_networks(prep, compiled: set[int]) -> None:
    """torch.compile the backbone, the model's networks and the heads of one prepared run.

    ``compiled`` holds the ids of objects already compiled (a feature space shared by
    several models is compiled once). The identity and the feature-cache key record it.
    """
    if not hasattr(torch, "compile"):
        raise DfbenchError("--compile needs torch 2 or later; drop --compile.")
    for target in (prep.feature_space, prep.model, *prep.heads.values()):
        if id(target) not in compiled:
            _compile_children(target)
            compiled.add(id(target))
    if not prep.identity.precision.endswith(COMPILED):
        prep.identity = dataclasses.replace(prep.identity, precision=prep.identity.precision + COMPILED)
        prep.cache_key = (*prep.cache_key, "compiled")


def clip_to(clip: Clip, device: torch.device) -> Clip:
    """The clip on ``device``; from pinned memory the copy overlaps with the work already queued.

    Only copies: cropping and label halving are slicing, so where they run changes no number.
    """
    if device.type == "cpu":
        return clip
    moved = {
        f.name: getattr(clip, f.name).to(device, non_blocking=True)
        for f in dataclasses.fields(clip) if isinstance(getattr(clip, f.name), torch.Tensor)
    }
    moved["labels"] = {task: labels.to(device, non_blocking=True) for task, labels in clip.labels.items()}
    return dataclasses.replace(clip, **moved)


__all__ = ["COMPILED", "clip_to", "compile_networks"]
