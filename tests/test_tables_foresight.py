"""Results of two protocols in one folder, and the DINO-Foresight table (Table D layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from dfbench.cli.table import table as table_cli
from dfbench.errors import DfbenchError
from dfbench.result_store import LATEST, latest_result_path, load_latest
from dfbench.schema import RunIdentity
from dfbench.table_render import format_latex, render_main_table
from dfbench.tables import build_main_table, write_main_table
from test_tables import write_result

MAIN, FORESIGHT = "dinoworld-dense-forecasting", "dinoforesight"


def result_file(model: str, dataset: str, protocol: str, values: dict, complete: bool = True, **changes) -> dict:
    identity = dict(
        model=model, dataset=dataset, dataset_version="1", feature_space="dinov3-vitb16" if protocol == MAIN else
        "dinov2-vitb14-reg-pca1152", protocol=protocol, protocol_version="1.0", seed=0, num_samples=1,
        horizons=("short", "mid"), precision="fp32", limit=None if complete else 4, numerics_version=1,
    )
    identity.update(changes)
    return {
        "schema_version": 2, "model": model, "dataset": dataset, "stochastic": False, "num_samples": 1,
        "num_clips": 500 if complete else 4, "complete": complete,
        "identity": RunIdentity(**identity).to_json(),
        "metrics": [{"metric": m, "horizon": h, "stat": "single", "value": v} for (m, h), v in values.items()],
        "records": "",
        "provenance": {"feature_space": identity["feature_space"], "protocol": {"name": protocol, "version": "1.0"},
                       "dfbench_version": "0.1.0", "git_commit": "0123456789abcdef"},
    }


def foresight_values(miou_short, miou_mid, d1_short, d1_mid) -> dict:
    return {("miou_all", "short"): miou_short, ("miou_all", "mid"): miou_mid, ("mo_miou", "short"): 1.0,
            ("d1", "short"): d1_short, ("d1", "mid"): d1_mid, ("abs_rel", "short"): 0.2}


FORESIGHT_RUNS = [
    ("copy-last", foresight_values(54.0, 40.0, 84.0, 77.5)),
    ("dino-foresight", foresight_values(71.5, 59.5, 88.5, 85.0)),
    ("present", foresight_values(76.5, 76.5, 89.0, 89.0)),
    ("acme_wm", foresight_values(60.0, 50.0, 86.0, 80.0)),  # a model without a spec
]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Both protocols on Cityscapes in one folder; Copy-last and Present ran under each."""
    root = tmp_path / "results"
    write_result(root, result_file("copy-last", "cityscapes", MAIN, {("miou", "short"): 52.0, ("miou", "mid"): 41.0}))
    write_result(root, result_file("present", "cityscapes", MAIN, {("miou", "short"): 70.0, ("miou", "mid"): 70.0}))
    for model, values in FORESIGHT_RUNS:
        write_result(root, result_file(model, "cityscapes", FORESIGHT, values))
    return root


def test_each_protocol_keeps_its_latest_result(results: Path):
    folder = results / "cityscapes" / "copy-last"
    pointer = json.loads((folder / LATEST).read_text())
    assert set(pointer["protocols"]) == {MAIN, FORESIGHT}
    # The top-level fields name the result written last, for readers that know one pointer.
    assert pointer["protocol"] == FORESIGHT and pointer["result"] == pointer["protocols"][FORESIGHT]["result"]
    main_path = latest_result_path(results, "cityscapes", "copy-last", protocol=MAIN)
    foresight_path = latest_result_path(results, "cityscapes", "copy-last", protocol=FORESIGHT)
    assert main_path != foresight_path and main_path.is_file() and foresight_path.is_file()
    assert latest_result_path(results, "cityscapes", "copy-last") == foresight_path
    assert latest_result_path(results, "cityscapes", "dino-foresight", protocol=MAIN) is None
    assert {r.model for _, r in load_latest(results, protocol=MAIN)} == {"copy-last", "present"}
    assert len(load_latest(results, protocol=FORESIGHT)) == 4 and len(load_latest(results)) == 6


def test_each_table_reads_its_own_protocol(results: Path):
    main = build_main_table(results, ci=0).frame.set_index("model")
    assert list(main.index) == ["copy-last", "present"]
    assert main.loc["copy-last", "cityscapes/miou/short/single"] == 52.0
    assert not any("miou_all" in c or "/d1/" in c for c in main.columns)
    fore = build_main_table(results, ci=0, layout="foresight").frame.set_index("model")
    assert fore.loc["copy-last", "cityscapes/miou_all/short/single"] == 54.0
    assert "cityscapes/miou/short/single" not in fore.columns


def test_a_later_run_of_one_protocol_leaves_the_other_alone(results: Path):
    write_result(results, result_file("copy-last", "cityscapes", MAIN, {("miou", "short"): 53.0, ("miou", "mid"): 42.0},
                                      precision="bf16"))
    # A partial run never displaces the complete result of its own protocol.
    write_result(results, result_file("copy-last", "cityscapes", FORESIGHT, foresight_values(1, 1, 1, 1), complete=False))
    main = build_main_table(results, ci=0).frame.set_index("model")
    fore = build_main_table(results, ci=0, layout="foresight").frame.set_index("model")
    assert main.loc["copy-last", "cityscapes/miou/short/single"] == 53.0
    assert fore.loc["copy-last", "cityscapes/miou_all/short/single"] == 54.0


def test_a_pointer_of_an_older_dfbench_stands_for_its_results_protocol(tmp_path: Path):
    path = write_result(tmp_path, result_file("copy-last", "cityscapes", FORESIGHT, foresight_values(1, 2, 3, 4)))
    (path.parent / LATEST).write_text(json.dumps({"result": path.name, "complete": True}))
    assert latest_result_path(tmp_path, "cityscapes", "copy-last", protocol=FORESIGHT) == path
    assert build_main_table(tmp_path, ci=0, layout="foresight").frame["cityscapes/d1/mid/single"].tolist() == [4.0]
    with pytest.raises(DfbenchError, match=rf"^no results of protocol '{MAIN}' under .* \(only {FORESIGHT}\); run"):
        build_main_table(tmp_path)
    # The next run rewrites it in the per-protocol form, keeping the old entry.
    write_result(tmp_path, result_file("copy-last", "cityscapes", MAIN, {("miou", "short"): 5.0}))
    assert set(json.loads((path.parent / LATEST).read_text())["protocols"]) == {MAIN, FORESIGHT}


def test_foresight_table_rows_columns_and_tokens(results: Path):
    frame = build_main_table(results, ci=0, layout="foresight").frame
    assert list(frame["model"]) == ["copy-last", "dino-foresight", "acme_wm", "present"]
    assert list(frame["role"]) == ["lower_bound", "model", "model", "upper_bound"]
    groups = list(dict.fromkeys(c.rsplit("/", 1)[0] for c in frame.columns if c.count("/") == 3))
    # Only mIoU and delta1 (Table D), although the results carry MO-mIoU and AbsRel too.
    assert groups == ["cityscapes/miou_all/short", "cityscapes/miou_all/mid", "cityscapes/d1/short", "cityscapes/d1/mid"]
    # 5 frames x 32 x 64 tokens, read from the released predictor config.
    assert frame.set_index("model")["tokens"].dropna().to_dict() == {"dino-foresight": 10240}


def test_released_token_count_is_not_printed_for_results_in_another_space(tmp_path: Path):
    """The tiny DINO-Foresight on the synthetic world does not read 5 x 32 x 64 tokens."""
    for model, values in FORESIGHT_RUNS[:3]:
        write_result(tmp_path, result_file(model, "synthetic", FORESIGHT, values, feature_space="tiny-ml-pca"))
    frame = build_main_table(tmp_path, ci=0, layout="foresight").frame.set_index("model")
    assert frame["tokens"].isna().all()
    write_result(tmp_path, result_file("dino-foresight", "cityscapes", FORESIGHT, FORESIGHT_RUNS[1][1]))
    # One row over both spaces: the released count would be wrong for one of its cells.
    assert build_main_table(tmp_path, ci=0, layout="foresight").frame.set_index("model")["tokens"].isna().all()


def test_foresight_reference_rows_sit_beside_ours(results: Path):
    table = build_main_table(results, ci=0, reference=True, layout="foresight")
    frame = table.frame
    assert list(frame["name"]) == [
        "Copy last (lower bound)", "Copy last (paper)", "DINO-Foresight", "DINO-Foresight (paper)",
        "DINO-Foresight w/ delta tokens (paper)", "acme_wm", "Present (upper bound)", "Present (paper)"]
    paper = frame[frame["name"] == "DINO-Foresight w/ delta tokens (paper)"].iloc[0]
    assert paper["cityscapes/miou_all/short/single"] == 72.1 and paper["cityscapes/d1/mid/single"] == 85.6
    assert paper["tokens"] == 5
    copy_paper = frame[(frame["model"] == "copy-last") & (frame["role"] == "reference")].iloc[0]
    assert (copy_paper["cityscapes/miou_all/short/single"], copy_paper["cityscapes/d1/short/single"]) == (54.7, 84.1)
    tex = format_latex(table)
    assert "10240" in tex and "dfbench table foresight" in tex and r"Cityscapes mIoU $\uparrow$" in tex
    # Bold marks the best model row (a bound or a reported row never is).
    assert r"\textbf{71.5}" in tex and r"\textbf{76.5}" not in tex and r"\textbf{72.1}" not in tex
    console = Console(width=200, record=True, color_system=None)
    console.print(render_main_table(table))
    text = console.export_text()
    assert "Table D layout" in text and "Tokens" in text and "w/ delta tokens (paper)" in text


def test_cli_writes_foresight_csv_and_tex(results: Path):
    result = CliRunner().invoke(table_cli, ["foresight", "--reference", "--results-dir", str(results)])
    assert result.exit_code == 0, result.output
    csv = (results / "tables" / "foresight.csv").read_text()
    assert csv.splitlines()[0].startswith("model,name,role,tokens,cityscapes/miou_all/short/best,")
    assert (results / "tables" / "foresight.tex").is_file() and not (results / "tables" / "main.csv").exists()
    # The main table of the same folder still reads only its own protocol.
    assert write_main_table(results, ci=0)[0].read_text().count("\n") == 3


def test_mixed_settings_within_the_foresight_table_are_refused(results: Path):
    write_result(results, result_file("dino-foresight", "cityscapes", FORESIGHT, foresight_values(1, 1, 1, 1),
                                      protocol_version="0.9"))
    with pytest.raises(DfbenchError, match="results on cityscapes mix settings: dino-foresight has protocol "):
        build_main_table(results, layout="foresight")
    assert build_main_table(results, layout="foresight", allow_mixed=True, ci=0).frame["cityscapes/deviation"].notna().sum() == 1


def test_unknown_layout_is_one_line(results: Path):
    with pytest.raises(DfbenchError, match=r"^no table layout 'nope' in configs/tables"):
        build_main_table(results, layout="nope")
