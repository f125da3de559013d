"""Backbone features computed once per clip and shared by every model evaluated on it.

The key is (data set, data set version, feature space, sha256 of the feature space's
weights, protocol version, frame size, precision, sample id), so a change of any of
them, another ``--feature-space-path`` included, never reuses stale features. In memory for one
process (``dfbench demo``); on disk (``--feature-cache DIR``, one safetensors file per
clip) across runs and models.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dfbench.files import file_mode


class FeatureCache:
    """A mapping from cache keys to features [R, T, N, D], optionally backed by a folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.memory: dict[tuple[str, ...], torch.Tensor] = {}
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: tuple[str, ...]) -> Path:
        digest = hashlib.sha256("\0".join(key).encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.safetensors"

    def get(self, key: tuple[str, ...]) -> torch.Tensor | None:
        if key in self.memory:
            return self.memory[key]
        if self.folder is not None and (path := self._path(key)).is_file():
            return load_file(str(path))["features"]
        return None

    def put(self, key: tuple[str, ...], features: torch.Tensor) -> None:
        if self.folder is None:
            self.memory[key] = features
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file({"features": features.detach().cpu().contiguous()}, tmp, metadata={"key": "\0".join(key)})
        os.chmod(tmp, file_mode())  # mkstemp and safetensors write 0600; a shared cache follows the umask
        os.replace(tmp, path)
