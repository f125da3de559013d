"""Reading PyTorch Lightning checkpoints without unpickling arbitrary objects.

DINO-Foresight's released files are Lightning checkpoints whose ``hyper_parameters`` hold a
pickled ``argparse.Namespace``; its PCA file pickles a scikit-learn object. Only torch's
weights-only unpickler is used here, with exactly one extra class allowed
(``argparse.Namespace``, a plain attribute bag), so a file that pickles anything else is
refused with a one-line message instead of running its code.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dfbench.errors import DfbenchError

ALLOWED_GLOBALS = (argparse.Namespace,)


@dataclass
class LightningCheckpoint:
    """The parts of a Lightning checkpoint dfbench reads.

    Attributes:
        state_dict: parameter name -> tensor.
        hparams: ``hyper_parameters`` as a dict; a Namespace under ``args`` is turned into a dict.
        path: where it was read from (for messages).
    """

    state_dict: dict[str, torch.Tensor]
    hparams: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()

    def arg(self, name: str, default: Any = None) -> Any:
        """A training argument (``hyper_parameters['args'].<name>``, or a top-level hparam)."""
        args = self.hparams.get("args")
        if isinstance(args, dict) and name in args:
            return args[name]
        return self.hparams.get(name, default)


def _unsafe_globals(path: Path) -> list[str]:
    finder = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if finder is None:
        return []
    try:
        allowed = {f"{cls.__module__}.{cls.__qualname__}" for cls in ALLOWED_GLOBALS}
        return [name for name in finder(str(path)) if name not in allowed]
    except Exception:  # an unreadable file is reported by the caller's own message
        return []


def load_weights_only(path: str | Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` allowing argparse.Namespace and nothing else.

    Args:
        path: the file.
        what: what the file should be, for the message ("a DINO-Foresight checkpoint").

    Raises:
        DfbenchError: missing, unreadable, or pickling other objects (named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise DfbenchError(f"{what} '{path}' does not exist; pass the path of the file.")
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise DfbenchError(
                f"'{path}' pickles {', '.join(unsafe[:3])}{' ...' if len(unsafe) > 3 else ''}, which dfbench does not "
                f"unpickle (it could run code); pass {what} holding tensors only."
            ) from error
        raise DfbenchError(f"cannot read '{path}' as {what} ({type(error).__name__}); pass a torch checkpoint file.") from error


def read_lightning_checkpoint(path: str | Path, what: str) -> LightningCheckpoint:
    """The state dict and hyper-parameters of a Lightning ``.ckpt`` (or a bare state dict)."""
    data = load_weights_only(path, what)
    if not isinstance(data, dict):
        raise DfbenchError(f"'{path}' holds a {type(data).__name__}, not a checkpoint dict; pass {what}.")
    state = data.get("state_dict", data)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DfbenchError(f"'{path}' has no state_dict of tensors; pass {what}.")
    hparams = data.get("hyper_parameters") or {}
    hparams = dict(vars(hparams)) if isinstance(hparams, argparse.Namespace) else dict(hparams)
    if isinstance(hparams.get("args"), argparse.Namespace):
        hparams["args"] = dict(vars(hparams["args"]))
    return LightningCheckpoint(dict(state), hparams, Path(path))
