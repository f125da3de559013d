"""The `dfbench` command line: one module per command, imported only when used.

``dfbench --help``, ``dfbench <command> --help`` and ``dfbench list`` import neither
torch nor pandas (tests/test_cli.py checks it), so every command module keeps its
heavy imports inside the command body.
"""

from dfbench.cli.main import LAZY_COMMANDS, cli, main

__all__ = ["LAZY_COMMANDS", "cli", "main"]
