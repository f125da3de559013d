"""Where a data set's root folder comes from.

Data roots are required and have no silent default: a run on the wrong folder would
give numbers that look plausible. The root is taken from, in this order:

1. the ``--data-root`` flag (the ``root`` argument);
2. the data set's environment variable, named in its spec (``CITYSCAPES_ROOT``,
   ``KITTI_ROOT``, ``VSPW_ROOT`` for the built-ins);
3. a YAML file with one key per data set, ``~/.config/dfbench/data.yaml`` (under
   ``$XDG_CONFIG_HOME`` when set) or the file given as ``config_path``::

       cityscapes: /data/cityscapes      # holds leftImg8bit_sequence/ and gtFine/
       kitti: /data/kitti                # holds 2011_09_26/... and train/ val/ (annotated depth)
       vspw: /data/VSPW_480p             # holds data/ and val.txt

   Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from dfbench.errors import DfbenchError

def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/dfbench/data.yaml``, or ``~/.config/dfbench/data.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "dfbench" / "data.yaml"


def environment_variable(dataset: str) -> str:
    """The variable naming a data set's root, from its spec."""
    from dfbench.registry import get_dataset_spec

    variable = get_dataset_spec(dataset).env
    if variable is None:
        raise DfbenchError(f"data set '{dataset}' reads no files, so it has no data root; drop --data-root.")
    return variable


def resolve_root_with_source(
    dataset: str,
    root: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    env: str | None = None,
) -> tuple[Path, str]:
    """Like :func:`resolve_root`, and also says where the root came from (for messages)."""
    if root is not None and str(root) != "":
        return Path(root).expanduser(), "--data-root"
    variable = env or environment_variable(dataset)
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser(), f"${variable}"
    path = Path(config_path).expanduser() if config_path is not None else default_config_path()
    if config_path is not None and not path.is_file():
        raise DfbenchError(f"data config {path} does not exist; pass an existing YAML file with a '{dataset}' key.")
    if path.is_file():
        value = _read_config(path).get(dataset)
        if value:
            found = Path(str(value)).expanduser()
            if not found.is_absolute():
                found = path.parent / found
            return found, f"{path} ({dataset})"
    raise DfbenchError(
        f"no data root for {dataset}: pass --data-root DIR, set ${variable}, "
        f"or add '{dataset}: DIR' to {path}."
    )


def resolve_root(
    dataset: str,
    root: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    env: str | None = None,
) -> Path:
    """The root folder of ``dataset``: flag, then environment variable, then YAML config.

    Args:
        dataset: a registered data set that reads files ("cityscapes", "kitti", "vspw").
        root: the ``--data-root`` value, if given.
        config_path: a YAML file to read instead of ``~/.config/dfbench/data.yaml``.
        env: the environment variable; None reads it from the data set's spec.

    Returns:
        The root as given (existence is checked by the data set's ``check``).

    Raises:
        DfbenchError: when no source names a root, or the config file is unreadable.
    """
    return resolve_root_with_source(dataset, root, config_path, env)[0]


def _read_config(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DfbenchError(f"cannot read the data config {path} ({error}); fix the YAML or pass --data-root.") from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise DfbenchError(
            f"the data config {path} must map data set names to folders (e.g. 'kitti: /data/kitti'); fix the file."
        )
    return content
