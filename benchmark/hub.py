"""Hugging Face hub ids: offline detection, cache checks and the download command to suggest."""

from __future__ import annotations

import os
import re
from pathlib import Path

from huggingface_hub import constants as hub_constants

from dfbench.errors import DfbenchError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set (huggingface_hub reads it once at import; a later setting counts too)."""
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return hub_constants.HF_HUB_OFFLINE or flag in {"1", "ON", "YES", "TRUE"}


def is_hub_id(source: str) -> bool:
    """``owner/name`` that is not a local path."""
    return bool(HUB_ID.match(source)) and not Path(source).expanduser().exists() and not Path(source).suffix


def download_hint(repo: str, filename: str | None = None) -> str:
    """The command that fetches a hub file with the installed huggingface_hub (its ``hf`` CLI)."""
    return f"hf download {repo}" + (f" {filename}" if filename else "")


def offline_error(repo: str, filename: str) -> DfbenchError:
    return DfbenchError(
        f"cannot get '{filename}' of hub model '{repo}': HF_HUB_OFFLINE is set and it is not in the local Hugging Face "
        f"cache; run `{download_hint(repo, filename)}` on a machine with internet and copy the cache here, "
        "or pass a local path."
    )


def check_hub_cached(source: str | None, filename: str = "pytorch_model.bin") -> None:
    """Offline, a hub id must already be in the cache: fails at once instead of after loading everything else."""
    if source is None or not hub_offline():
        return
    repo, _, name = source.partition("::")
    if not is_hub_id(repo):
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo, name or filename), str):
        raise offline_error(repo, name or filename)
