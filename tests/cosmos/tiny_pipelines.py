"""Tiny random-weight Cosmos pipelines built from configs, the way diffusers' own tests build them.

No text encoder: the adapters take prompt embeddings (here random, width 32), as they
do once the real text encoder has embedded the fixed prompt. No padding-mask channel
either: diffusers resizes that mask with torchvision, which the test extra leaves out.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers", reason='diffusers is not installed (pip install "dfbench[cosmos]")')

from dfbench.adapters.cosmos_diffusers import PassThroughChecker  # noqa: E402
from dfbench.adapters.spec import PixelInput  # noqa: E402
from dfbench.registry import get_model_class, get_model_spec, register_model_spec  # noqa: E402

TEXT_WIDTH = 32
# The synthetic world's 64 x 126 frames, padded: small enough for the CPU.
TINY_INPUT = {"height": 64, "width": 128}


class StandInChecker(PassThroughChecker):
    """Stands for NVIDIA's guardrail in tests (too large for CI), as in diffusers' tests; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.videos_checked = 0

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray:
        self.videos_checked += 1
        return frames


def _transformer():
    return diffusers.CosmosTransformer3DModel(
        in_channels=16 + 1, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        mlp_ratio=2, text_embed_dim=TEXT_WIDTH, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type="learnable",
    )


def _wan_vae():
    return diffusers.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                      temperal_downsample=[False, True, True])


def tiny_pipeline(pipeline: str, checker=None):
    """A random-weight pipeline of the named diffusers class, seeded."""
    torch.manual_seed(0)
    checker = checker or StandInChecker()
    if pipeline == "CosmosVideoToWorldPipeline":
        transformer = _transformer()
        transformer = diffusers.CosmosTransformer3DModel(**{**transformer.config, "in_channels": 4 + 1, "out_channels": 4})
        vae = diffusers.AutoencoderKLCosmos(
            in_channels=3, out_channels=3, latent_channels=4, encoder_block_out_channels=(8, 8, 8, 8),
            decode_block_out_channels=(8, 8, 8, 8), attention_resolutions=(8,), resolution=64, num_layers=2,
            patch_size=4, patch_type="haar", scaling_factor=1.0, spatial_compression_ratio=4,
            temporal_compression_ratio=4,
        )
        scheduler = diffusers.EDMEulerScheduler(
            sigma_min=0.002, sigma_max=80, sigma_data=0.5, sigma_schedule="karras", num_train_timesteps=1000,
            prediction_type="epsilon", rho=7.0, final_sigmas_type="sigma_min",
        )
    elif pipeline == "Cosmos2VideoToWorldPipeline":
        transformer, vae = _transformer(), _wan_vae()
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True)
    elif pipeline == "Cosmos2_5_PredictBasePipeline":
        transformer, vae = _transformer(), _wan_vae()
        scheduler = diffusers.UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction")
    else:
        raise ValueError(pipeline)
    cls = getattr(diffusers, pipeline)
    pipe = cls(text_encoder=None, tokenizer=None, transformer=transformer, vae=vae, scheduler=scheduler,
               safety_checker=checker)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prompt_embeds(length: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(1, length, TEXT_WIDTH, generator=g), torch.randn(1, length, TEXT_WIDTH, generator=g)


def small_variant(name: str) -> type:
    """The adapter class of a real Cosmos spec, at the tiny input size (same family, options, frame map)."""
    spec = get_model_spec(name)
    test_name = f"{name}-test"
    try:
        get_model_spec(test_name)
    except Exception:  # noqa: BLE001 - not registered yet
        pixel = dataclasses.replace(spec.pixel_input, short_side=None, **TINY_INPUT)
        assert isinstance(pixel, PixelInput)
        register_model_spec(dataclasses.replace(spec, name=test_name, pixel_input=pixel))
    return get_model_class(test_name)
