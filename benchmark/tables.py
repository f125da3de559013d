"""The main results table (the paper's Table 3) as a pure function of results files.

``load_results`` reads the latest result of each model and data set (``result_store``); ``main_table`` turns
them into one DataFrame (one row per table row, one numeric column per data set,
metric, horizon and statistic); ``format_latex`` and ``render_main_table`` only format
that frame, so the csv, the LaTeX and the terminal always show the same numbers.
Row order, names, decimals and arrows come from ``configs/tables/main.yaml``.

CSV schema (``main.csv``), one row per table row, in table order:

- ``model``: registry name; ``name``: display name; ``role``: ``lower_bound``,
  ``model``, ``upper_bound`` or ``reference`` (a reported row placed under ours);
- ``gflops``: only when ``<results-dir>/flops.csv`` exists;
- ``<dataset>/<metric>/<horizon>/<stat>`` for stat in best, mean, single: every
  statistic gets a column, empty where it does not apply, so the schema does not
  depend on which models ran;
- ``<dataset>/num_clips`` and ``<dataset>/complete``: ``False`` marks a partial run;
- ``<dataset>/deviation``: only in a table built with ``--allow-mixed`` whose results
  differ in settings; names how that row's result differs (e.g. ``samples 2 (others 20)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from dfbench.config import load_yaml
from dfbench.errors import DfbenchError

STATS = ("best", "mean", "single")
MISSING_TEX = "–"
DAGGER_NOTE = "partial run: not all clips evaluated."
MIXED_NOTE = "settings differ from the other rows"


@dataclass(frozen=True)
class Layout:
    """The parsed ``configs/tables/main.yaml``."""

    lower_bound: str
    upper_bound: str
    models: dict[str, dict[str, str]]
    datasets: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    horizons: dict[str, str]
    reference: dict[str, str]

    def model_name(self, model: str) -> str:
        return self.models.get(model, {}).get("display", model)

    def dataset_name(self, dataset: str) -> str:
        return self.datasets.get(dataset, {}).get("display", dataset)

    def metric(self, metric: str) -> dict[str, Any]:
        # Unknown third-party metrics get no arrow and no bolding: their direction is unknown.
        return self.metrics.get(metric, {"display": metric, "higher_is_better": None, "decimals": 2})


@cache
def load_layout() -> Layout:
    """Reads the table layout shipped in ``dfbench.configs``."""
    raw = load_yaml("tables", "main.yaml")
    return Layout(
        lower_bound=raw["lower_bound"],
        upper_bound=raw["upper_bound"],
        models=raw["models"],
        datasets=raw["datasets"],
        metrics=raw["metrics"],
        horizons=raw["horizons"],
        reference={k: str(v) for k, v in raw["reference"].items()},
    )


@dataclass(frozen=True)
class MainTable:
    """The table's numbers plus one line that says which results they came from.

    Attributes:
        frame: one row per table row, in table order (schema in the module docstring).
        source: provenance summary, printed as the comment line of the LaTeX output.
    """

    frame: pd.DataFrame
    source: str


# ---------------------------------------------------------------- reading results


def _malformed(path: Path, reason: str) -> DfbenchError:
    return DfbenchError(f"malformed results file {path}: {reason}")


def _check_result(data: Any, path: Path, horizons: dict[str, str]) -> dict:
    from dfbench.schema import RunResult

    result = RunResult.load(data, str(path))
    for entry in result.metrics:
        if entry.horizon not in horizons:
            raise _malformed(path, f"horizon {entry.horizon!r} is not one of {', '.join(horizons)}")
    return result.to_json()


def load_results(results_dir: str | Path, allow_mixed: bool = False) -> list[dict]:
    """Reads the latest result of every model and data set under ``results_dir``.

    Args:
        results_dir: the folder ``dfbench run`` writes to.
        allow_mixed: accept results whose settings differ; each gets a ``deviation`` text.

    Returns:
        The results as JSON dicts, sorted by path so tables do not depend on file-system order.

    Raises:
        DfbenchError: no results, a malformed file (named), or settings that differ
            between the results of one data set (unless ``allow_mixed``).
    """
    from dfbench.result_store import check_mixing, load_latest

    horizons = load_layout().horizons
    found = load_latest(results_dir)
    for path, result in found:
        _check_result(result.to_json(), path, horizons)
    mixed = check_mixing([r for _, r in found], allow_mixed)
    return [{**r.to_json(), "deviation": mixed.get((r.model, r.dataset))} for _, r in found]


def load_flops(path: str | Path) -> dict[str, float]:
    """Reads a ``model,gflops`` csv (measured per model; the harness does not count FLOPs)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
        if not {"model", "gflops"} <= set(frame.columns):
            raise ValueError("expected columns model,gflops")
        return {str(m): float(g) for m, g in zip(frame["model"], pd.to_numeric(frame["gflops"]))}
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DfbenchError(f"malformed flops file {path}: {err}") from None


def reported_numbers() -> pd.DataFrame:
    """The numbers the paper and the release report, from the packaged reference csv."""
    try:
        resource = files("dfbench.reference").joinpath("reported_numbers.csv")
        with resource.open("r", encoding="utf-8") as handle:
            return pd.read_csv(handle, dtype={"table": str})
    except (ModuleNotFoundError, FileNotFoundError):
        raise DfbenchError("reported_numbers.csv is not in the installed package; reinstall dfbench.") from None


# ---------------------------------------------------------------- building the frame


def _ordered(names: set[str], listed: list[str]) -> list[str]:
    return [n for n in listed if n in names] + sorted(names - set(listed))


def _groups(results: list[dict], layout: Layout) -> list[tuple[str, str, str]]:
    """(dataset, metric, horizon) columns in table order, for what the results contain."""
    metrics_of: dict[str, set[str]] = {}
    for result in results:
        metrics_of.setdefault(result["dataset"], set()).update(e["metric"] for e in result["metrics"])
    return [
        (dataset, metric, horizon)
        for dataset in _ordered(set(metrics_of), list(layout.datasets))
        for metric in _ordered(metrics_of[dataset], list(layout.metrics))
        for horizon in layout.horizons
    ]


def _source(results: list[dict], reference: bool, layout: Layout) -> str:
    def found(values) -> str:
        return ", ".join(sorted({str(v) for v in values if v})) or "unknown"

    prov = [r.get("provenance") or {} for r in results]
    protocols = (f"{p['protocol'].get('name')} {p['protocol'].get('version')}" for p in prov if p.get("protocol"))
    parts = [
        f"{len(results)} results files",
        f"datasets {found(r['dataset'] for r in results)}",
        f"protocol {found(protocols)}",
        f"feature space {found(p.get('feature_space') for p in prov)}",
        f"dfbench {found(p.get('dfbench_version') for p in prov)}",
        f"commit {found(str(p.get('git_commit') or '')[:7] for p in prov)}",
    ]
    if reference:
        parts.append(f"reported rows: {layout.reference['source']} table {layout.reference['table']}")
    return "; ".join(parts)


def _reference_rows(layout: Layout, groups: list[tuple[str, str, str]]) -> dict[str, dict[str, float]]:
    """Reported values per reference model name, keyed like the frame's columns."""
    reported = reported_numbers()
    chosen = (reported["source"] == layout.reference["source"]) & (reported["table"] == layout.reference["table"])
    wanted = set(groups)
    rows: dict[str, dict[str, float]] = {}
    for rec in reported[chosen].itertuples(index=False):
        if (rec.dataset, rec.metric, rec.horizon) in wanted and rec.stat in STATS:
            rows.setdefault(rec.model, {})[f"{rec.dataset}/{rec.metric}/{rec.horizon}/{rec.stat}"] = float(rec.value)
    return rows


def main_table(results: list[dict], reference: bool = False, flops: dict[str, float] | None = None) -> MainTable:
    """Builds the Table 3 layout from parsed results files.

    Args:
        results: as returned by ``load_results``.
        reference: put the reported number row ("<name> (paper)") right under each of
            our rows that has one, so every reported value sits beside ours.
        flops: GFLOPs per model; adds a ``gflops`` column when given.

    Returns:
        The table; see the module docstring for the frame's columns.
    """
    if not results:
        raise DfbenchError("no results to tabulate; run 'dfbench run --model M --dataset D' first")
    layout = load_layout()
    groups = _groups(results, layout)
    value_columns = [f"{d}/{m}/{h}/{s}" for d, m, h in groups for s in STATS]
    datasets = list(dict.fromkeys(d for d, _, _ in groups))
    by_model: dict[str, dict[str, Any]] = {}
    for result in results:
        row = by_model.setdefault(result["model"], {})
        for e in result["metrics"]:
            row[f"{result['dataset']}/{e['metric']}/{e['horizon']}/{e['stat']}"] = float(e["value"])
        row[f"{result['dataset']}/num_clips"] = result.get("num_clips")
        row[f"{result['dataset']}/complete"] = result["complete"]
        if result.get("deviation"):
            row[f"{result['dataset']}/deviation"] = result["deviation"]

    bounds = (layout.lower_bound, layout.upper_bound)
    middle = _ordered(set(by_model) - set(bounds), [m for m in layout.models if m not in bounds])
    order = [(m, "lower_bound") for m in bounds[:1] if m in by_model]
    order += [(m, "model") for m in middle]
    order += [(m, "upper_bound") for m in bounds[1:] if m in by_model]
    reported = _reference_rows(layout, groups) if reference else {}

    records = []
    for model, role in order:
        base = {"model": model, "name": layout.model_name(model), "role": role}
        if flops is not None:
            base["gflops"] = flops.get(model, math.nan)
        records.append({**base, **by_model[model]})
        ref = reported.get(layout.models.get(model, {}).get("reference", ""))
        if ref:
            short = layout.models[model].get("short", layout.model_name(model))
            records.append({"model": model, "name": short + layout.reference["suffix"], "role": "reference", **ref})

    columns = ["model", "name", "role", *(["gflops"] if flops is not None else []), *value_columns]
    columns += [f"{d}/{k}" for d in datasets for k in ("num_clips", "complete")]
    columns += [f"{d}/deviation" for d in datasets if any(r["dataset"] == d and r.get("deviation") for r in results)]
    frame = pd.DataFrame.from_records(records).reindex(columns=columns)
    frame[value_columns] = frame[value_columns].astype("float64")
    for d in datasets:
        frame[f"{d}/num_clips"] = frame[f"{d}/num_clips"].astype("Int64")
        frame[f"{d}/complete"] = frame[f"{d}/complete"].astype("boolean")
    return MainTable(frame=frame, source=_source(results, reference, layout))


# ---------------------------------------------------------------- formatting


def column_groups(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset, metric, horizon) of the frame's value columns, in order."""
    return list(dict.fromkeys(tuple(c.split("/")[:3]) for c in frame.columns if c.count("/") == 3))


def _primary(row: pd.Series, key: str) -> float:
    # The value a reader compares first: best-of-S for sampling models, else the single one.
    for stat in ("best", "single", "mean"):
        if not pd.isna(row[f"{key}/{stat}"]):
            return float(row[f"{key}/{stat}"])
    return math.nan


def _fmt(value: float, decimals: int) -> str:
    # Half up on the shortest decimal repr, as a reader rounds: 31.25 -> 31.3 (f-strings give 31.2).
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def _cell(row: pd.Series, key: str, decimals: int) -> str | None:
    best, mean, single = (row[f"{key}/{s}"] for s in STATS)
    if not pd.isna(best):
        return _fmt(best, decimals) + ("" if pd.isna(mean) else f" ({_fmt(mean, decimals)})")
    for value in (single, mean):
        if not pd.isna(value):
            return _fmt(value, decimals)
    return None


def _bold_rows(frame: pd.DataFrame, key: str, metric: dict[str, Any]) -> set[int]:
    """Positions of the best non-bound rows of one column (ties all bold)."""
    if metric["higher_is_better"] is None:
        return set()
    scored = {
        i: Decimal(_fmt(v, metric["decimals"]))
        for i, (_, row) in enumerate(frame.iterrows())
        if row["role"] == "model" and not math.isnan(v := _primary(row, key))
    }
    if not scored:
        return set()
    target = (max if metric["higher_is_better"] else min)(scored.values())
    return {i for i, v in scored.items() if v == target}


def _partial(row: pd.Series, dataset: str) -> bool:
    complete = row.get(f"{dataset}/complete")
    return complete is not pd.NA and complete is not None and not bool(complete)


def _mixed(row: pd.Series, dataset: str) -> bool:
    return isinstance(row.get(f"{dataset}/deviation"), str)


def _gflops(value: float) -> str | None:
    if pd.isna(value):
        return None
    return f"{value:.0f}" if value >= 10 else f"{value:.2f}"


@dataclass(frozen=True)
class _Cells:
    """Display strings shared by the LaTeX and terminal renderings."""

    text: list[list[str | None]]
    bold: list[list[bool]]
    partial: list[list[bool]]
    mixed: list[list[bool]]

    def notes(self, frame: pd.DataFrame) -> list[str]:
        """One line per row whose settings differ, for the table's footnote."""
        out = []
        for i, flags in enumerate(self.mixed):
            for dataset in dict.fromkeys(g[0] for g, flag in zip(column_groups(frame), flags) if flag):
                out.append(f"{frame['name'].iloc[i]} on {dataset}: {frame[f'{dataset}/deviation'].iloc[i]}")
        return out


def _cells(frame: pd.DataFrame, layout: Layout) -> _Cells:
    groups = column_groups(frame)
    bold_by_col = [_bold_rows(frame, "/".join(g), layout.metric(g[1])) for g in groups]
    text, bold, partial, mixed = [], [], [], []
    for i, (_, row) in enumerate(frame.iterrows()):
        text.append([_cell(row, "/".join(g), layout.metric(g[1])["decimals"]) for g in groups])
        bold.append([i in rows for rows in bold_by_col])
        partial.append([_partial(row, g[0]) for g in groups])
        mixed.append([_mixed(row, g[0]) and text[-1][j] is not None for j, g in enumerate(groups)])
    return _Cells(text, bold, partial, mixed)


def _blocks(frame: pd.DataFrame) -> list[list[int]]:
    """Row positions grouped into lower bound, models, upper bound (reference rows follow theirs)."""
    blocks: dict[str, list[int]] = {"lower_bound": [], "model": [], "upper_bound": []}
    current = "model"
    for i, role in enumerate(frame["role"]):
        current = current if role == "reference" else role
        blocks[current].append(i)
    return [b for b in blocks.values() if b]


def _header_blocks(frame: pd.DataFrame) -> list[tuple[str, str, int]]:
    """(dataset, metric, number of horizon columns) runs of the column groups."""
    runs: list[tuple[str, str, int]] = []
    for dataset, metric, _ in column_groups(frame):
        if runs and runs[-1][:2] == (dataset, metric):
            runs[-1] = (dataset, metric, runs[-1][2] + 1)
        else:
            runs.append((dataset, metric, 1))
    return runs


_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def _arrow(metric: dict[str, Any], up: str, down: str) -> str:
    if metric["higher_is_better"] is None:
        return ""
    return up if metric["higher_is_better"] else down


def format_latex(table: MainTable) -> str:
    """A booktabs ``tabular`` ready to paste into a paper.

    Bounds sit in their own blocks and are never bolded; the best primary value
    (best-of-S, or the single prediction) of each column among the other measured
    rows is bold; missing cells are an en dash; partial runs carry a dagger.
    """
    frame, layout = table.frame, load_layout()
    cells = _cells(frame, layout)
    has_flops = "gflops" in frame.columns
    ncols = 1 + len(column_groups(frame)) + has_flops
    top, rules, col = [""], [], 2
    for dataset, metric, width in _header_blocks(frame):
        spec = layout.metric(metric)
        label = f"{_tex_escape(layout.dataset_name(dataset))} {_tex_escape(spec['display'])}"
        label += _arrow(spec, r" $\uparrow$", r" $\downarrow$")
        top.append(rf"\multicolumn{{{width}}}{{c}}{{{label}}}")
        rules.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    sub = ["Model", *(layout.horizons[h] for _, _, h in column_groups(frame))]
    if has_flops:
        top.append("")
        sub.append("GFLOPs")

    lines = [
        f"% dfbench table main: {table.source}",
        r"% needs \usepackage{booktabs}",
        rf"\begin{{tabular}}{{l{'c' * len(column_groups(frame))}{'r' if has_flops else ''}}}",
        r"\toprule",
        " & ".join(top) + r" \\",
        " ".join(rules),
        " & ".join(sub) + r" \\",
    ]
    for block in _blocks(frame):
        lines.append(r"\midrule")
        for i in block:
            row = [_tex_escape(frame["name"].iloc[i])]
            for text, bold, partial, mixed in zip(cells.text[i], cells.bold[i], cells.partial[i], cells.mixed[i]):
                if text is None:
                    row.append(MISSING_TEX)
                    continue
                if bold:
                    first, _, rest = text.partition(" ")
                    text = rf"\textbf{{{first}}}" + (f" {rest}" if rest else "")
                row.append(text + (r"$^\dagger$" if partial else "") + (r"$^\ddagger$" if mixed else ""))
            if has_flops:
                row.append(_gflops(frame["gflops"].iloc[i]) or MISSING_TEX)
            lines.append(" & ".join(row) + r" \\")
    lines.append(r"\bottomrule")
    if any(any(p) for p in cells.partial):
        lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{\footnotesize $^\dagger${DAGGER_NOTE}}} \\")
    for note in cells.notes(frame):
        lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{\footnotesize $^\ddagger${MIXED_NOTE}: {_tex_escape(note)}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def render_main_table(table: MainTable) -> Table:
    """The same table for the terminal: bold best, dim reported rows, † partial runs."""
    frame, layout = table.frame, load_layout()
    cells = _cells(frame, layout)
    partial = any(any(p) for p in cells.partial)
    caption = [f"† {DAGGER_NOTE}"] * partial + [f"‡ {MIXED_NOTE}: {n}" for n in cells.notes(frame)]
    out = Table(title="Dense forecasting (Table 3 layout)", caption="\n".join(caption) or None)
    out.add_column("Model", no_wrap=True)
    for dataset, metric, horizon in column_groups(frame):
        spec = layout.metric(metric)
        # Three header lines keep the columns as narrow as their "55.4 (53.7)" cells.
        label = f"{layout.dataset_name(dataset)}\n{spec['display']}{_arrow(spec, ' ↑', ' ↓')}"
        out.add_column(f"{escape(label)}\n{layout.horizons[horizon]}", justify="center")
    if "gflops" in frame.columns:
        out.add_column("GFLOPs", justify="right")
    for block in _blocks(frame):
        for i in block:
            row = [escape(frame["name"].iloc[i])]
            for text, bold, part, mixed in zip(cells.text[i], cells.bold[i], cells.partial[i], cells.mixed[i]):
                text = "–" if text is None else text + ("†" if part else "") + ("‡" if mixed else "")
                row.append(f"[bold]{text}[/bold]" if bold else text)
            if "gflops" in frame.columns:
                row.append(_gflops(frame["gflops"].iloc[i]) or "–")
            out.add_row(*row, style="dim" if frame["role"].iloc[i] == "reference" else None,
                        end_section=i == block[-1])
    return out


# ---------------------------------------------------------------- writing


def _write_atomic(path: Path, text: str) -> None:
    # A reader (or a paper's build) never sees half a table, even if the run is killed.
    from dfbench.files import write_text_atomic

    write_text_atomic(path, text)


def build_main_table(results_dir: str | Path, reference: bool = False, allow_mixed: bool = False) -> MainTable:
    """``main_table`` of the results under ``results_dir``, with its ``flops.csv`` if any."""
    flops_path = Path(results_dir) / "flops.csv"
    flops = load_flops(flops_path) if flops_path.is_file() else None
    return main_table(load_results(results_dir, allow_mixed), reference=reference, flops=flops)


def save_main_table(table: MainTable, out_dir: str | Path) -> tuple[Path, Path]:
    """Writes ``main.csv`` and ``main.tex`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, tex_path = out / "main.csv", out / "main.tex"
    _write_atomic(csv_path, table.frame.to_csv(index=False, lineterminator="\n"))
    _write_atomic(tex_path, format_latex(table))
    return csv_path, tex_path


def write_main_table(results_dir: str | Path, out_dir: str | Path | None = None,
                     reference: bool = False, allow_mixed: bool = False) -> tuple[Path, Path]:
    """Builds the main table from ``results_dir`` and writes it.

    Args:
        results_dir: the folder ``dfbench run`` writes to.
        out_dir: where ``main.csv`` and ``main.tex`` go; ``<results_dir>/tables`` by default.
        reference: add the reported rows beside ours.
        allow_mixed: tabulate results whose settings differ, marking their cells.

    Returns:
        The paths of the csv and the tex file.
    """
    table = build_main_table(results_dir, reference=reference, allow_mixed=allow_mixed)
    return save_main_table(table, Path(results_dir) / "tables" if out_dir is None else out_dir)
