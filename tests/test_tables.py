"""The main table against golden csv / tex files built from small results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from dfbench.cli.table import table as table_cli
from dfbench.errors import DfbenchError
from dfbench.table_render import format_latex, render_main_table
from dfbench.tables import build_main_table, load_results, main_table, write_main_table
from dfbench.result_store import LATEST, load_all, update_latest
from dfbench.schema import RunIdentity, RunResult

GOLDEN = Path(__file__).parent / "golden"

PROVENANCE = {
    "feature_space": "dinov3-vitb16",
    "protocol": {"name": "dinoworld-dense-forecasting", "version": "1.0"},
    "seed": 0,
    "checkpoints": {},
    "dfbench_version": "0.1.0",
    "git_commit": "0123456789abcdef",
    "device": "cpu",
    "wall_time_s": 1.0,
}

# (model, dataset, stochastic, complete, {(metric, horizon): best, mean | single})
RUNS = [
    ("copy-last", "vspw", False, True, {("miou", "short"): 51.2, ("miou", "mid"): 44.3}),
    ("dino-world", "vspw", False, True, {("miou", "short"): 54.0, ("miou", "mid"): 47.9}),
    ("deltaworld", "vspw", True, True, {("miou", "short"): (54.9, 53.1), ("miou", "mid"): (50.1, 46.7)}),
    ("present", "vspw", False, True, {("miou", "short"): 58.4, ("miou", "mid"): 58.4}),
    ("copy-last", "synthetic", False, True,
     {("miou", "short"): 40.0, ("miou", "mid"): 31.25, ("rmse", "short"): 1.5, ("rmse", "mid"): 2.0}),
    # Partial (a --limit run): its cells carry a dagger.
    ("dino-world", "synthetic", False, False,
     {("miou", "short"): 45.0, ("miou", "mid"): 38.0, ("rmse", "short"): 1.1, ("rmse", "mid"): 1.61}),
    ("deltaworld", "synthetic", True, True,
     {("miou", "short"): (47.5, 44.0), ("miou", "mid"): (39.0, 35.5),
      ("rmse", "short"): (1.2, 1.3), ("rmse", "mid"): (1.4, 1.75)}),
    # A third-party model that ran on one data set only and reports only the short horizon.
    ("acme_wm", "synthetic", False, True, {("miou", "short"): 46.0, ("rmse", "short"): 1.15}),
    ("present", "synthetic", False, True,
     {("miou", "short"): 60.0, ("miou", "mid"): 60.0, ("rmse", "short"): 0.9, ("rmse", "mid"): 0.9}),
]


def identity(model, dataset, stochastic, complete, **changes) -> RunIdentity:
    fields = dict(
        model=model, dataset=dataset, dataset_version="1", feature_space="dinov3-vitb16",
        protocol="dinoworld-dense-forecasting", protocol_version="1.0", seed=0, num_samples=20 if stochastic else 1,
        horizons=("short", "mid"), precision="fp32", limit=None if complete else 8, numerics_version=1,
    )
    return RunIdentity(**{**fields, **changes})


def result_file(model, dataset, stochastic, complete, values, **changes) -> dict:
    metrics = []
    for (metric, horizon), value in values.items():
        if stochastic:
            metrics += [{"metric": metric, "horizon": horizon, "stat": "best", "value": value[0]},
                        {"metric": metric, "horizon": horizon, "stat": "mean", "value": value[1]}]
        else:
            metrics.append({"metric": metric, "horizon": horizon, "stat": "single", "value": value})
    return {
        "schema_version": 2,
        "model": model,
        "dataset": dataset,
        "stochastic": stochastic,
        "num_samples": 20 if stochastic else 1,
        "num_clips": 64 if complete else 8,
        "complete": complete,
        "identity": identity(model, dataset, stochastic, complete, **changes).to_json(),
        "metrics": metrics,
        "records": "",
        "provenance": PROVENANCE,
    }


def write_result(root: Path, data: dict) -> Path:
    """Writes a result where 'dfbench run' would, and points latest.json at it."""
    result = RunResult.load(data, "test")
    path = root / result.dataset / result.model / f"{result.identity.slug()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    update_latest(path, result)
    return path


def write_runs(root: Path, runs=RUNS) -> Path:
    for run in runs:
        write_result(root, result_file(*run))
    return root


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = write_runs(tmp_path / "results")
    (root / "flops.csv").write_text("model,gflops\ndino-world,959\ndeltaworld,0.26\n")
    # Outputs and per-sample records live beside the results and must be ignored.
    (root / "vspw" / "deltaworld" / "x.records.jsonl").write_text("{}\n")
    (root / "tables").mkdir()
    (root / "tables" / "stale.json").write_text("not json")
    return root


def test_matches_golden_csv_and_tex(results: Path):
    # The goldens hold the values without intervals (these results have no records); see test_table_uncertainty.
    csv_path, tex_path = write_main_table(results, ci=0)
    assert (csv_path, tex_path) == (results / "tables" / "main.csv", results / "tables" / "main.tex")
    assert csv_path.read_text(encoding="utf-8") == (GOLDEN / "main.csv").read_text(encoding="utf-8")
    assert tex_path.read_text(encoding="utf-8") == (GOLDEN / "main.tex").read_text(encoding="utf-8")
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["main.csv", "main.tex", "stale.json"]


def test_row_and_column_order(results: Path):
    frame = build_main_table(results).frame
    assert list(frame["model"]) == ["copy-last", "dino-world", "deltaworld", "acme_wm", "present"]
    assert list(frame["role"]) == ["lower_bound", "model", "model", "model", "upper_bound"]
    assert frame.columns[4:10].tolist() == [
        "vspw/miou/short/best", "vspw/miou/short/best/ci_low", "vspw/miou/short/best/ci_high",
        "vspw/miou/short/mean", "vspw/miou/short/mean/ci_low", "vspw/miou/short/mean/ci_high"]
    # No records beside these results: the interval columns exist (a fixed schema) but are empty.
    assert frame["vspw/miou/short/best/ci_low"].isna().all()
    # Real data sets first, then synthetic with both metrics.
    groups = list(dict.fromkeys(c.rsplit("/", 2)[0] for c in frame.columns if c.count("/") == 3))
    assert groups == ["vspw/miou", "synthetic/miou", "synthetic/rmse"]


def test_bold_marks_best_primary_value_and_skips_bounds(results: Path):
    lines = format_latex(build_main_table(results)).splitlines()
    row = {line.split(" & ")[0]: line.split(" & ") for line in lines if " & " in line}
    # VSPW short: DeltaWorld's best-of-20 beats DINO-world; Present (58.4) is a bound.
    assert row["DeltaWorld"][1] == r"\textbf{54.9} (53.1)"
    assert row["DINO-world"][1] == "54.0"
    assert row["Present (upper bound)"][1] == "58.4"
    # Synthetic RMSE short is lower-is-better: the partial DINO-world run wins and keeps its dagger.
    assert row["DINO-world"][5] == r"\textbf{1.10}$^\dagger$"
    assert row["Present (upper bound)"][5] == "0.90"
    # A model that lacks the mid horizon is a dash, never bolded.
    assert row["acme\\_wm"][4] == "–"


def test_reference_rows_sit_under_ours(results: Path):
    table = build_main_table(results, reference=True)
    frame = table.frame
    assert list(frame["name"]) == [
        "Copy last (lower bound)", "Copy last (paper)", "DINO-world", "DINO-world (paper)",
        "DeltaWorld", "DeltaWorld (paper)", "acme_wm", "Present (upper bound)", "Present (paper)",
    ]
    paper = frame[frame["name"] == "DeltaWorld (paper)"].iloc[0]
    assert (paper["vspw/miou/short/best"], paper["vspw/miou/short/mean"]) == (55.4, 53.7)
    tex = format_latex(table)
    assert r"DeltaWorld (paper) & 55.4 (53.7) & 50.1 (46.7) & – & – " in tex
    # Reported rows are never bolded, even where they beat ours.
    assert r"\textbf{55.4}" not in tex


def test_no_flops_file_no_gflops_column(results: Path):
    (results / "flops.csv").unlink()
    table = build_main_table(results)
    assert "gflops" not in table.frame.columns
    assert "GFLOPs" not in format_latex(table)


def test_main_table_from_dicts_with_flops():
    runs = [result_file(*run) for run in RUNS[:4]]
    frame = main_table(runs, flops={"deltaworld": 0.26}).frame
    assert frame.set_index("model")["gflops"].dropna().to_dict() == {"deltaworld": 0.26}


def test_render_for_terminal(results: Path):
    console = Console(width=200, record=True, color_system=None)
    console.print(render_main_table(build_main_table(results, reference=True)))
    text = console.export_text()
    assert "DeltaWorld (paper)" in text and "55.4 (53.7)" in text
    assert "1.10†" in text and "partial run" in text
    # The caption says what the two numbers of a stochastic cell and the bold ones are.
    assert "best of the samples (x) and their mean (y)" in text and "Bold: the best model per column" in text


def test_a_table_of_single_forecasts_explains_no_sample_cells(tmp_path: Path):
    from dfbench.table_render import SAMPLES_NOTE

    write_result(tmp_path, result_file("copy-last", "vspw", False, True, {("miou", "mid"): 50.0}))
    write_result(tmp_path, result_file("dino-world", "vspw", False, True, {("miou", "mid"): 52.0}))
    caption = render_main_table(build_main_table(tmp_path)).caption or ""
    assert SAMPLES_NOTE not in caption and "Bold" in caption


def test_cli_writes_both_files(results: Path, tmp_path: Path):
    out = tmp_path / "paper"
    result = CliRunner().invoke(table_cli, ["main", "--results-dir", str(results), "--out", str(out), "--reference"])
    assert result.exit_code == 0, result.output
    assert (out / "main.csv").is_file() and "DeltaWorld (paper)" in (out / "main.tex").read_text(encoding="utf-8")
    assert "wrote" in result.output


def test_no_results_is_a_one_line_error(tmp_path: Path):
    (tmp_path / "tables").mkdir()
    with pytest.raises(DfbenchError, match=r"^no results under .*; run 'dfbench run --model M --dataset D' first$"):
        write_main_table(tmp_path)
    result = CliRunner().invoke(table_cli, ["main", "--results-dir", str(tmp_path / "missing")])
    assert isinstance(result.exception, DfbenchError)


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "Expecting property name"),
        (json.dumps({**result_file(*RUNS[0]), "schema_version": 1}), "schema_version is 1"),
        (json.dumps({k: v for k, v in result_file(*RUNS[0]).items() if k != "complete"}), "'complete'"),
        (json.dumps({k: v for k, v in result_file(*RUNS[0]).items() if k != "identity"}), "run identity"),
        (json.dumps({**result_file(*RUNS[0]), "metrics": [{"metric": "miou", "horizon": "long",
                                                             "stat": "single", "value": 1.0}]}), "horizon 'long'"),
        (json.dumps({**result_file(*RUNS[0]), "metrics": [{"metric": "miou", "horizon": "short",
                                                             "stat": "single", "value": "51"}]}), "not a number"),
    ],
)
def test_malformed_file_is_named(tmp_path: Path, content: str, reason: str):
    path = tmp_path / "vspw" / "copy-last" / "seed0-x.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    (path.parent / LATEST).write_text(json.dumps({"result": path.name, "complete": True}))
    with pytest.raises(DfbenchError, match="malformed results file") as err:
        load_results(tmp_path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_results_in_the_old_layout_are_refused_with_the_way_out(tmp_path: Path):
    write_runs(tmp_path, RUNS[:1])
    (tmp_path / "vspw" / "dino-world.json").write_text(json.dumps(result_file(*RUNS[1])))
    with pytest.raises(DfbenchError, match=r"dino-world.json is in the results layout of an older dfbench.*rerun"):
        load_results(tmp_path)


def test_a_partial_result_never_displaces_a_complete_one(tmp_path: Path):
    complete = write_result(tmp_path, result_file(*RUNS[0]))
    write_result(tmp_path, result_file("copy-last", "vspw", False, False, {("miou", "short"): 1.0}))
    (only,) = load_results(tmp_path)
    assert only["complete"] and json.loads((complete.parent / LATEST).read_text())["result"] == complete.name


def test_several_seeds_coexist_and_are_tabulated_as_mean_and_std(tmp_path: Path):
    values = {("miou", "short"): (50.0, 45.0), ("miou", "mid"): (40.0, 35.0)}
    write_result(tmp_path, result_file("deltaworld", "vspw", True, True, values))
    later = {("miou", "short"): (52.0, 46.0), ("miou", "mid"): (41.0, 36.0)}
    write_result(tmp_path, result_file("deltaworld", "vspw", True, True, later, seed=1))
    # Another configuration (fewer samples) is not a seed of this one.
    write_result(tmp_path, result_file("deltaworld", "vspw", True, True, later, seed=2, num_samples=5))
    assert sorted(r.identity.seed for _, r in load_all(tmp_path)) == [0, 1, 2]
    write_result(tmp_path, result_file("deltaworld", "vspw", True, True, later, seed=1))  # latest: seed 1, n20
    (row,) = main_table(load_results(tmp_path)).frame.to_dict("records")
    assert row["vspw/miou/short/best"] == 51.0 and row["vspw/num_seeds"] == 2
    assert row["vspw/miou/short/best/seed_std"] == pytest.approx(2 ** 0.5)


@pytest.mark.parametrize(
    "change, shown",
    [({"num_samples": 2}, "samples 2 (others 20)"),
     ({"feature_space": "dinov3-vits16"}, "feature space dinov3-vits16 (others dinov3-vitb16)"),
     ({"protocol_version": "0.9"}, "protocol dinoworld-dense-forecasting 0.9 (others dinoworld-dense-forecasting 1.0)"),
     ({"dataset_version": "0"}, "data set version 0 (others 1)")],
)
def test_mixed_settings_are_refused_or_marked(tmp_path: Path, change: dict, shown: str):
    write_runs(tmp_path, RUNS[:3])
    values = {("miou", "short"): (49.0, 40.0), ("miou", "mid"): (45.0, 39.0)}
    write_result(tmp_path, result_file("dino-world-bom", "vspw", True, True, values, **change))
    if "num_samples" not in change:  # deterministic rows share a feature space, protocol and data version too
        write_result(tmp_path, result_file("deltaworld", "vspw", True, True, values))
    result = CliRunner().invoke(table_cli, ["main", "--results-dir", str(tmp_path)])
    assert isinstance(result.exception, DfbenchError)
    message = str(result.exception)
    assert message.startswith("results on vspw mix settings: dino-world-bom has ") and shown in message
    assert "--allow-mixed" in message and "\n" not in message
    assert not (tmp_path / "tables").exists()

    result = CliRunner().invoke(table_cli, ["main", "--results-dir", str(tmp_path), "--allow-mixed"])
    assert result.exit_code == 0, result.output
    assert "‡" in result.output and "settings differ" in result.output
    frame = build_main_table(tmp_path, allow_mixed=True).frame.set_index("model")
    assert frame.loc["dino-world-bom", "vspw/deviation"] == shown
    assert frame["vspw/deviation"].isna().sum() == len(frame) - 1
    csv = (tmp_path / "tables" / "main.csv").read_text()
    assert "vspw/deviation" in csv.splitlines()[0] and shown in csv
    tex = (tmp_path / "tables" / "main.tex").read_text()
    assert r"49.0 (40.0)$^\ddagger$" in tex and r"\footnotesize $^\ddagger$settings differ" in tex


def test_malformed_flops_file_is_named(results: Path):
    (results / "flops.csv").write_text("name,flops\nx,1\n")
    with pytest.raises(DfbenchError, match="malformed flops file .*flops.csv"):
        build_main_table(results)
