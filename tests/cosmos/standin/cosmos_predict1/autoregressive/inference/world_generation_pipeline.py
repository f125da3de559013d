"""Stand-in of cosmos-predict1's ARBaseGenerationPipeline: same constructor and generate() signatures.

generate() checks its input the way the package's loader builds it and returns uint8
[33, H, W, 3]: the 9 input frames echoed, then 24 frames of the last input frame plus
noise drawn from ``seed`` (so seeds are observable). ``blocked`` makes it act as a
guardrail refusing the video.
"""

import numpy as np
import torch

CALLS: list[dict] = []


class ARBaseGenerationPipeline:
    blocked = False

    def __init__(self, inference_type, checkpoint_dir, checkpoint_name, disable_diffusion_decoder=False,
                 offload_guardrail_models=False, offload_diffusion_decoder=False, offload_network=False,
                 offload_tokenizer=False, disable_guardrail=False, parallel_size=1):
        assert inference_type == "base"
        self.settings = {"checkpoint_dir": checkpoint_dir, "checkpoint_name": checkpoint_name,
                         "disable_guardrail": disable_guardrail, "offload_network": offload_network}

    def generate(self, inp_vid, num_input_frames, seed, sampling_config):
        assert inp_vid.ndim == 5 and inp_vid.shape[:3] == (1, 3, 33), inp_vid.shape
        assert float(inp_vid.min()) >= -1.0 and float(inp_vid.max()) <= 1.0
        assert sampling_config.echo
        CALLS.append({"seed": seed, "num_input_frames": num_input_frames})
        if self.blocked:
            return None
        video = ((inp_vid[0].permute(1, 2, 3, 0) + 1) * 127.5).round()  # [33, H, W, 3]
        noise = torch.randn(33 - num_input_frames, *video.shape[1:], generator=torch.Generator().manual_seed(seed))
        video[num_input_frames:] = video[num_input_frames - 1] + 30 * noise
        return video.clamp(0, 255).to(torch.uint8).numpy().astype(np.uint8)
