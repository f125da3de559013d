"""The evaluation loop: clips -> crops -> features -> forecasts -> scores -> records."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dfbench.adapters.base import Context, WorldModel
from dfbench.config import Protocol
from dfbench.data.base import Clip
from dfbench.errors import DfbenchError
from dfbench.feature_cache import FeatureCache
from dfbench.features.base import FeatureSpace
from dfbench.head_stats import RowLabels, window_statistics
from dfbench.heads.linear import features_to_map
from dfbench.pixels import forecast_pixels, is_pixel_model
from dfbench.protocol import Window, align_to_labels, crop_views, label_views, token_grid, windows
from dfbench.results import parse_stat_key, stat_key
from dfbench.sample_scores import ENSEMBLE, EnsembleStats, ensemble_statistics, stats_owner
from dfbench.sample_scores import STAT as ENSEMBLE_STAT
from dfbench.scoring import score_rollouts
from dfbench.tasks import Task, get_task


# The crop index of a pixel model's generator: it sees whole frames, one generator per clip.
WHOLE_FRAME = -1


def row_generator(seed: int, sample_id: str, crop: int, horizon: str) -> torch.Generator:
    """A generator that depends only on (seed, clip, crop, horizon).

    So a crop's samples are the same whatever the batch size, device count or resume
    point. sha256 rather than hash(): Python salts string hashes per process.
    """
    digest = hashlib.sha256(f"{seed}/{sample_id}/{crop}/{horizon}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


@dataclass
class EncodedClip:
    """A clip cut into its R square crops, with their features and label halves."""

    clip: Clip
    crops: torch.Tensor  # uint8 [R, T, 3, S, S]
    features: torch.Tensor  # [R, T, N, D]
    halves: dict[str, torch.Tensor]  # task -> [R, T, lh, lw]
    grid: tuple[int, int]
    encoded_frames: tuple[int, ...]  # the time indices put through the backbone; the others' features are NaN

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.clip.frames.shape[-2:])



@torch.no_grad()
def encode_clip(
    clip: Clip,
    feature_space: FeatureSpace,
    device: torch.device,
    feature_cache: FeatureCache | None = None,
    cache_key: tuple[str, ...] = (),
    crops_mode: str = "square",
    frames: list[int] | None = None,
) -> EncodedClip:
    """Crops, features and label halves of one clip, one encoder call per clip.

    Encoding clip by clip keeps features identical at every batch size. ``crops_mode``
    "none" (a protocol's ``crops``) keeps whole frames and labels: one row per clip.
    ``frames``: the time indices whose features are read (every frame when None). The
    backbone sees only those; the others are NaN, so that a read of one cannot pass
    unnoticed. With a feature cache every frame is encoded, so that its entries are whole.
    """
    crops = crop_views(clip.frames, crops_mode)
    grid = token_grid(feature_space, crops)
    key = (*cache_key, clip.sample_id)
    every = list(range(crops.shape[1]))
    read = every if frames is None or feature_cache is not None else sorted(set(frames))
    features = None if feature_cache is None else feature_cache.get(key)
    if features is None:
        chosen = crops if read == every else crops[:, read]
        flat = chosen.reshape(-1, *crops.shape[-3:]).to(device)
        # Each frame's features are those of a call over all frames, bit for bit (tests/test_clip_batch.py).
        computed = feature_space.encode(flat).float().reshape(crops.shape[0], len(read), grid[0] * grid[1], -1)
        features = computed if read == every else _unread_as_nan(computed, read, len(every))
        if feature_cache is not None:
            feature_cache.put(key, features)
    height, width = clip.frames.shape[-2:]
    halves = {
        task: label_views(labels, height, width, get_task(task).ignore_value, crops_mode) for task, labels in clip.labels.items()
    }
    return EncodedClip(clip, crops, features.to(device), halves, grid, tuple(read))


def _unread_as_nan(computed: torch.Tensor, read: list[int], frames: int) -> torch.Tensor:
    """[R, T, N, D] features with ``computed`` [R, len(read), N, D] at ``read`` and NaN elsewhere."""
    features = computed.new_full((computed.shape[0], frames, *computed.shape[2:]), float("nan"))
    features[:, read] = computed
    return features


def crop_rows(clips: list[EncodedClip]) -> list[tuple[int, int]]:
    """(clip index, crop index) of every row of a batch, clip-major: the batch's row order."""
    return [(i, r) for i, c in enumerate(clips) for r in range(c.crops.shape[0])]


@dataclass
class Evaluator:
    """Evaluates one world model on clips of one data set under one protocol."""

    model: WorldModel
    feature_space: FeatureSpace
    heads: dict[str, nn.Module]
    protocol: Protocol
    num_samples: int
    horizons: list[str]
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    feature_cache: FeatureCache | None = None
    cache_key: tuple[str, ...] = ()
    autocast_dtype: torch.dtype | None = None

    def windows(self) -> list[Window]:
        chosen = {h: self.protocol.horizons[h] for h in self.horizons}
        return windows(self.protocol.clip_length, self.protocol.context_length, chosen)

    @property
    def reads_targets(self) -> bool:
        """Whether the targets' features are read: an oracle's input, or the truth a best sample is chosen by."""
        return self.model.oracle or (self.model.stochastic and self.num_samples > 1)

    def frames_read(self) -> list[int]:
        """The time indices whose features this evaluation reads: the windows' context, and targets if read.

        One sample of a stochastic model is both its best and its mean, so no truth is needed
        to choose it; at the paper's clip length the last frame is then never encoded.
        """
        read = set()
        for window in self.windows():
            read.update(window.context)
            if self.reads_targets:
                read.update(window.targets)
        return sorted(read)

    def encode(self, clip: Clip, frames: list[int] | None = None) -> EncodedClip:
        """The clip encoded for this evaluation: its read frames, or ``frames`` (shared with other evaluators)."""
        return encode_clip(clip, self.feature_space, self.device, self.feature_cache, self.cache_key, self.protocol.crops,
                           self.frames_read() if frames is None else frames)

    @torch.no_grad()
    def evaluate(self, clips: list[EncodedClip]) -> list[dict[str, Any]]:
        """Per-clip records of sufficient statistics for a batch of encoded clips."""
        if len(clips) > 1 and getattr(self.model, "one_clip_per_call", False):
            # Every call as at --batch-size 1, in the same order, so not one bit depends on the batch.
            return [record for clip in clips for record in self.evaluate([clip])]
        stats: list[dict[str, Any]] = [{} for _ in clips]
        rows = crop_rows(clips)
        for window in self.windows():
            preds, targets = self.rollouts(clips, window)
            done: list[tuple[torch.Tensor, dict[str, list[list[Any]]]]] = []
            for stat, chosen in self.score(preds, targets).items():
                # One sample makes best and mean the same features: their heads and statistics once.
                same = next((computed for features, computed in done if torch.equal(features, chosen)), None)
                computed = copy.deepcopy(same) if same is not None else self._window_stats(clips, rows, window, chosen)
                done.append((chosen, computed))
                self._accumulate(stats, rows, window, stat, computed)
            if self.model.stochastic and preds.shape[1] > 1:
                self._accumulate_ensemble(stats, rows, window, preds, targets)
        return [{"sample_id": c.clip.sample_id, "stats": s} for c, s in zip(clips, stats)]

    @torch.no_grad()
    def forecast(self, clips: list[EncodedClip], window: Window) -> dict[str, torch.Tensor]:
        """The model's side of one window: context, predict, checks and scoring.

        Returns stat ("best", "mean" or "single") -> the features [rows, K, N, D] the heads
        read, one row per crop of :func:`crop_rows`. Scored with the protocol's loss, so
        what the demo figure shows is what the evaluation scores.
        """
        return self.score(*self.rollouts(clips, window))

    def score(self, preds: torch.Tensor, targets: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Best-of-S, mean-of-S or single, under the protocol's feature loss."""
        return score_rollouts(preds, targets, self.model.stochastic, self.protocol.loss_beta)

    @torch.no_grad()
    def rollouts(self, clips: list[EncodedClip], window: Window) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Checked predictions [rows, S, K, N, D] (float32) and true features [rows, K, N, D] of one window.

        The true features are None where the evaluation does not read them (:attr:`reads_targets`).
        """
        rows = crop_rows(clips)
        grid = clips[0].grid
        if any(c.grid != grid for c in clips):
            raise DfbenchError("clips of one batch have different crop sizes; use --batch-size 1 for this data set.")
        features = torch.cat([c.features for c in clips])
        tgt = list(window.targets)
        missing = sorted(set(self.frames_read()) - set.intersection(*(set(c.encoded_frames) for c in clips)))
        if missing:
            raise DfbenchError(
                f"model '{self.model.name}' reads frames {missing} that were not encoded; "
                "encode clips shared by several evaluators with frames_read_by(evaluators)."
            )
        truth = features[:, tgt] if self.reads_targets else None
        if is_pixel_model(self.model):
            # Whole frames in, frames out: one generator per clip, crops encoded by the harness.
            generators = [row_generator(self.seed, c.clip.sample_id, WHOLE_FRAME, window.horizon_name) for c in clips]
            preds = forecast_pixels(self.model, self.feature_space, clips, window, self.num_samples, generators, self.device)
            return self._checked(preds, features.shape, len(tgt)).float(), truth
        frames = torch.cat([c.crops for c in clips])
        timestamps = torch.cat([c.clip.timestamps.expand(c.crops.shape[0], -1) for c in clips]).to(self.device)
        ctx = list(window.context)
        generators = [row_generator(self.seed, clips[i].clip.sample_id, r, window.horizon_name) for i, r in rows]
        context = Context(
            frames=frames[:, ctx].to(self.device),
            timestamps=timestamps[:, ctx],
            features=features[:, ctx],
            grid=grid,
            generators=generators,
            future_features=truth if self.model.oracle else None,
        )
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            forecast = self.model.predict(context, timestamps[:, tgt], self.num_samples)
        preds = self._checked(forecast.features, features.shape, len(tgt))
        return preds.float(), truth

    @torch.no_grad()
    def aligned_outputs(
        self, clips: list[EncodedClip], window: Window, task: str, chosen: torch.Tensor
    ) -> list[torch.Tensor]:
        """The task head's outputs [K, C, lh, lw] on ``chosen`` features, per crop row, on its label half."""
        outputs = self.heads[task](features_to_map(chosen, clips[0].grid)).float()
        outputs = outputs.reshape(chosen.shape[0], len(window.targets), *outputs.shape[1:])
        aligned = []
        for row, (i, r) in enumerate(crop_rows(clips)):
            if self.protocol.crops == "none":  # whole frames: the task upsamples to its labels itself
                aligned.append(outputs[row])
                continue
            label_size = tuple(clips[i].halves[task].shape[-2:])
            aligned.append(align_to_labels(outputs[row], r, label_size, *clips[i].frame_size))
        return aligned

    def _checked(self, preds: torch.Tensor, feature_shape: torch.Size, steps: int) -> torch.Tensor:
        rows, _, tokens, dim = feature_shape
        samples = self.num_samples if self.model.stochastic else 1
        expected = (rows, samples, steps, tokens, dim)
        if tuple(preds.shape) != expected:
            raise DfbenchError(
                f"model '{self.model.name}' returned predictions of shape {tuple(preds.shape)}, expected {expected} "
                "[rows, samples, steps, tokens, dim]; fix the adapter's predict()."
            )
        if not torch.isfinite(preds).all():
            raise DfbenchError(
                f"model '{self.model.name}' returned non-finite predictions (NaN or inf); check its checkpoint and dtype."
            )
        return preds

    def _window_stats(self, clips, rows, window: Window, chosen: torch.Tensor) -> dict[str, list[list[Any]]]:
        """Task -> per crop row, per step, the statistics of ``chosen`` (None: no valid pixel)."""
        targets = list(window.targets)
        out = {}
        for name, head in self.heads.items():
            labelled = [RowLabels(i, r, clips[i].halves[name][r][targets], clips[i].frame_size) for i, r in rows]
            out[name] = window_statistics(head, get_task(name), chosen, clips[0].grid, labelled,
                                          whole_frames=self.protocol.crops == "none")
        return out

    def _accumulate(self, stats, rows, window: Window, stat: str, computed: dict[str, list[list[Any]]]) -> None:
        for name, per_row in computed.items():
            task = get_task(name)
            for (i, _), per_step in zip(rows, per_row):
                self._add(stats[i], task, window.horizon_name, stat, per_step)

    def _accumulate_ensemble(self, stats, rows, window: Window, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Adds the sample scores (``dfbench.sample_scores``) of every crop row to its clip's record."""
        owner = EnsembleStats()
        for (i, _), per_step in zip(rows, ensemble_statistics(preds, targets, self.protocol.loss_beta)):
            for step, step_stats in enumerate(per_step):
                key = stat_key(ENSEMBLE, window.horizon_name, step, ENSEMBLE_STAT)
                stats[i][key] = step_stats if key not in stats[i] else owner.merge(stats[i][key], step_stats)

    @staticmethod
    def _add(stats: dict[str, Any], task: Task, horizon: str, stat: str, per_step: list[Any]) -> None:
        """Adds one crop's per-step statistics to its clip's record, merging with the other crop's."""
        for step, step_stats in enumerate(per_step):
            if step_stats is None:  # no valid pixel: not a metric update (see Task.statistics)
                continue
            key = stat_key(task.name, horizon, step, stat)
            stats[key] = step_stats if key not in stats else task.merge(stats[key], step_stats)


def frames_read_by(evaluators: Iterable[Evaluator]) -> list[int]:
    """The frames any of ``evaluators`` reads: what one encoding shared by all of them must hold."""
    return sorted(set().union(*(evaluator.frames_read() for evaluator in evaluators)))


def finalize_stats(record: dict[str, Any]) -> dict[str, Any]:
    """Turns each task's in-memory statistics into their JSON form."""
    out = {key: stats_owner(parse_stat_key(key)[0]).to_json(value) for key, value in record["stats"].items()}
    return {"sample_id": record["sample_id"], "stats": out}


def run_evaluation(
    evaluator: Evaluator,
    batches: Iterable[list[Clip]],
    on_batch: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Evaluates batches of clips (decoded by a DataLoader), handing each batch's records over."""
    for clips in batches:
        encoded = [evaluator.encode(clip) for clip in clips]
        records = evaluator.evaluate(encoded)
        on_batch([finalize_stats(r) for r in records])
