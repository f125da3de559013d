"""Loading released and our own checkpoints: safely, by file or hub id, with checked keys.

Weights are read with safetensors or ``torch.load(weights_only=True)`` only. A source is a
local file (or a folder holding ``filename``) or a Hugging Face hub id such as
``Amazon-FAR/deltaworld-kinetics``, resolved through ``huggingface_hub`` and its cache
(``HF_HUB_OFFLINE=1`` reads the cache only). Loading into a module follows the reference's
rules, made stricter: every trainable parameter must be present, and unexpected or
mis-shaped keys are errors that name the keys and, when it can tell, which model the
checkpoint belongs to.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from dfbench.errors import DfbenchError
from dfbench.hub import HUB_ID as _HUB_ID
from dfbench.hub import download_hint, hub_offline, offline_error

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# Lightning wraps the network as `network`, torch.compile as `_orig_mod`; released files
# have neither, our trained ones may have both.
WRAPPER_PREFIXES = ("network.", "_orig_mod.")
# An unfiltered state dict of the reference networks also holds the frozen DINOv3 backbone
# (twice in DeltaWorld); here the backbone is a feature space, so those entries are dropped.
BACKBONE_PREFIXES = ("backbone.", "tokenizer.backbone.")
_LISTED = 5


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, for the results' provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_checkpoint(
    source: str | Path,
    filename: str = "pytorch_model.bin",
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
) -> Path:
    """Local path of a checkpoint given as a file, a folder or a hub id.

    Args:
        source: a file, a folder holding ``filename``, or a hub id ``owner/name``.
        filename: the file inside a folder or hub repository.
        cache_dir: hub cache folder (default: huggingface_hub's, i.e. ``HF_HUB_CACHE``).
        offline: read the hub cache only; default: ``HF_HUB_OFFLINE``.

    Raises:
        DfbenchError: the file does not exist, or the hub id cannot be resolved (offline
            and not cached, unknown repository, missing file).
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / filename).is_file():
            raise DfbenchError(f"folder '{path}' has no '{filename}'; pass the checkpoint file itself.")
        return path / filename
    if path.is_file():
        return path
    text = str(source)
    if not _HUB_ID.match(text) or Path(text).suffix in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES:
        raise DfbenchError(
            f"checkpoint '{text}' does not exist; pass an existing file, a folder or a hub id like owner/name."
        )
    local_only = hub_offline() if offline is None else offline
    try:
        return Path(hf_hub_download(text, filename, cache_dir=cache_dir, local_files_only=local_only))
    except Exception as error:  # noqa: BLE001 - every hub failure means the same to the user
        if local_only:
            raise offline_error(text, filename) from error
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DfbenchError(
            f"cannot get '{filename}' of hub model '{text}' ({type(error).__name__}: {reason}); download it on a "
            f"machine with internet with `{download_hint(text, filename)}` and copy the cache here, or pass a local path."
        ) from error


def _unreadable_safetensors(path: Path, error: Exception) -> DfbenchError:
    first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    return DfbenchError(f"'{path}' is not a readable safetensors file ({first}); re-download or re-save it.")


def _read_file(path: Path) -> Any:
    if path.suffix in SAFETENSORS_SUFFIXES:
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise _unreadable_safetensors(path, error) from error
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise DfbenchError(
            f"'{path}' is not a weights-only torch checkpoint ({_unpickler_reason(error)}); it is not loaded "
            "because unpickling could run code: save its state dict alone (torch.save(ckpt['state_dict'], path)) "
            "or convert it to safetensors."
        ) from error
    except Exception as error:  # noqa: BLE001 - a text or truncated file fails in many ways inside the unpickler
        raise DfbenchError(
            f"'{path}' is not a torch checkpoint ({type(error).__name__}); pass a .safetensors or .bin file."
        ) from error


def _unpickler_reason(error: Exception) -> str:
    # torch's message is a paragraph; the line after "WeightsUnpickler error:" is the cause.
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    _, _, cause = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in cause.splitlines() if line.strip()]
    return (lines[0].split(". Please")[0] if lines else "refused by the weights-only unpickler")[:160]


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def as_state_dict(obj: Any, origin: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwraps ``{'state_dict': ...}``, strips wrapper prefixes and checks it is a state dict.

    Raises:
        DfbenchError: ``obj`` is not a non-empty mapping of names to tensors.
    """
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        kind = type(obj).__name__
        raise DfbenchError(f"{origin} holds a {kind}, not a state dict of tensors; pass a model checkpoint.")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise DfbenchError(
            f"{origin} is not a state dict: entries {_listing(bad)} are not named tensors; pass a model checkpoint."
        )
    result: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        key = _strip_wrappers(key)
        if not key.startswith(BACKBONE_PREFIXES):
            result[key] = value
    if not result:
        raise DfbenchError(f"{origin} holds only backbone weights; pass a world-model or head checkpoint.")
    return result


def load_state_dict(
    source: str | Path,
    filename: str = "pytorch_model.bin",
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Reads a checkpoint's state dict from a file, a folder or the hub.

    ``.safetensors`` files are read with safetensors, anything else with
    ``torch.load(weights_only=True)``. A Lightning ``{'state_dict': ...}`` wrapper and the
    ``network.`` / ``_orig_mod.`` key prefixes are removed.

    Args:
        source: path or hub id (see :func:`resolve_checkpoint`).
        filename: file inside a folder or hub repository.
        cache_dir: hub cache folder.
        offline: read the hub cache only; default: ``HF_HUB_OFFLINE``.

    Returns:
        Name -> tensor, on the CPU.
    """
    path = resolve_checkpoint(source, filename, cache_dir, offline)
    return as_state_dict(_read_file(path), origin=f"'{path}'")


def describe_keys(path: str | Path) -> str:
    """What a checkpoint without dfbench metadata holds, briefly: its kind if known and its first keys."""
    try:
        state = as_state_dict(_read_file(Path(path)), origin=f"'{path}'")
    except DfbenchError as error:
        return str(error)
    guess = looks_like(state)
    kind = f"it looks like {guess[0]}; " if guess else ""
    return f"{kind}keys {_listing(sorted(state))}"


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def looks_like(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, set[str]] | None:
    """Guesses which model a state dict belongs to from its keys.

    Returns:
        (description, model-name tokens that fit it), or None if unrecognised.
    """
    keys = set(state_dict)
    if "z_embed.weight" in keys or any(k.startswith(("encoder_blocks.", "decoder_blocks.")) for k in keys):
        return "a DeltaTok tokenizer", {"deltatok"}
    if any(k.startswith(("embeddings.patch_embeddings.", "layer.0.", "model.layer.0.")) for k in keys):
        return "a DINOv3 backbone", {"dinov3", "backbone"}
    if any(k.startswith("predictor.") for k in keys):
        if "q_embed.weight" in keys:
            return "a learned-query predictor (DINO-world, or DeltaWorld without best-of-many)", {"dinoworld", "nobom"}
        return "a noise-query predictor (DeltaWorld, or DINO-world with best-of-many)", {"deltaworld", "bom"}
    if "head.weight" in keys and any(k.startswith("bn.") for k in keys):
        outputs = state_dict["head.weight"].shape[0]
        named = {19: "a Cityscapes segmentation head", 124: "a VSPW segmentation head", 256: "a KITTI depth head"}
        return named.get(outputs, f"a task head with {outputs} outputs"), {"head"}
    return None


def _fits(model_name: str, tokens: set[str]) -> bool:
    name = re.sub(r"[^a-z0-9]", "", model_name.lower())
    return any(token in name for token in tokens)


def _required(module: nn.Module) -> set[str]:
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    # A fully frozen module (e.g. a tokenizer already inside a world model) needs all of them.
    return trainable or {name for name, _ in module.named_parameters()}


def check_fit(module: nn.Module, state_dict: Mapping[str, torch.Tensor], model_name: str) -> None:
    """Raises DfbenchError unless ``state_dict`` fits ``module`` by the loading rules."""
    expected = module.state_dict()
    missing = sorted(_required(module) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(state_dict) & set(expected)
        if state_dict[k].shape != expected[k].shape
    )
    if not (missing or unexpected or misshaped):
        return
    guess = looks_like(state_dict)
    if guess is not None and not _fits(model_name, guess[1]):
        found = (unexpected or missing or misshaped)[0].split(" ")[0]
        raise DfbenchError(
            f"the checkpoint given for {model_name} looks like {guess[0]} (e.g. key '{found}'); "
            f"pass the {model_name} checkpoint instead."
        )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_listing(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_listing(unexpected)})")
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped ({_listing(misshaped)})")
    raise DfbenchError(
        f"checkpoint does not fit {model_name}: keys {'; '.join(problems)}; check the model's size and variant."
    )


def load_into(module: nn.Module, state_dict: Mapping[str, torch.Tensor], model_name: str) -> nn.Module:
    """Loads a checked state dict into ``module``.

    Rules: every trainable parameter is required (every parameter if none is trainable);
    frozen parameters and buffers (BatchNorm running statistics) are loaded if present;
    unknown or mis-shaped keys are errors. A module built on the meta device receives the
    checkpoint's tensors themselves (no copy, no random init) and then has every submodule
    with an ``init_buffers()`` method rebuild its non-persistent buffers.

    Args:
        module: the network to fill.
        state_dict: from :func:`load_state_dict`.
        model_name: what the user asked for, used in messages (e.g. "deltaworld").

    Returns:
        ``module``.

    Raises:
        DfbenchError: the checkpoint does not fit, naming the offending keys and, if the keys
            belong to another model, which one.
    """
    state_dict = as_state_dict(state_dict, origin=f"the checkpoint given for {model_name}")
    check_fit(module, state_dict, model_name)
    on_meta = any(t.is_meta for t in module.state_dict().values())
    module.load_state_dict(state_dict, strict=False, assign=on_meta)
    if on_meta:
        # Buffers that no checkpoint holds (RoPE frequencies) are rebuilt by their owners.
        for child in module.modules():
            if callable(getattr(child, "init_buffers", None)):
                child.init_buffers()
    return module


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Where loaded weights came from, for the results' provenance."""

    source: str
    path: Path
    sha256: str


def load_checkpoint(
    module: nn.Module,
    source: str | Path,
    model_name: str,
    filename: str = "pytorch_model.bin",
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
) -> LoadedCheckpoint:
    """Resolves, reads and loads a checkpoint into ``module`` (see :func:`load_into`)."""
    path = resolve_checkpoint(source, filename, cache_dir, offline)
    load_into(module, as_state_dict(_read_file(path), origin=f"'{path}'"), model_name)
    return LoadedCheckpoint(source=str(source), path=path, sha256=sha256_file(path))


def saved_entries(module: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint of ``module`` holds, by the reference's rule.

    An entry is kept only if the module that directly owns it has a trainable parameter:
    frozen backbones and tokenizers are left out, BatchNorm statistics of trained heads
    are kept.
    """
    entries: dict[str, torch.Tensor] = {}
    for prefix, child in module.named_modules():
        if not any(p.requires_grad for p in child.parameters(recurse=False)):
            continue
        for key, value in child.state_dict(keep_vars=False).items():
            if "." not in key:
                entries[f"{prefix}.{key}" if prefix else key] = value
    return entries


def save_safetensors(
    module_or_state_dict: nn.Module | Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, Any]
) -> Path:
    """Writes our own checkpoint as safetensors with JSON metadata.

    Args:
        module_or_state_dict: a module (saved by :func:`saved_entries`) or a state dict.
        path: output file, conventionally ``*.safetensors``.
        metadata: e.g. ``{"model": "deltaworld", "config": config.to_dict()}``; every value
            is stored as JSON (read back by :func:`read_safetensors_metadata`).

    Returns:
        The path written.
    """
    if isinstance(module_or_state_dict, nn.Module):
        tensors = saved_entries(module_or_state_dict)
    else:
        tensors = dict(module_or_state_dict)
    # safetensors refuses shared storage; a contiguous copy of each tensor is what we store.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    text = {str(k): json.dumps(v) for k, v in metadata.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata=text)
    from dfbench.files import file_mode

    path.chmod(file_mode())  # safetensors writes 0600: use the user's umask like every other file
    return path


def read_safetensors_metadata(path: str | Path) -> dict[str, Any]:
    """Metadata of a safetensors file, JSON values decoded (see :func:`save_safetensors`).

    Values that are not JSON (written by other tools) are returned as the plain strings.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise _unreadable_safetensors(path, error) from error
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded
