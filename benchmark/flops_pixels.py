"""GFLOPs of the pixel-space models (Cosmos), per clip, at each model's own input size.

Appendix B of the paper: Cosmos does not take square crops, so its count is one whole
frame per clip (not doubled), and the fixed costs of the tokenizer (the VAE encoder of
the context) and of the KV prefill are left out. Counted here, per sample:

* diffusion models (diffusers): the transformer once per denoising step, twice with
  classifier-free guidance (guidance scale above 1), on the latent video the adapter
  asks for (context plus future frames), then the VAE decoder once. The prompt's text
  encoder runs once per model (cached embeddings) and is left out; so is the feature
  space's re-encoding of the predicted crops, which every model's count omits.
* autoregressive Cosmos-Predict1 (cosmos-4b, cosmos-12b): the Llama-style decoder for
  every generated token with a KV cache (linear layers, attention over the tokens before
  it, the output head); the context's prefill and the tokenizer are left out, as in the
  paper.

Modules are built on the meta device from the released configs
(:mod:`dfbench.adapters.cosmos_configs`), so nothing is downloaded or computed.
"""

from __future__ import annotations

import math
from functools import cache

import torch

from dfbench.adapters.cosmos_configs import AR_SPATIAL, AR_TEMPORAL, AUTOREGRESSIVE, TEXT_TOKENS, TRANSFORMERS, VAES
from dfbench.errors import DfbenchError


def is_pixel_spec(spec) -> bool:
    return spec.pixel_input is not None


def latent_video(spec, steps: int) -> tuple[int, int]:
    """(frames the adapter asks the pipeline for, latent frames) for ``steps`` protocol steps."""
    temporal = int(spec.options.get("temporal_factor", 4))
    pixel = spec.pixel_input
    total = 1 + temporal * math.ceil((pixel.num_frames + pixel.stride * steps) / temporal)
    return total, (total - 1) // temporal + 1


def _configs(spec) -> tuple[dict, str, dict]:
    """(transformer config, VAE class name, VAE config) of a diffusion spec."""
    key = spec.options.get("flops_config", spec.name)
    if key == "shipped":  # cosmos-tiny: the configs stored beside its weights
        import json

        from safetensors import safe_open

        source = next(parts["pipeline"] for parts in spec.weights.values() if "pipeline" in parts)
        with safe_open(source.location, framework="pt") as handle:
            configs = json.loads((handle.metadata() or {})["configs"])
        return configs["transformer"], "AutoencoderKLWan", configs["vae"]
    if key not in TRANSFORMERS:
        raise DfbenchError(f"no architecture sizes for '{spec.name}' to count FLOPs with; add them to adapters/cosmos_configs.py.")
    vae_class, vae_config = VAES[spec.options.get("vae", "wan2.1")]
    return dict(TRANSFORMERS[key]), vae_class, dict(vae_config)


@cache
def diffusion_counts(name: str, steps: int, device: str = "meta"):
    """(transformer call, VAE decoder call) FlopCounts of a diffusion spec, batch 1."""
    import diffusers

    from dfbench.flops import count_flops
    from dfbench.registry import get_model_spec

    spec = get_model_spec(name)
    config, vae_class, vae_config = _configs(spec)
    _, latent_frames = latent_video(spec, steps)
    if config.get("concat_padding_mask"):
        # Same patch embedding width without diffusers' torchvision resize of the padding mask.
        config = {**config, "concat_padding_mask": False, "in_channels": config["in_channels"] + 1}
    # Resolve the classes first: diffusers imports their modules lazily, and module-level tensors
    # created under the meta device context (the Cosmos VAE's wavelets) would stay on meta for good.
    transformer_cls, vae_cls = diffusers.CosmosTransformer3DModel, getattr(diffusers, vae_class)
    with torch.device(device):
        transformer = transformer_cls(**config).eval().requires_grad_(False)
        vae = vae_cls(**vae_config).eval().requires_grad_(False)
    spatial = vae_config.get("spatial_compression_ratio") or 2 ** len(vae_config.get("temperal_downsample", [0, 0, 0]))
    height, width = spec.pixel_input.height // spatial, spec.pixel_input.width // spatial
    channels = config["in_channels"] - 1  # the condition mask is the last input channel

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device=device)

    text = zeros(1, TEXT_TOKENS if spec.options.get("guardrail") else 4, config["text_embed_dim"])
    step = count_flops(lambda: transformer(
        hidden_states=zeros(1, channels, latent_frames, height, width), timestep=zeros(1), encoder_hidden_states=text,
        fps=24, condition_mask=zeros(1, 1, latent_frames, height, width), padding_mask=None, return_dict=False,
    ))
    latent_channels = vae_config.get("latent_channels") or vae_config.get("z_dim", 16)
    decoder = count_flops(lambda: vae.decode(zeros(1, latent_channels, latent_frames, height, width)))
    return step, decoder


def autoregressive_gflops(name: str, spec) -> float:
    """GFLOPs of decoding one sample's generated tokens with a KV cache (prefill left out)."""
    size = AUTOREGRESSIVE[name]
    pixel = spec.pixel_input
    per_frame = (pixel.height // AR_SPATIAL) * (pixel.width // AR_SPATIAL)
    context = (1 + (pixel.num_frames - 1) // AR_TEMPORAL) * per_frame
    generated = (spec.options["generated_frames"] // AR_TEMPORAL) * per_frame
    width, head = size["width"], size["width"] // size["heads"]
    kv = size["kv_heads"] * head
    linear = 2 * size["layers"] * (2 * width * width + 2 * width * kv + 3 * width * size["mlp"]) + 2 * width * size["vocab"]
    # token p attends to p + 1 keys: q k^T and weights x v, all heads, every layer
    keys = sum(range(context + 1, context + generated + 1))
    attention = 2 * 2 * size["layers"] * size["heads"] * head * keys
    return (generated * linear + attention) / 1e9


def pixel_component_rows(name: str, spec, num_samples: int, steps: int, device: str = "meta") -> list[dict]:
    """``dfbench flops`` rows of a pixel model: one whole frame per clip (``crops`` 1)."""
    common = {"model": name, "group": "per sample", "crops": 1, "attention_gflops": math.nan}
    if name in AUTOREGRESSIVE:
        gflops = autoregressive_gflops(name, spec)
        label = f"AR decoder ({spec.options['generated_frames']} frames, KV cache; prefill left out)"
        return [{**common, "component": label, "key": "ar_decode", "repeats": num_samples, "gflops": gflops,
                 "paper_convention_gflops": gflops}]
    step, decoder = diffusion_counts(name, steps, device)
    denoising = int(spec.options.get("num_inference_steps", 35))
    guided = float(spec.options.get("guidance_scale", 1.0)) > 1.0
    calls = denoising * (2 if guided else 1)
    frames, latent_frames = latent_video(spec, steps)
    label = f"Transformer ({latent_frames} latent frames; {denoising} steps" + (" x 2 for guidance)" if guided else ")")
    rows = [
        {**common, "component": label, "key": "transformer_step", "repeats": num_samples * calls,
         "gflops": step.total / 1e9, "attention_gflops": step.attention / 1e9},
        {**common, "component": f"VAE decoder ({frames} frames)", "key": "vae_decoder", "repeats": num_samples,
         "gflops": decoder.total / 1e9, "attention_gflops": decoder.attention / 1e9},
    ]
    return [{**row, "paper_convention_gflops": row["gflops"]} for row in rows]
