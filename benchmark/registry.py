"""Lazy registries of models, data sets and feature spaces.

Built-ins are listed as ``"module:Class"`` targets so that ``dfbench list`` imports
nothing heavy; third-party adapters come in through the ``dfbench.adapters``
entry-point group. Unknown names get the nearest suggestion.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Any

from dfbench.errors import DfbenchError

# name -> module whose import registers it (through @register_model). A test checks
# that every entry registers exactly the name it is listed under.
BUILTIN_MODELS: dict[str, str] = {
    "copy-last": "dfbench.adapters.copy_last",
    "dino-world": "dfbench.adapters.predictor_models",
    "dino-world-bom": "dfbench.adapters.predictor_models",
    "deltaworld": "dfbench.adapters.predictor_models",
    "deltaworld-frame": "dfbench.adapters.predictor_models",
    "deltaworld-nobom": "dfbench.adapters.predictor_models",
    "present": "dfbench.adapters.present",
}

BUILTIN_DATASETS: dict[str, str] = {
    "synthetic": "dfbench.data.synthetic:SyntheticDataset",
    "cityscapes": "dfbench.data.cityscapes:CityscapesDataset",
    "kitti": "dfbench.data.kitti:KittiDataset",
    "vspw": "dfbench.data.vspw:VspwDataset",
}

BUILTIN_FEATURE_SPACES: dict[str, str] = {
    "tiny": "dfbench.features.tiny:load_tiny",
    "dinov3-vits16": "dfbench.features.dinov3:load_dinov3_vits16",
    "dinov3-vitb16": "dfbench.features.dinov3:load_dinov3_vitb16",
    "dinov3-vitl16": "dfbench.features.dinov3:load_dinov3_vitl16",
}

ENTRY_POINT_GROUP = "dfbench.adapters"


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _unknown(kind: str, name: str, known: list[str]) -> DfbenchError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return DfbenchError(f"unknown {kind} '{name}'.{hint} Run 'dfbench list' to see the {kind}s available.")


def register_model(name: str):
    """Class decorator that registers a WorldModel under ``name``."""

    def wrap(cls):
        from dfbench.adapters.base import WorldModel

        if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
            raise TypeError(f"{cls!r} must subclass dfbench.adapters.base.WorldModel")
        cls.name = name
        _REGISTERED[name] = cls
        return cls

    return wrap


_REGISTERED: dict[str, type] = {}


def _plugin_models() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def model_names() -> list[str]:
    return sorted({*BUILTIN_MODELS, *_REGISTERED, *_plugin_models()})


def get_model_class(name: str) -> type:
    from dfbench.adapters.base import WorldModel

    if name not in _REGISTERED and name in BUILTIN_MODELS:
        importlib.import_module(BUILTIN_MODELS[name])
    if name in _REGISTERED:
        cls = _REGISTERED[name]
    elif name in (plugins := _plugin_models()):
        cls = plugins[name].load()
    else:
        raise _unknown("model", name, model_names())
    if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
        raise DfbenchError(f"model '{name}' resolves to {cls!r}, which is not a WorldModel subclass; fix its entry point.")
    return cls


def dataset_names() -> list[str]:
    return sorted(BUILTIN_DATASETS)


def get_dataset_class(name: str) -> type:
    if name not in BUILTIN_DATASETS:
        raise _unknown("dataset", name, dataset_names())
    return _resolve(BUILTIN_DATASETS[name])


def feature_space_names() -> list[str]:
    return sorted(BUILTIN_FEATURE_SPACES)


def get_feature_space_loader(name: str):
    if name not in BUILTIN_FEATURE_SPACES:
        raise _unknown("feature space", name, feature_space_names())
    return _resolve(BUILTIN_FEATURE_SPACES[name])
