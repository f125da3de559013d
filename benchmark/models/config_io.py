"""``to_dict`` / ``from_dict`` for the config dataclasses (model configs, training recipes).

The dictionaries are plain JSON/YAML values: tuples become lists, a nested config
becomes its own dictionary. Reading ignores unknown keys, or rejects them with a
:class:`ValueError` where the config names itself in ``_strict_keys``.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar, TypeVar

_Config = TypeVar("_Config", bound="DictConfig")


class DictConfig:
    """Mixin for a dataclass config: ``to_dict`` and ``from_dict`` by field name.

    Class attributes a config may set:
        _nested_configs: field name -> config class of a nested config (required in
            ``from_dict`` data, written with its own ``to_dict``).
        _strict_keys: what the config is called in the error for unknown keys
            ("recipe" -> "unknown recipe keys [...]"); None ignores unknown keys.
    """

    _nested_configs: ClassVar[dict[str, type]] = {}
    _strict_keys: ClassVar[str | None] = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name, value in data.items():
            if name in self._nested_configs:
                data[name] = getattr(self, name).to_dict()
            elif isinstance(value, tuple):
                data[name] = list(value)
        return data

    @classmethod
    def from_dict(cls: type[_Config], data: dict[str, Any]) -> _Config:
        known = {f.name for f in fields(cls)}
        if cls._strict_keys is None:
            values = {k: v for k, v in data.items() if k in known}
        else:
            unknown = sorted(set(data) - known)
            if unknown:
                raise ValueError(f"unknown {cls._strict_keys} keys {unknown}; expected some of {sorted(known)}")
            values = dict(data)
        for name, config_class in cls._nested_configs.items():
            values[name] = config_class.from_dict(data[name])
        return cls(**values)
