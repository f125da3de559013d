"""What `dfbench run` prints when it ends: the headline numbers and where they came from."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dfbench.formatting import format_number
from dfbench.run import RunOutcome
from dfbench.tasks import metric_defs


def print_summary(outcome: RunOutcome, console: Console | None = None) -> None:
    console = console or Console()

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)  # paths stay on one line, copyable

    for note in outcome.notes:
        say(f"recovered: {note}")
    result = outcome.result
    partial = "" if result.complete else f", partial: {result.num_clips} clips (--limit)"
    title = f"{result.model} on {result.dataset} (seed {result.identity.seed}{partial})"
    table = Table(title=title)
    for column in ("metric", "horizon", "stat", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    # The task metrics first; of the best-of-k curve only its ends (the whole curve is in the result file).
    last_k = f"best_of_{result.identity.num_samples}"
    shown = [e for e in result.metrics if not e.metric.startswith("best_of_") or e.metric in ("best_of_1", last_k)]
    decimals = {m.name: m.decimals for m in metric_defs()}
    for entry in sorted(shown, key=lambda e: e.stat == "ensemble"):
        # Task metrics as the tables print them; sample scores (no MetricDef) to 4 significant digits.
        value = format_number(entry.value, decimals[entry.metric]) if entry.metric in decimals else f"{entry.value:.4g}"
        table.add_row(entry.metric, entry.horizon, entry.stat, value)
    console.print(table)
    if outcome.reused:
        say(f"already computed: reported {outcome.path} (delete it to compute again)")
    else:
        wall = result.provenance.get("wall_time_s")
        say(f"{outcome.resumed} of {result.num_clips} clips resumed from earlier records; "
            f"compute over all invocations {wall}s")
        say(f"wrote {outcome.path}")
    if not outcome.latest:
        say("a complete result exists: tables keep reading it (latest.json unchanged)")
