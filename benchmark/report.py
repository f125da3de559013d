"""`dfbench report`: one self-contained HTML page of a results folder.

The page holds the main table (with bootstrap intervals when the table has them),
accuracy against GFLOPs (the paper's Figure 2), best-of-k curves, and prediction maps
of a few clips per data set. Figures are inline PNG data URIs and the style sheet is
inline: the page fetches nothing, so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from dfbench.sample_scores import BEST_OF_K_PREFIX  # metric names of the expected best-of-k curve
from dfbench.tables import MainTable, build_main_table, load_layout, load_results

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { padding: 0.3em 0.6em; text-align: center; border-bottom: 1px solid #eee; }
th { border-bottom: 1px solid #888; } td.name { text-align: left; white-space: nowrap; }
tr.bound td { color: #555; font-style: italic; } tr.reference td { color: #777; }
.ci { color: #666; font-size: 0.85em; } .mean { color: #444; font-size: 0.9em; }
.note { color: #8a5300; } .source, .caption { color: #666; font-size: 0.85em; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(png: bytes, alt: str, caption: str = "") -> str:
    text = f"<figcaption class='caption'>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure><img src='{data_uri(png)}' alt='{html.escape(alt)}'>{text}</figure>"


def _number(value: float, decimals: int) -> str:
    from dfbench.formatting import format_number

    return format_number(value, decimals)


def _interval(row: pd.Series, column: str, decimals: int) -> str:
    low, high = row.get(f"{column}/ci_low"), row.get(f"{column}/ci_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f" <span class='ci'>[{_number(low, decimals)}, {_number(high, decimals)}]</span>"


def _cell(row: pd.Series, key: str, decimals: int, bold: bool) -> str:
    """Primary value (best of S, else the single one) with its interval; the mean under it."""
    values = {s: row.get(f"{key}/{s}") for s in ("best", "mean", "single")}
    primary = next((s for s in ("best", "single", "mean") if not pd.isna(values[s])), None)
    if primary is None:
        return "–"
    text = _number(values[primary], decimals)
    text = (f"<b>{text}</b>" if bold else text) + _interval(row, f"{key}/{primary}", decimals)
    if primary == "best" and not pd.isna(values["mean"]):
        mean = _number(values["mean"], decimals) + _interval(row, f"{key}/mean", decimals)
        text += f"<br><span class='mean'>mean {mean}</span>"
    return text


def table_html(table: MainTable) -> str:
    """The main table as HTML: the same rows, columns and bold cells as the terminal and LaTeX."""
    from dfbench.formatting import arrow
    from dfbench.table_render import _bold_rows, column_groups  # one bolding rule for every rendering

    frame, layout = table.frame, load_layout()
    groups = column_groups(frame)
    has_ci = any(c.endswith("/ci_low") for c in frame.columns)
    head = ["<th>Model</th>"]
    for dataset, metric, horizon in groups:
        spec = layout.metric(metric)
        label = f"{layout.dataset_name(dataset)}<br>{spec['display']}{arrow(spec['higher_is_better'], ' ↑', ' ↓')}"
        head.append(f"<th>{label}<br>{html.escape(layout.horizons[horizon])}</th>")
    if "gflops" in frame.columns:
        head.append("<th>GFLOPs</th>")
    bold = [_bold_rows(frame, "/".join(g), layout.metric(g[1])) for g in groups]
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        role = row["role"]
        css = "bound" if role in ("lower_bound", "upper_bound") else role
        cells = [f"<td class='name'>{html.escape(str(row['name']))}</td>"]
        for g, rows_bold in zip(groups, bold):
            decimals = layout.metric(g[1])["decimals"]
            complete = row.get(f"{g[0]}/complete")
            partial = complete is not None and not pd.isna(complete) and not bool(complete)
            cells.append(f"<td>{_cell(row, '/'.join(g), decimals, i in rows_bold)}{'†' if partial else ''}</td>")
        if "gflops" in frame.columns:
            cells.append(f"<td>{'–' if pd.isna(row['gflops']) else _number(row['gflops'], 1)}</td>")
        body.append(f"<tr class='{css}'>{''.join(cells)}</tr>")
    caption = ("Best of S samples for stochastic models (their mean of S below), the single forecast otherwise; "
               "bold: best among the models, bounds excluded; † partial run.")
    caption += (" Brackets: 95% clip-bootstrap intervals." if has_ci
                else " No intervals in these results (the table was built without them).")
    return (f"<table><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<p class='caption'>{html.escape(caption)}</p><p class='source'>{html.escape(table.source)}</p>")


def flops_points(table: MainTable, results: list[dict], horizon: str = "mid") -> tuple[dict, list[str]]:
    """Figure 2's points: panel -> (name, GFLOPs, primary, mean), and the models left out (no count)."""
    from dfbench.table_render import column_groups

    frame, layout = table.frame[table.frame["role"] != "reference"], load_layout()
    gflops = dict(zip(frame["model"], frame["gflops"])) if "gflops" in frame.columns else {}
    samples = {r["model"]: r["identity"]["num_samples"] for r in results}
    missing = [m for m in frame["model"] if pd.isna(gflops.get(m, math.nan)) and not _counted(m, samples, gflops)]
    points: dict[str, list] = {}
    for dataset, metric, h in column_groups(frame):
        if h != horizon:
            continue
        spec = layout.metric(metric)
        panel = f"{layout.dataset_name(dataset)} {spec['display']} ({layout.horizons[h]})"
        for _, row in frame.iterrows():
            values = {s: row.get(f"{dataset}/{metric}/{h}/{s}") for s in ("best", "mean", "single")}
            primary = values["best"] if not pd.isna(values["best"]) else values["single"]
            if row["model"] in gflops and not pd.isna(gflops[row["model"]]) and not pd.isna(primary):
                mean = None if pd.isna(values["best"]) else values["mean"]
                points.setdefault(panel, []).append((row["name"], float(gflops[row["model"]]), float(primary), mean))
    return points, missing


def _counted(model: str, samples: dict[str, int], gflops: dict) -> bool:
    """Adds the model's GFLOPs from dfbench.flops when it has a counting kind; False if it has none."""
    from dfbench.flops import MODELS, total_gflops

    if model not in MODELS:
        return False
    gflops[model] = total_gflops(model, num_samples=max(1, int(samples.get(model, 20))))
    return True


def best_of_k_curves(results: list[dict], horizon: str = "mid") -> dict[str, dict[str, dict[int, float]]]:
    """Panel (data set) -> model display name -> {k: expected best-of-k feature loss}, from the results."""
    layout = load_layout()
    curves: dict[str, dict[str, dict[int, float]]] = {}
    for result in results:
        curve = {int(e["metric"][len(BEST_OF_K_PREFIX):]): float(e["value"]) for e in result["metrics"]
                 if e["metric"].startswith(BEST_OF_K_PREFIX) and e["horizon"] == horizon and e.get("step") is None}
        if len(curve) > 1:
            panel = f"{layout.dataset_name(result['dataset'])} ({layout.horizons.get(horizon, horizon)})"
            curves.setdefault(panel, {})[layout.model_name(result["model"])] = curve
    return curves


def report_html(results_dir: str | Path, clips_per_dataset: int = 2, device: str = "cpu") -> str:
    """The whole page as a string."""
    import dfbench
    from dfbench.plots import accuracy_flops_figure, best_of_k_figure, png_bytes
    from dfbench.report_panels import dataset_figures

    table = build_main_table(results_dir)
    results = load_results(results_dir)
    parts = [f"<h1>dfbench report: {html.escape(str(results_dir))}</h1>",
             f"<p class='source'>dfbench {html.escape(dfbench.__version__)}</p>",
             "<h2>Main table</h2>", table_html(table), "<h2>Accuracy against compute (Figure 2)</h2>"]
    points, missing = flops_points(table, results)
    if points:
        fig = accuracy_flops_figure(points, "Accuracy against GFLOPs per clip (mid horizon)")
        parts.append(_figure(png_bytes(fig), "accuracy against GFLOPs",
                             "GFLOPs of one clip's rollout at the paper's scale (ViT-B, 256 px, both crops, all "
                             "samples): from flops.csv when the results folder has one, else counted by dfbench.flops."))
    if missing:
        names = ", ".join(load_layout().model_name(m) for m in missing)
        parts.append(f"<p class='note'>No FLOPs count for: {html.escape(names)} (no counting kind in dfbench.flops "
                     "and no flops.csv entry).</p>")
    parts.append("<h2>Best of k samples</h2>")
    curves = best_of_k_curves(results)
    if curves:
        parts.append(_figure(png_bytes(best_of_k_figure(curves, "Expected best-of-k feature loss")), "best-of-k",
                             "Expected feature loss of the best of k samples drawn from the S, by order statistics."))
    else:
        parts.append("<p class='note'>No best-of-k curves in these results (they hold no best_of_k entries; "
                     "results of stochastic models computed with sample scores carry them).</p>")
    parts.append("<h2>Predictions</h2>")
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        chosen = [r for r in results if r["dataset"] == dataset]
        figures = dataset_figures(dataset, _table_order(chosen), clips_per_dataset, device=device)
        parts.append(f"<h3>{html.escape(figures.display)}</h3>")
        parts += [f"<p class='note'>{html.escape(note)}</p>" for note in figures.notes]
        parts += [_figure(png, caption, caption) for caption, png in figures.figures]
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>dfbench report</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _table_order(results: list[dict]) -> list[dict]:
    order = list(load_layout().models)
    return sorted(results, key=lambda r: order.index(r["model"]) if r["model"] in order else len(order))


def write_report(results_dir: str | Path, out: str | Path | None = None, clips_per_dataset: int = 2,
                 device: str = "cpu") -> Path:
    """Writes the report (``<results_dir>/report.html`` by default) and returns its path."""
    from dfbench.files import check_writable, write_text_atomic

    path = Path(out) if out is not None else Path(results_dir) / "report.html"
    check_writable(path.parent, "--out")
    write_text_atomic(path, report_html(results_dir, clips_per_dataset, device))
    return path
