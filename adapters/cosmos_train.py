"""Training of ``cosmos-tiny`` on the synthetic world: the Wan VAE, then the Cosmos transformer.

Stage 1 trains the VAE as an autoencoder on 5-frame windows (one latent frame for the
first frame, one for the next four: both paths of the causal VAE). Stage 2 trains the
transformer on the latents of 9-frame clips laid out as the adapter feeds the pipeline:
the four context frames spread over five (``spread_context(5)``), then four future frames.
The first two latent frames condition, the third is generated.

The objective is the one ``Cosmos2VideoToWorldPipeline`` samples with: with
``t = sigma / (1 + sigma)`` its denoiser ``(1 - t) * x_sigma - t * F(x_t)`` is exact when
``F`` predicts the rectified-flow velocity ``eps - x0`` at ``x_t = (1 - t) x0 + t eps``,
so ``F`` is trained by mean squared error to that velocity, t logit-normal.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from dfbench.adapters.cosmos_tiny import PROMPT_TOKENS, TEXT_WIDTH, build_parts, default_configs
from dfbench.adapters.spec import spread_context

INPUT_SIZE = (64, 128)  # the synthetic world's 64 x 126 frames, padded as the harness pads them
CONTEXT, FUTURE = 4, 4
# t of the clean conditioning frames, as the pipeline sets it (sigma_conditioning = 1e-4).
T_CONDITION = 1e-4 / (1 + 1e-4)
FPS = 10  # the synthetic world's frame rate, which the adapter passes as fps


def training_videos(count: int, first_index: int = 0) -> torch.Tensor:
    """uint8 [count, 9, 3, 64, 128]: context frames spread over five, then four future frames."""
    from dfbench.data.synthetic import SyntheticDataset

    world = SyntheticDataset(frame_size=INPUT_SIZE[0], split="train")
    order = list(spread_context(5, CONTEXT)) + list(range(CONTEXT, CONTEXT + FUTURE))
    videos = []
    for index in range(first_index, first_index + count):
        frames = world.clip(index, CONTEXT + FUTURE).frames[order]
        pad = INPUT_SIZE[1] - frames.shape[-1]
        videos.append(F.pad(frames, (0, pad, 0, INPUT_SIZE[0] - frames.shape[-2])))
    return torch.stack(videos)


def to_pipeline_range(videos: torch.Tensor) -> torch.Tensor:
    """uint8 [B, T, 3, H, W] -> float [B, 3, T, H, W] in [-1, 1], as the pipeline's video processor."""
    return (videos.float() / 127.5 - 1).permute(0, 2, 1, 3, 4)


def train_vae(vae, videos: torch.Tensor, steps: int, batch: int, lr: float, seed: int, log: Callable) -> None:
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    vae.train()
    for step in range(steps):
        rows = rng.integers(0, len(videos), batch)
        start = int(rng.integers(0, videos.shape[1] - 4))
        x = to_pipeline_range(videos[rows, start : start + 5])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / x[0].numel()
        loss = F.l1_loss(recon, x) + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            log(f"vae step {step} l1 {F.l1_loss(recon, x).item():.4f}")
    vae.eval()


@torch.no_grad()
def encode_latents(vae, videos: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Posterior means [N, C, 3, 8, 16] of the 9-frame videos."""
    chunks = [vae.encode(to_pipeline_range(videos[i : i + batch])).latent_dist.mode() for i in range(0, len(videos), batch)]
    return torch.cat(chunks)


def train_transformer(transformer, x0: torch.Tensor, prompt: torch.Tensor, steps: int, batch: int, lr: float,
                      seed: int, log: Callable) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=lr, weight_decay=0.01)
    cond = torch.zeros(1, 1, x0.shape[2], 1, 1)
    cond[:, :, :2] = 1.0  # (5 - 1) // 4 + 1 = 2 conditioning latent frames
    transformer.train()
    for step in range(steps):
        rows = torch.randint(0, len(x0), (batch,), generator=generator)
        clean = x0[rows]
        eps = torch.randn(clean.shape, generator=generator)
        t = torch.sigmoid(torch.randn(batch, 1, 1, 1, 1, generator=generator))
        noisy = cond * clean + (1 - cond) * ((1 - t) * clean + t * eps)
        timestep = (cond * T_CONDITION + (1 - cond) * t).expand(-1, -1, clean.shape[2], -1, -1)
        mask = (cond * torch.ones_like(clean[:, :1])).expand(batch, -1, -1, -1, -1)
        velocity = transformer(hidden_states=noisy, timestep=timestep, encoder_hidden_states=prompt.expand(batch, -1, -1),
                               fps=FPS, condition_mask=mask, padding_mask=None, return_dict=False)[0]
        loss = ((velocity - (eps - clean)) ** 2 * (1 - cond)).sum() / ((1 - cond).sum() * clean[:, :, :1].numel())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"transformer step {step} loss {loss.item():.4f}")
    transformer.eval()


def train_tiny_cosmos(config: dict, log: Callable = print):
    """Trains both parts per ``config`` (configs/train/pixel/tiny-cosmos.yaml); returns (transformer, vae, configs, prompt)."""
    torch.manual_seed(config["seed"])
    configs = default_configs(config.get("architecture"))
    transformer, vae, _ = build_parts(configs)
    started = time.perf_counter()
    videos = training_videos(config["data"]["clips"])
    log(f"rendered {len(videos)} clips in {time.perf_counter() - started:.0f}s")
    stage = config["vae"]
    train_vae(vae, videos, stage["steps"], stage["batch_size"], stage["lr"], config["seed"], log)
    latents = encode_latents(vae, videos)
    # Normalise the latents to unit scale per channel; the pipeline reads these from the VAE config.
    mean = latents.mean(dim=(0, 2, 3, 4))
    std = latents.std(dim=(0, 2, 3, 4)).clamp(min=1e-3)
    configs["vae"]["latents_mean"], configs["vae"]["latents_std"] = mean.tolist(), std.tolist()
    vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
    x0 = (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)
    prompt = torch.randn(1, PROMPT_TOKENS, TEXT_WIDTH, generator=torch.Generator().manual_seed(config["seed"]))
    stage = config["transformer"]
    train_transformer(transformer, x0, prompt, stage["steps"], stage["batch_size"], stage["lr"], config["seed"], log)
    log(f"trained in {time.perf_counter() - started:.0f}s")
    return transformer, vae, configs, prompt
