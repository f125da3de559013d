"""The GPU path: the same best samples as the CPU, pinned clip batches, the CLI on CUDA.

Run only where CUDA is present (marker ``gpu``); elsewhere skipped with the reason.
"""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.adapters.base import Context
from dfbench.data.loader import clip_loader
from dfbench.evaluate import crop_rows, encode_clip, row_generator
from dfbench.gpu import clip_to
from dfbench.multi_run import evaluator_for
from dfbench.result_store import latest_result_path
from dfbench.run import RunOptions
from dfbench.run_prepare import prepare
from dfbench.scoring import best_of

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (GPU path)"),
]
CLIPS = 4
SAMPLES = 4


@torch.no_grad()
def best_samples(model: str, device: str, precision: str) -> torch.Tensor:
    """The index of the best-of-N sample of every (clip, window, crop), as the evaluator scores it."""
    prep = prepare(RunOptions(model=model, dataset="synthetic", device=device, precision=precision,
                              num_samples=SAMPLES, limit=CLIPS))
    evaluator = evaluator_for(prep)
    chosen = []
    for (clip,) in clip_loader(prep.dataset, num_workers=0, sample_ids=prep.sample_ids):
        encoded = encode_clip(clip_to(clip, prep.device), prep.feature_space, prep.device, cache_key=prep.cache_key)
        rows = crop_rows([encoded])
        timestamps = encoded.clip.timestamps.expand(encoded.crops.shape[0], -1).to(prep.device)
        for window in evaluator.windows():
            ctx, tgt = list(window.context), list(window.targets)
            context = Context(
                frames=encoded.crops[:, ctx].to(prep.device),
                timestamps=timestamps[:, ctx],
                features=encoded.features[:, ctx],
                grid=encoded.grid,
                generators=[row_generator(0, clip.sample_id, r, window.horizon_name) for _, r in rows],
            )
            with torch.autocast(prep.device.type, dtype=prep.dtype, enabled=prep.dtype is not None):
                forecast = prep.model.predict(context, timestamps[:, tgt], SAMPLES)
            _, index = best_of(forecast.features.float(), encoded.features[:, tgt], prep.protocol.loss_beta)
            chosen.append(index.cpu())
    return torch.cat(chosen)


@pytest.mark.parametrize("model", ["dino-world-bom", "deltaworld"])
def test_gpu_and_cpu_choose_the_same_best_samples(model):
    cpu = best_samples(model, "cpu", "fp32")
    assert torch.equal(best_samples(model, "cuda", "fp32"), cpu)
    # bf16 autocast (the reference's GPU precision) rounds the features: a near tie may
    # flip, anything more would be a bug.
    bf16 = best_samples(model, "cuda", "bf16")
    assert (bf16 == cpu).float().mean() >= 0.9


def test_pinned_batches_reach_the_gpu_unchanged():
    prep = prepare(RunOptions(model="copy-last", dataset="synthetic", limit=2))
    loader = clip_loader(prep.dataset, batch_size=2, num_workers=1, sample_ids=prep.sample_ids, pin_memory=True)
    (batch,) = list(loader)
    assert all(clip.frames.is_pinned() and all(t.is_pinned() for t in clip.labels.values()) for clip in batch)
    moved = clip_to(batch[0], torch.device("cuda"))
    torch.cuda.synchronize()
    assert moved.frames.is_cuda and torch.equal(moved.frames.cpu(), prep.dataset.load(batch[0].sample_id).frames)


def test_run_on_cuda_in_fp32_gives_the_cpu_numbers(dfbench_cli, tmp_path):
    args = ["--model", "dino-world-bom,copy-last", "--dataset", "synthetic", "--limit", "2", "--num-samples", "2",
            "--no-progress", "--precision", "fp32", "--num-workers", "1"]
    for device in ("cpu", "cuda"):
        result = dfbench_cli("run", *args, "--device", device, "--output-dir", str(tmp_path / device))
        assert result.code == 0, result.err
    for model in ("dino-world-bom", "copy-last"):
        cpu, gpu = (json.loads(latest_result_path(tmp_path / d, "synthetic", model).read_text())["metrics"]
                    for d in ("cpu", "cuda"))
        assert [m["value"] for m in gpu] == pytest.approx([m["value"] for m in cpu], rel=1e-3)
