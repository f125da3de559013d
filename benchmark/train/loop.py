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
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from dfbench.errors import DfbenchError
from dfbench.train.clips import ClipFeatureCache, open_source
from dfbench.train.config import TrainConfig, step_seed
from dfbench.train.objectives import TokenizerObjective, predictor_objective
from dfbench.train.recipes import build_optimizer, clip_gradients, set_learning_rate

CSV_FIELDS = ("step", "loss", "lr", "grad_norm", "seconds")
CHECKPOINT = re.compile(r"^step-(\d+)\.optimizer\.safetensors$")


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
        self.cache = ClipFeatureCache.build(source, config.clips, feature_space, num_clips, config.seed)
        log(f"encoded {len(self.cache)} training views of {num_clips} clips in {time.perf_counter() - started:.1f}s")
        # The initial weights depend on the seed alone, not on what ran before in this process.
        torch.manual_seed(config.seed)
        if config.part == "tokenizer":
            self.objective = TokenizerObjective(config, feature_space, self.cache)
        else:
            variant = model or config.model
            if variant is None:
                raise DfbenchError("choose the predictor variant with --model NAME (see 'dfbench list')")
            self.objective = predictor_objective(config, feature_space, self.cache, variant, tokenizer)
        self.model = self.objective.model
        if config.init:
            from dfbench.checkpoints import load_checkpoint

            # An objective may adapt the previous stage's weights (DINO-Foresight resizes its position tables).
            load_init = getattr(self.objective, "load_init", None)
            if load_init is not None:
                load_init(config.init)
            else:
                load_checkpoint(self.model, config.init, self.objective.metadata["model"])
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
        weights = save_safetensors(self.model, f"{stem}.safetensors", {**self.objective.metadata, "step": step, "run": self.config.name})
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
        load_checkpoint(self.model, f"{stem}.safetensors", self.objective.metadata["model"])
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
            lr = set_learning_rate(self.optimizer, config.recipe, step, total)
            loss = self.objective.loss(index, generator)
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
