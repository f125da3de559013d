"""The same seed gives the same records and metrics at any ``--batch-size`` (README, issue 13).

Run through the real CLI on the synthetic world with the shipped tiny models that batched
kernels used to perturb: DeltaWorld's tokenizer and predictor (about 1e-8 on rmse between
batch sizes 1 and 2), and the DPT heads DINO-Foresight's protocol reads out with (one mIoU
pixel flipped on the first six clips at batch size 3).
"""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.config import load_protocol
from dfbench.data.base import DEPTH_INVALID, SEG_IGNORE, Clip
from dfbench.evaluate import Evaluator, finalize_stats
from dfbench.features import load_feature_space
from dfbench.heads.dpt import DPTConfig, DPTHead
from dfbench.registry import get_model_class
from dfbench.result_store import latest_result_path

LIMIT = "6"  # the sixth clip holds the pixel a DPT head flipped at batch size 3


def _run(dfbench_cli, out, model, protocol, batch):
    args = ["run", "--model", model, "--dataset", "synthetic", "--limit", LIMIT, "--num-samples", "3",
            "--batch-size", batch, "--output-dir", str(out), "--no-progress"]
    result = dfbench_cli(*args, *(["--protocol", protocol] if protocol else []))
    assert result.code == 0, result.err
    path = latest_result_path(out, "synthetic", model, protocol)
    payload = json.loads(path.read_text())
    # State lines carry the compute time; the header and every clip's statistics must match byte for byte.
    lines = path.with_name(payload["records"]).read_text().splitlines()
    return payload["metrics"], [line for line in lines if not line.startswith('{"state"')]


@pytest.mark.parametrize(
    ("model", "protocol"),
    [("deltaworld", None), ("deltaworld-frame", None), ("deltaworld-nobom", None), ("dino-foresight", "dinoforesight")],
)
def test_batch_size_changes_no_bit_of_the_records_or_metrics(dfbench_cli, tmp_path, model, protocol):
    metrics_one, records_one = _run(dfbench_cli, tmp_path / "one", model, protocol, "1")
    metrics_three, records_three = _run(dfbench_cli, tmp_path / "three", model, protocol, "3")
    assert len(records_one) == 1 + int(LIMIT)
    assert records_three == records_one
    assert metrics_three == metrics_one


def _dpt_evaluator(tiny):
    """Copy-last read out by random DPT heads (segmentation, depth) of the tiny space's width."""
    torch.manual_seed(0)
    heads = {}
    for task, outputs in (("seg", 5), ("depth", 1)):
        head = DPTHead(DPTConfig(num_classes=outputs, in_channels=tiny.dim // 4, features=64,
                                 out_channels=(32, 64, 64, 64)))
        for module in head.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
        heads[task] = head.eval()
    return Evaluator(get_model_class("copy-last")(tiny), tiny, heads, load_protocol(), 1, ["short", "mid"])


def _labelled_clip(side: int, seed: int):
    """Frames 4 and 6 labelled (at 2x the frames), left crop only: one labelled entry per clip at short.

    The mid window has an unlabelled step. A batch of one is where a DPT head's convolutions
    round differently from larger batches.
    """
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (7, 3, side, 2 * side), dtype=torch.uint8, generator=generator)
    seg = torch.full((7, 2 * side, 4 * side), SEG_IGNORE, dtype=torch.long)
    depth = torch.full(seg.shape, DEPTH_INVALID, dtype=torch.float32)
    for t in (4, 6):
        seg[t] = torch.randint(0, 5, seg.shape[1:], generator=generator)
        depth[t] = torch.rand(depth.shape[1:], generator=generator) * 80
    seg[..., 2 * side:], depth[..., 2 * side:] = SEG_IGNORE, DEPTH_INVALID
    return Clip(f"clip-{seed}", frames, torch.arange(7, dtype=torch.float32) / 10, {"seg": seg, "depth": depth})


def test_a_dpt_head_gives_each_clip_the_bits_of_a_batch_of_one(monkeypatch):
    """Three clips in one evaluation equal three evaluations of one clip, byte for byte, with DPT
    heads whose 3x3 convolutions round differently at a batch of one than at larger ones."""
    tiny = load_feature_space("tiny")
    evaluator = _dpt_evaluator(tiny)
    encoded = [evaluator.encode(_labelled_clip(tiny.frame_size, seed)) for seed in range(3)]
    calls = []
    for head in evaluator.heads.values():
        head.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    alone = [finalize_stats(r) for clip in encoded for r in evaluator.evaluate([clip])]
    assert calls == [1, 1, 2, 2] * 3  # seg and depth at short, then at mid: the left crop's labelled steps
    calls.clear()
    together = [finalize_stats(r) for r in evaluator.evaluate(encoded)]
    assert calls == [1] * 6 + [2] * 6  # still one call per clip
    assert json.dumps(together) == json.dumps(alone)
    # The head itself is what differs: batched over all clips, its bits move.
    monkeypatch.setattr(DPTHead, "batch_dependent_bits", False)
    batched = [finalize_stats(r) for r in evaluator.evaluate(encoded)]
    assert json.dumps(batched) != json.dumps(alone)
