"""The main results table (the paper's Table 3) as a pure function of results files.

``load_results`` reads ``<results-dir>/<dataset>/<model>.json``; ``main_table`` turns
them into one DataFrame (one row per table row, one numeric column per data set,
metric, horizon and statistic); ``dfbench.table_render`` only formats that frame, so
the csv, the LaTeX and the terminal always show the same numbers.
Row order and names come from ``configs/tables/main.yaml``; metric names, decimals
and arrows from the tasks' ``MetricDef``s.

CSV schema (``main.csv``), one row per table row, in table order:

- ``model``: registry name; ``name``: display name; ``role``: ``lower_bound``,
  ``model``, ``upper_bound`` or ``reference`` (a reported row placed under ours);
- ``gflops``: only when ``<results-dir>/flops.csv`` exists;
- ``<dataset>/<metric>/<horizon>/<stat>`` for stat in best, mean, single: every
  statistic gets a column, empty where it does not apply, so the schema does not
  depend on which models ran;
- ``<dataset>/num_clips`` and ``<dataset>/complete``: ``False`` marks a partial run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from dfbench.config import load_yaml
from dfbench.errors import DfbenchError
from dfbench.formatting import write_atomic
from dfbench.tasks import metric_defs

SCHEMA_VERSION = 1
STATS = ("best", "mean", "single")
# Folders under the results dir that hold outputs, not results files.
NOT_RESULTS = ("tables", "reference")


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
        from dfbench.errors import DfbenchError
        from dfbench.registry import get_dataset_spec

        try:
            return get_dataset_spec(dataset).display
        except DfbenchError:  # results of a data set not installed here
            return dataset

    def metric(self, metric: str) -> dict[str, Any]:
        # Unknown third-party metrics get no arrow and no bolding: their direction is unknown.
        return self.metrics.get(metric, {"display": metric, "higher_is_better": None, "decimals": 2})


@cache
def load_layout() -> Layout:
    """Reads the table layout shipped in ``dfbench.configs``."""
    from dfbench.registry import builtin_model_specs

    raw = load_yaml("tables", "main.yaml")
    # Rows, their order, display and reported names come from the built-in model specs.
    rows = [spec for spec in builtin_model_specs() if spec.table is not None]
    models = {
        s.name: {k: v for k, v in (("display", s.display), ("short", s.table.short), ("reference", s.table.reference)) if v}
        for s in rows
    }
    return Layout(
        lower_bound=next(s.name for s in rows if s.table.role == "lower_bound"),
        upper_bound=next(s.name for s in rows if s.table.role == "upper_bound"),
        models=models,
        datasets=raw["datasets"],
        metrics={metric.name: asdict(metric) for metric in metric_defs()},
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_result(data: Any, path: Path, horizons: dict[str, str]) -> dict:
    if not isinstance(data, dict):
        raise _malformed(path, "expected a JSON object")
    if data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version")
        raise _malformed(path, f"schema_version is {found!r}, this dfbench reads {SCHEMA_VERSION}")
    for key in ("model", "dataset"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _malformed(path, f"'{key}' must be a non-empty string")
    if not isinstance(data.get("complete"), bool):
        raise _malformed(path, "'complete' must be true or false")
    if not isinstance(data.get("metrics"), list):
        raise _malformed(path, "'metrics' must be a list")
    seen = set()
    for entry in data["metrics"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("metric"), str):
            raise _malformed(path, f"metric entry {entry!r} has no 'metric' name")
        if entry.get("horizon") not in horizons:
            raise _malformed(path, f"horizon {entry.get('horizon')!r} is not one of {', '.join(horizons)}")
        if entry.get("stat") not in STATS:
            raise _malformed(path, f"stat {entry.get('stat')!r} is not one of {', '.join(STATS)}")
        if not _is_number(entry.get("value")):
            raise _malformed(path, f"value {entry.get('value')!r} is not a number")
        key = (entry["metric"], entry["horizon"], entry["stat"])
        if key in seen:
            raise _malformed(path, f"{'/'.join(key)} appears twice")
        seen.add(key)
    return data


def load_results(results_dir: str | Path) -> list[dict]:
    """Reads every results file under ``results_dir``, checked against schema version 1.

    Args:
        results_dir: the folder ``dfbench run`` writes to.

    Returns:
        The parsed results, sorted by path so tables do not depend on file-system order.

    Raises:
        DfbenchError: no results files, a malformed file (named), or two files for the
            same model and data set.
    """
    root = Path(results_dir)
    horizons = load_layout().horizons
    paths = sorted(p for p in root.glob("*/*.json") if p.parent.name not in NOT_RESULTS) if root.is_dir() else []
    if not paths:
        raise DfbenchError(f"no results under {root}; run 'dfbench run --model M --dataset D' first")
    results, origin = [], {}
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _malformed(path, str(err)) from None
        data = _check_result(data, path, horizons)
        key = (data["model"], data["dataset"])
        if key in origin:
            raise DfbenchError(f"two results files for model {key[0]} on {key[1]}: {origin[key]} and {path}")
        origin[key] = path
        results.append(data)
    return results


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
    frame = pd.DataFrame.from_records(records).reindex(columns=columns)
    frame[value_columns] = frame[value_columns].astype("float64")
    for d in datasets:
        frame[f"{d}/num_clips"] = frame[f"{d}/num_clips"].astype("Int64")
        frame[f"{d}/complete"] = frame[f"{d}/complete"].astype("boolean")
    return MainTable(frame=frame, source=_source(results, reference, layout))


# ---------------------------------------------------------------- writing


def build_main_table(results_dir: str | Path, reference: bool = False) -> MainTable:
    """``main_table`` of the results under ``results_dir``, with its ``flops.csv`` if any."""
    flops_path = Path(results_dir) / "flops.csv"
    flops = load_flops(flops_path) if flops_path.is_file() else None
    return main_table(load_results(results_dir), reference=reference, flops=flops)


def save_main_table(table: MainTable, out_dir: str | Path) -> tuple[Path, Path]:
    """Writes ``main.csv`` and ``main.tex`` into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, tex_path = out / "main.csv", out / "main.tex"
    # Imported here: table_render reads this module's layout and frame types.
    from dfbench.table_render import format_latex

    write_atomic(csv_path, table.frame.to_csv(index=False, lineterminator="\n"))
    write_atomic(tex_path, format_latex(table))
    return csv_path, tex_path


def write_main_table(results_dir: str | Path, out_dir: str | Path | None = None,
                     reference: bool = False) -> tuple[Path, Path]:
    """Builds the main table from ``results_dir`` and writes it.

    Args:
        results_dir: the folder ``dfbench run`` writes to.
        out_dir: where ``main.csv`` and ``main.tex`` go; ``<results_dir>/tables`` by default.
        reference: add the reported rows beside ours.

    Returns:
        The paths of the csv and the tex file.
    """
    table = build_main_table(results_dir, reference=reference)
    return save_main_table(table, Path(results_dir) / "tables" if out_dir is None else out_dir)
