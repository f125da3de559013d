"""The training loop: a YAML config in, safetensors weights, resumable checkpoints and a loss CSV out.

One loop trains the tokenizer (DeltaTok, delta or frame tokens) and every predictor
variant (DeltaWorld, -frame, -nobom, DINO-world, -bom). The losses are the models' own:
``log_cosh`` for the tokenizer and the predictors' ``training_loss`` (smooth-L1, and
best-of-many with a gradient-free selection pass); the optimiser and schedule come from
:mod:`dfbench.train.recipes`.

Every random draw of step ``s`` comes from a generator seeded with ``(seed, s)``: the batch,
the noise queries and the tokenizer's RoPE coordinate augmentation (torch's global
generator). With AdamW state and the step saved in the checkpoints, a resumed run is
bit-identical to an uninterrupted one on the same machine.

Output folder layout::

    OUT/config.yaml                          the resolved training config
    OUT/loss.csv                             step, loss, lr, grad_norm, seconds
    OUT/checkpoints/step-0001000.safetensors the trained weights at that step (loadable
                                             like a shipped asset)
    OUT/checkpoints/step-0001000.optimizer.safetensors   AdamW state (latest only)
    OUT/weights.safetensors                  the final weights
"""

from __future__ import annotations

import csv
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from dfbench.errors import DfbenchError
from dfbench.train.clips import ClipSampling, FeatureCache, open_source
from dfbench.train.recipes import Recipe, build_optimizer, clip_gradients, delta_token_loss, set_learning_rate

TASKS = ("tokenizer", "predictor")
# Predictor variants: which tokenizer (delta or frame tokens) and whether best-of-many.
PREDICTORS: dict[str, dict[str, Any]] = {
    "deltaworld": {"family": "deltaworld", "use_delta": True, "use_bom": True},
    "deltaworld-frame": {"family": "deltaworld", "use_delta": False, "use_bom": True},
    "deltaworld-nobom": {"family": "deltaworld", "use_delta": True, "use_bom": False},
    "dino-world": {"family": "dino-world", "use_bom": False},
    "dino-world-bom": {"family": "dino-world", "use_bom": True},
}
# Keys of a training YAML that only document it.
DOC_KEYS = ("commands", "notes")
CSV_FIELDS = ("step", "loss", "lr", "grad_norm", "seconds")
CHECKPOINT = re.compile(r"^step-(\d+)\.optimizer\.safetensors$")


@dataclass
class TrainConfig:
    """A training run, as written in ``configs/train/*.yaml``.

    Attributes:
        name: run name, used in the weights' metadata.
        task: "tokenizer" or "predictor".
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
        version: config format version.
    """

    name: str
    task: str
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

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DfbenchError(f"training task must be one of {TASKS}, got {self.task!r}")
        if self.checkpoint_every % self.log_every:
            raise DfbenchError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of log_every ({self.log_every}) "
                "so a resumed loss curve has no gap"
            )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        raw = {k: v for k, v in raw.items() if k not in DOC_KEYS}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DfbenchError(f"unknown keys in the training config: {unknown}; expected some of {sorted(known)}")
        missing = sorted(k for k in ("name", "task", "feature_space", "recipe", "clips", "data", "steps", "batch_size", "architecture") if k not in raw)
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


def step_seed(seed: int, step: int) -> int:
    """The seed of one step's draws (batch, noise, RoPE augmentation)."""
    return (seed * 1_000_003 + step) % (2**63)


def backbone_heads(feature_space: nn.Module) -> int | None:
    config = getattr(getattr(feature_space, "model", None), "config", None)
    return getattr(config, "num_attention_heads", None)


class TokenizerTask:
    """DeltaTok on frame pairs: ``log_cosh(decode(encode(y_a, y_b), y_a), y_b)``."""

    def __init__(self, config: TrainConfig, feature_space: nn.Module, cache: FeatureCache) -> None:
        from dfbench.models.deltatok import DeltaTok, DeltaTokConfig

        arch = dict(config.architecture)
        arch.setdefault("num_heads", backbone_heads(feature_space))
        tok_config = DeltaTokConfig(hidden_size=feature_space.dim, patch_size=feature_space.patch_size, **arch)
        self.model = DeltaTok(tok_config)
        self.cache = cache
        self.metadata = {"model": "deltatok" if tok_config.use_delta else "deltatok-frame", "config": tok_config.to_dict()}

    def loss(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from dfbench.models.deltatok import log_cosh

        y = self.cache.features[index]
        # In train mode the tokenizer's RoPE uses DINOv3's coordinate augmentation, as in the reference.
        prediction = self.model.reconstruct(y[:, 0], y[:, 1], self.cache.grid)
        return log_cosh(prediction, y[:, 1])


def load_tokenizer(source: str, use_delta: bool) -> nn.Module:
    """A trained DeltaTok from our safetensors (config in the metadata) or a released file."""
    from dfbench.checkpoints import load_checkpoint, read_safetensors_metadata
    from dfbench.models.deltatok import DeltaTok, DeltaTokConfig

    config = None
    if source.endswith(".safetensors") and Path(source).is_file():
        saved = read_safetensors_metadata(source).get("config")
        config = DeltaTokConfig.from_dict(saved) if saved else None
    config = config or DeltaTokConfig.vitb(use_delta=use_delta)
    if config.use_delta != use_delta:
        kind = "delta" if use_delta else "frame"
        raise DfbenchError(f"tokenizer '{source}' has use_delta={config.use_delta}; this model needs a {kind}-token tokenizer")
    tokenizer = DeltaTok(config)
    load_checkpoint(tokenizer, source, "deltatok")
    return tokenizer


class PredictorTask:
    """A DeltaWorld or DINO-world predictor with its model's ``training_loss``.

    DeltaWorld's tokenizer is frozen and in eval mode, so the delta tokens of the cached
    clips never change: they are computed once and the loss runs from them
    (:func:`~dfbench.train.recipes.delta_token_loss`).
    """

    def __init__(
        self, config: TrainConfig, feature_space: nn.Module, cache: FeatureCache, variant: str, tokenizer: str | None
    ) -> None:
        from dfbench.models.deltaworld import DeltaWorld, DeltaWorldConfig
        from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig
        from dfbench.models.predictor import PredictorConfig

        if variant not in PREDICTORS:
            raise DfbenchError(f"unknown predictor {variant!r}; choose one of {sorted(PREDICTORS)}")
        spec = PREDICTORS[variant]
        arch = dict(config.architecture)
        predictor = PredictorConfig(input_size=feature_space.dim, **arch.pop("predictor"))
        extra = {"use_bom": spec["use_bom"], "noise_std": feature_space.noise_std, **arch}
        self.cache, self.variant, self.tokens = cache, variant, None
        if spec["family"] == "deltaworld":
            kind = "delta" if spec["use_delta"] else "frame"
            source = tokenizer or config.tokenizer.get(kind)
            if source is None:
                raise DfbenchError(f"{variant} needs a {kind}-token tokenizer: pass --tokenizer PATH or set tokenizer.{kind}")
            model_config = DeltaWorldConfig(predictor=predictor, **extra)
            self.model = DeltaWorld(load_tokenizer(str(source), spec["use_delta"]), model_config)
            grid = cache.grid
            side = grid[0] * feature_space.patch_size
            with torch.no_grad():
                self.x_black = feature_space.black_frame(side, side).float()
            self.tokens = torch.cat(
                [self.model.context_tokens(chunk, self.x_black, grid) for chunk in cache.features.split(64)]
            )
        else:
            if len(predictor.rope_axis_sizes) != 3:
                raise DfbenchError(f"{variant} needs three RoPE axes (t, w, h); this config has {predictor.rope_axis_sizes}")
            model_config = DINOWorldConfig(predictor=predictor, **extra)
            self.model = DINOWorld(model_config)
        self.metadata = {"model": variant, "config": model_config.to_dict()}

    def loss(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        timestamps = self.cache.timestamps[index]
        if self.tokens is not None:
            return delta_token_loss(self.model, self.tokens[index], timestamps, generator=generator)
        return self.model.training_loss(self.cache.features[index], timestamps, self.cache.grid, generator=generator)


@dataclass
class TrainResult:
    """What a run produced."""

    weights: Path
    steps: int
    last_loss: float
    seconds: float


class Trainer:
    """Builds the data pool, the model and AdamW from a config, and runs the steps.

    Args:
        config: the run.
        out_dir: output folder (default ``config.output``).
        model: predictor variant (default ``config.model``); ignored for a tokenizer.
        tokenizer: tokenizer weights for a DeltaWorld variant (default from the config).
        feature_space: an already loaded feature space (default: ``config.feature_space``).
        log: a callable for progress lines.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path | None = None,
        model: str | None = None,
        tokenizer: str | None = None,
        feature_space: nn.Module | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config, self.log = config, log
        out = out_dir or config.output
        if out is None:
            raise DfbenchError("no output folder: pass --out DIR or set `output` in the config")
        self.out = Path(out)
        # The data source first: a missing video folder should not wait for a backbone download.
        source = open_source(config.data)
        if feature_space is None:
            from dfbench.features import load_feature_space

            feature_space = load_feature_space(config.feature_space)
        num_clips = int(config.data.get("cache_clips", 0))
        if num_clips <= 0:
            raise DfbenchError("data.cache_clips must name how many clips the in-memory feature pool holds")
        started = time.perf_counter()
        self.cache = FeatureCache.build(source, config.clips, feature_space, num_clips, config.seed)
        log(f"encoded {len(self.cache)} training views of {num_clips} clips in {time.perf_counter() - started:.1f}s")
        # The initial weights depend on the seed alone, not on what ran before in this process.
        torch.manual_seed(config.seed)
        if config.task == "tokenizer":
            self.task = TokenizerTask(config, feature_space, self.cache)
        else:
            variant = model or config.model
            if variant is None:
                raise DfbenchError(f"choose the predictor with --model ({'|'.join(PREDICTORS)})")
            self.task = PredictorTask(config, feature_space, self.cache, variant, tokenizer)
        self.model = self.task.model
        if config.init:
            from dfbench.checkpoints import load_checkpoint

            load_checkpoint(self.model, config.init, self.task.metadata["model"])
            log(f"initialised from {config.init}")
        self.optimizer = build_optimizer(self.model, config.recipe)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]

    # -- checkpoints ---------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def latest_checkpoint(self) -> int | None:
        if not self.checkpoint_dir.is_dir():
            return None
        steps = [int(m[1]) for p in self.checkpoint_dir.iterdir() if (m := CHECKPOINT.match(p.name))]
        return max(steps) if steps else None

    def save_checkpoint(self, step: int, seconds: float) -> Path:
        from dfbench.checkpoints import save_safetensors

        stem = self.checkpoint_dir / f"step-{step:07d}"
        weights = save_safetensors(self.model, f"{stem}.safetensors", {**self.task.metadata, "step": step, "run": self.config.name})
        state = self.optimizer.state_dict()
        tensors = {f"state.{i}.{k}": v for i, s in state["state"].items() for k, v in s.items()}
        groups = [{**g, "betas": list(g["betas"])} for g in state["param_groups"]]
        save_safetensors(tensors, f"{stem}.optimizer.safetensors", {"step": step, "seconds": seconds, "param_groups": groups})
        # Keep every step's weights but only the newest optimizer state (it is twice their size).
        for path in self.checkpoint_dir.glob("step-*.optimizer.safetensors"):
            if path.name != f"step-{step:07d}.optimizer.safetensors":
                path.unlink()
        return weights

    def load_checkpoint(self, step: int) -> float:
        """Restores weights, AdamW state; returns the wall seconds spent so far."""
        from dfbench.checkpoints import load_checkpoint, read_safetensors_metadata

        stem = self.checkpoint_dir / f"step-{step:07d}"
        load_checkpoint(self.model, f"{stem}.safetensors", self.task.metadata["model"])
        meta = read_safetensors_metadata(f"{stem}.optimizer.safetensors")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, tensor in load_file(f"{stem}.optimizer.safetensors").items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensor
        groups = [{**g, "betas": tuple(g["betas"])} for g in meta["param_groups"]]
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        return float(meta.get("seconds", 0.0))

    # -- the loop ------------------------------------------------------------------------

    def _prepare_output(self, resume: bool) -> tuple[int, float]:
        latest = self.latest_checkpoint()
        csv_path = self.out / "loss.csv"
        if latest is not None and not resume:
            raise DfbenchError(f"'{self.out}' already holds checkpoints (step {latest}); pass --resume or another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        if latest is None:
            with open(csv_path, "w", newline="") as handle:
                csv.writer(handle).writerow(CSV_FIELDS)
            return 0, 0.0
        seconds = self.load_checkpoint(latest)
        # Rows logged after the checkpoint belong to steps that will run again.
        rows = list(csv.DictReader(open(csv_path, newline=""))) if csv_path.is_file() else []
        with open(csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["step"]) <= latest)
        self.log(f"resumed from step {latest}")
        return latest, seconds

    def run(self, steps: int | None = None, resume: bool = False) -> TrainResult:
        """Trains to ``steps`` total optimiser steps (default ``config.steps``).

        Args:
            steps: total steps of the run, counting those before a resume.
            resume: continue from the newest checkpoint in the output folder.
        """
        config = self.config
        total = int(steps or config.steps)
        start, seconds = self._prepare_output(resume)
        self.model.train()
        window: list[float] = []
        last_loss, norm = float("nan"), 0.0
        clock = time.perf_counter() - seconds
        for step in range(start, total):
            seed = step_seed(config.seed, step)
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            index = torch.randint(len(self.cache), (config.batch_size,), generator=generator)
            lr = set_learning_rate(self.optimizer, config.recipe, step)
            loss = self.task.loss(index, generator)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = clip_gradients(self.params, config.recipe.grad_clip)
            self.optimizer.step()
            window.append(float(loss.detach()))
            done = step + 1
            if done % config.log_every == 0 or done == total:
                last_loss = sum(window) / len(window)
                elapsed = time.perf_counter() - clock
                with open(self.out / "loss.csv", "a", newline="") as handle:
                    csv.writer(handle).writerow([done, f"{last_loss:.6g}", f"{lr:.6g}", f"{norm:.6g}", f"{elapsed:.2f}"])
                self.log(f"step {done}/{total}  loss {last_loss:.5f}  lr {lr:.2e}  |g| {norm:.3g}  {elapsed:.0f}s")
                window = []
            if done % config.checkpoint_every == 0 or done == total:
                self.save_checkpoint(done, time.perf_counter() - clock)
        final_step = max(start, total) if total > start else start
        latest = self.latest_checkpoint()
        if latest is None:
            raise DfbenchError("nothing was trained: the run has 0 steps")
        weights = self.out / "weights.safetensors"
        shutil.copyfile(self.checkpoint_dir / f"step-{latest:07d}.safetensors", weights)
        return TrainResult(weights=weights, steps=final_step, last_loss=last_loss, seconds=time.perf_counter() - clock)
