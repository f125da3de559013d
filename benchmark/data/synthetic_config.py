"""The synthetic world's versioned description (``configs/datasets/synthetic.yaml``) and its spec.

The YAML holds the generator's parameters and version, so it is the source of the
data set's version, fps and classes; this module imports no torch.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import cache

import yaml

from dfbench.data.spec import DatasetSpec

MOVING = ("car", "person")  # the classes of the synthetic world's agents


@dataclass(frozen=True)
class SyntheticConfig:
    """configs/datasets/synthetic.yaml: the generator's parameters and version."""

    name: str
    version: int
    fps: float
    native_size: tuple[int, int]
    frame_size: int
    clip_length: int
    clip_stride: int
    classes: tuple[str, ...]
    splits: dict[str, int]


@cache
def load_config() -> SyntheticConfig:
    """Reads the versioned description of the synthetic data set shipped with dfbench."""
    text = importlib.resources.files("dfbench.configs").joinpath("datasets/synthetic.yaml").read_text()
    raw = yaml.safe_load(text)
    return SyntheticConfig(
        name=raw["name"],
        version=int(raw["version"]),
        fps=float(raw["fps"]),
        native_size=tuple(raw["native_size"]),
        frame_size=int(raw["frame_size"]),
        clip_length=int(raw["clip_length"]),
        clip_stride=int(raw["clip_stride"]),
        classes=tuple(raw["classes"]),
        splits={str(k): int(v) for k, v in raw["splits"].items()},
    )


def synthetic_spec(config: SyntheticConfig) -> DatasetSpec:
    """The data set's spec: version, fps and classes are the generator's (its YAML)."""
    return DatasetSpec(
        name=config.name,
        display="Synthetic",
        version=str(config.version),
        tasks={"seg": len(config.classes), "depth": 1},
        fps=config.fps,
        env=None,  # generated, no files
        default_feature_space="tiny",  # the embedded feature space its heads were fitted in
        decode_workers=0,  # rendering a clip is cheaper than starting worker processes
        train_frames="dfbench.data.synthetic:TRAIN_CLIPS",
        moving_classes=tuple(config.classes.index(name) for name in MOVING if name in config.classes),
        protocol_feature_spaces={"dinoforesight": "tiny-ml-pca"},  # multi-layer PCA over the embedded backbone
    )
