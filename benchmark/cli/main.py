"""The `dfbench` group and entry point.

Subcommands live in their own modules and are imported only when used, so
`dfbench list` does not pay for torch, pandas, transformers or diffusers.
"""

from __future__ import annotations

import importlib
import sys

import click

from dfbench import __version__
from dfbench.allocator import restart_with_tuned_malloc
from dfbench.errors import DfbenchError

LAZY_COMMANDS = {
    "run": "dfbench.cli.run:run_command",
    "list": "dfbench.cli.list:list_command",
    "demo": "dfbench.cli.demo:demo_command",
    "table": "dfbench.cli.table:table",
    "check-data": "dfbench.cli.check_data:check_data",
    "train": "dfbench.cli.train:train_group",
    "flops": "dfbench.cli.flops:flops_command",
    "compare": "dfbench.cli.compare:compare_command",
    "report": "dfbench.cli.report:report_command",
}
# Old spellings that still work but are not listed in --help.
HIDDEN_ALIASES = {
    "train-head": "dfbench.cli.train_head:train_head_alias",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name) or HIDDEN_ALIASES.get(name)
        if target is not None:
            module, _, attr = target.partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dfbench")
def cli() -> None:
    """Benchmark video world models on dense forecasting in foundation-model feature space."""


def main() -> None:
    """Entry point: a DfbenchError becomes one line on stderr and exit code 2."""
    restart_with_tuned_malloc()  # fewer page faults per clip on the CPU; numbers unchanged
    try:
        cli.main(standalone_mode=False)
    except DfbenchError as err:
        click.echo(f"dfbench: error: {err}", err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # click turns Ctrl-C into Abort; finished clips are already on disk.
        click.echo("dfbench: interrupted; run the same command again to resume.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
