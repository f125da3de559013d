"""One lazy registry per kind: models, data sets, feature spaces and tasks.

Built-ins are ``"module:attr"`` targets, resolved on first use, so ``dfbench list``
imports nothing heavy; other packages add entries through an entry-point group per
kind (``dfbench.adapters``, ``dfbench.datasets``, ``dfbench.feature_spaces``,
``dfbench.tasks``). Every resolved entry is checked against its kind, two sources
naming one entry is an error, and unknown names get the nearest suggestion.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from dfbench.errors import DfbenchError


def resolve_target(target: str) -> Any:
    """Imports ``"module:attr"`` and returns the attribute."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


class Registry:
    """Names of one kind, from built-in targets, in-process registrations and entry points.

    Args:
        kind: what the entries are, for messages ("model", "data set").
        group: the entry-point group third-party packages declare entries in.
        builtins: name -> ``"module:attr"`` target, or one target of a sequence of
            entries that each carry a ``name`` (a table of specs).
        check: called with (name, resolved entry); returns the entry to hand out or
            raises :class:`DfbenchError` when it is not of this kind.
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, str] | str, check: Callable[[str, Any], Any]) -> None:
        self.kind, self.group, self._check = kind, group, check
        self._builtins_source = builtins
        self._builtin_table: dict[str, Any] | None = None
        self._registered: dict[str, Any] = {}
        self._resolved: dict[str, Any] = {}

    # -- sources -----------------------------------------------------------------------

    def _builtins(self) -> dict[str, Any]:
        """Built-in name -> target string or, for a table, the entry itself."""
        if self._builtin_table is None:
            source = self._builtins_source
            if isinstance(source, str):
                self._builtin_table = {entry.name: entry for entry in resolve_target(source)}
            else:
                self._builtin_table = dict(source)
        return self._builtin_table

    def builtin_names(self) -> list[str]:
        """Built-in names in declaration order."""
        return list(self._builtins())

    def _plugins(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for ep in entry_points(group=self.group):
            if ep.name in found and found[ep.name].value != ep.value:
                raise DfbenchError(
                    f"two installed packages declare the {self.kind} '{ep.name}' ({found[ep.name].value} and "
                    f"{ep.value}); uninstall one."
                )
            found[ep.name] = ep
        return found

    def register(self, name: str, entry: Any) -> Any:
        """Adds an entry in this process (a decorator's work); refuses a name already taken."""
        taken = self._registered.get(name)
        if taken is not None and not _same(taken, entry):
            raise DfbenchError(f"{self.kind} '{name}' is registered twice ({_where(taken)} and {_where(entry)}); rename one.")
        if name in self._builtins():
            raise DfbenchError(f"{self.kind} '{name}' is a built-in name; register {_where(entry)} under another name.")
        self._registered[name] = entry
        self._resolved.pop(name, None)
        return entry

    def names(self) -> list[str]:
        """Every known name, sorted; loads no entry."""
        return sorted({*self._builtins(), *self._registered, *self._plugins()})

    # -- lookup ------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """The checked entry registered under ``name``."""
        if name in self._resolved:
            return self._resolved[name]
        builtins, plugins = self._builtins(), self._plugins()
        found = [(label, entry) for label, holds, entry in (
            ("built-in", name in builtins, builtins.get(name)),
            ("registered in this process", name in self._registered, self._registered.get(name)),
            (f"entry point of {self.group}", name in plugins, plugins.get(name)),
        ) if holds]
        if not found:
            raise self.unknown(name)
        entries = [(label, self._load(name, entry)) for label, entry in found]
        # A package's decorator and its entry point name the same class: one source, not two.
        if any(not _same(entries[0][1], entry) for _, entry in entries[1:]):
            raise DfbenchError(
                f"{self.kind} '{name}' comes from two sources ({' and '.join(label for label, _ in entries)}); rename one."
            )
        entry = entries[0][1]
        self._resolved[name] = checked = self._check(name, entry)
        return checked

    def _load(self, name: str, entry: Any) -> Any:
        if isinstance(entry, str):
            return resolve_target(entry)
        if hasattr(entry, "load") and hasattr(entry, "group"):  # an entry point
            try:
                return entry.load()
            except Exception as error:  # noqa: BLE001 - any import failure means the same to the user
                raise DfbenchError(
                    f"{self.kind} '{name}' from entry point '{entry.value}' cannot be loaded ({error}); "
                    "fix or reinstall its package."
                ) from error
        return entry

    def unknown(self, name: str) -> DfbenchError:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return DfbenchError(f"unknown {self.kind} '{name}'.{hint} Run 'dfbench list' to see the {self.kind}s available.")


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, type) and isinstance(b, type):
        # Re-running a module (a notebook cell, a README block) defines an equal class again.
        return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)
    return type(a) is type(b) and a == b


def _where(entry: Any) -> str:
    module, qualname = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    return f"{module}:{qualname}" if module and qualname else repr(entry)


# ---------------------------------------------------------------------------- models


def _check_model(name: str, entry: Any):
    from dfbench.adapters.spec import ModelSpec

    if isinstance(entry, ModelSpec):
        if entry.name != name:
            raise DfbenchError(f"model '{name}' resolves to the spec of '{entry.name}'; name them alike.")
        return entry
    if isinstance(entry, type):
        from dfbench.adapters.base import WorldModel

        if issubclass(entry, WorldModel):
            spec = ModelSpec.from_class(name, entry)
            entry.name, entry.spec = name, spec
            _BOUND[name] = entry
            return spec
    raise DfbenchError(f"model '{name}' resolves to {entry!r}, which is neither a ModelSpec nor a WorldModel subclass; fix its entry point.")


MODELS = Registry("model", "dfbench.adapters", "dfbench.adapters.variants:MODEL_SPECS", _check_model)
_BOUND: dict[str, type] = {}


def register_model(name: str):
    """Class decorator that registers a WorldModel under ``name`` (its spec comes from its attributes)."""

    def wrap(cls):
        from dfbench.adapters.base import WorldModel

        if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
            raise TypeError(f"{cls!r} must subclass dfbench.adapters.base.WorldModel")
        cls.name = name
        MODELS.register(name, cls)
        _BOUND.pop(name, None)
        return cls

    return wrap


def register_model_spec(spec):
    """Registers a :class:`~dfbench.adapters.spec.ModelSpec` (a variant of any family) and returns it."""
    from dfbench.adapters.spec import ModelSpec

    if not isinstance(spec, ModelSpec):
        raise TypeError(f"{spec!r} must be a dfbench.adapters.spec.ModelSpec")
    MODELS.register(spec.name, spec)
    _BOUND.pop(spec.name, None)
    return spec


def model_names() -> list[str]:
    return MODELS.names()


def get_model_spec(name: str):
    """The :class:`~dfbench.adapters.spec.ModelSpec` of a model."""
    return MODELS.get(name)


def builtin_model_specs() -> list:
    """The built-in model specs in declaration (table) order; imports no torch."""
    return [MODELS.get(name) for name in MODELS.builtin_names()]


def get_model_class(name: str) -> type:
    """The adapter class of a model, configured by its spec (``cls.spec``, ``cls.name``)."""
    spec = get_model_spec(name)
    if name not in _BOUND:
        from dfbench.adapters.base import WorldModel

        family = resolve_target(spec.family)
        if not (isinstance(family, type) and issubclass(family, WorldModel)):
            raise DfbenchError(f"model '{name}' names family {spec.family}, which is not a WorldModel subclass; fix its spec.")
        # One adapter class serves every variant of its family; the subclass only carries the spec.
        attrs = {"name": name, "spec": spec, "stochastic": spec.stochastic, "oracle": spec.oracle,
                 "__doc__": spec.description or family.__doc__, "__module__": family.__module__}
        _BOUND[name] = type(family.__name__, (family,), attrs)
    return _BOUND[name]


# ------------------------------------------------------------------------- data sets


def _check_dataset(name: str, entry: Any):
    from dfbench.data.base import EvalDataset, dataset_spec

    if not (isinstance(entry, type) and issubclass(entry, EvalDataset)):
        raise DfbenchError(f"data set '{name}' resolves to {entry!r}, which is not an EvalDataset subclass; fix its entry point.")
    if dataset_spec(entry).name != name:
        raise DfbenchError(f"data set '{name}' resolves to {entry.__qualname__}, whose spec is named '{dataset_spec(entry).name}'; name them alike.")
    return entry


DATASETS = Registry(
    "data set",
    "dfbench.datasets",
    {
        "synthetic": "dfbench.data.synthetic:SyntheticDataset",
        "cityscapes": "dfbench.data.cityscapes:CityscapesDataset",
        "kitti": "dfbench.data.kitti:KittiDataset",
        "vspw": "dfbench.data.vspw:VspwDataset",
    },
    _check_dataset,
)


def register_dataset(cls):
    """Class decorator that registers an EvalDataset under its spec's name."""
    from dfbench.data.base import EvalDataset, dataset_spec

    if not (isinstance(cls, type) and issubclass(cls, EvalDataset)):
        raise TypeError(f"{cls!r} must subclass dfbench.data.base.EvalDataset")
    DATASETS.register(dataset_spec(cls).name, cls)
    return cls


def dataset_names() -> list[str]:
    return DATASETS.names()


def get_dataset_class(name: str) -> type:
    return DATASETS.get(name)


def get_dataset_spec(name: str):
    """The :class:`~dfbench.data.spec.DatasetSpec` of a data set."""
    from dfbench.data.base import dataset_spec

    return dataset_spec(get_dataset_class(name))


# -------------------------------------------------------------- feature spaces, tasks


def _check_callable(name: str, entry: Any):
    if not callable(entry):
        raise DfbenchError(f"feature space '{name}' resolves to {entry!r}, which is not a loader function; fix its entry point.")
    return entry


FEATURE_SPACES = Registry(
    "feature space",
    "dfbench.feature_spaces",
    {
        "tiny": "dfbench.features.tiny:load_tiny",
        "dinov3-vits16": "dfbench.features.dinov3:load_dinov3_vits16",
        "dinov3-vitb16": "dfbench.features.dinov3:load_dinov3_vitb16",
        "dinov3-vitl16": "dfbench.features.dinov3:load_dinov3_vitl16",
        "dinov2-vitb14-reg-pca1152": "dfbench.features.foresight_space:load_dinov2_vitb14_reg_pca1152",
        "dinov2-vitb14-reg-pca1152-lowres": "dfbench.features.foresight_space:load_dinov2_vitb14_reg_pca1152_lowres",
        "dinov2-vitb14-reg-raw": "dfbench.features.foresight_space:load_dinov2_vitb14_reg_raw",
        "tiny-ml-pca": "dfbench.features.tiny_ml_pca:load_tiny_ml_pca",
        "tiny-ml-pca-lowres": "dfbench.features.tiny_ml_pca:load_tiny_ml_pca_lowres",
    },
    _check_callable,
)


def feature_space_names() -> list[str]:
    return FEATURE_SPACES.names()


def get_feature_space_loader(name: str):
    return FEATURE_SPACES.get(name)


def _check_task(name: str, entry: Any):
    """A Task subclass named ``name`` -> its (stateless) instance."""
    from dfbench.tasks.base import Task

    if not (isinstance(entry, type) and issubclass(entry, Task) and entry.name == name):
        raise DfbenchError(f"task '{name}' resolves to {entry!r}, which is not a Task named '{name}'; fix its entry point.")
    return entry()


TASKS = Registry(
    "task",
    "dfbench.tasks",
    {
        "seg": "dfbench.tasks.segmentation:Segmentation",
        "depth": "dfbench.tasks.depth:MetricDepth",
        "seg-mo": "dfbench.tasks.moving_segmentation:MovingObjectSegmentation",
        "reldepth256": "dfbench.tasks.relative_depth:RelativeDepth",
    },
    _check_task,
)


def task_names() -> list[str]:
    return TASKS.names()


def get_task(name: str):
    """The task ``name``; ``base[params]`` is the base task's variant (``seg-mo[5,6]``)."""
    base, bracket, rest = name.partition("[")
    if bracket and rest.endswith("]"):
        return TASKS.get(base).with_parameters(rest[:-1])
    return TASKS.get(name)
