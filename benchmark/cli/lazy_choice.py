"""A click choice whose names come from a module that is imported only on use.

The names of predictors or FLOPs models live in modules that import torch; a plain
``click.Choice`` would import them when ``--help`` is rendered.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyChoice(click.ParamType):
    """``click.Choice`` over ``module:attr`` (a collection, or a function returning one).

    Args:
        target: where the names live, e.g. ``"dfbench.flops:MODELS"``.
        metavar: what ``--help`` shows instead of the names.
    """

    name = "choice"

    def __init__(self, target: str, metavar: str):
        self.target = target
        self.metavar = metavar
        self._choice: click.Choice | None = None

    def choice(self) -> click.Choice:
        if self._choice is None:
            module, _, attr = self.target.partition(":")
            names = getattr(importlib.import_module(module), attr)
            self._choice = click.Choice([str(n) for n in (names() if callable(names) else names)])
        return self._choice

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        return self.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.choice().convert(value, param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        return self.choice().shell_complete(ctx, param, incomplete)
