"""`dfbench report`: one self-contained HTML page, checked in a real headless browser."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfbench.plots import best_of_k_figure, png_bytes
from dfbench.report import BEST_OF_K_PREFIX, best_of_k_curves, flops_points, table_html
from dfbench.tables import build_main_table, load_results

MODELS = ("copy-last", "deltaworld", "present")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Set on <html> once every <img> has loaded (naturalWidth > 0) or failed, and on any script error.
PROBE = """<script>
window.addEventListener('error', e => document.documentElement.setAttribute('data-errors',
  (document.documentElement.getAttribute('data-errors') || '') + '|' + (e.message || e.target.src || 'error')), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.documentElement.setAttribute('data-probe', `images=${imgs.length};broken=${bad}`);
});
</script>"""


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    from dfbench.run import RunOptions, run

    out = tmp_path_factory.mktemp("report-results")
    for model in MODELS:
        run(RunOptions(model=model, dataset="synthetic", limit=2, num_samples=3, output_dir=str(out), progress=False))
    return out


@pytest.fixture(scope="module")
def report(results_dir) -> Path:
    from click.testing import CliRunner

    from dfbench.cli import cli

    result = CliRunner().invoke(cli, ["report", "--results-dir", str(results_dir), "--clips", "1"])
    assert result.exit_code == 0, result.output
    return results_dir / "report.html"


def browser() -> str | None:
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def test_the_page_is_self_contained(report):
    page = report.read_text()
    sources = re.findall(r"""\b(?:src|href)\s*=\s*['"]([^'"]*)""", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources), sources[:3]
    assert "<link" not in page and "@import" not in page and "url(" not in page
    # Figure 2, the best-of-k curves (DeltaWorld's sample scores) and one clip.
    assert page.count("<img") == 3
    assert "No best-of-k curves" not in page


def test_the_page_shows_the_table_with_display_names_and_the_clip(report):
    from dfbench.registry import get_model_spec

    page = report.read_text()
    for model in MODELS:
        assert get_model_spec(model).display in page
    assert "mean " in page  # DeltaWorld's mean of S under its best
    assert "clip val-00000" in page and "not drawn" not in page and "No predictions" not in page
    assert "other task heads" not in page
    assert "No FLOPs count for: Copy last (lower bound), Present (upper bound)" in page


def test_intervals_in_the_table_frame_are_shown(results_dir):
    table = build_main_table(results_dir)
    column = "synthetic/miou/mid/best"
    table.frame[f"{column}/ci_low"] = table.frame[column] - 1.25
    table.frame[f"{column}/ci_high"] = table.frame[column] + 2.5
    page = table_html(table)
    row = table.frame[table.frame["model"] == "deltaworld"].iloc[0]
    assert f"[{row[column] - 1.25:.1f}, {row[column] + 2.5:.1f}]" in page
    assert "95% clip-bootstrap intervals" in page
    assert "No intervals" in table_html(build_main_table(results_dir, ci=0))
    assert "95% clip-bootstrap intervals" in table_html(build_main_table(results_dir))  # from the records


def test_flops_are_counted_for_models_with_a_counting_kind(results_dir):
    from dfbench.flops import total_gflops

    points, missing = flops_points(build_main_table(results_dir), load_results(results_dir))
    assert missing == ["copy-last", "present"]
    (panel,) = [rows for title, rows in points.items() if "mIoU" in title]
    ((name, gflops, best, mean),) = panel
    assert name == "DeltaWorld" and gflops == pytest.approx(total_gflops("deltaworld", num_samples=3))
    assert mean is not None and best >= mean - 1e-9


def test_best_of_k_curves_are_read_from_results_and_drawn():
    entries = [{"metric": f"{BEST_OF_K_PREFIX}{k}", "horizon": "mid", "stat": "ensemble", "value": 1.0 / k, "step": None}
               for k in (1, 2, 3)]
    entries.append({"metric": "miou", "horizon": "mid", "stat": "best", "value": 50.0, "step": None})
    curves = best_of_k_curves([{"model": "deltaworld", "dataset": "synthetic", "metrics": entries}])
    assert curves == {"Synthetic (Mid)": {"DeltaWorld": {1: 1.0, 2: 0.5, 3: 1 / 3}}}
    image = np.asarray(Image.open(io.BytesIO(png_bytes(best_of_k_figure(curves, "t")))))
    assert image.shape[0] > 100 and image.std() > 0  # drawn, not blank


def test_a_data_set_without_data_says_so(monkeypatch, tmp_path):
    from dfbench.report_panels import dataset_figures

    monkeypatch.delenv("CITYSCAPES_ROOT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = {"identity": {"model": "copy-last", "feature_space": "tiny", "num_samples": 1, "seed": 0}}
    figures = dataset_figures("cityscapes", [result], num_clips=1)
    assert figures.figures == []
    (note,) = figures.notes
    assert note.startswith("No predictions drawn for Cityscapes: no data root for cityscapes"), note


def browser_or_skip() -> str:
    path = browser()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI; .ci/run installs it")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return path


def browser_command(path: str, tmp_path: Path) -> list[str]:
    return [path, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]


def probe_in_browser(page: Path, tmp_path: Path) -> str:
    """Loads the page with PROBE injected in headless Chromium; returns the <html> tag the probe marked."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    dom = subprocess.run([*browser_command(browser_or_skip(), tmp_path), "--virtual-time-budget=10000", "--dump-dom",
                          probed.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    (root,) = re.findall(r"<html[^>]*>", dom)
    return root


def test_the_page_renders_in_a_headless_browser(report, tmp_path):
    root = probe_in_browser(report, tmp_path)
    assert 'data-probe="images=3;broken=0"' in root and "data-errors" not in root, root
    common = browser_command(browser_or_skip(), tmp_path)
    shot = Path(os.environ.get("DFBENCH_REPORT_SCREENSHOT") or tmp_path / "report.png")
    subprocess.run([*common, "--window-size=1300,2600", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2600, 1300) and pixels.std() > 10  # the page painted, not a blank canvas


def test_the_clip_figure_has_no_empty_tile_and_labels_everything():
    from dfbench.plots import ClipPanels, Forecast, SampleStrip, forecast_figure

    rng = np.random.default_rng(0)
    seg = [rng.integers(0, 3, (6, 6)) for _ in range(2)]
    depth = [rng.uniform(1, 50, (6, 6)) for _ in range(2)]
    rgb = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(4)]
    panels = ClipPanels("Synthetic clip val-00007", rgb[:2], rgb[2:], ["+1 (0.10 s)", "+2 (0.20 s)"],
                        {"seg": seg, "depth": depth}, class_names=["sky", "road", "car"])
    panels.forecasts = [Forecast("DeltaWorld", stat, {"seg": seg, "depth": depth}, 5) for stat in ("best", "mean")]
    panels.strips = [SampleStrip("DeltaWorld", "seg", seg * 5, best=9)]
    fig = forecast_figure(panels, strip_columns=4)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert "Synthetic clip val-00007" in texts
    assert {"DeltaWorld\nbest of 5", "DeltaWorld\nmean of 5", "sample 10 (best)", "sky", "car"} <= set(texts)
    tiles = [ax for ax in fig.axes if ax.get_images()]
    # frames 4 + (truth, best, mean) x (2 seg + 2 depth) + 4 samples + the depth scale; no axis without an image
    assert len(tiles) == 4 + 3 * 4 + 4 + 1
    assert all(ax.get_images() or ax.get_legend() for ax in fig.axes)
    png_bytes(fig)


def test_a_result_of_other_weights_is_not_redrawn_with_the_shipped_ones():
    from dfbench.features import load_feature_space
    from dfbench.registry import get_model_class
    from dfbench.report_panels import _panel_model

    space = load_feature_space("tiny")
    shipped = dict(get_model_class("deltaworld")(space).checkpoint_files())
    other = {role: "0" * 64 for role in shipped}
    entry, note = _panel_model({"identity": {"model": "deltaworld", "num_samples": 2, "weights": other}}, space, "cpu")
    assert entry is None and "other weights" in note
    entry, note = _panel_model({"identity": {"model": "deltaworld", "num_samples": 2, "weights": shipped}}, space, "cpu")
    assert note is None and entry.display == "DeltaWorld" and entry.num_samples == 2


def test_demo_then_report_shows_best_of_k_curves_and_intervals(tmp_path):
    """End to end as a user runs it: `dfbench demo` on a few clips, then `dfbench report` on its folder."""
    from click.testing import CliRunner

    from dfbench.cli import cli
    from dfbench.demo import demo_models
    from dfbench.registry import get_model_class, get_model_spec

    out, samples = tmp_path / "demo", 3
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--output-dir", str(out), "--limit", "2", "--num-samples", str(samples)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["report", "--results-dir", str(out), "--clips", "1"])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()

    stochastic = {get_model_spec(m).display for m in demo_models() if get_model_class(m).stochastic}
    (curves,) = best_of_k_curves(load_results(out)).values()
    assert set(curves) == stochastic
    for curve in curves.values():
        assert sorted(curve) == list(range(1, samples + 1))
        # The best of more samples can only be as close or closer: the expected loss never rises with k.
        assert all(curve[k + 1] <= curve[k] + 1e-9 for k in range(1, samples))
    assert "alt='best-of-k'" in page and "No best-of-k curves" not in page

    frame = build_main_table(out).frame
    for column in ("synthetic/rmse/mid/single", "synthetic/miou/mid/best"):
        rows = frame.dropna(subset=[column])  # deterministic models fill "single", stochastic ones best and mean
        assert len(rows) and (rows[f"{column}/ci_low"] <= rows[column]).all(), column
        assert (rows[column] <= rows[f"{column}/ci_high"]).all(), column
    assert "Brackets: 95% clip-bootstrap intervals." in page
    assert re.search(r"\[\d+\.\d+, \d+\.\d+\]", page)

    root = probe_in_browser(out / "report.html", tmp_path)
    assert f'data-probe="images={page.count("<img")};broken=0"' in root and "data-errors" not in root, root
