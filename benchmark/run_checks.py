"""The cheap checks `dfbench run` makes before loading any weights: numbers, device, names, files."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch

from dfbench.errors import DfbenchError

# Options that have their own flag and must not come in through --model-arg / --dataset-arg.
OWN_FLAGS = {"checkpoint": "--checkpoint", "feature_space": "--feature-space", "root": "--data-root",
             "frame_size": "the feature space", "labels": "--protocol", "resize": "--protocol"}


def check_counts(num_samples: int | None, batch_size: int, limit: int | None, num_workers: int | None) -> None:
    """Numbers that must be positive (or non-negative) are checked before any work."""
    for flag, value in (("--num-samples", num_samples), ("--batch-size", batch_size), ("--limit", limit)):
        if value is not None and value < 1:
            raise DfbenchError(f"{flag} must be at least 1, got {value}.")
    if num_workers is not None and num_workers < 0:
        raise DfbenchError(f"--num-workers must be at least 0, got {num_workers}.")


def parse_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked against what this machine has."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DfbenchError(f"unknown device '{name}'; pass cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DfbenchError(f"device '{name}' requested but CUDA is not available here; pass --device cpu.")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DfbenchError(f"device '{name}' does not exist: this machine has {count} CUDA device(s), "
                               f"cuda:0 to cuda:{count - 1}.")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DfbenchError(f"device '{name}' requested but MPS is not available here; pass --device cpu.")
    elif device.type != "cpu":
        raise DfbenchError(f"unsupported device '{name}'; pass cpu, cuda, cuda:N or mps.")
    return device


def parse_key_values(values: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that reads as JSON (``3``, ``true``, ``0.5``) becomes that value."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise DfbenchError(f"{flag} takes KEY=VALUE, got '{item}'.")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def check_constructor_options(target: type, options: dict[str, Any], what: str, flag: str) -> None:
    """Every option must be a named keyword parameter of ``target``'s constructors.

    ``**options`` catch-alls do not count: a misspelt key would silently do nothing while
    still changing the result's identity.
    """
    named: set[str] = set()
    for cls in inspect.getmro(target):
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        named |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key in options:
        if key in OWN_FLAGS:
            raise DfbenchError(f"{flag} {key}=... is not accepted; use {OWN_FLAGS[key]} instead.")
        if key not in named:
            known = sorted(named - {"self", *OWN_FLAGS})
            hint = f"it takes {', '.join(known)}" if known else "it takes no options"
            raise DfbenchError(f"{what} has no option '{key}' ({hint}); fix {flag}.")


def check_local_file(source: str | None, flag: str) -> None:
    """A value that names a local file (has a suffix or a path separator beyond owner/name) must exist."""
    if source is None:
        return
    path_part = source.partition("::")[0] if "::" in source else source
    path = Path(path_part).expanduser()
    if path.exists():
        return
    hub_like = path_part.count("/") == 1 and not path_part.startswith((".", "/", "~")) and not path.suffix
    if not hub_like:
        raise DfbenchError(f"{flag} '{source}' does not exist; pass an existing file (or a hub id owner/name).")
