"""`dfbench compare` end to end on tiny real runs of the synthetic data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dfbench.adapters.base import Context, Forecast, WorldModel, randn_rows
from dfbench.compare import compare, load_with_records, stat_pairs
from dfbench.errors import DfbenchError
from dfbench.registry import register_model
from dfbench.uncertainty import paired_difference


@register_model("test-sampling-copy")
class SamplingCopy(WorldModel):
    """Stochastic: copy-last plus noise from the harness's per-row generators."""

    stochastic = True

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        last = context.features[:, -1][:, None, None]
        noise = randn_rows(context.generators, (num_samples, target_timestamps.shape[1], *last.shape[-2:]))
        return Forecast(last + 0.3 * noise)


def run(dfbench_cli, out: Path, model: str, limit: str = "2", *extra: str) -> None:
    result = dfbench_cli("run", "--model", model, "--dataset", "synthetic", "--limit", limit, "--num-samples", "3",
                         "--output-dir", str(out), "--no-progress", *extra)
    assert result.code == 0, result.err


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from dfbench.cli import cli

    out = tmp_path_factory.mktemp("results")
    for model in ("test-sampling-copy", "copy-last", "present"):
        done = CliRunner().invoke(cli, ["run", "--model", model, "--dataset", "synthetic", "--limit", "2",
                                        "--num-samples", "3", "--output-dir", str(out), "--no-progress"])
        assert done.exit_code == 0, done.output
    return out


def test_stochastic_against_deterministic_prints_and_writes_every_pair(dfbench_cli, results: Path, tmp_path: Path):
    path = tmp_path / "diff.json"
    found = dfbench_cli("compare", "test-sampling-copy", "copy-last", "--dataset", "synthetic",
                        "--results-dir", str(results), "--json", str(path), "--resamples", "200")
    assert found.code == 0, found.err
    assert "test-sampling-copy minus copy-last on synthetic (2 clips)" in found.out
    assert "randomisation test" in found.out and "mIoU" in found.out
    rows = json.loads(path.read_text())
    assert {tuple(r) for r in rows} == {("metric", "horizon", "stat_a", "stat_b", "diff", "ci_low", "ci_high",
                                         "p_value")}
    pairs = {(r["metric"], r["horizon"], r["stat_a"], r["stat_b"]) for r in rows}
    # Each stat of A against B's single prediction; the sample scores have no partner in B.
    assert pairs == {(m, h, s, "single") for m in ("miou", "rmse") for h in ("short", "mid") for s in ("best", "mean")}
    for row in rows:
        assert row["ci_low"] <= row["diff"] <= row["ci_high"] and 0 < row["p_value"] <= 1


def test_differences_are_those_of_the_records(results: Path):
    found, clips = compare(results, "present", "copy-last", "synthetic", resamples=100)
    assert clips == 2 and {d.stat_a for d in found} == {"single"}
    _, records_a = load_with_records(results, "synthetic", "present")
    _, records_b = load_with_records(results, "synthetic", "copy-last")
    (direct,) = paired_difference(records_a, records_b, {"seg": 7, "depth": 1},
                                  [("depth/mid/2/single", "depth/mid/2/single")], resamples=100)
    (shown,) = [d for d in found if (d.metric, d.horizon) == ("rmse", "mid")]
    assert shown == direct and shown.diff < 0  # the oracle's depth beats copy-last's


def test_a_model_against_itself_differs_by_nothing(results: Path):
    found, _ = compare(results, "test-sampling-copy", "test-sampling-copy", "synthetic", resamples=50)
    assert {d.stat_a for d in found} == {"best", "mean", "ensemble"}
    assert {d.metric for d in found if d.stat_a == "ensemble"} == {"energy", "energy_skill", "energy_spread",
                                                                   "spread_skill"}
    assert all(d.stat_a == d.stat_b and d.diff == 0 and d.p_value == 1 for d in found)


def test_different_clip_sets_are_refused_in_one_line(dfbench_cli, results: Path, tmp_path: Path):
    other = tmp_path / "other"
    run(dfbench_cli, other, "copy-last", "3")
    run(dfbench_cli, other, "present", "2")
    found = dfbench_cli("compare", "copy-last", "present", "--dataset", "synthetic", "--results-dir", str(other))
    assert found.code == 2
    assert found.err.strip().startswith("dfbench: error: A and B were evaluated on different clips (3 and 2 clips")
    assert len(found.err.strip().splitlines()) == 1
    missing = dfbench_cli("compare", "copy-last", "acme", "--dataset", "synthetic", "--results-dir", str(other))
    assert missing.code == 2 and "no result of acme on synthetic" in missing.err


def test_stat_pairs_follow_which_side_samples():
    a = {("seg", "short", "best"): "a/best", ("seg", "short", "mean"): "a/mean",
         ("samples", "short", "ensemble"): "a/ens"}
    b = {("seg", "short", "single"): "b/single"}
    assert stat_pairs(a, b, True, False) == [("a/best", "b/single"), ("a/mean", "b/single")]
    assert stat_pairs(b, a, False, True) == [("b/single", "a/best"), ("b/single", "a/mean")]
    assert stat_pairs(a, a, True, True) == [("a/best", "a/best"), ("a/mean", "a/mean"), ("a/ens", "a/ens")]


def test_missing_records_are_named(results: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    for records in (copy / "synthetic" / "copy-last").glob("*.records.jsonl"):
        records.unlink()
    with pytest.raises(DfbenchError, match=r"the records of .* are missing"):
        compare(copy, "present", "copy-last", "synthetic")


def test_table_of_real_runs_shows_intervals_and_seeds(dfbench_cli, results: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "seeds"
    shutil.copytree(results, copy)
    run(dfbench_cli, copy, "test-sampling-copy", "2", "--seed", "1")
    found = dfbench_cli("table", "main", "--results-dir", str(copy), "--resamples", "100")
    assert found.code == 0, found.err
    assert "(2 seeds)" in found.out and "±" in found.out and "bootstrap over clips" in found.out
    header = (copy / "tables" / "main.csv").read_text().splitlines()[0].split(",")
    assert "synthetic/miou/short/best/seed_std" in header and "synthetic/num_seeds" in header
    assert "synthetic/rmse/mid/single/ci_high" in header
