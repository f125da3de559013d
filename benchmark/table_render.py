"""The tables' LaTeX and terminal renderings, pure functions of ``MainTable`` and its layout.

Both renderings share one set of display cells (``_cells``), so the paper's LaTeX and
the terminal always bold, dash and dagger the same cells. Numbers and LaTeX text go
through :mod:`dfbench.formatting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from dfbench.formatting import arrow, bold_tex, booktabs, format_number, round_half_up, tex_escape, tex_row
from dfbench.table_layout import Layout
from dfbench.tables import STATS, MainTable

MISSING_TEX = "–"
DAGGER_NOTE = "partial run: not all clips evaluated."
MIXED_NOTE = "settings differ from the other rows"
SAMPLES_NOTE = "x (y): best of the samples (x) and their mean (y) for stochastic models; one number: the single forecast."
BOLD_NOTE = "Bold: the best model per column, bounds excluded."


def column_groups(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset, metric, horizon) of the frame's value columns, in order."""
    return list(dict.fromkeys(tuple(c.split("/")[:3]) for c in frame.columns if c.count("/") == 3))


def _primary(row: pd.Series, key: str) -> float:
    # The value a reader compares first: best-of-S for sampling models, else the single one.
    for stat in ("best", "single", "mean"):
        if not pd.isna(row[f"{key}/{stat}"]):
            return float(row[f"{key}/{stat}"])
    return math.nan


def _shown(row: pd.Series, key: str) -> list[str]:
    """The stats a cell shows, in order: best (mean) for sampling models, else the one there is."""
    best, mean, single = (row[f"{key}/{s}"] for s in STATS)
    if not pd.isna(best):
        return ["best"] + ([] if pd.isna(mean) else ["mean"])
    return next(([stat] for stat, value in (("single", single), ("mean", mean)) if not pd.isna(value)), [])


def _optional(row: pd.Series, column: str) -> float:
    value = row.get(column)
    return math.nan if value is None or pd.isna(value) else float(value)


@dataclass(frozen=True)
class _Style:
    """How a cell writes "mean ± std over seeds" and whether it carries its intervals inline."""

    plus_minus: str
    interval: str | None  # format of an inline interval, None: intervals go on a second line


TERMINAL = _Style("±", None)
LATEX = _Style(r" $\pm$ ", r" {{\scriptsize [{low}, {high}]}}")


def _interval(row: pd.Series, column: str, decimals: int) -> tuple[str, str] | None:
    low, high = _optional(row, f"{column}/ci_low"), _optional(row, f"{column}/ci_high")
    if math.isnan(low) or math.isnan(high):
        return None
    return format_number(low, decimals), format_number(high, decimals)


def _cell(row: pd.Series, key: str, decimals: int, style: _Style = TERMINAL, inline: bool = False) -> str | None:
    """"55.4 (53.7)", with "±std" over seeds and the intervals (inline, or on a second line)."""
    shown = _shown(row, key)
    if not shown:
        return None
    numbers, intervals = [], []
    for stat in shown:
        column = f"{key}/{stat}"
        text = format_number(row[column], decimals)
        std = _optional(row, f"{column}/seed_std")
        text += "" if math.isnan(std) else style.plus_minus + format_number(std, decimals)
        interval = _interval(row, column, decimals)
        if interval is not None and inline and style.interval is not None:
            text += style.interval.format(low=interval[0], high=interval[1])
        numbers.append(text)
        intervals.append(None if interval is None else f"[{interval[0]}, {interval[1]}]")
    text = numbers[0] + "".join(f" ({n})" for n in numbers[1:])
    if style.interval is None and any(intervals):
        text += "\n" + (intervals[0] or "–") + "".join(f" ({i or '–'})" for i in intervals[1:])
    return text


def _name(frame: pd.DataFrame, i: int) -> str:
    """The row's display name, with its seed count when it is a mean over several seeds."""
    counts = {int(frame[c].iloc[i]) for c in frame.columns if c.endswith("/num_seeds") and not pd.isna(frame[c].iloc[i])}
    name = str(frame["name"].iloc[i])
    if len(counts) == 1 and (n := counts.pop()) > 1:
        return f"{name} ({n} seeds)"
    return name


def _bold_rows(frame: pd.DataFrame, key: str, metric: dict[str, Any]) -> set[int]:
    """Positions of the best non-bound rows of one column (ties all bold)."""
    if metric["higher_is_better"] is None:
        return set()
    scored = {
        i: round_half_up(v, metric["decimals"])
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
    return format_number(value, 0 if value >= 10 else 2)


def _tokens(value: Any) -> str | None:
    return None if pd.isna(value) else str(int(value))


# Per-row columns after the metrics: (frame column, heading, formatter).
EXTRA_COLUMNS = (("gflops", "GFLOPs", _gflops), ("tokens", "Tokens", _tokens))


def _extras(frame: pd.DataFrame) -> list[tuple[str, str, Any]]:
    return [extra for extra in EXTRA_COLUMNS if extra[0] in frame.columns]


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


def _cells(frame: pd.DataFrame, layout: Layout, style: _Style = TERMINAL, inline: bool = False) -> _Cells:
    groups = column_groups(frame)
    bold_by_col = [_bold_rows(frame, "/".join(g), layout.metric(g[1])) for g in groups]
    text, bold, partial, mixed = [], [], [], []
    for i, (_, row) in enumerate(frame.iterrows()):
        text.append([_cell(row, "/".join(g), layout.metric(g[1])["decimals"], style, inline) for g in groups])
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


def format_latex(table: MainTable, ci_latex: bool = False) -> str:
    """A booktabs ``tabular`` ready to paste into a paper.

    Bounds sit in their own blocks and are never bolded; the best primary value
    (best-of-S, or the single prediction) of each column among the other measured
    rows is bold; missing cells are an en dash; partial runs carry a dagger. Means
    over seeds read "m ± s" (``$\\pm$``); ``ci_latex`` adds each value's interval in small type.
    """
    frame, layout = table.frame, table.load_layout()
    cells = _cells(frame, layout, LATEX, inline=ci_latex)
    extras = _extras(frame)
    ncols = 1 + len(column_groups(frame)) + len(extras)
    top, rules, col = [""], [], 2
    for dataset, metric, width in _header_blocks(frame):
        spec = layout.metric(metric)
        label = f"{tex_escape(layout.dataset_name(dataset))} {tex_escape(spec['display'])}"
        label += arrow(spec["higher_is_better"], r" $\uparrow$", r" $\downarrow$")
        top.append(rf"\multicolumn{{{width}}}{{c}}{{{label}}}")
        rules.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    sub = ["Model", *(layout.horizons[h] for _, _, h in column_groups(frame))]
    for _, heading, _ in extras:
        top.append("")
        sub.append(heading)

    header = [tex_row(top), " ".join(rules), tex_row(sub)]
    blocks = []
    for block in _blocks(frame):
        rows = []
        for i in block:
            row = [tex_escape(_name(frame, i))]
            for text, bold, partial, mixed in zip(cells.text[i], cells.bold[i], cells.partial[i], cells.mixed[i]):
                if text is None:
                    row.append(MISSING_TEX)
                    continue
                marks = (r"$^\dagger$" if partial else "") + (r"$^\ddagger$" if mixed else "")
                row.append((bold_tex(text) if bold else text) + marks)
            row += [show(frame[column].iloc[i]) or MISSING_TEX for column, _, show in extras]
            rows.append(tex_row(row))
        blocks.append(rows)
    footer = []
    if any(any(p) for p in cells.partial):
        footer.append(tex_row([rf"\multicolumn{{{ncols}}}{{l}}{{\footnotesize $^\dagger${DAGGER_NOTE}}}"]))
    for note in cells.notes(frame):
        footer.append(tex_row([rf"\multicolumn{{{ncols}}}{{l}}{{\footnotesize $^\ddagger${MIXED_NOTE}: {tex_escape(note)}}}"]))
    for note in _uncertainty_notes(table, ci_latex):
        footer.append(tex_row([rf"\multicolumn{{{ncols}}}{{l}}{{\footnotesize {tex_escape(note)}}}"]))
    columns = f"l{'c' * len(column_groups(frame))}{'r' * len(extras)}"
    comments = [f"dfbench table {layout.name}: {table.source}", r"needs \usepackage{booktabs}"]
    return booktabs(columns, header, blocks, comments=comments, footer=footer)


def _uncertainty_notes(table: MainTable, intervals_shown: bool = True) -> list[str]:
    """Caption lines that say what the intervals and the ± are, when the table has them."""
    frame, notes = table.frame, []
    if intervals_shown and any(c.endswith("/ci_low") and frame[c].notna().any() for c in frame.columns):
        notes.append(f"[low, high]: {100 * table.ci:g}% interval, bootstrap over clips.")
    if any(c.endswith("/seed_std") and frame[c].notna().any() for c in frame.columns):
        notes.append("m ± s: mean and standard deviation over seeds (seed count after the name).")
    return notes


def _cell_notes(cells: _Cells) -> list[str]:
    """What "x (y)" and bold mean, when the table has such cells."""
    texts = [text.partition("\n")[0] for row in cells.text for text in row if text is not None]
    notes = [SAMPLES_NOTE] if any(" (" in text for text in texts) else []
    return notes + ([BOLD_NOTE] if any(any(row) for row in cells.bold) else [])


def render_main_table(table: MainTable) -> Table:
    """The same table for the terminal: bold best, dim reported rows, † partial runs, intervals below values."""
    frame, layout = table.frame, table.load_layout()
    cells = _cells(frame, layout)
    partial = any(any(p) for p in cells.partial)
    caption = [escape(note) for note in _cell_notes(cells)]
    caption += [f"† {DAGGER_NOTE}"] * partial + [f"‡ {MIXED_NOTE}: {n}" for n in cells.notes(frame)]
    caption += [escape(note) for note in _uncertainty_notes(table)]
    out = Table(title=layout.title, caption="\n".join(caption) or None)
    out.add_column("Model", no_wrap=True)
    for dataset, metric, horizon in column_groups(frame):
        spec = layout.metric(metric)
        # Three header lines keep the columns as narrow as their "55.4 (53.7)" cells.
        label = f"{layout.dataset_name(dataset)}\n{spec['display']}{arrow(spec['higher_is_better'], ' ↑', ' ↓')}"
        out.add_column(f"{escape(label)}\n{layout.horizons[horizon]}", justify="center")
    extras = _extras(frame)
    for _, heading, _ in extras:
        out.add_column(heading, justify="right")
    for block in _blocks(frame):
        for i in block:
            row = [escape(_name(frame, i))]
            for text, bold, part, mixed in zip(cells.text[i], cells.bold[i], cells.partial[i], cells.mixed[i]):
                if text is None:
                    row.append("–")
                    continue
                first, newline, rest = text.partition("\n")
                first = escape(first + ("†" if part else "") + ("‡" if mixed else ""))
                row.append((f"[bold]{first}[/bold]" if bold else first) + newline + escape(rest))
            row += [show(frame[column].iloc[i]) or "–" for column, _, show in extras]
            out.add_row(*row, style="dim" if frame["role"].iloc[i] == "reference" else None,
                        end_section=i == block[-1])
    return out
