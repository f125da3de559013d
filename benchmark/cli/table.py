"""``dfbench table``: the paper's tables from results files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="table")
def table() -> None:
    """Build the paper's tables from results files."""


def _table_options(layout: str):
    """The options every table command takes; ``layout`` names its outputs in the help."""

    def wrap(command):
        options = [
            click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
                         show_default=True, help="Folder that 'dfbench run' wrote to."),
            click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help=f"Where {layout}.csv and {layout}.tex go [default: RESULTS_DIR/tables]."),
            click.option("--reference", is_flag=True, help="Add the paper's reported numbers under our rows."),
            click.option("--allow-mixed", is_flag=True,
                         help="Tabulate results whose settings differ (samples, feature space...), marking those cells."),
            click.option("--ci", "ci", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.95, show_default=True,
                         metavar="LEVEL", help="Level of the clip-bootstrap intervals of every value; 0 for none."),
            click.option("--resamples", type=click.IntRange(10), default=1000, show_default=True,
                         help="Bootstrap replicates per interval."),
            click.option("--ci-latex", is_flag=True, help=f"Print the intervals in {layout}.tex too (always in {layout}.csv)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return wrap


def _write(layout: str, results_dir: Path, out_dir: Path | None, reference: bool, allow_mixed: bool, ci: float,
           resamples: int, ci_latex: bool) -> None:
    from rich.console import Console

    from dfbench.table_render import render_main_table
    from dfbench.tables import build_main_table, save_main_table

    built = build_main_table(results_dir, reference=reference, allow_mixed=allow_mixed, ci=ci, resamples=resamples,
                             layout=layout)
    csv_path, tex_path = save_main_table(built, out_dir if out_dir is not None else results_dir / "tables",
                                         ci_latex=ci_latex)
    console = Console()
    console.print(render_main_table(built))
    console.print(f"wrote {csv_path} and {tex_path}")


@table.command(name="main")
@_table_options("main")
def main_table_command(**options) -> None:
    """The main results table (the paper's Table 3 layout) as csv, LaTeX and on screen.

    Only results of DINO-world's protocol are read. Every value gets an interval from a
    bootstrap over clips, recomputed from the records beside each result; results of one
    configuration with several seeds show as mean ± standard deviation over the seeds.
    """
    _write("main", **options)


@table.command(name="foresight")
@_table_options("foresight")
def foresight_table_command(**options) -> None:
    """DINO-Foresight's protocol (the paper's Table D layout) as csv, LaTeX and on screen.

    Rows Copy-last, DINO-Foresight and Present; columns segmentation mIoU and depth δ1
    at the short and mid horizons, and the tokens per forecast. Only results of the
    dinoforesight protocol are read; --reference adds Table D's reported rows, with
    the delta-token variant.
    """
    _write("foresight", **options)
