"""``dfbench check-data``: validate a data root before any model runs.

Listing every missing or unreadable file up front turns a crash an hour into an
evaluation into a one-minute fix. The command prints a summary table and exits with
code 2 and a one-line error when anything is wrong. It takes every data set name
``dfbench run`` takes (the registry's), the embedded synthetic one included.
"""

from __future__ import annotations

import inspect

import click

from dfbench.errors import DfbenchError

__all__ = ["check_data"]

_SHOWN_IN_TABLE = 20


@click.command("check-data")
@click.option("--dataset", "dataset_name", required=True, help="Data set to validate, as named for 'dfbench run' (see 'dfbench list').")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Data root (else $<DATASET>_ROOT or the data config).")
@click.option("--split-file", type=click.Path(dir_okay=False), default=None, help="KITTI: the Eigen test list.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="Data config YAML (default ~/.config/dfbench/data.yaml).")
@click.option("--deep", is_flag=True, help="Decode every image fully (slow) instead of the header and tail check.")
@click.option("--protocol", "protocol_name", default=None,
              help="Check the files this protocol reads too (configs/protocol/NAME.yaml; e.g. dinoforesight: "
                   "Cityscapes' relative depth PNGs) [default: dinoworld].")
def check_data(dataset_name: str, data_root: str | None, split_file: str | None, config_path: str | None, deep: bool,
               protocol_name: str | None) -> None:
    """Check that a data set's files are all present and readable."""
    from rich.console import Console
    from rich.table import Table

    from dfbench.data.checks import error_message, open_dataset

    console = Console(stderr=False)
    # A data set refuses options it does not take (--split-file is KITTI's).
    options = {"config_path": config_path, "split_file": split_file}
    try:
        options.update(_protocol_loader_options(dataset_name, protocol_name))
        dataset = open_dataset(dataset_name, data_root, **options)
        problems = _problems(dataset, deep)
        clips = len(dataset) if not problems else _count_clips(dataset)
    except DfbenchError as error:
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(2) from None
    root = getattr(dataset, "root", None)
    table = Table(title=f"{dataset_name} at {root}" if root else f"{dataset_name} (generated, no files)", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_row("clips", str(clips) if clips is not None else "-")
    mode = "deep (every pixel decoded)" if deep else "cheap (header and end marker)"
    table.add_row("mode", mode if root is not None else "embedded (no files to read)")
    table.add_row("problems", f"[red]{len(problems)}[/red]" if problems else "[green]0[/green]")
    console.print(table)
    if problems:
        details = Table(title=f"first {min(len(problems), _SHOWN_IN_TABLE)} of {len(problems)} problems")
        details.add_column("expected")
        details.add_column("path", overflow="fold")
        for problem in problems[:_SHOWN_IN_TABLE]:
            details.add_row(problem.expected, problem.path)
        console.print(details)
        click.echo(f"Error: {error_message(dataset_name, root, problems)}", err=True)
        raise SystemExit(2)
    console.print(f"[green]{dataset_name} is ready.[/green]")


def _protocol_loader_options(dataset_name: str, protocol_name: str | None) -> dict:
    """What the protocol has the data set read (its labels, e.g. depth PNGs), as ``dfbench run`` builds it."""
    if protocol_name is None:
        return {}
    from dfbench.config import load_protocol
    from dfbench.registry import get_dataset_spec
    from dfbench.run_prepare import scored_tasks

    return scored_tasks(load_protocol(protocol_name), get_dataset_spec(dataset_name))[1]


def _problems(dataset, deep: bool) -> list:
    # Data sets without files (synthetic) have nothing to decode deeply.
    if "deep" in inspect.signature(dataset.check).parameters:
        return dataset.check(deep=deep)
    return dataset.check()


def _count_clips(dataset) -> int | None:
    try:
        return len(dataset)
    except DfbenchError:
        return None
