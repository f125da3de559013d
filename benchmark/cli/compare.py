"""`dfbench compare`: A minus B on the same clips, with paired intervals and p-values."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("model_a", metavar="A")
@click.argument("model_b", metavar="B")
@click.option("--dataset", required=True, help="Data set both models ran on.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Folder that 'dfbench run' wrote to.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the differences as a JSON list to this file.")
@click.option("--ci", "level", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.95,
              show_default=True, metavar="LEVEL", help="Level of the bootstrap interval of each difference.")
@click.option("--resamples", type=click.IntRange(10), default=1000, show_default=True,
              help="Bootstrap resamples and randomisation-test swaps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
@click.option("--protocol", default="dinoworld", show_default=True,
              help="Protocol (configs/protocol/<name>.yaml) whose results are compared.")
def compare_command(model_a: str, model_b: str, dataset: str, results_dir: Path, json_path: Path | None,
                    level: float, resamples: int, seed: int, protocol: str) -> None:
    """A minus B on every metric and horizon, paired on the clips both were evaluated on.

    Each difference gets a percentile bootstrap interval (clips resampled jointly for A
    and B, metrics recomputed from the summed statistics) and a two-sided p-value from
    a paired randomisation test (A and B swapped per clip at random, metrics
    recomputed from the swapped sums). Results on different clip sets are refused.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from dfbench.compare import compare, metric_decimals, to_json
    from dfbench.files import write_json_atomic
    from dfbench.formatting import format_number

    from dfbench.config import load_protocol

    found, clips = compare(results_dir, model_a, model_b, dataset, level=level, resamples=resamples, seed=seed,
                           protocol=load_protocol(protocol).name)
    names = metric_decimals()
    table = Table(title=escape(f"{model_a} minus {model_b} on {dataset} ({clips} clips)"),
                  caption=escape(f"[low, high]: {100 * level:g}% paired bootstrap interval over clips; p: two-sided "
                                 f"paired randomisation test (A/B swapped per clip), {resamples} resamples."))
    for heading in ("Metric", "Horizon", "Stat A", "Stat B"):
        table.add_column(heading)
    for heading in (model_a, model_b, "A − B", "Interval", "p"):
        table.add_column(escape(heading), justify="right")
    for d in found:
        display, decimals = names.get(d.metric, (d.metric, 3))
        fmt = lambda v: format_number(v, decimals + 1)  # noqa: E731 - one more digit: differences are small
        table.add_row(escape(display), d.horizon, d.stat_a, d.stat_b, fmt(d.value_a), fmt(d.value_b), fmt(d.diff),
                      escape(f"[{fmt(d.ci_low)}, {fmt(d.ci_high)}]"), format_number(d.p_value, 3))
    console = Console()
    console.print(table)
    if json_path is not None:
        write_json_atomic(json_path, to_json(found))
        console.print(f"wrote {json_path}")
