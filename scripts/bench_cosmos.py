"""Seconds per clip and peak memory of the pixel models at several sample counts.

For each sample count the evaluator's whole pixel path runs on synthetic clips (both
horizons): context preparation, the pipeline with all samples of a clip in one batch,
unpadding, cropping and re-encoding through the tiny feature space, scoring. Features of
the context are encoded before the clock starts (the harness caches them).

* ``cosmos-tiny`` (default): the shipped tiny pipeline on the CPU.
* ``--model cosmos-predict2-2b`` etc. on a GPU: the real pipeline (weights in the Hugging
  Face cache, guardrail installed or ``--accept-no-guardrail``), bf16.

Each configuration runs in a fresh subprocess so that peak memory (max RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU) belongs to that configuration alone.

Usage: OMP_NUM_THREADS=1 python scripts/bench_cosmos.py --samples 1,5,20 --clips 2
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import click
import torch


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.no_grad()
def measure(model_name: str, samples: int, clips: int, device: str, accept_no_guardrail: bool) -> dict:
    from dfbench.config import load_protocol
    from dfbench.evaluate import Evaluator
    from dfbench.features import load_feature_space
    from dfbench.registry import get_dataset_class, get_model_class

    dev = torch.device(device)
    space = load_feature_space("tiny", device=device)
    options = {"accept_no_guardrail": True} if accept_no_guardrail else {}
    model = get_model_class(model_name)(space, **options).to(dev)
    dataset = get_dataset_class("synthetic")(frame_size=space.frame_size)
    evaluator = Evaluator(model, space, {}, load_protocol(), num_samples=samples, horizons=["short", "mid"], device=dev)
    encoded = [evaluator.encode(dataset.load(sid)) for sid in dataset.sample_ids()[:clips]]
    model.pipeline()  # loading is not part of a clip's cost
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    started = time.perf_counter()
    for clip in encoded:
        for window in evaluator.windows():
            evaluator.forecast([clip], window)
    seconds = (time.perf_counter() - started) / clips
    return {"model": model_name, "samples": samples, "seconds_per_clip": round(seconds, 2),
            "peak_memory_mb": round(_peak_memory_mb(dev), 1), "device": device, "threads": torch.get_num_threads()}


@click.command()
@click.option("--model", default="cosmos-tiny", show_default=True)
@click.option("--samples", default="1,5,20", show_default=True, help="Comma-separated sample counts.")
@click.option("--clips", type=int, default=2, show_default=True, help="Clips per configuration.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--accept-no-guardrail", is_flag=True, help="Run NVIDIA's weights without their guardrail (your responsibility).")
@click.option("--one", type=int, default=None, hidden=True)
def main(model: str, samples: str, clips: int, device: str, accept_no_guardrail: bool, one: int | None) -> None:
    if one is not None:
        print(json.dumps(measure(model, one, clips, device, accept_no_guardrail)))
        return
    print(f"{'model':<22}{'samples':>8}{'s/clip':>10}{'peak MB':>10}")
    for count in [int(s) for s in samples.split(",")]:
        args = [sys.executable, __file__, "--model", model, "--clips", str(clips), "--device", device, "--one", str(count)]
        if accept_no_guardrail:
            args.append("--accept-no-guardrail")
        out = subprocess.run(args, capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{row['model']:<22}{row['samples']:>8}{row['seconds_per_clip']:>10.2f}{row['peak_memory_mb']:>10.1f}")


if __name__ == "__main__":
    main()
