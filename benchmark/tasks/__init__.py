"""The tasks dfbench scores, looked up by the name data sets, heads and records use.

Built-in tasks are lazy ``"module:attr"`` targets, so listing names imports nothing;
``register_task`` adds one defined elsewhere (a plug-in, a test).
"""

from __future__ import annotations

import difflib
import importlib

from dfbench.errors import DfbenchError
from dfbench.tasks.base import MetricDef, Task

_TASKS: dict[str, str | type[Task]] = {
    "seg": "dfbench.tasks.segmentation:Segmentation",
    "depth": "dfbench.tasks.depth:MetricDepth",
    "seg-mo": "dfbench.tasks.moving_segmentation:MovingObjectSegmentation",
    "reldepth256": "dfbench.tasks.relative_depth:RelativeDepth",
}


def task_names() -> list[str]:
    return list(_TASKS)


def get_task(name: str) -> Task:
    """The task called ``name``; a one-line error with the nearest name if there is none."""
    target = _TASKS.get(name)
    if target is None:
        close = difflib.get_close_matches(name, list(_TASKS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise DfbenchError(f"unknown task '{name}'.{hint} dfbench knows: {', '.join(_TASKS)}.")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target()


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator that makes a Task subclass known under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{cls!r} must subclass dfbench.tasks.Task")
    existing = _TASKS.get(cls.name)
    if existing is not None and existing is not cls:
        raise DfbenchError(f"task '{cls.name}' is already defined by {existing}; give {cls.__qualname__} another name.")
    _TASKS[cls.name] = cls
    return cls


def metric_defs() -> list[MetricDef]:
    """Every metric of every task, in task order (the order tables print them)."""
    return [metric for name in task_names() for metric in get_task(name).metrics]


__all__ = ["MetricDef", "Task", "get_task", "metric_defs", "register_task", "task_names"]
