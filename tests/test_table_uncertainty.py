"""The main table's intervals and seed columns, from results with real records files beside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

from dfbench.cli.table import table as table_cli
from dfbench.record_log import RecordLog
from dfbench.result_store import update_latest
from dfbench.results import aggregate, headline
from dfbench.schema import MetricEntry, RunIdentity, RunResult
from dfbench.table_render import format_latex, render_main_table
from dfbench.tables import build_main_table
from dfbench.tasks import get_task
from dfbench.uncertainty import bootstrap_intervals

NUM_CLASSES = {"seg": 7, "depth": 1}
HORIZONS = {"short": 1, "mid": 3}


def clip_records(clips: int, seed: int, stats: tuple[str, ...], quality: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(clips):
        out = {}
        for horizon, steps in HORIZONS.items():
            for step in range(steps):
                for stat in stats:
                    truth = torch.from_numpy(rng.integers(0, 7, size=300))
                    keep = torch.from_numpy(rng.random(300) < quality)
                    pred = torch.where(keep, truth, torch.from_numpy(rng.integers(0, 7, size=300)))
                    confusion = torch.zeros(7, 7, dtype=torch.long)
                    confusion.index_put_((truth, pred), torch.ones(300, dtype=torch.long), accumulate=True)
                    out[f"seg/{horizon}/{step}/{stat}"] = get_task("seg").to_json(confusion)
                    count = int(rng.integers(100, 200))
                    out[f"depth/{horizon}/{step}/{stat}"] = {"sse": float(count * rng.gamma(2.0) / quality), "count": count}
        records.append({"sample_id": f"{i:06d}", "stats": out})
    return records


def write_run(root: Path, model: str, seed: int, quality: float, clips: int = 12) -> tuple[RunResult, list[dict]]:
    """A result and its records file where 'dfbench run' writes them, numbers aggregated from the records."""
    stochastic = model == "deltaworld"
    identity = RunIdentity(model=model, dataset="synthetic", dataset_version="1", feature_space="tiny",
                           protocol="dinoworld-dense-forecasting", protocol_version="1.0", seed=seed,
                           num_samples=3 if stochastic else 1, horizons=("short", "mid"), precision="fp32",
                           limit=None, numerics_version=2)
    records = clip_records(clips, seed, ("best", "mean") if stochastic else ("single",), quality)
    folder = root / "synthetic" / model
    folder.mkdir(parents=True, exist_ok=True)
    log = RecordLog(folder / f"{identity.slug()}.records.jsonl", identity)
    log.append(records, 0.0)
    log.finalize([r["sample_id"] for r in records], 0.0)
    entries = aggregate(records, NUM_CLASSES)
    result = RunResult(identity=identity, stochastic=stochastic, num_clips=clips, complete=True,
                       metrics=[MetricEntry.load(e, "test") for e in headline(entries, HORIZONS)],
                       metrics_all_steps=[MetricEntry.load(e, "test") for e in entries],
                       records=log.final_path.name)
    path = folder / f"{identity.slug()}.json"
    path.write_text(__import__("json").dumps(result.to_json()))
    update_latest(path, result)
    return result, records


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    write_run(root, "copy-last", 0, 0.5)
    write_run(root, "deltaworld", 0, 0.8)
    return root


def test_every_value_gets_the_bootstrap_interval_of_its_records(results: Path):
    frame = build_main_table(results, ci=0.9, resamples=200).frame.set_index("model")
    records = clip_records(12, 0, ("best", "mean"), 0.8)  # those of the deltaworld result
    expected = {(i.metric, i.horizon, i.stat): i for i in
                bootstrap_intervals(records, NUM_CLASSES, level=0.9, resamples=200)}
    for metric in ("miou", "rmse"):
        for horizon, steps in HORIZONS.items():
            for stat in ("best", "mean"):
                column = f"synthetic/{metric}/{horizon}/{stat}"
                low, value, high = (frame.loc["deltaworld", f"{column}{s}"] for s in ("/ci_low", "", "/ci_high"))
                interval = expected[(metric, horizon, stat)]
                assert interval.step == steps - 1  # the headline step
                assert (low, value, high) == (pytest.approx(interval.ci_low), pytest.approx(interval.value),
                                              pytest.approx(interval.ci_high))
                assert low < value < high
    assert frame.loc["copy-last", "synthetic/miou/mid/single/ci_low"] < frame.loc["copy-last", "synthetic/miou/mid/single"]
    assert np.isnan(frame.loc["copy-last", "synthetic/miou/mid/best/ci_low"])


def test_intervals_show_in_the_terminal_and_optionally_in_latex(results: Path, tmp_path: Path):
    table = build_main_table(results, resamples=100)
    console = Console(width=250, record=True, color_system=None)
    console.print(render_main_table(table))
    text = console.export_text()
    low = table.frame.set_index("model").loc["copy-last", "synthetic/rmse/short/single/ci_low"]
    assert f"[{low:.2f}, " in text and "95% interval, bootstrap over clips" in text
    assert r"\scriptsize" not in format_latex(table)
    assert rf"{{\scriptsize [{low:.2f}, " in format_latex(table, ci_latex=True)

    out = tmp_path / "out"
    cli = CliRunner().invoke(table_cli, ["main", "--results-dir", str(results), "--out", str(out), "--ci", "0.8",
                                         "--resamples", "50", "--ci-latex"])
    assert cli.exit_code == 0, cli.output
    header = (out / "main.csv").read_text().splitlines()[0].split(",")
    at = header.index("synthetic/miou/short/best")
    assert header[at + 1:at + 3] == ["synthetic/miou/short/best/ci_low", "synthetic/miou/short/best/ci_high"]
    assert r"80\% interval" in (out / "main.tex").read_text()
    cli = CliRunner().invoke(table_cli, ["main", "--results-dir", str(results), "--out", str(out), "--ci", "0"])
    assert cli.exit_code == 0 and "ci_low" not in (out / "main.csv").read_text()
    cli = CliRunner().invoke(table_cli, ["main", "--results-dir", str(results), "--ci", "95"])
    assert cli.exit_code == 2 and "95" in cli.output


def test_seeds_show_as_mean_and_std_with_the_interval_of_the_mean(results: Path):
    runs = [write_run(results, "deltaworld", seed, 0.8) for seed in (1, 2)]
    runs.insert(0, write_run(results.parent / "again", "deltaworld", 0, 0.8))
    table = build_main_table(results, ci=0.95, resamples=100)
    row = table.frame.set_index("model").loc["deltaworld"]
    values = [r.headline_values()[("miou", "short", "best")] for r, _ in runs]
    assert row["synthetic/num_seeds"] == 3
    assert row["synthetic/miou/short/best"] == pytest.approx(np.mean(values))
    assert row["synthetic/miou/short/best/seed_std"] == pytest.approx(np.std(values, ddof=1))
    (joint,) = [i for i in bootstrap_intervals([r for _, r in runs], NUM_CLASSES, resamples=100,
                                               keys=["seg/short/0/best"])]
    assert row["synthetic/miou/short/best/ci_low"] == pytest.approx(joint.ci_low)
    assert table.frame.set_index("model").loc["copy-last", "synthetic/num_seeds"] == 1

    console = Console(width=250, record=True, color_system=None)
    console.print(render_main_table(table))
    text = console.export_text()
    std = row["synthetic/miou/short/best/seed_std"]
    assert f"±{std:.1f}" in text and "DeltaWorld (3 seeds)" in text and "mean and standard deviation over seeds" in text
    assert rf"$\pm$ {std:.1f}" in format_latex(table)
