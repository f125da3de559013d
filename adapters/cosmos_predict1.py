"""The paper's Cosmos-4B and Cosmos-12B: Cosmos-Predict1 autoregressive models through NVIDIA's package.

diffusers does not provide them. This adapter drives cosmos-predict1's Python inference
API (``ARBaseGenerationPipeline``, as its ``autoregressive/inference/base.py`` does): 9
input frames at 640 x 1024, padded with the last one to the tokenizer's 33, and 24
generated frames (the package echoes the input, so frame 9 is the first new one). The
package keeps its own guardrail; ``accept_no_guardrail=true`` turns it off and puts the
responsibility on the user, as for the diffusers models. Randomness: one seed per sample,
drawn from the clip's generator (the package seeds itself from it).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch

from dfbench.adapters.cosmos_diffusers import _flag
from dfbench.adapters.pixel import PixelContext, PixelWorldModel, sample_generators, target_frame_indices
from dfbench.adapters.spec import ModelSpec
from dfbench.errors import DfbenchError

INSTALL = (
    "needs NVIDIA's cosmos-predict1 package: git clone https://github.com/nvidia-cosmos/cosmos-predict1, follow its "
    "INSTALL.md, add the clone to PYTHONPATH and download the weights with its "
    "scripts/download_autoregressive_checkpoints.py --model_sizes {size}"
)
TOTAL_FRAMES = 33  # the discrete tokenizer's clip length: 9 input + 24 generated
SEED_LIMIT = 2**31 - 1


def import_predict1():
    """(pipeline class, SamplingConfig) of cosmos-predict1, or None when it is not installed."""
    try:
        from cosmos_predict1.autoregressive.configs.inference.inference_config import SamplingConfig
        from cosmos_predict1.autoregressive.inference.world_generation_pipeline import ARBaseGenerationPipeline
    except ImportError:
        return None
    return ARBaseGenerationPipeline, SamplingConfig


class Predict1WorldModel(PixelWorldModel):
    """A Cosmos-Predict1 autoregressive base model generating 24 frames from 9.

    Keyword options (``--model-arg``): ``checkpoint_dir`` (default ``$COSMOS_CHECKPOINT_DIR``
    or ``checkpoints``), ``accept_no_guardrail``, ``temperature``, ``top_p``, and the
    package's offloading switches ``offload_*``.
    """

    spec: ClassVar[ModelSpec]
    stochastic = True

    def __init__(self, feature_space, checkpoint: str | None = None, checkpoint_dir: str | None = None,
                 accept_no_guardrail: bool = False, temperature: float = 1.0, top_p: float = 0.8, **options: Any) -> None:
        super().__init__(feature_space, checkpoint)
        found = import_predict1()
        if found is None:
            raise DfbenchError(f"model '{self.spec.name}' " + INSTALL.format(size=self.spec.options["model_size"]))
        pipeline_cls, sampling_cls = found
        folder = checkpoint_dir or os.environ.get("COSMOS_CHECKPOINT_DIR", "checkpoints")
        self.sampling = sampling_cls(echo=True, temperature=float(temperature), top_p=float(top_p), compile_sampling=True)
        offload = {key: _flag(value) for key, value in options.items() if key.startswith("offload_")}
        self.pipeline = pipeline_cls(
            inference_type="base", checkpoint_dir=folder, checkpoint_name=checkpoint or self.spec.options["checkpoint_name"],
            disable_diffusion_decoder=False, disable_guardrail=_flag(accept_no_guardrail), parallel_size=1, **offload,
        )

    def generate(self, context: PixelContext, target_timestamps: torch.Tensor, num_samples: int) -> torch.Tensor:
        pixel = self.input_format()
        wanted = target_frame_indices(context, target_timestamps, pixel.stride)
        inputs = context.frames.shape[1]
        out = []
        for clip in range(context.batch_size):
            video = context.frames[clip].float() / 127.5 - 1  # [F, 3, H, W] in [-1, 1]
            padded = torch.cat([video, video[-1:].expand(TOTAL_FRAMES - inputs, -1, -1, -1)])
            video_in = padded.permute(1, 0, 2, 3).unsqueeze(0)  # [1, 3, 33, H, W], as the package's loader makes it
            samples = []
            for generator in sample_generators(context.generators[clip], num_samples):
                frames = self.pipeline.generate(inp_vid=video_in, num_input_frames=inputs,
                                                seed=generator.initial_seed() % SEED_LIMIT, sampling_config=self.sampling)
                samples.append(self._picked(frames, inputs, wanted, pixel))
            out.append(torch.stack(samples))
        return torch.stack(out)

    def _picked(self, frames, inputs: int, wanted: list[int], pixel) -> torch.Tensor:
        if frames is None:
            raise DfbenchError(f"the cosmos-predict1 guardrail blocked a generation of '{self.spec.name}'; "
                               "see the package's log.")
        frames = torch.as_tensor(frames)
        expected = (TOTAL_FRAMES, pixel.height, pixel.width, 3)
        if tuple(frames.shape) != expected or frames.dtype != torch.uint8:
            raise DfbenchError(
                f"cosmos-predict1 returned frames {tuple(frames.shape)} {frames.dtype} for '{self.spec.name}', expected "
                f"uint8 {expected}; check the package version and the spec's input size."
            )
        return frames[[inputs + i for i in wanted]].permute(0, 3, 1, 2)
