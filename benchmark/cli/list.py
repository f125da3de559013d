"""`dfbench list`: the names `run`, `check-data` and `train` accept.

Reads only the registry's name tables, so it answers without importing torch.
"""

from __future__ import annotations

import click


@click.command("list")
def list_command() -> None:
    """Show the models, data sets and feature spaces dfbench knows."""
    from rich.console import Console
    from rich.table import Table

    from dfbench import registry

    table = Table(title="dfbench")
    table.add_column("kind")
    table.add_column("names")
    table.add_row("models", ", ".join(registry.model_names()))
    table.add_row("datasets", ", ".join(registry.dataset_names()))
    table.add_row("feature spaces", ", ".join(registry.feature_space_names()))
    Console().print(table)
