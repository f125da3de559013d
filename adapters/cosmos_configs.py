"""Architecture sizes of the released Cosmos models, for counting FLOPs without their weights.

Transformer and VAE configs are diffusers' (``scripts/convert_cosmos_to_diffusers.py`` in
the diffusers repository: ``TRANSFORMER_CONFIGS``, the Cosmos-1.0 CV8x8x8 tokenizer, and
the Wan 2.1 VAE, whose sizes are ``AutoencoderKLWan``'s defaults). The autoregressive
Cosmos-Predict1 models are Llama-style decoders over the discrete DV8x16x16 tokenizer's
tokens; their sizes are those of cosmos-predict1's 4B and 12B model configs.
No torch here: the specs and ``dfbench list`` import this module.
"""

from __future__ import annotations

_DIFFUSION_COMMON = {
    "out_channels": 16, "attention_head_dim": 128, "mlp_ratio": 4.0, "text_embed_dim": 1024, "adaln_lora_dim": 256,
    "max_size": (128, 240, 240), "patch_size": (1, 2, 2),
}

TRANSFORMERS = {
    "cosmos1-7b-v2w": {**_DIFFUSION_COMMON, "in_channels": 17, "num_attention_heads": 32, "num_layers": 28,
                       "rope_scale": (2.0, 1.0, 1.0), "concat_padding_mask": True, "extra_pos_embed_type": "learnable"},
    "cosmos1-14b-v2w": {**_DIFFUSION_COMMON, "in_channels": 17, "num_attention_heads": 40, "num_layers": 36,
                        "rope_scale": (2.0, 2.0, 2.0), "concat_padding_mask": True, "extra_pos_embed_type": "learnable"},
    "cosmos-predict2-2b": {**_DIFFUSION_COMMON, "in_channels": 17, "num_attention_heads": 16, "num_layers": 28,
                           "rope_scale": (1.0, 3.0, 3.0), "concat_padding_mask": True, "extra_pos_embed_type": None},
    "cosmos-predict2-14b": {**_DIFFUSION_COMMON, "in_channels": 17, "num_attention_heads": 40, "num_layers": 36,
                            "rope_scale": (20 / 24, 2.0, 2.0), "concat_padding_mask": True, "extra_pos_embed_type": None},
    # 2.5's cross-attention projection of the Reason1 embeddings runs once per prompt (cached): left out.
    "cosmos-predict2.5-2b": {**_DIFFUSION_COMMON, "in_channels": 17, "num_attention_heads": 16, "num_layers": 28,
                             "rope_scale": (1.0, 3.0, 3.0), "concat_padding_mask": True, "extra_pos_embed_type": None},
}

# (diffusers class, config)
VAES = {
    "cosmos-cv8x8x8": ("AutoencoderKLCosmos", {
        "in_channels": 3, "out_channels": 3, "latent_channels": 16, "encoder_block_out_channels": (128, 256, 512, 512),
        "decode_block_out_channels": (256, 512, 512, 512), "attention_resolutions": (32,), "resolution": 1024,
        "num_layers": 2, "patch_size": 4, "patch_type": "haar", "scaling_factor": 1.0, "spatial_compression_ratio": 8,
        "temporal_compression_ratio": 8,
    }),
    "wan2.1": ("AutoencoderKLWan", {}),
}

# Text tokens the cached prompt embeddings hold (T5 / Reason1 at max_sequence_length 512).
TEXT_TOKENS = 512

# Cosmos-Predict1 autoregressive: Llama-style decoder sizes and the DV8x16x16 token layout.
AUTOREGRESSIVE = {
    "cosmos-4b": {"layers": 16, "width": 4096, "heads": 32, "kv_heads": 8, "mlp": 14336, "vocab": 64000},
    "cosmos-12b": {"layers": 40, "width": 5120, "heads": 32, "kv_heads": 8, "mlp": 14336, "vocab": 64000},
}
AR_SPATIAL, AR_TEMPORAL = 16, 8  # DV8x16x16: 640 x 1024 -> 40 x 64 tokens per latent frame
