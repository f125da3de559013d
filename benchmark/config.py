"""Versioned YAML configs shipped inside the package (``dfbench.configs``)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

from dfbench.errors import DfbenchError


def load_yaml(*parts: str) -> dict[str, Any]:
    """Reads ``configs/<parts...>`` from the installed package."""
    resource = files("dfbench.configs").joinpath(*parts)
    if not resource.is_file():
        raise DfbenchError(f"config {'/'.join(parts)} is not in the installed package; reinstall dfbench.")
    return yaml.safe_load(resource.read_text())


@dataclass(frozen=True)
class Protocol:
    """Evaluation protocol parameters (configs/protocol/*.yaml)."""

    name: str
    version: str
    clip_length: int
    context_length: int
    horizons: dict[str, int]
    max_aspect: float
    loss_beta: float
    default_num_samples: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


def load_protocol(name: str = "dinoworld") -> Protocol:
    raw = load_yaml("protocol", f"{name}.yaml")
    return Protocol(
        name=raw["name"],
        version=str(raw["version"]),
        clip_length=int(raw["clip_length"]),
        context_length=int(raw["context_length"]),
        horizons={str(k): int(v) for k, v in raw["horizons"].items()},
        max_aspect=float(raw["max_aspect"]),
        loss_beta=float(raw["scoring"]["beta"]),
        default_num_samples=int(raw["scoring"]["default_num_samples"]),
    )
