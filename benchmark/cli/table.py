"""``dfbench table``: the paper's tables from results files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="table")
def table() -> None:
    """Build the paper's tables from results files."""


@table.command(name="main")
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder that 'dfbench run' wrote to.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where main.csv and main.tex go [default: RESULTS_DIR/tables].",
)
@click.option("--reference", is_flag=True, help="Add the paper's reported numbers under our rows.")
@click.option("--allow-mixed", is_flag=True,
              help="Tabulate results whose settings differ (samples, feature space...), marking those cells.")
def main_table_command(results_dir: Path, out_dir: Path | None, reference: bool, allow_mixed: bool) -> None:
    """The main results table (the paper's Table 3 layout) as csv, LaTeX and on screen."""
    from rich.console import Console

    from dfbench.table_render import render_main_table
    from dfbench.tables import build_main_table, save_main_table

    built = build_main_table(results_dir, reference=reference, allow_mixed=allow_mixed)
    csv_path, tex_path = save_main_table(built, out_dir if out_dir is not None else results_dir / "tables")
    console = Console()
    console.print(render_main_table(built))
    console.print(f"wrote {csv_path} and {tex_path}")
