"""A training run's YAML config (``configs/train/*.yaml``), checked on load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dfbench.errors import DfbenchError
from dfbench.train.clips import ClipSampling
from dfbench.train.recipes import Recipe

# What a run trains (the YAML's ``part``); evaluation tasks are another thing (dfbench.tasks).
PARTS = ("tokenizer", "predictor")
# Keys of a training YAML that only document it.
DOC_KEYS = ("commands", "notes")
REQUIRED = ("name", "part", "feature_space", "recipe", "clips", "data", "steps", "batch_size", "architecture")


@dataclass
class TrainConfig:
    """A training run, as written in ``configs/train/*.yaml``.

    Attributes:
        name: run name, used in the weights' metadata.
        part: what the run trains, "tokenizer" or "predictor" (``task`` in older configs).
        feature_space: the frozen backbone, e.g. "tiny" or "dinov3-vitb16".
        recipe: optimiser and schedule (see :class:`~dfbench.train.recipes.Recipe`).
        clips: clip sampling (see :class:`~dfbench.train.clips.ClipSampling`).
        data: ``source`` ("synthetic" or "videos"), ``split`` / ``root``, and ``cache_clips``
            (size of the in-memory feature pool).
        steps: optimiser steps.
        batch_size: clips per step.
        architecture: model sizes: DeltaTokConfig fields for a tokenizer (width, patch and
            heads default to the backbone's); ``predictor`` (PredictorConfig fields) and
            ``num_samples_train`` for a predictor.
        model: default predictor variant (``--model`` overrides it).
        tokenizer: tokenizer weights per kind, ``{"delta": ..., "frame": ...}`` (paths or hub ids).
        seed: seeds the clip pool and every step's draws.
        checkpoint_every: steps between checkpoints; a multiple of ``log_every``.
        log_every: steps averaged into one loss.csv row.
        output: default output folder.
        init: weights to start from (a previous stage's ``weights.safetensors``, e.g. the
            256-pixel tokenizer for the 512-pixel stage); the optimiser starts afresh.
            ``stage:NAME`` is stage NAME's final weights in the same output folder.
        version: config format version.
        stages: named stages run in order (DINO-Foresight's low-resolution stage, then its
            high-resolution fine-tuning), each a set of overrides of the keys above; see
            :meth:`stage`.
    """

    name: str
    part: str
    feature_space: str
    recipe: Recipe
    clips: ClipSampling
    data: dict[str, Any]
    steps: int
    batch_size: int
    architecture: dict[str, Any]
    model: str | None = None
    tokenizer: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 10
    output: str | None = None
    init: str | None = None
    version: int = 1
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise DfbenchError(f"the training config's part must be one of {PARTS}, got {self.part!r}")
        if self.checkpoint_every % self.log_every:
            raise DfbenchError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of log_every ({self.log_every}) "
                "so a resumed loss curve has no gap"
            )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        raw = {k: v for k, v in raw.items() if k not in DOC_KEYS}
        if "task" in raw and "part" not in raw:  # the key's name before evaluation tasks took the word
            raw["part"] = raw.pop("task")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DfbenchError(f"unknown keys in the training config: {unknown}; expected some of {sorted(known)}")
        missing = sorted(k for k in REQUIRED if k not in raw)
        if missing:
            raise DfbenchError(f"the training config lacks {missing}")
        try:
            return cls(
                **{
                    **raw,
                    "recipe": Recipe.from_dict(raw["recipe"]),
                    "clips": ClipSampling.from_dict(raw["clips"]),
                    "steps": int(raw["steps"]),
                    "batch_size": int(raw["batch_size"]),
                }
            )
        except (TypeError, ValueError) as error:
            raise DfbenchError(f"invalid training config: {error}") from error

    def stage_order(self) -> list[str]:
        """Stage names in the order they run: as written, but a stage after the one its ``init`` names."""
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in order:
                return
            if name in path:
                raise DfbenchError(f"training stages start from each other in a loop: {' -> '.join((*path, name))}")
            init = (self.stages.get(name) or {}).get("init") or ""
            if init.startswith("stage:"):
                visit(init.removeprefix("stage:"), (*path, name))
            order.append(name)

        for name in self.stages:
            visit(name, ())
        return order

    def stage(self, name: str, out: str | Path) -> TrainConfig:
        """The config of one stage: the shared keys with the stage's overrides merged in.

        Nested sections (``recipe``, ``clips``, ``data``, ``architecture``) merge key by key.
        ``init: stage:NAME`` becomes ``OUT/NAME/weights.safetensors``.
        """
        if name not in self.stages:
            raise DfbenchError(f"the training config has no stage {name!r}; choose one of {list(self.stages)}")
        raw = {k: v for k, v in self.to_dict().items() if k != "stages"}
        merged = merge_overrides(raw, self.stages[name])
        merged["name"] = f"{self.name}-{name}"
        init = merged.get("init")
        if isinstance(init, str) and init.startswith("stage:"):
            merged["init"] = str(Path(out) / init.removeprefix("stage:") / "weights.safetensors")
        return TrainConfig.from_dict(merged)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise DfbenchError(f"training config '{path}' not found")
        return cls.from_dict(yaml.safe_load(path.read_text()))

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["recipe"], data["clips"] = self.recipe.to_dict(), self.clips.to_dict()
        return data


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; dictionaries on both sides merge recursively."""
    out = dict(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = value
    return out


def step_seed(seed: int, step: int) -> int:
    """The seed of one step's draws (batch, noise, RoPE augmentation)."""
    return (seed * 1_000_003 + step) % (2**63)
