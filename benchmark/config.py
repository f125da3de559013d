"""Versioned YAML configs shipped inside the package (``dfbench.configs``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import yaml

from dfbench.errors import DfbenchError

CROP_MODES = ("square", "none")  # the reference's two square crops per clip, or whole frames
CLIP_ORDERS = ("sorted", "listdir")  # sorted label paths, or the file system's order (DINO-Foresight's Downstream)


def load_yaml(*parts: str) -> dict[str, Any]:
    """Reads ``configs/<parts...>`` from the installed package."""
    resource = files("dfbench.configs").joinpath(*parts)
    if not resource.is_file():
        raise DfbenchError(f"config {'/'.join(parts)} is not in the installed package; reinstall dfbench.")
    return yaml.safe_load(resource.read_text())


@dataclass(frozen=True)
class ProtocolOption:
    """A setting a protocol lets a run choose (``--protocol-arg KEY=VALUE``); part of the run identity.

    Attributes:
        default: the value when the run does not choose.
        choices: the allowed values; empty: any value of the default's type.
    """

    default: Any
    choices: tuple[Any, ...] = ()

    def parse(self, key: str, value: Any) -> Any:
        kind = type(self.default)
        try:
            parsed = kind(value) if not isinstance(value, kind) else value
        except (TypeError, ValueError):
            raise DfbenchError(f"protocol option {key}={value!r} is not a {kind.__name__}; pass e.g. {key}={self.default}.") from None
        if self.choices and parsed not in self.choices:
            raise DfbenchError(f"protocol option {key}={value!r} is not one of {', '.join(map(str, self.choices))}.")
        if isinstance(parsed, int) and parsed < 1:
            raise DfbenchError(f"protocol option {key}={value!r} must be 1 or more.")
        return parsed


@dataclass(frozen=True)
class ProtocolTask:
    """What a data set's task becomes under a protocol: another task, and its class count when fixed."""

    task: str
    classes: int | None = None  # None: the data set's count (a segmentation's classes)
    parameters: str | None = None  # a DatasetSpec field the task is parametrised by ("moving_classes")


@dataclass(frozen=True)
class Protocol:
    """Evaluation protocol parameters (configs/protocol/*.yaml).

    The fields after ``default_num_samples`` are the ways a protocol may differ from the
    reference's (``dinoworld``); their defaults are the reference's.

    Attributes:
        crops: "square" (two square crops per non-square frame, labels cut in halves) or
            "none" (whole frames, whole labels, one row per clip).
        resize_frames: the loader resizes frames to the feature space's short side; False
            hands them over as recorded (the feature space resizes them itself).
        default_feature_space: evaluated in this feature space unless the run or the data set
            says otherwise; None: the data set's default.
        tasks: data-set task -> the task it is scored as under this protocol.
        options: the settings a run may choose, with their defaults.
        label_size: (H, W) the loader resizes labels to (``labels.size``); None: as recorded.
            Head outputs follow, since tasks upsample them to the label size.
        label_resize: how (``labels.resize``): "nearest" (PIL NEAREST), the only method.
        clip_order: "sorted" (sorted label paths) or "listdir" (the file system's own
            order, which per-batch averages depend on; ``labels.order``).
    """

    name: str
    version: str
    clip_length: int
    context_length: int
    horizons: dict[str, int]
    max_aspect: float
    loss_beta: float
    default_num_samples: int
    crops: str = "square"
    resize_frames: bool = True
    default_feature_space: str | None = None
    tasks: Mapping[str, ProtocolTask] = field(default_factory=dict)
    options: Mapping[str, ProtocolOption] = field(default_factory=dict)
    label_size: tuple[int, int] | None = None
    label_resize: str = "nearest"
    clip_order: str = "sorted"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    def scored_tasks(self, dataset_tasks: Mapping[str, int], spec: Any = None) -> dict[str, tuple[str, int]]:
        """Task scored under this protocol -> (the data set's task its labels come from, classes).

        Args:
            dataset_tasks: the data set's tasks (task -> classes).
            spec: the data set's spec, read for the fields parametrised tasks name.
        """
        from dfbench.tasks import get_task

        out = {}
        for name, classes in dataset_tasks.items():
            mapped = self.tasks.get(name)
            if mapped is None:
                out[name] = (name, classes)
                continue
            task = mapped.task
            if mapped.parameters:
                values = tuple(getattr(spec, mapped.parameters, ()) or ())
                if not values:
                    raise DfbenchError(
                        f"protocol '{self.name}' scores '{name}' as '{task}', which needs the data set's "
                        f"{mapped.parameters}; declare them in its DatasetSpec."
                    )
                task = get_task(f"{task}[{','.join(map(str, values))}]").name
            out[task] = (name, mapped.classes if mapped.classes is not None else classes)
        return out

    def resolve_options(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Every option's value for a run: the given ones checked, the others at their defaults."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise DfbenchError(f"protocol '{self.name}' has no option {', '.join(unknown)}; its options: {known}.")
        return {key: option.parse(key, given.get(key, option.default)) for key, option in self.options.items()}


def _merged(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The YAML of a protocol with the one it ``extends`` underneath (only the differences are written)."""
    if name in seen:
        raise DfbenchError(f"protocol configs extend each other in a loop ({' -> '.join((*seen, name))}); fix them.")
    raw = dict(load_yaml("protocol", f"{name}.yaml"))
    base = raw.pop("extends", None)
    if base is None:
        return raw
    merged = _merged(str(base), (*seen, name))
    for key, value in raw.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def load_protocol(name: str = "dinoworld") -> Protocol:
    if not (files("dfbench.configs") / "protocol" / f"{name}.yaml").is_file():
        shipped = sorted(p.name[:-5] for p in (files("dfbench.configs") / "protocol").iterdir() if p.name.endswith(".yaml"))
        raise DfbenchError(f"unknown protocol '{name}'; choose one of {', '.join(shipped)}.")
    raw = _merged(name)
    crops = str(raw.get("crops", "square"))
    if crops not in CROP_MODES:
        raise DfbenchError(f"protocol '{name}' has crops '{crops}'; use one of {', '.join(CROP_MODES)}.")
    return Protocol(
        name=raw["name"],
        version=str(raw["version"]),
        clip_length=int(raw["clip_length"]),
        context_length=int(raw["context_length"]),
        horizons={str(k): int(v) for k, v in raw["horizons"].items()},
        max_aspect=float(raw["max_aspect"]),
        loss_beta=float(raw["scoring"]["beta"]),
        default_num_samples=int(raw["scoring"]["default_num_samples"]),
        crops=crops,
        resize_frames=bool(raw.get("resize_frames", True)),
        default_feature_space=raw.get("default_feature_space"),
        tasks={str(k): ProtocolTask(str(v["task"]), v.get("classes"), v.get("parameters"))
               for k, v in (raw.get("tasks") or {}).items()},
        options={str(k): ProtocolOption(v["default"], tuple(v.get("choices", ()))) for k, v in (raw.get("options") or {}).items()},
        **_label_fields(name, raw.get("labels") or {}),
    )


def _label_fields(name: str, labels: Mapping[str, Any]) -> dict[str, Any]:
    """The ``labels`` block of a protocol (size, resize, order), checked."""
    size = labels.get("size")
    if size is not None and (len(size) != 2 or any(int(v) < 1 for v in size)):
        raise DfbenchError(f"protocol '{name}' has labels.size {size}; give [height, width] in pixels.")
    resize, order = str(labels.get("resize", "nearest")), str(labels.get("order", "sorted"))
    if resize != "nearest":
        raise DfbenchError(f"protocol '{name}' has labels.resize '{resize}'; use nearest.")
    if order not in CLIP_ORDERS:
        raise DfbenchError(f"protocol '{name}' has labels.order '{order}'; use one of {', '.join(CLIP_ORDERS)}.")
    return {"label_size": (int(size[0]), int(size[1])) if size is not None else None, "label_resize": resize, "clip_order": order}


def protocol_named(name: str) -> Protocol:
    """The shipped protocol whose ``name`` (as results record it) is ``name``, e.g. dinoworld-dense-forecasting."""
    shipped = sorted(p.name[:-5] for p in (files("dfbench.configs") / "protocol").iterdir() if p.name.endswith(".yaml"))
    for stem in shipped:
        protocol = load_protocol(stem)
        if protocol.name == name:
            return protocol
    raise DfbenchError(f"results name protocol '{name}', which this dfbench does not ship; upgrade dfbench to read them.")

