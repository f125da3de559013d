"""The tasks dfbench scores, looked up by the name data sets, heads and records use.

The names live in one place, :data:`dfbench.registry.TASKS` (built-ins as lazy
``"module:attr"`` targets, plug-ins through the ``dfbench.tasks`` entry points);
these functions are that registry's task-shaped front, and ``register_task`` adds a
task defined elsewhere (a plug-in module, a test).
"""

from __future__ import annotations

from dfbench.tasks.base import MetricDef, Task


def task_names() -> list[str]:
    """Built-in tasks in declaration order (the order tables print metrics), then the others."""
    from dfbench.registry import TASKS

    builtins = TASKS.builtin_names()
    return builtins + [name for name in TASKS.names() if name not in builtins]


def get_task(name: str) -> Task:
    """The task called ``name``; a one-line error with the nearest name if there is none."""
    from dfbench.registry import get_task as registry_get_task

    return registry_get_task(name)


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator that makes a Task subclass known under its ``name``."""
    from dfbench.registry import TASKS

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{cls!r} must subclass dfbench.tasks.Task")
    TASKS.register(cls.name, cls)
    return cls


def metric_defs() -> list[MetricDef]:
    """Every metric of every task, in task order (the order tables print them)."""
    return [metric for name in task_names() for metric in get_task(name).metrics]


__all__ = ["MetricDef", "Task", "get_task", "metric_defs", "register_task", "task_names"]
