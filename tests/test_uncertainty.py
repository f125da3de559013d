"""Bootstrap intervals, the paired test and best-of-k against direct computations on constructed records."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from dfbench.errors import DfbenchError
from dfbench.tasks import get_task
from dfbench.uncertainty import (
    bootstrap_intervals,
    expected_best_of_k,
    paired_difference,
    resample_indices,
    seed_mean_std,
    swap_masks,
)

NUM_CLASSES = {"seg": 4, "depth": 1}
SEG, DEPTH = "seg/short/0/single", "depth/short/0/single"


def make_records(clips: int, seed: int, depth_scale: float = 1.0, accuracy: float = 0.7) -> list[dict]:
    """Clip records with a sparse 4-class confusion matrix and depth sums that vary by clip."""
    rng = np.random.default_rng(seed)
    seg = get_task("seg")
    records = []
    for i in range(clips):
        truth = rng.integers(0, 3, size=200)  # class 3 never occurs: its row and column stay zero
        pred = np.where(rng.random(200) < accuracy, truth, rng.integers(0, 3, size=200))
        confusion = torch.zeros(4, 4, dtype=torch.long)
        confusion.index_put_((torch.from_numpy(truth), torch.from_numpy(pred)), torch.ones(200, dtype=torch.long),
                             accumulate=True)
        count = int(rng.integers(50, 150))
        stats = {SEG: seg.to_json(confusion), DEPTH: {"sse": float(depth_scale * count * rng.gamma(2.0)), "count": count}}
        records.append({"sample_id": f"clip{i:03d}", "stats": stats})
    return records


def direct_metric(records: list[dict], key: str, indices) -> float:
    """The metric of the clips ``indices`` (with repeats), merged one by one through the Task."""
    task = get_task(key.split("/")[0])
    total = None
    for i in indices:
        stats = task.from_json(records[i]["stats"][key], NUM_CLASSES[task.name])
        total = stats if total is None else task.merge(total, stats)
    return next(iter(task.compute(total).values()))


@pytest.mark.parametrize("key", [SEG, DEPTH])
def test_bootstrap_matches_a_direct_loop_over_resamples(key: str):
    records = make_records(12, seed=1)
    (interval,) = bootstrap_intervals(records, NUM_CLASSES, level=0.9, resamples=200, seed=7, keys=[key])
    indices = resample_indices(len(records), 200, seed=7)
    replicates = [direct_metric(records, key, row) for row in indices]
    low, high = np.percentile(replicates, [5.0, 95.0])
    assert interval.value == pytest.approx(direct_metric(records, key, range(12)), abs=1e-12)
    assert (interval.ci_low, interval.ci_high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert interval.ci_low < interval.value < interval.ci_high
    assert (interval.horizon, interval.step, interval.stat) == ("short", 0, "single")


def test_bootstrap_is_seeded_and_narrows_with_more_clips():
    small, large = make_records(10, seed=2), make_records(200, seed=2)
    first = bootstrap_intervals(small, NUM_CLASSES, keys=[DEPTH], seed=3)
    assert first == bootstrap_intervals(small, NUM_CLASSES, keys=[DEPTH], seed=3)
    assert first != bootstrap_intervals(small, NUM_CLASSES, keys=[DEPTH], seed=4)
    (wide,), (narrow,) = first, bootstrap_intervals(large, NUM_CLASSES, keys=[DEPTH], seed=3)
    assert narrow.ci_high - narrow.ci_low < wide.ci_high - wide.ci_low


def test_a_clip_without_the_key_is_no_update():
    records = make_records(6, seed=4)
    del records[2]["stats"][DEPTH]
    (interval,) = bootstrap_intervals(records, NUM_CLASSES, keys=[DEPTH], resamples=50)
    assert interval.value == pytest.approx(direct_metric(records, DEPTH, [0, 1, 3, 4, 5]))


def test_seeds_average_on_the_same_resampled_clips():
    seeds = [make_records(8, seed=s) for s in (10, 11, 12)]
    (joint,) = bootstrap_intervals(seeds, NUM_CLASSES, keys=[SEG], resamples=100, seed=0)
    values = [direct_metric(r, SEG, range(8)) for r in seeds]
    assert joint.value == pytest.approx(np.mean(values))
    indices = resample_indices(8, 100, seed=0)
    replicates = [np.mean([direct_metric(r, SEG, row) for r in seeds]) for row in indices]
    assert joint.ci_low == pytest.approx(np.percentile(replicates, 2.5))
    mean, std = seed_mean_std(values)
    assert (mean, std) == (pytest.approx(np.mean(values)), pytest.approx(np.std(values, ddof=1)))
    assert math.isnan(seed_mean_std([1.0])[1])
    with pytest.raises(DfbenchError, match="different clips"):
        bootstrap_intervals([seeds[0], seeds[1][:5]], NUM_CLASSES, keys=[SEG])


def test_paired_difference_matches_direct_loops():
    a, b = make_records(10, seed=5, accuracy=0.8), make_records(10, seed=6, accuracy=0.6)
    (found,) = paired_difference(a, b, NUM_CLASSES, [(SEG, SEG)], level=0.95, resamples=150, seed=9)
    assert found.diff == pytest.approx(direct_metric(a, SEG, range(10)) - direct_metric(b, SEG, range(10)))
    boot = [direct_metric(a, SEG, row) - direct_metric(b, SEG, row) for row in resample_indices(10, 150, seed=9)]
    assert (found.ci_low, found.ci_high) == tuple(pytest.approx(v) for v in np.percentile(boot, [2.5, 97.5]))
    null = []
    for mask in swap_masks(10, 150, seed=9):
        swapped_a = [b[i] if mask[i] else a[i] for i in range(10)]
        swapped_b = [a[i] if mask[i] else b[i] for i in range(10)]
        null.append(direct_metric(swapped_a, SEG, range(10)) - direct_metric(swapped_b, SEG, range(10)))
    expected = (1 + sum(abs(d) >= abs(found.diff) - 1e-12 for d in null)) / 151
    assert found.p_value == pytest.approx(expected)
    assert set(found.to_json()) == {"metric", "horizon", "stat_a", "stat_b", "diff", "ci_low", "ci_high", "p_value"}


def test_a_known_effect_is_found_and_no_effect_is_not():
    better, worse = make_records(40, seed=1, depth_scale=0.5), make_records(40, seed=1, depth_scale=1.0)
    (effect,) = paired_difference(better, worse, NUM_CLASSES, [(DEPTH, DEPTH)], resamples=500)
    # RMSE scales with the square root of the squared errors on every clip.
    assert effect.diff == pytest.approx(effect.value_b * (math.sqrt(0.5) - 1))
    assert effect.ci_high < 0 and effect.p_value == pytest.approx(1 / 501)

    (same,) = paired_difference(better, better, NUM_CLASSES, [(DEPTH, DEPTH)], resamples=500)
    assert same.diff == 0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0
    # Two draws of the same process: an interval around zero, no small p-value.
    (none,) = paired_difference(make_records(40, seed=2), make_records(40, seed=3), NUM_CLASSES, [(SEG, SEG)],
                                resamples=500)
    assert none.ci_low < 0 < none.ci_high and none.p_value > 0.1


def test_paired_difference_refuses_different_clip_sets():
    a, b = make_records(6, seed=1), make_records(6, seed=2)
    b[-1] = {**b[-1], "sample_id": "elsewhere"}
    with pytest.raises(DfbenchError, match=r"^A and B were evaluated on different clips \(6 and 6 clips, 1 only in A"):
        paired_difference(a, b, NUM_CLASSES, [(SEG, SEG)])


def test_paired_difference_follows_clip_ids_not_order():
    a, b = make_records(8, seed=1), make_records(8, seed=2)
    (ordered,) = paired_difference(a, b, NUM_CLASSES, [(DEPTH, DEPTH)], resamples=100)
    (shuffled,) = paired_difference(a, b[::-1], NUM_CLASSES, [(DEPTH, DEPTH)], resamples=100)
    assert ordered == shuffled


def test_expected_best_of_k_matches_subset_enumeration():
    losses = np.random.default_rng(0).random((3, 6))
    curve = expected_best_of_k(losses)
    for row, losses_row in zip(curve, losses):
        for k in range(1, 7):
            subsets = list(itertools.combinations(losses_row, k))
            assert row[k - 1] == pytest.approx(np.mean([min(s) for s in subsets]))
    assert np.allclose(curve[:, 0], losses.mean(axis=1)) and np.allclose(curve[:, -1], losses.min(axis=1))


def test_bad_level_is_a_one_line_error():
    with pytest.raises(DfbenchError, match="between 0 and 1"):
        bootstrap_intervals(make_records(3, seed=0), NUM_CLASSES, level=95)
