"""One writer per result: a lock file holding the writer's pid and host.

The file is created with O_EXCL, so exactly one process gets it. A second process of
the same identity stops at once (exit 2) naming the holder rather than computing the
same clips twice. A lock left by a process that died (same host, pid gone) is taken
over; a lock from another host cannot be checked, so the message says how to remove it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from dfbench.errors import DfbenchError
from dfbench.files import file_mode, write_error, writing

# A lock file still empty after this long was left by a process killed while creating it.
EMPTY_LOCK_GRACE_S = 30.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _read(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


class RunLock:
    """Exclusive right to write one result; use as a context manager."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self.held = False
        self.took_over: dict | None = None

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:
            try:
                return time.time() - self.path.stat().st_mtime > EMPTY_LOCK_GRACE_S
            except FileNotFoundError:
                return True
        return holder.get("host") == socket.gethostname() and not _alive(holder["pid"])

    def _take_over(self, holder: dict | None) -> bool:
        """Removes a stale lock unless another process replaced it meanwhile."""
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        if _read(aside) == holder:
            aside.unlink(missing_ok=True)
            self.took_over = holder or {}
            return True
        # A fresh lock was created between our check and the rename: put it back.
        try:
            os.link(aside, self.path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False

    def acquire(self) -> None:
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
            except FileExistsError:
                holder = _read(self.path)
                if self._stale(holder) and self._take_over(holder):
                    continue
                holder = _read(self.path) or holder
                who = f"process {holder['pid']} on {holder.get('host', '?')}" if holder else "another process"
                raise DfbenchError(
                    f"{self.what} is being computed by {who}; wait for it to finish, "
                    f"or delete {self.path} if that process is gone."
                ) from None
            except OSError as err:
                raise write_error(self.path, err) from err
            with writing(self.path), os.fdopen(fd, "w") as handle:
                handle.write(record)
            self.held = True
            return
        raise DfbenchError(f"cannot take the lock {self.path}: it keeps changing; delete it and run again.")

    def release(self) -> None:
        if self.held and (_read(self.path) or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
