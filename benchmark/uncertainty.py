"""Clip-level uncertainty of the harness's numbers: bootstrap intervals, paired tests, seeds.

A result's number is a function of statistics summed over clips (a confusion matrix,
squared errors and their count), so every bootstrap replicate resamples clips and
recomputes the metric from the resampled sums through the statistics' owner (the
Task's ``compute``); per-clip metrics are never averaged. Resampling is one matrix
product, ``counts[R, clips] @ stats[clips, F]``, over the statistics' non-zero
columns only (a VSPW clip's 124x124 confusion matrix is mostly zeros).

The interval is the percentile bootstrap. The paired p-value comes from a paired
randomisation test: under "A and B are exchangeable on every clip", swapping A's and
B's statistics of a clip at random leaves the distribution of the difference
unchanged, so the swapped differences, each recomputed from swapped sums, are its
null distribution. Unlike sign flips of per-clip differences this is valid for ratio
metrics such as mIoU.

Only numpy is needed here; the owners' ``compute`` may use torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfbench.errors import DfbenchError
from dfbench.results import parse_stat_key

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


def _stats_of(record: Any) -> tuple[str, dict[str, Any]]:
    data = record.to_json() if hasattr(record, "to_json") else record
    return data["sample_id"], data["stats"]


# ---------------------------------------------------------------- flat statistics


@dataclass
class _Layout:
    """How one key's statistics flatten into a vector and back."""

    owner: Any
    shape: tuple[int, ...] | None  # tensor statistics
    fields: tuple[tuple[str, int | None], ...]  # dict statistics: (name, list length or None)

    @classmethod
    def of(cls, owner: Any, value: Any) -> _Layout:
        if isinstance(value, dict):
            return cls(owner, None, tuple((k, len(v) if isinstance(v, list) else None) for k, v in value.items()))
        return cls(owner, tuple(value.shape), ())

    def size(self) -> int:
        if self.shape is not None:
            return math.prod(self.shape)
        return sum(1 if n is None else n for _, n in self.fields)

    def flatten(self, value: Any) -> np.ndarray:
        if self.shape is not None:
            return value.double().reshape(-1).numpy()
        parts = [np.atleast_1d(np.asarray(value[k], dtype=np.float64)) for k, _ in self.fields]
        return np.concatenate(parts) if parts else np.zeros(0)

    def unflatten(self, flat: np.ndarray) -> Any:
        if self.shape is not None:
            import torch

            return torch.from_numpy(np.ascontiguousarray(flat).reshape(self.shape))
        out, at = {}, 0
        for name, length in self.fields:
            if length is None:
                out[name], at = float(flat[at]), at + 1
            else:
                out[name], at = [float(v) for v in flat[at:at + length]], at + length
        return out


def _clip_ids(records: Sequence[Any]) -> list[str]:
    return [_stats_of(r)[0] for r in records]


def _flat_matrix(records: Sequence[Any], key: str, num_classes: dict[str, int], layout: _Layout | None = None
                 ) -> tuple[_Layout, np.ndarray]:
    """[clips, F] statistics of ``key``, zeros where a clip has none (no valid pixel: no update)."""
    from dfbench.sample_scores import stats_owner

    name = parse_stat_key(key)[0]
    owner = layout.owner if layout is not None else stats_owner(name)
    values = []
    for record in records:
        data = _stats_of(record)[1].get(key)
        values.append(None if data is None else owner.from_json(data, num_classes.get(name, 1)))
    if layout is None:
        first = next((v for v in values if v is not None), None)
        if first is None:
            raise DfbenchError(f"no clip holds statistics '{key}'; pick a key the records contain.")
        layout = _Layout.of(owner, first)
    matrix = np.zeros((len(values), layout.size()))
    for row, value in enumerate(values):
        if value is not None:
            matrix[row] = layout.flatten(value)
    return layout, matrix


def _compress(*matrices: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The columns non-zero in any of the matrices, and each matrix restricted to them."""
    used = np.flatnonzero(np.any([np.any(m != 0, axis=0) for m in matrices], axis=0))
    return used, [m[:, used] for m in matrices]


def _metrics(layout: _Layout, columns: np.ndarray, summed: np.ndarray) -> dict[str, np.ndarray]:
    """Metric -> values [R], one per row of ``summed`` [R, len(columns)]."""
    out: dict[str, list[float]] = {}
    full = np.zeros(layout.size())
    for row in np.atleast_2d(summed):
        full[columns] = row
        for metric, value in layout.owner.compute(layout.unflatten(full.copy())).items():
            out.setdefault(metric, []).append(float(value))
    return {metric: np.asarray(values) for metric, values in out.items()}


# ---------------------------------------------------------------- resampling


def resample_indices(num_clips: int, resamples: int, seed: int) -> np.ndarray:
    """[R, clips] clip indices drawn with replacement; the same for the same seed."""
    return np.random.default_rng(seed).integers(0, num_clips, size=(resamples, num_clips))


def resample_counts(indices: np.ndarray, num_clips: int) -> np.ndarray:
    """[R, clips] how often each clip was drawn in each resample."""
    resamples = indices.shape[0]
    offsets = indices + num_clips * np.arange(resamples)[:, None]
    return np.bincount(offsets.ravel(), minlength=resamples * num_clips).reshape(resamples, num_clips).astype(np.float64)


def swap_masks(num_clips: int, resamples: int, seed: int) -> np.ndarray:
    """[R, clips] 1 where the randomisation test swaps A and B on a clip."""
    return np.random.default_rng([seed, 1]).integers(0, 2, size=(resamples, num_clips)).astype(np.float64)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise DfbenchError(f"confidence level {level} is not between 0 and 1; pass e.g. --ci 0.95 (or --ci 0 for none).")


# ---------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """One metric of one statistics key with its bootstrap interval."""

    key: str  # task/horizon/step/stat
    metric: str
    value: float
    ci_low: float
    ci_high: float

    @property
    def horizon(self) -> str:
        return parse_stat_key(self.key)[1]

    @property
    def step(self) -> int:
        return parse_stat_key(self.key)[2]

    @property
    def stat(self) -> str:
        return parse_stat_key(self.key)[3]


def _keys(seeds: list[Sequence[Any]], keys: Iterable[str] | None) -> list[str]:
    if keys is not None:
        return list(keys)
    return sorted({k for records in seeds for r in records for k in _stats_of(r)[1]})


def bootstrap_intervals(
    records: Sequence[Any] | Sequence[Sequence[Any]],
    num_classes: dict[str, int],
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    keys: Iterable[str] | None = None,
) -> list[Interval]:
    """Clip-level percentile bootstrap intervals of every metric of ``keys`` (all keys by default).

    Args:
        records: one result's clip records (dicts or ``ClipRecord``s), or a list of such
            lists, one per seed of one configuration, on the same clips: then the value
            is the mean over seeds and every replicate averages the seeds' metrics on
            the same resampled clips.
        num_classes: task -> class count, as the data set declares (``DatasetSpec.tasks``).
        level: the interval's coverage.
        resamples: bootstrap replicates.
        seed: of the resampling; equal seeds, equal intervals.
        keys: statistics keys to cover.
    """
    _check_level(level)
    seeds = [records] if not records or not isinstance(records[0], (list, tuple)) else list(records)
    ids = _clip_ids(seeds[0])
    for other in seeds[1:]:
        if sorted(_clip_ids(other)) != sorted(ids):
            raise DfbenchError("the seeds' records cover different clips; rerun them on the same clips (same --limit).")
    seeds = [_ordered(s, ids) for s in seeds]
    counts = resample_counts(resample_indices(len(ids), resamples, seed), len(ids))
    out = []
    for key in _keys(seeds, keys):
        layout, first = _flat_matrix(seeds[0], key, num_classes)
        columns, mats = _compress(first, *(_flat_matrix(s, key, num_classes, layout)[1] for s in seeds[1:]))
        points = [_metrics(layout, columns, m.sum(axis=0)) for m in mats]
        reps = [_metrics(layout, columns, counts @ m) for m in mats]
        for metric in points[0]:
            value = float(np.mean([p[metric][0] for p in points]))
            low, high = percentile_interval(np.mean([r[metric] for r in reps], axis=0), level)
            out.append(Interval(key, metric, value, low, high))
    return out


def _ordered(records: Sequence[Any], ids: list[str]) -> list[Any]:
    by_id = {_stats_of(r)[0]: r for r in records}
    return [by_id[i] for i in ids]


# ---------------------------------------------------------------- paired differences


@dataclass(frozen=True)
class PairedDifference:
    """A minus B for one metric, with its paired bootstrap interval and randomisation p-value."""

    metric: str
    horizon: str
    step: int
    stat_a: str
    stat_b: str
    value_a: float
    value_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_json(self) -> dict[str, Any]:
        keys = ("metric", "horizon", "stat_a", "stat_b", "diff", "ci_low", "ci_high", "p_value")
        return {k: getattr(self, k) for k in keys}


def check_same_clips(records_a: Sequence[Any], records_b: Sequence[Any]) -> list[str]:
    """The common clip order; a one-line error when A and B were evaluated on different clips."""
    ids_a, ids_b = _clip_ids(records_a), _clip_ids(records_b)
    if set(ids_a) != set(ids_b):
        only_a, only_b = len(set(ids_a) - set(ids_b)), len(set(ids_b) - set(ids_a))
        raise DfbenchError(
            f"A and B were evaluated on different clips ({len(ids_a)} and {len(ids_b)} clips, {only_a} only in A, "
            f"{only_b} only in B); a paired comparison needs the same clips: rerun with the same --limit."
        )
    return ids_a


def paired_difference(
    records_a: Sequence[Any],
    records_b: Sequence[Any],
    num_classes: dict[str, int],
    pairs: Iterable[tuple[str, str]],
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[PairedDifference]:
    """A minus B for each (key of A, key of B) pair of the same task, paired on clips.

    The interval resamples clips jointly for A and B (percentile bootstrap of the
    difference of the recomputed metrics). The two-sided p-value is the paired
    randomisation test of the module docstring, ``(1 + #{|d*| >= |d|}) / (R + 1)``.
    """
    _check_level(level)
    ids = check_same_clips(records_a, records_b)
    records_b = _ordered(records_b, ids)
    counts = resample_counts(resample_indices(len(ids), resamples, seed), len(ids))
    swaps = swap_masks(len(ids), resamples, seed)
    out = []
    for key_a, key_b in pairs:
        layout, a = _flat_matrix(records_a, key_a, num_classes)
        if parse_stat_key(key_a)[0] != parse_stat_key(key_b)[0]:
            raise DfbenchError(f"cannot compare '{key_a}' with '{key_b}': they are statistics of different tasks.")
        _, b = _flat_matrix(records_b, key_b, num_classes, layout)
        columns, (a, b) = _compress(a, b)
        point_a = _metrics(layout, columns, a.sum(axis=0))
        point_b = _metrics(layout, columns, b.sum(axis=0))
        boot_a, boot_b = _metrics(layout, columns, counts @ a), _metrics(layout, columns, counts @ b)
        total_a, total_b, moved = a.sum(axis=0), b.sum(axis=0), swaps @ (b - a)
        null_a, null_b = _metrics(layout, columns, total_a + moved), _metrics(layout, columns, total_b - moved)
        _, horizon, step, stat_a = parse_stat_key(key_a)
        for metric in point_a:
            diff = float(point_a[metric][0] - point_b[metric][0])
            low, high = percentile_interval(boot_a[metric] - boot_b[metric], level)
            null = null_a[metric] - null_b[metric]
            # A tolerance so that swaps which change nothing count as "as extreme" despite rounding.
            extreme = np.abs(null) >= abs(diff) - 1e-12 * max(1.0, abs(diff))
            p_value = float((1 + np.count_nonzero(extreme & np.isfinite(null))) / (resamples + 1))
            out.append(PairedDifference(metric, horizon, step, stat_a, parse_stat_key(key_b)[3],
                                        float(point_a[metric][0]), float(point_b[metric][0]),
                                        diff, low, high, p_value))
    return out


# ---------------------------------------------------------------- seeds and best-of-k


def seed_mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for one seed) over seeds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else math.nan


def expected_best_of_k(losses: np.ndarray) -> np.ndarray:
    """E[min of k samples drawn without replacement] for k = 1..S, from losses [..., S].

    By order statistics: with the losses sorted ascending, the i-th smallest (1-based)
    is the minimum of a random k-subset with probability C(S - i, k - 1) / C(S, k).
    """
    losses = np.sort(np.asarray(losses, dtype=np.float64), axis=-1)
    return losses @ best_of_k_weights(losses.shape[-1]).T


def best_of_k_weights(num_samples: int) -> np.ndarray:
    """[S (k), S (i)] the probability that the i-th smallest of S is the minimum of a random k-subset."""
    s = num_samples
    weights = np.zeros((s, s))
    for k in range(1, s + 1):
        for i in range(1, s - k + 2):
            weights[k - 1, i - 1] = math.comb(s - i, k - 1) / math.comb(s, k)
    return weights


def best_of_k_curve(metrics: Iterable[dict[str, Any]], horizon: str) -> list[tuple[int, float]]:
    """(k, expected best-of-k feature loss) from a result's ``metrics`` entries, k ascending."""
    from dfbench.sample_scores import BEST_OF_K_PREFIX

    curve = []
    for entry in metrics:
        if entry["horizon"] == horizon and entry["metric"].startswith(BEST_OF_K_PREFIX):
            curve.append((int(entry["metric"][len(BEST_OF_K_PREFIX):]), float(entry["value"])))
    return sorted(curve)
