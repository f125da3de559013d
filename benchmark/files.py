"""Writing results safely: atomic replaces, the user's umask, one-line errors, no stray folders."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dfbench.errors import DfbenchError


def file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the umask (mkstemp's 0600 is not that)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(path: Path | str, err: OSError, fix: str = "free space there or pass another --output-dir") -> DfbenchError:
    """The one-line message for an OSError while writing ``path``."""
    reason = err.strerror or str(err) or type(err).__name__
    return DfbenchError(f"cannot write {path} ({reason}); {fix}.")


@contextlib.contextmanager
def writing(path: Path | str, fix: str = "free space there or pass another --output-dir") -> Iterator[None]:
    """Turns an OSError raised while writing ``path`` into a DfbenchError naming it."""
    try:
        yield
    except OSError as err:
        raise write_error(path, err, fix) from err


def write_text_atomic(path: Path, text: str) -> None:
    """Writes to a temporary file in the same folder, then renames it into place.

    A reader never sees half a file, even if the process is killed; on any error the
    previous file is untouched and the temporary file is removed.
    """
    path = Path(path)
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, file_mode())
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON, written atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=True) + "\n")


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(directory: Path | str, option: str = "--output-dir") -> None:
    """Fails early, before any compute, if ``directory`` cannot be created or written; creates nothing."""
    directory = Path(directory)
    base = nearest_existing(directory)
    if not base.is_dir():
        raise DfbenchError(f"cannot write results to {directory} ({base} is not a folder); pass a writable {option}.")
    if not os.access(base, os.W_OK | os.X_OK):
        raise DfbenchError(f"cannot write results to {directory} ({base} is not writable); pass a writable {option}.")


class CreatedFolders:
    """Creates folders and remembers which were new, so a failed run can remove them again."""

    def __init__(self) -> None:
        self.created: list[Path] = []

    def make(self, directory: Path) -> Path:
        directory = Path(directory)
        missing = []
        probe = directory.absolute()
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        with writing(directory):
            directory.mkdir(parents=True, exist_ok=True)
        self.created.extend(reversed(missing))
        return directory

    def remove_empty(self) -> None:
        """Removes the folders this object created that are still empty, deepest first."""
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.created.clear()
