"""`dfbench report`: one self-contained HTML page of a results folder (see dfbench.report)."""

from __future__ import annotations

import click


@click.command("report")
@click.option("--results-dir", default="results", show_default=True, help="The folder 'dfbench run' wrote to.")
@click.option("--out", default=None, help="The HTML file to write (default <results-dir>/report.html).")
@click.option("--clips", type=int, default=2, show_default=True, help="Clips drawn per data set.")
@click.option("--device", default="cpu", show_default=True, help="Where the prediction maps are forecast again.")
def report_command(results_dir: str, out: str | None, clips: int, device: str) -> None:
    """Write an HTML report: tables, accuracy against GFLOPs, best-of-k curves, prediction maps."""
    from dfbench.errors import DfbenchError
    from dfbench.report import write_report

    if clips < 0:
        raise DfbenchError(f"--clips must be 0 or more, got {clips}.")
    path = write_report(results_dir, out, clips_per_dataset=clips, device=device)
    click.echo(f"wrote {path}")
