"""DINOv2 with registers through transformers, and reading several of its blocks at once.

DINO-Foresight's features are blocks 2, 5, 8 and 11 of DINOv2 ViT-B/14 with 4 registers,
each through the final LayerNorm with CLS and registers dropped (FACTS.md, section 2).
transformers' ``Dinov2WithRegistersModel`` computes the same network (its position
embeddings are resized with antialiased bicubic to the exact grid, as the ``_reg`` hub
models do), so the hub's ``facebook/dinov2-with-registers-base`` folder, or the
``dino_v2.*`` weights inside a DINO-Foresight checkpoint converted by
:func:`dinov2_to_hf_keys`, give the official features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, Dinov2WithRegistersConfig, PreTrainedModel

from dfbench.errors import DfbenchError

# The files a DINOv2 model folder needs; everything else on the hub page is prose.
WEIGHT_FILES = ("config.json", "*.safetensors")


@dataclass(frozen=True)
class Dinov2Weights:
    """One released DINOv2-with-registers backbone: where it is and where it comes from."""

    hub_id: str = "facebook/dinov2-with-registers-base"
    revision: str = "main"
    patch_size: int = 14
    dim: int = 768
    license: str = "Apache-2.0"
    paper: str = "Darcet et al., Vision Transformers Need Registers, ICLR 2024"

    @property
    def download_command(self) -> str:
        return f"hf download {self.hub_id}"


DINOV2_VITB14_REG = Dinov2Weights()


def final_norm(model: PreTrainedModel) -> nn.Module:
    """The LayerNorm a ViT applies after its last block (``layernorm`` in DINOv2, ``norm`` in DINOv3)."""
    for name in ("layernorm", "norm"):
        module = getattr(model, name, None)
        if isinstance(module, nn.LayerNorm):
            return module
    raise DfbenchError(f"backbone '{type(model).__name__}' has no final LayerNorm; pass a DINOv2/DINOv3 ViT.")


def num_prefix_tokens(model: PreTrainedModel) -> int:
    """CLS plus register tokens in front of the patch tokens."""
    return 1 + int(getattr(model.config, "num_register_tokens", 0))


def block_outputs(model: PreTrainedModel, pixel_values: torch.Tensor, blocks: Sequence[int]) -> list[torch.Tensor]:
    """Patch tokens [B, N, E] of each of ``blocks`` (0-based), through the final LayerNorm.

    ``hidden_states[0]`` is the embedding output, so block i's output is ``hidden_states[i + 1]``.
    """
    depth = int(model.config.num_hidden_layers)
    if any(not 0 <= b < depth for b in blocks):
        raise DfbenchError(f"blocks {list(blocks)} are outside the backbone's {depth} blocks; pick blocks 0..{depth - 1}.")
    hidden = model(pixel_values=pixel_values, output_hidden_states=True).hidden_states
    norm, prefix = final_norm(model), num_prefix_tokens(model)
    return [norm(hidden[b + 1])[:, prefix:] for b in blocks]


def dinov2_to_hf_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torch.hub DINOv2 keys (``blocks.{i}.attn.qkv``, ``ls1.gamma``...) -> HF hub keys.

    The packed qkv rows 0:E, E:2E, 2E:3E become query, key and value (checkpoint_layout.json).
    """
    out: dict[str, torch.Tensor] = {}
    simple = {
        "cls_token": "embeddings.cls_token",
        "mask_token": "embeddings.mask_token",
        "register_tokens": "embeddings.register_tokens",
        "pos_embed": "embeddings.position_embeddings",
        "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
        "norm.weight": "layernorm.weight",
        "norm.bias": "layernorm.bias",
    }
    block_parts = {
        "norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
        "attn.proj": "attention.output.dense", "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1",
    }
    for key, value in state_dict.items():
        if key in simple:
            out[simple[key]] = value
            continue
        parts = key.split(".")
        if parts[0] != "blocks" or len(parts) < 4:
            raise DfbenchError(f"unexpected DINOv2 weight '{key}'; pass a dinov2_vitb14_reg state dict.")
        prefix, rest = f"encoder.layer.{parts[1]}", ".".join(parts[2:])
        if rest.startswith("attn.qkv."):
            kind = rest.rsplit(".", 1)[1]
            for name, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                out[f"{prefix}.attention.attention.{name}.{kind}"] = chunk.clone()
            continue
        stem, kind = rest.rsplit(".", 1) if not rest.endswith("gamma") else (rest, "")
        if stem not in block_parts:
            raise DfbenchError(f"unexpected DINOv2 weight '{key}'; pass a dinov2_vitb14_reg state dict.")
        out[f"{prefix}.{block_parts[stem]}" + (f".{kind}" if kind else "")] = value
    return out


# transformers >= 5 stores the attention projections under shorter names in memory.
_V5_NAMES = {
    "attention.attention.query.": "attention.q_proj.",
    "attention.attention.key.": "attention.k_proj.",
    "attention.attention.value.": "attention.v_proj.",
    "attention.output.dense.": "attention.o_proj.",
}


def to_model_keys(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF hub keys, or transformers 5 in-memory keys, renamed to those ``model`` uses."""
    model_keys = set(model.state_dict())
    pairs = [*_V5_NAMES.items(), *((new, old) for old, new in _V5_NAMES.items())]
    renamed = {}
    for key, value in state_dict.items():
        if key not in model_keys:
            candidates = [key.replace(a, b) for a, b in pairs if a in key]
            key = next((c for c in candidates if c in model_keys), key)
        renamed[key] = value
    return renamed


def dinov2_from_state_dict(config: Mapping, state_dict: Mapping[str, torch.Tensor]) -> PreTrainedModel:
    """A ``Dinov2WithRegistersModel`` from config values and weights in any of the three key layouts.

    Args:
        config: ``Dinov2WithRegistersConfig`` values (hidden_size, num_hidden_layers, ...).
        state_dict: torch.hub DINOv2 keys, HF hub keys or transformers 5 keys; loaded strictly.
    """
    model = build_dinov2(dict(config))
    if "pos_embed" in state_dict:
        state_dict = dinov2_to_hf_keys(state_dict)
    try:
        model.load_state_dict(to_model_keys(model, state_dict), strict=True)
    except RuntimeError as error:
        raise DfbenchError(f"the DINOv2 weights do not fit the config ({str(error).splitlines()[0]}); pass matching weights.") from error
    return model.eval().requires_grad_(False)


def build_dinov2(values: dict) -> PreTrainedModel:
    """A randomly initialised Dinov2WithRegistersModel of the given config values."""
    # Eager attention: the fixture's transformers check ran eager; SDPA agrees to rounding.
    config = Dinov2WithRegistersConfig(**values)
    return AutoModel.from_config(config, attn_implementation="eager")


def resolve_dinov2(weights: Dinov2Weights = DINOV2_VITB14_REG) -> Path:
    """The local folder of ``weights`` from the Hugging Face cache (downloading when online)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(weights.hub_id, revision=weights.revision, allow_patterns=list(WEIGHT_FILES))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError) as error:
        raise DfbenchError(
            f"{weights.hub_id} is not in the Hugging Face cache and cannot be downloaded here: run "
            f"'{weights.download_command}' on a machine with internet, or pass --feature-space-path DIR."
        ) from error
    if not any(Path(folder).glob("*.safetensors")):
        raise DfbenchError(f"the cached copy of {weights.hub_id} has no safetensors weights: run '{weights.download_command}'.")
    return Path(folder)


def load_dinov2_folder(folder: str | Path, weights: Dinov2Weights = DINOV2_VITB14_REG) -> PreTrainedModel:
    """A frozen DINOv2-with-registers from a local model folder, checked against ``weights``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DfbenchError(f"backbone path '{folder}' is not a directory; pass a folder with config.json and model.safetensors.")
    try:
        model = AutoModel.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32, use_safetensors=True)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DfbenchError(f"cannot load a DINOv2 model from '{folder}' ({first}); pass {weights.hub_id} or a folder like it.") from error
    if model.config.model_type != "dinov2_with_registers":
        raise DfbenchError(f"'{folder}' holds a '{model.config.model_type}' model, not dinov2_with_registers; pass {weights.hub_id}.")
    if (int(model.config.patch_size), int(model.config.hidden_size)) != (weights.patch_size, weights.dim):
        raise DfbenchError(
            f"'{folder}' holds a DINOv2 with patch {model.config.patch_size} and width {model.config.hidden_size}, "
            f"expected patch {weights.patch_size} and width {weights.dim}; pass {weights.hub_id}."
        )
    return model.eval().requires_grad_(False)
