"""The results tables (the paper's Table 3, and Table D of DINO-Foresight) as pure functions of results files.

Each table is a layout file (``configs/tables/<name>.yaml``, :mod:`dfbench.table_layout`) naming
the protocol whose results it reads. ``load_results`` reads the latest result of that protocol
for each model and data set (``result_store``); ``main_table`` turns them into one DataFrame (one row per table row, one numeric column per data set,
metric, horizon and statistic); ``dfbench.table_render`` only formats that frame, so
the csv, the LaTeX and the terminal always show the same numbers.
Row order and names come from the layout (the model specs for ``main``); metric names,
decimals and arrows from the tasks' ``MetricDef``s.

CSV schema (``<name>.csv``, e.g. ``main.csv``), one row per table row, in table order:

- ``model``: registry name; ``name``: display name; ``role``: ``lower_bound``,
  ``model``, ``upper_bound`` or ``reference`` (a reported row placed under ours);
- ``gflops``: only when ``<results-dir>/flops.csv`` exists;
- ``tokens``: only in a layout whose rows declare token counts (tokens per forecast);
- ``<dataset>/<metric>/<horizon>/<stat>`` for stat in best, mean, single: every
  statistic gets a column, empty where it does not apply, so the schema does not
  depend on which models ran;
- ``<column>/ci_low`` and ``<column>/ci_high`` right after each such column, unless the
  table is built with ``ci=0``: the clip-level bootstrap interval (``dfbench.uncertainty``)
  at the table's level, empty where the records are not beside the result;
- ``<column>/seed_std`` after those, and ``<dataset>/num_seeds``, only when some result was
  run with several seeds (same identity but the seed): the value columns then hold the
  mean over seeds and ``seed_std`` their standard deviation (empty for one seed);
- ``<dataset>/num_clips`` and ``<dataset>/complete``: ``False`` marks a partial run;
- ``<dataset>/deviation``: only in a table built with ``--allow-mixed`` whose results
  differ in settings; names how that row's result differs (e.g. ``samples 2 (others 20)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from dfbench.errors import DfbenchError
from dfbench.files import write_text_atomic
from dfbench.table_layout import Layout, load_layout

STATS = ("best", "mean", "single")  # the sample scores ("ensemble") are not in this table


@dataclass(frozen=True)
class MainTable:
    """The table's numbers plus one line that says which results they came from.

    Attributes:
        frame: one row per table row, in table order (schema in the module docstring).
        source: provenance summary, printed as the comment line of the LaTeX output.
    """

    frame: pd.DataFrame
    source: str
    ci: float = 0.0  # level of the interval columns; 0 when there are none
    layout: str = "main"  # the layout file it was built from

    def load_layout(self) -> Layout:
        return load_layout(self.layout)


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


def load_results(results_dir: str | Path, allow_mixed: bool = False, layout: str = "main") -> list[dict]:
    """Reads the latest result of every model and data set under ``results_dir``, of the layout's protocol.

    Args:
        results_dir: the folder ``dfbench run`` writes to.
        allow_mixed: accept results whose settings differ; each gets a ``deviation`` text.
        layout: the table (``configs/tables/<layout>.yaml``) whose protocol is read.

    Returns:
        The results as JSON dicts, sorted by path so tables do not depend on file-system order.

    Raises:
        DfbenchError: no results, a malformed file (named), or settings that differ
            between the results of one data set (unless ``allow_mixed``).
    """
    from dfbench.result_store import check_mixing, load_latest
    from dfbench.table_intervals import seed_siblings

    chosen = load_layout(layout)
    horizons = chosen.horizons
    found = load_latest(results_dir, protocol=chosen.protocol)
    for path, result in found:
        _check_result(result.to_json(), path, horizons)
    mixed = check_mixing([r for _, r in found], allow_mixed)
    out = []
    for path, r in found:
        seeds = [{**s.to_json(), "path": str(p)} for p, s in seed_siblings(path, r)]
        out.append({**r.to_json(), "path": str(path), "seeds": seeds, "deviation": mixed.get((r.model, r.dataset))})
    return out


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
        metrics_of.setdefault(result["dataset"], set()).update(e["metric"] for e in result["metrics"] if e["stat"] in STATS)
    if layout.columns is not None:  # a layout that lists its metrics shows only those
        metrics_of = {d: found & set(layout.columns) for d, found in metrics_of.items()}
    return [
        (dataset, metric, horizon)
        for dataset in _ordered(set(metrics_of), list(layout.datasets))
        for metric in _ordered(metrics_of[dataset], list(layout.columns or layout.metrics))
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
        metric = layout.reference_metrics.get(rec.metric, rec.metric)
        if (rec.dataset, metric, rec.horizon) in wanted and rec.stat in STATS:
            rows.setdefault(rec.model, {})[f"{rec.dataset}/{metric}/{rec.horizon}/{rec.stat}"] = float(rec.value)
    return rows


def main_table(results: list[dict], reference: bool = False, flops: dict[str, float] | None = None,
               ci: float = 0.0, resamples: int = 1000, layout: str = "main") -> MainTable:
    """Builds a table (Table 3 by default) from parsed results files.

    Args:
        results: as returned by ``load_results``.
        reference: put the reported number row ("<name> (paper)") right under each of
            our rows that has one, so every reported value sits beside ours.
        flops: GFLOPs per model; adds a ``gflops`` column when given.
        ci: level of the bootstrap intervals (0: no interval columns).
        resamples: bootstrap replicates per interval.
        layout: the layout file (``configs/tables/<layout>.yaml``).

    Returns:
        The table; see the module docstring for the frame's columns.
    """
    if not results:
        raise DfbenchError("no results to tabulate; run 'dfbench run --model M --dataset D' first")
    layout_name, layout = layout, load_layout(layout)
    groups = _groups(results, layout)
    from dfbench.table_intervals import interval_values, seed_values

    seeded = any(len(r.get("seeds") or ()) > 1 for r in results)
    extras = [*(("ci_low", "ci_high") if ci else ()), *(("seed_std",) if seeded else ())]
    value_columns = [f"{d}/{m}/{h}/{s}" for d, m, h in groups for s in STATS]
    datasets = list(dict.fromkeys(d for d, _, _ in groups))
    by_model: dict[str, dict[str, Any]] = {}
    spaces: dict[str, set[str]] = {}
    for result in results:
        row = by_model.setdefault(result["model"], {})
        spaces.setdefault(result["model"], set()).add(result["identity"]["feature_space"])
        for e in result["metrics"]:
            if e["stat"] in STATS:
                row[f"{result['dataset']}/{e['metric']}/{e['horizon']}/{e['stat']}"] = float(e["value"])
        seeds = result.get("seeds") or [result]
        if seeded:
            row.update(seed_values(seeds))
        if ci:
            row.update(interval_values(seeds, ci, resamples))
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
    with_tokens = any(layout.tokens(m) is not None for m in layout.models) or any(
        r.tokens is not None for r in layout.reference_rows)

    def tokens(value: int | None) -> dict[str, float]:
        return {"tokens": math.nan if value is None else float(value)} if with_tokens else {}

    def reference_only(after: str | None) -> list[dict[str, Any]]:
        return [{"model": row.reference, "name": row.display + layout.reference["suffix"], "role": "reference",
                 **tokens(row.tokens), **reported[row.reference]}
                for row in layout.reference_rows if row.after == after and reported.get(row.reference)]

    records = []
    for model, role in order:
        if role == "upper_bound":
            records += reference_only(None)
        base = {"model": model, "name": layout.model_name(model), "role": role}
        if flops is not None:
            base["gflops"] = flops.get(model, math.nan)
        records.append({**base, **tokens(layout.tokens(model, spaces[model])), **by_model[model]})
        ref = reported.get(layout.models.get(model, {}).get("reference", ""))
        if ref:
            short = layout.models[model].get("short", layout.model_name(model))
            records.append({"model": model, "name": short + layout.reference["suffix"], "role": "reference",
                            **tokens(layout.tokens(model)), **ref})
        records += reference_only(model)
    if not any(role == "upper_bound" for _, role in order):
        records += reference_only(None)

    numeric = [c for v in value_columns for c in (v, *(f"{v}/{x}" for x in extras))]
    columns = ["model", "name", "role", *(["gflops"] if flops is not None else []),
               *(["tokens"] if with_tokens else []), *numeric]
    columns += [f"{d}/{k}" for d in datasets for k in ("num_clips", *(["num_seeds"] if seeded else []), "complete")]
    columns += [f"{d}/deviation" for d in datasets if any(r["dataset"] == d and r.get("deviation") for r in results)]
    frame = pd.DataFrame.from_records(records).reindex(columns=columns)
    frame[numeric] = frame[numeric].astype("float64")
    if with_tokens:
        frame["tokens"] = frame["tokens"].astype("Int64")
    for d in datasets:
        frame[f"{d}/num_clips"] = frame[f"{d}/num_clips"].astype("Int64")
        if seeded:
            frame[f"{d}/num_seeds"] = frame[f"{d}/num_seeds"].astype("Int64")
        frame[f"{d}/complete"] = frame[f"{d}/complete"].astype("boolean")
    return MainTable(frame=frame, source=_source(results, reference, layout), ci=ci, layout=layout_name)


# ---------------------------------------------------------------- writing


def build_main_table(results_dir: str | Path, reference: bool = False, allow_mixed: bool = False,
                     ci: float = 0.95, resamples: int = 1000, layout: str = "main") -> MainTable:
    """``main_table`` of the results under ``results_dir`` (those of the layout's protocol), with its
    ``flops.csv`` if any."""
    flops_path = Path(results_dir) / "flops.csv"
    flops = load_flops(flops_path) if flops_path.is_file() else None
    return main_table(load_results(results_dir, allow_mixed, layout), reference=reference, flops=flops, ci=ci,
                      resamples=resamples, layout=layout)


def save_main_table(table: MainTable, out_dir: str | Path, ci_latex: bool = False) -> tuple[Path, Path]:
    """Writes ``<layout>.csv`` and ``<layout>.tex`` (``main.csv``, ``main.tex``) into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, tex_path = out / f"{table.layout}.csv", out / f"{table.layout}.tex"
    # Imported here: table_render reads this module's frame types.
    from dfbench.table_render import format_latex

    write_text_atomic(csv_path, table.frame.to_csv(index=False, lineterminator="\n"))
    write_text_atomic(tex_path, format_latex(table, ci_latex=ci_latex))
    return csv_path, tex_path


def write_main_table(results_dir: str | Path, out_dir: str | Path | None = None,
                     reference: bool = False, allow_mixed: bool = False, ci: float = 0.95,
                     resamples: int = 1000, ci_latex: bool = False, layout: str = "main") -> tuple[Path, Path]:
    """Builds a table (the main one by default) from ``results_dir`` and writes it.

    Args:
        results_dir: the folder ``dfbench run`` writes to.
        out_dir: where ``<layout>.csv`` and ``<layout>.tex`` go; ``<results_dir>/tables`` by default.
        reference: add the reported rows beside ours.
        allow_mixed: tabulate results whose settings differ, marking their cells.
        ci: level of the bootstrap intervals (0: none).
        resamples: bootstrap replicates per interval.
        ci_latex: print the intervals in the LaTeX too.
        layout: ``main`` (Table 3) or ``foresight`` (Table D), a file in ``configs/tables``.

    Returns:
        The paths of the csv and the tex file.
    """
    table = build_main_table(results_dir, reference=reference, allow_mixed=allow_mixed, ci=ci, resamples=resamples,
                             layout=layout)
    return save_main_table(table, Path(results_dir) / "tables" if out_dir is None else out_dir, ci_latex=ci_latex)
