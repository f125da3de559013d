"""Where does a clip's time go? Seconds per clip per component, and peak memory, per model.

Runs the real evaluation loop (``Evaluator.evaluate`` on an encoded clip: windows, the
adapter's ``predict``, scoring, a segmentation head and its statistics) for every
built-in model at the paper's ViT-B size with random weights: a DINOv3 ViT-B/16
backbone, DeltaTok and the predictors (built by ``bench_sampling``'s helpers). One
Cityscapes-shaped clip is 7 random frames of ``R x 2R`` pixels (two square crops of
``R``, 256 by default: the paper's ablation size), the last frame labelled with 19
classes at twice the frame resolution, both horizons.

Components are timed around the real modules, not re-implemented:

* ``backbone``: ``Evaluator.encode`` (crops and backbone features, once per clip, of the
  frames the model reads: 6 of 7 per crop at 1 sample, all 7 for present and at 20);
* ``tok_encoder`` / ``decoder``: ``DeltaTok.encode`` / ``DeltaTok.decode`` calls;
* ``predictor``: forward pre/post hooks on the world model's ``Predictor`` (and its
  ``project_context`` calls);
* ``model_other``: the rest of ``predict`` (noise, concatenations, copies);
* ``scoring``: ``score_rollouts`` (best / mean sample choice);
* ``sample_scores``: ``Evaluator._accumulate_ensemble`` (the records' per-sample scores
  of a sampling model at more than one sample);
* ``heads_metrics``: the rest of ``evaluate`` (heads, upsampling, statistics; only for
  steps whose labels have valid pixels: the clip labels its last frame, as Cityscapes).

With ``--flops``, ``gflop`` is one more clip's floating-point work (``dfbench.flops.count_flops``, attention
included), counted on a clip that is not timed so the counter costs the timings nothing;
``gflop_per_s`` divides it by the clip's total time. ``--gemm-peak`` first prints this
core's fp32 matrix-product rate at ViT-B shapes: the ceiling ``gflop_per_s`` can approach,
so ``gflop / peak`` is the least time a clip can take without doing less arithmetic.

Each measured process starts with the ``dfbench`` command's malloc settings
(``dfbench.allocator``; set ``DFBENCH_DEFAULT_MALLOC=1`` for glibc's defaults).

``--warmup`` clips (1 by default) run untimed first, so the figures are those of a long
run's typical clip rather than of its first.

Each (model, samples) pair runs in a fresh subprocess with one thread by default, so
peak memory (max RSS on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU) is its
own. ``stats_sha`` hashes the clip's finished records: equal hashes mean equal outputs
(e.g. before and after a speed change).

Usage: OMP_NUM_THREADS=1 python scripts/bench_components.py --samples 1,20 [--clock cpu]
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampling import (  # noqa: E402
    VITB_VARIANTS, as_dfbench_runs, peak_memory_mb, sync, vitb_backbone, vitb_world_net,
)

WARMUP_INDEX = 10_000  # warm-up clips are drawn apart from the timed ones (whose records are hashed)
MODELS = ("copy-last", "dino-world", "dino-world-bom", "deltaworld", "deltaworld-frame", "deltaworld-nobom", "present")
COMPONENTS = ("backbone", "tok_encoder", "predictor", "decoder", "model_other", "scoring", "sample_scores",
              "heads_metrics")
CLASSES = 19
# "cpu" (this process's CPU time) is steadier than wall time on a machine other jobs share.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class Timers:
    """Accumulated seconds per name, from wrapped methods and module hooks."""

    def __init__(self, device: torch.device, clock=time.perf_counter) -> None:
        self.device = device
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self._starts: dict[str, list[float]] = {}

    def _start(self, name: str) -> None:
        sync(self.device)
        self._starts.setdefault(name, []).append(self.clock())

    def _stop(self, name: str) -> None:
        sync(self.device)
        self.seconds[name] = self.seconds.get(name, 0.0) + self.clock() - self._starts[name].pop()

    def wrap(self, owner, attr: str, name: str) -> None:
        """Times every call of ``owner.attr`` (an instance method or a module function)."""
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            self._start(name)
            try:
                return inner(*args, **kwargs)
            finally:
                self._stop(name)

        setattr(owner, attr, timed)

    def hook(self, module: torch.nn.Module, name: str) -> None:
        """Times every forward of ``module``."""
        module.register_forward_pre_hook(lambda *_: self._start(name))
        module.register_forward_hook(lambda *_: self._stop(name))

    def get(self, name: str) -> float:
        return self.seconds.get(name, 0.0)


def feature_space(device: torch.device, resolution: int):
    """A DINOv3 ViT-B/16 feature space with random weights and the released preprocessing."""
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    from dfbench.features.dinov3 import Dinov3FeatureSpace

    return Dinov3FeatureSpace(
        vitb_backbone(device), IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, 1 / 255,
        name="dinov3-vitb16", frame_size=resolution,
    ).to(device)


def adapter(name: str, space, device: torch.device):
    """The registered adapter of ``name`` with random ViT-B weights in place of its checkpoint."""
    from dfbench.adapters.base import WorldModel
    from dfbench.registry import get_model_class

    cls = get_model_class(name)
    if name not in VITB_VARIANTS:
        return cls(space).to(device)
    model = cls.__new__(cls)  # skips the checkpoint loading of __init__
    WorldModel.__init__(model, space)
    model._files = {}
    model.net = vitb_world_net(name, device)
    return model


def clip(resolution: int, index: int):
    """A Cityscapes-shaped clip: 7 frames R x 2R at 16 fps / stride 3, last frame labelled."""
    from dfbench.data.base import Clip

    generator = torch.Generator().manual_seed(index)
    frames = torch.randint(0, 256, (7, 3, resolution, 2 * resolution), generator=generator, dtype=torch.uint8)
    labels = torch.full((7, 2 * resolution, 4 * resolution), 255, dtype=torch.long)
    labels[-1] = torch.randint(0, CLASSES, labels.shape[1:], generator=generator)
    timestamps = torch.arange(7, dtype=torch.float32) * 0.1875
    return Clip(f"bench/{index}", frames, timestamps, {"seg": labels})


@torch.no_grad()
def measure(name: str, samples: int, resolution: int, clips: int, device: str, clock: str = "wall",
            flops: bool = False, warmup: int = 0) -> dict:
    """Seconds per clip per component and peak memory of one (model, samples) pair."""
    import dfbench.evaluate as evaluate_module
    from dfbench.config import load_protocol
    from dfbench.evaluate import Evaluator, finalize_stats
    from dfbench.heads.linear import SegHead

    dev = torch.device(device)
    space = feature_space(dev, resolution)
    model = adapter(name, space, dev)
    torch.manual_seed(0)
    heads = {"seg": SegHead(space.dim, CLASSES).to(dev).eval()}
    evaluator = Evaluator(model, space, heads, load_protocol(), samples, ["short", "mid"], seed=0, device=dev)
    # The black frame's features are computed once per run, not per clip.
    if hasattr(model, "_black_frame"):  # older adapters kept them
        model._black_frame(resolution)
    elif getattr(model, "uses_black_frame", False):  # the feature space caches them
        space.black_frame(resolution, resolution)
    # Untimed clips first: a run's first clip also pays for first-touch page faults and
    # one-off set-up that every later clip of a long run is spared.
    for index in range(warmup):
        evaluator.evaluate([evaluator.encode(clip(resolution, WARMUP_INDEX + index))])
    timers = Timers(dev, CLOCKS[clock])
    net = getattr(model, "net", None)
    if net is not None:
        timers.hook(net.predictor, "predictor")
        if hasattr(net.predictor, "project_context"):  # the context's keys/values, once per rollout
            timers.wrap(net.predictor, "project_context", "predictor")
        if hasattr(net, "tokenizer"):
            timers.wrap(net.tokenizer, "encode", "tok_encoder")
            timers.wrap(net.tokenizer, "decode", "decoder")
    timers.wrap(model, "predict", "predict")
    timers.wrap(evaluate_module, "score_rollouts", "scoring")
    if hasattr(evaluator, "_accumulate_ensemble"):  # absent before sample scores were recorded
        timers.wrap(evaluator, "_accumulate_ensemble", "sample_scores")
    digest = hashlib.sha256()
    load_before = os.getloadavg()[0]
    for index in range(clips):
        timers._start("backbone")
        encoded = evaluator.encode(clip(resolution, index))
        timers._stop("backbone")
        timers._start("evaluate")
        records = evaluator.evaluate([encoded])
        timers._stop("evaluate")
        digest.update(json.dumps([finalize_stats(r) for r in records], sort_keys=True).encode())
    inside = sum(timers.get(k) for k in ("tok_encoder", "predictor", "decoder"))
    parts = {
        "backbone": timers.get("backbone"),
        "tok_encoder": timers.get("tok_encoder"),
        "predictor": timers.get("predictor"),
        "decoder": timers.get("decoder"),
        "model_other": timers.get("predict") - inside,
        "scoring": timers.get("scoring"),
        "sample_scores": timers.get("sample_scores"),
        "heads_metrics": timers.get("evaluate") - timers.get("predict") - timers.get("scoring")
        - timers.get("sample_scores"),
    }
    row = {"model": name, "samples": samples, "resolution": resolution, "clips": clips, "clock": clock}
    row.update({k: v / clips for k, v in parts.items()})
    row["total"] = sum(parts.values()) / clips
    if flops:
        row["gflop"] = clip_gflop(evaluator, clip(resolution, clips))
        row["gflop_per_s"] = row["gflop"] / row["total"]
    row["peak_memory_mb"] = peak_memory_mb(dev)
    row["stats_sha"] = digest.hexdigest()[:12]
    # Other jobs on a shared CPU slow even CPU time (caches, memory bandwidth): say how busy it was.
    row["load_avg"] = [load_before, os.getloadavg()[0]]
    return row


def clip_gflop(evaluator, one_clip) -> float:
    """GFLOP of encoding and evaluating one clip, attention included (not timed)."""
    from dfbench.flops import count_flops

    return count_flops(lambda: evaluator.evaluate([evaluator.encode(one_clip)])).total / 1e9


def gemm_peak(device: torch.device, repeats: int = 20) -> float:
    """GFLOP/s of fp32 matrix products at ViT-B shapes (two crops' 513 tokens x 768 -> 2048)."""
    tokens = torch.randn(2 * 513, 768, device=device)
    weight = torch.randn(2048, 768, device=device)
    for _ in range(3):
        torch.nn.functional.linear(tokens, weight)
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(tokens, weight)
    sync(device)
    return 2 * tokens.shape[0] * 768 * 2048 * repeats / (time.perf_counter() - started) / 1e9


@click.command()
@click.option("--models", default=",".join(MODELS), show_default=True, help="Comma-separated built-in model names.")
@click.option("--samples", default="1,20", show_default=True, help="Comma-separated sample counts.")
@click.option("--resolution", type=int, default=256, show_default=True, help="Square crop side in pixels.")
@click.option("--clips", type=int, default=1, show_default=True, help="Clips per configuration.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads (CPU).")
@click.option("--clock", type=click.Choice(sorted(CLOCKS)), default="wall", show_default=True,
              help="wall time, or CPU time of the process (steadier on a shared CPU; not for a GPU).")
@click.option("--flops", is_flag=True, help="Also count one more (untimed) clip's GFLOP and give GFLOP/s.")
@click.option("--gemm-peak", "gemm_peak_", is_flag=True, help="First print the fp32 matrix-product GFLOP/s of this device.")
@click.option("--warmup", type=int, default=1, show_default=True,
              help="Untimed clips before the timed ones (steady state of a long run).")
@click.option("--one", is_flag=True, hidden=True, help="Measure a single configuration (used by the subprocesses).")
def main(models, samples, resolution, clips, device, threads, clock, flops, gemm_peak_, warmup, one) -> None:
    if clock == "cpu" and device != "cpu":
        raise click.BadParameter("CPU time does not count GPU work; use --clock wall on a GPU.", param_hint="--clock")
    torch.set_num_threads(threads)
    counts = [int(s) for s in samples.split(",")]
    names = [m for m in models.split(",") if m]
    if one:
        print(json.dumps(measure(names[0], counts[0], resolution, clips, device, clock, flops, warmup)))
        return
    if gemm_peak_:
        print(json.dumps({"gemm_peak_gflop_per_s": gemm_peak(torch.device(device)), "threads": threads}), flush=True)
    env = as_dfbench_runs({**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    rows = []
    for name in names:
        # Deterministic models return one sample whatever is asked: one count is enough.
        for count in counts if name in VITB_VARIANTS and VITB_VARIANTS[name][1] else counts[:1]:
            cmd = [sys.executable, __file__, "--one", "--models", name, "--samples", str(count), "--resolution",
                   str(resolution), "--clips", str(clips), "--device", device, "--threads", str(threads),
                   "--clock", clock, "--warmup", str(warmup), *(["--flops"] if flops else [])]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode:
                sys.exit(f"{name} at {count} samples failed:\n{done.stderr}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    from rich.console import Console
    from rich.table import Table

    title = f"{clock} seconds per clip per component ({device}, {resolution} px, {threads} thread(s))"
    table = Table(title=title)
    columns = ["model", "samples", *COMPONENTS, "total", *(["gflop", "gflop_per_s"] if flops else []), "peak_memory_mb",
               "stats_sha"]
    for col in columns:
        table.add_column(col.replace("_", " "))
    for row in rows:
        table.add_row(*[f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in columns])
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
