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


def blocks(root: nn.Module) -> list[nn.Module]:
    """The networks worth compiling: the outermost ``ModuleList`` elements (transformer blocks).

    They are always entered through ``__call__``, whereas the containing networks are
    often driven through their own methods (``rollout``, ``encode``), which
    ``Module.compile`` would not reach. Without blocks, the direct sub-networks.
    """
    chosen: dict[str, nn.Module] = {}
    for name, module in root.named_modules():
        if isinstance(module, nn.ModuleList) and not any(name.startswith(f"{c}.") for c in chosen):
            chosen.update((f"{name}.{i}" if name else str(i), block) for i, block in enumerate(module))
    if chosen:
        return list(chosen.values())
    return [child for child in root.children() if any(True for _ in child.parameters())] or [root]


def _networks(target: object) -> list[nn.Module]:
    if isinstance(target, nn.Module):
        return [target]
    return [v for v in vars(target).values() if isinstance(v, nn.Module)]  # an adapter holding its networks


def compile_networks(prep, compiled: set[int]) -> None:
    """torch.compile the backbone's, the model's and the heads' blocks of one prepared run, in place.

    ``compiled`` holds the ids of modules already compiled (a feature space shared by
    several models is compiled once). The identity and the feature-cache key record it.
    """
    if not hasattr(torch, "compile"):
        raise DfbenchError("--compile needs torch 2 or later; drop --compile.")
    for target in (prep.feature_space, prep.model, *prep.heads.values()):
        for network in _networks(target):
            for block in blocks(network):
                if id(block) not in compiled:
                    block.compile()
                    compiled.add(id(block))
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


__all__ = ["COMPILED", "blocks", "clip_to", "compile_networks"]
