"""How much do extra samples cost? Wall time and peak memory of sampling models.

Measures evaluation throughput (clips per second) and peak memory of ``deltaworld``
and ``dino-world-bom`` at several sample counts on the same clips:

* ``--scale vitb``: the paper's ViT-B configuration with random weights (backbone,
  DeltaTok, predictors) on random frames, at ``--resolution`` (256 by default: the
  paper's ablation size; 512 is the main setting), one 7-frame clip cut into two square
  crops, both horizons. The backbone runs once per clip and is reported separately,
  since it is shared by every sample and every model.
* ``--scale tiny``: ``dfbench run`` on the embedded synthetic benchmark with the shipped
  tiny weights.

Each configuration runs in a fresh subprocess so that peak memory (max RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU) belongs to that configuration alone.

Usage: python scripts/bench_sampling.py --scale vitb --samples 1,5,20,50
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import click
import torch

MODELS = ("deltaworld", "dino-world-bom")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far: max RSS on the CPU, max allocated on a GPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Tokenizer and predictor flags of every built-in predictor model: (use_delta, use_bom).
VITB_VARIANTS = {
    "deltaworld": (True, True),
    "deltaworld-frame": (False, True),
    "deltaworld-nobom": (True, False),
    "dino-world": (None, False),
    "dino-world-bom": (None, True),
}


def vitb_world_net(model: str, device: torch.device) -> torch.nn.Module:
    """A built-in predictor model at the paper's ViT-B size with random weights (seed 0)."""
    from dfbench.models.deltatok import DeltaTok, DeltaTokConfig
    from dfbench.models.deltaworld import DeltaWorld, DeltaWorldConfig
    from dfbench.models.dinoworld import DINOWorld, DINOWorldConfig

    use_delta, use_bom = VITB_VARIANTS[model]
    torch.manual_seed(0)
    if use_delta is None:
        return DINOWorld(DINOWorldConfig.vitb(use_bom=use_bom)).to(device).eval()
    tokenizer = DeltaTok(DeltaTokConfig.vitb(use_delta=use_delta))
    return DeltaWorld(tokenizer, DeltaWorldConfig.vitb(use_bom=use_bom)).to(device).eval()


def vitb_backbone(device: torch.device) -> torch.nn.Module:
    """DINOv3 ViT-B/16 (4 registers) with random weights (seed 0), in eval mode."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(0)
    config = DINOv3ViTConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                             patch_size=16, num_register_tokens=4)
    return DINOv3ViTModel(config).to(device).eval()


@torch.no_grad()
def measure_vitb(model: str, samples: int, resolution: int, clips: int, device: str) -> dict:
    """One configuration at ViT-B size; returns timings and peak memory."""
    from dfbench.protocol import windows
    from dfbench.scoring import score_rollouts

    dev = torch.device(device)
    backbone = vitb_backbone(dev)
    net = vitb_world_net(model, dev)
    grid = (resolution // 16, resolution // 16)
    crops, frames = 2, 7
    timestamps = (torch.arange(frames, dtype=torch.float32) * 0.2).expand(crops, -1).to(dev)
    black = backbone(torch.zeros(1, 3, resolution, resolution, device=dev)).last_hidden_state[0, 5:]
    generator = torch.Generator().manual_seed(0)
    backbone_s = model_s = 0.0
    for _ in range(clips):
        pixels = torch.randn(crops * frames, 3, resolution, resolution, generator=generator).to(dev)
        start = time.perf_counter()
        feats = backbone(pixels).last_hidden_state[:, 5:].reshape(crops, frames, grid[0] * grid[1], 768)
        sync(dev)
        backbone_s += time.perf_counter() - start
        start = time.perf_counter()
        for window in windows(7, 4, {"short": 1, "mid": 3}):
            ctx, tgt = list(window.context), list(window.targets)
            noise = torch.randn(len(tgt), crops, samples, 1, 768, generator=generator).to(dev) * 0.02
            preds = net.rollout(feats[:, ctx], timestamps[:, ctx], timestamps[:, tgt], grid, samples, noise, x_black=black)
            score_rollouts(preds, feats[:, tgt], stochastic=True)
        sync(dev)
        model_s += time.perf_counter() - start
    return {
        "model": model, "samples": samples, "resolution": resolution, "clips": clips,
        "backbone_s_per_clip": backbone_s / clips, "model_s_per_clip": model_s / clips,
        "clips_per_s": clips / (backbone_s + model_s), "peak_memory_mb": peak_memory_mb(dev),
    }


def measure_tiny(model: str, samples: int, clips: int, device: str) -> dict:
    """`dfbench run` on the synthetic benchmark, in this process."""
    import tempfile

    from dfbench.run import RunOptions, run

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run(RunOptions(model=model, dataset="synthetic", num_samples=samples, limit=clips, batch_size=8,
                       device=device, output_dir=out, progress=False))
        wall = time.perf_counter() - start
    return {"model": model, "samples": samples, "clips": clips, "wall_s": wall, "clips_per_s": clips / wall,
            "peak_memory_mb": peak_memory_mb(torch.device(device))}


def as_dfbench_runs(env: dict[str, str]) -> dict[str, str]:
    """A measured subprocess's environment with the ``dfbench`` command's malloc settings.

    Checkouts without ``dfbench.allocator`` are measured as they ran.
    """
    try:
        from dfbench.allocator import tuned_environment
    except ImportError:
        return env
    return tuned_environment(env)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@click.command()
@click.option("--scale", type=click.Choice(["vitb", "tiny"]), default="vitb", show_default=True)
@click.option("--samples", default="1,5,20,50", show_default=True)
@click.option("--models", default=",".join(MODELS), show_default=True)
@click.option("--resolution", type=int, default=256, show_default=True)
@click.option("--clips", type=int, default=1, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--one", is_flag=True, hidden=True, help="Measure a single configuration (used by the subprocesses).")
def main(scale, samples, models, resolution, clips, device, one) -> None:
    counts = [int(s) for s in samples.split(",")]
    names = [m for m in models.split(",") if m]
    if one:
        result = (measure_vitb(names[0], counts[0], resolution, clips, device) if scale == "vitb"
                  else measure_tiny(names[0], counts[0], clips, device))
        print(json.dumps(result))
        return
    rows = []
    for name in names:
        for count in counts:
            cmd = [sys.executable, __file__, "--one", "--scale", scale, "--models", name, "--samples", str(count),
                   "--resolution", str(resolution), "--clips", str(clips), "--device", device]
            env = as_dfbench_runs(dict(os.environ))
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
            row = json.loads(out)
            rows.append(row)
            print(json.dumps(row), flush=True)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sampling cost ({scale}, {device})")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()])
    Console().print(table)


if __name__ == "__main__":
    main()
