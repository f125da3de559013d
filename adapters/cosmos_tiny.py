"""``cosmos-tiny``: a Cosmos-Predict2-architecture pipeline small enough to ship and run on a CPU.

The same diffusers classes as Cosmos-Predict2 (``CosmosTransformer3DModel``, a Wan VAE,
``Cosmos2VideoToWorldPipeline``), trained by dfbench on the embedded synthetic world
(:mod:`dfbench.adapters.cosmos_train`, ``configs/train/pixel/tiny-cosmos.yaml``). One
safetensors file holds the VAE, the transformer, the fixed prompt's embeddings and, in
its metadata, the three configs; there is no text encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from dfbench.errors import DfbenchError

HOLDER = "cosmos-tiny"
LATENT_CHANNELS = 8
TEXT_WIDTH = 16
PROMPT_TOKENS = 4


def default_configs(sizes: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Transformer, VAE and scheduler configs; ``sizes`` overrides the transformer's and VAE's widths."""
    sizes = sizes or {}
    transformer = {
        "in_channels": LATENT_CHANNELS + 1, "out_channels": LATENT_CHANNELS,
        "num_attention_heads": sizes.get("heads", 4), "attention_head_dim": sizes.get("head_dim", 16),
        "num_layers": sizes.get("layers", 4), "mlp_ratio": 2.0, "text_embed_dim": TEXT_WIDTH, "adaln_lora_dim": 16,
        "max_size": [4, 16, 32], "patch_size": [1, 2, 2], "rope_scale": [1.0, 1.0, 1.0],
        # no padding mask: diffusers resizes it with torchvision, which dfbench does not need
        "concat_padding_mask": False, "extra_pos_embed_type": None,
    }
    vae = {
        "base_dim": sizes.get("vae_dim", 16), "z_dim": LATENT_CHANNELS, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1,
        "temperal_downsample": [False, True, True],
        "latents_mean": [0.0] * LATENT_CHANNELS, "latents_std": [1.0] * LATENT_CHANNELS,
    }
    scheduler = {"use_karras_sigmas": True}
    return {"transformer": transformer, "vae": vae, "scheduler": scheduler}


def build_parts(configs: dict[str, dict[str, Any]]):
    """(transformer, vae, scheduler) from configs, random weights."""
    import diffusers

    transformer = diffusers.CosmosTransformer3DModel(**configs["transformer"])
    vae = diffusers.AutoencoderKLWan(**configs["vae"])
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(**configs["scheduler"])
    return transformer, vae, scheduler


def save_tiny(path: str | Path, transformer, vae, configs: dict, prompt: torch.Tensor, extra: dict | None = None) -> None:
    """One safetensors file: ``vae.*``, ``transformer.*``, ``prompt``; configs in the metadata."""
    from safetensors.torch import save_file

    tensors = {f"vae.{k}": v.detach().contiguous() for k, v in vae.state_dict().items()}
    tensors |= {f"transformer.{k}": v.detach().contiguous() for k, v in transformer.state_dict().items()}
    tensors["prompt"] = prompt.detach().contiguous()
    metadata = {"model": HOLDER, "configs": json.dumps(configs), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def load_tiny(path: str | Path, safety_checker) -> tuple[Any, torch.Tensor]:
    """(Cosmos2VideoToWorldPipeline, prompt embeddings [1, L, D]) from a file written by :func:`save_tiny`."""
    import diffusers
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("model") != HOLDER:
            raise DfbenchError(f"'{path}' is not a cosmos-tiny checkpoint (it holds '{metadata.get('model')}').")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    configs = json.loads(metadata["configs"])
    transformer, vae, scheduler = build_parts(configs)
    for prefix, module in (("transformer.", transformer), ("vae.", vae)):
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    pipe = diffusers.Cosmos2VideoToWorldPipeline(
        text_encoder=None, tokenizer=None, transformer=transformer.eval(), vae=vae.eval(), scheduler=scheduler,
        safety_checker=safety_checker,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe, tensors["prompt"]
