"""Heads and statistics only for labelled steps, once for equal best/mean: the records stay the same."""

from __future__ import annotations

import json

import pytest
import torch

import dfbench.head_stats as head_stats
from dfbench.adapters.base import Context, Forecast, WorldModel
from dfbench.config import load_protocol
from dfbench.data.base import DEPTH_INVALID, SEG_IGNORE, Clip
from dfbench.evaluate import Evaluator, crop_rows, finalize_stats
from dfbench.features import load_feature_space
from dfbench.head_stats import RowLabels, window_statistics
from dfbench.heads.linear import DepthHead, SegHead, features_to_map
from dfbench.registry import get_model_class
from dfbench.results import stat_key
from dfbench.tasks import get_task

CLASSES = 5
FRAMES = 7


class Jitter(WorldModel):
    """The last context frame plus seeded noise, one draw per sample: a stochastic model."""

    name = "jitter"
    stochastic = True

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        last = context.features[:, -1]
        steps = target_timestamps.shape[1]
        noise = torch.stack([torch.randn(num_samples, steps, *last.shape[1:], generator=g) for g in context.generators])
        return Forecast(last[:, None, None] + 0.5 * noise)


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


def random_heads(dim: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    heads = {"seg": SegHead(dim, CLASSES), "depth": DepthHead(dim)}
    for head in heads.values():
        head.bn.running_mean.normal_()
        head.bn.running_var.uniform_(0.5, 2.0)
    return {name: head.eval() for name, head in heads.items()}


def make_clip(side: int, width: int, labelled: tuple[int, ...], seed: int = 0) -> Clip:
    """A clip whose labels (at 2x the frames) exist on ``labelled`` frames only; the rest all-ignore."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (FRAMES, 3, side, width), dtype=torch.uint8, generator=generator)
    seg = torch.full((FRAMES, 2 * side, 2 * width), SEG_IGNORE, dtype=torch.long)
    depth = torch.full((FRAMES, 2 * side, 2 * width), DEPTH_INVALID, dtype=torch.float32)
    for t in labelled:
        seg[t] = torch.randint(0, CLASSES, seg.shape[1:], generator=generator)
        seg[t, :3] = SEG_IGNORE
        depth[t] = torch.rand(depth.shape[1:], generator=generator) * 80
    return Clip(f"clip-{seed}", frames, torch.arange(FRAMES, dtype=torch.float32) / 10, {"seg": seg, "depth": depth})


def per_row_records(evaluator: Evaluator, encoded: list) -> list[dict]:
    """The records as the evaluator made them before: every step, every stat, one crop row at a time."""
    stats = [{} for _ in encoded]
    rows = crop_rows(encoded)
    for window in evaluator.windows():
        preds, targets = evaluator.rollouts(encoded, window)
        for stat, chosen in evaluator.score(preds, targets).items():
            for name in evaluator.heads:
                task = get_task(name)
                for (i, r), aligned in zip(rows, evaluator.aligned_outputs(encoded, window, name, chosen)):
                    labels = encoded[i].halves[name][r][list(window.targets)]
                    for step, step_stats in enumerate(task.statistics(aligned, labels, aligned.shape[1])):
                        if step_stats is None:
                            continue
                        key = stat_key(name, window.horizon_name, step, stat)
                        stats[i][key] = step_stats if key not in stats[i] else task.merge(stats[i][key], step_stats)
        if evaluator.model.stochastic and preds.shape[1] > 1:
            evaluator._accumulate_ensemble(stats, rows, window, preds, targets)
    return [finalize_stats({"sample_id": c.clip.sample_id, "stats": s}) for c, s in zip(encoded, stats)]


def head_batches(evaluator: Evaluator) -> dict[str, list[int]]:
    """Task -> the batch size of every call of its head, from now on."""
    seen: dict[str, list[int]] = {name: [] for name in evaluator.heads}
    for name, head in evaluator.heads.items():
        head.register_forward_hook(lambda module, args, out, name=name: seen[name].append(args[0].shape[0]))
    return seen


@pytest.mark.parametrize("width_delta", [0, -2], ids=["two-halves", "overlapping-crops"])
@pytest.mark.parametrize("model, samples", [("copy-last", 1), ("jitter", 1), ("jitter", 3)])
def test_records_equal_the_per_row_evaluation_and_skip_unlabelled_steps(tiny, model, samples, width_delta):
    side = tiny.frame_size
    adapter = Jitter(tiny) if model == "jitter" else get_model_class(model)(tiny)
    evaluator = Evaluator(adapter, tiny, random_heads(tiny.dim), load_protocol(), samples, ["short", "mid"])
    # Frames 4 and 6 labelled: the mid window (targets 4, 5, 6) has one unlabelled step.
    clips = [make_clip(side, 2 * side + width_delta, (4, 6), seed) for seed in (0, 1)]
    encoded = [evaluator.encode(c) for c in clips]

    expected = per_row_records(evaluator, encoded)
    seen = head_batches(evaluator)
    got = [finalize_stats(r) for r in evaluator.evaluate(encoded)]

    assert json.dumps(got) == json.dumps(expected)  # byte-identical, key order included
    task_keys = [key for record in got for key in record["stats"] if key.split("/")[0] in evaluator.heads]
    assert task_keys and not any("/mid/1/" in key for key in task_keys)
    # Per window, 4 crop rows: 4 labelled entries at short, 8 of 12 at mid; best and mean
    # of one sample are the same features, so their head runs once.
    passes = 2 if samples > 1 else 1
    assert seen["seg"] == seen["depth"] == [4] * passes + [8] * passes
    if model == "jitter" and samples == 1:
        stats = got[0]["stats"]
        assert all(stats[k] == stats[k.replace("/best", "/mean")] for k in stats if k.endswith("/best"))


def test_a_window_without_labels_runs_no_head(tiny):
    side = tiny.frame_size
    evaluator = Evaluator(get_model_class("copy-last")(tiny), tiny, random_heads(tiny.dim), load_protocol(), 1,
                          ["short", "mid"])
    encoded = [evaluator.encode(make_clip(side, 2 * side, (0, 1, 2, 3)))]  # context frames only
    seen = head_batches(evaluator)
    (record,) = evaluator.evaluate(encoded)
    assert record["stats"] == {} and seen == {"seg": [], "depth": []}


def test_chunked_upsampling_gives_the_same_statistics(tiny, monkeypatch):
    side = tiny.frame_size
    clip = make_clip(side, 2 * side - 2, (4, 5, 6))
    evaluator = Evaluator(get_model_class("copy-last")(tiny), tiny, random_heads(tiny.dim), load_protocol(), 1, ["mid"])
    encoded = evaluator.encode(clip)
    (window,) = evaluator.windows()
    chosen = evaluator.score(*evaluator.rollouts([encoded], window))["single"]
    targets = list(window.targets)
    for name, head in evaluator.heads.items():
        rows = [RowLabels(0, r, encoded.halves[name][r][targets], encoded.frame_size) for r in range(2)]
        whole = window_statistics(head, get_task(name), chosen, encoded.grid, rows)
        monkeypatch.setattr(head_stats, "MAX_ELEMENTS", 1)  # one entry per statistics call
        chunked = window_statistics(head, get_task(name), chosen, encoded.grid, rows)
        monkeypatch.undo()
        flat = [(w, c) for row_w, row_c in zip(whole, chunked) for w, c in zip(row_w, row_c)]
        assert len(flat) == 6 and all(w is not None for w, _ in flat)
        for w, c in flat:
            assert torch.equal(w, c) if isinstance(w, torch.Tensor) else w == c


def test_linear_heads_give_the_same_bits_on_a_subset_of_entries(tiny):
    """What running the head on labelled steps only relies on: no entry depends on the others."""
    features = torch.randn(3, 4, 16, tiny.dim, generator=torch.Generator().manual_seed(0))
    for head in random_heads(tiny.dim).values():
        with torch.no_grad():
            whole = head(features_to_map(features, (4, 4))).reshape(3, 4, -1, 4, 4)
            rows, steps = torch.tensor([0, 2, 2]), torch.tensor([3, 1, 3])
            part = head(features_to_map(features[rows, steps], (4, 4)))
        assert torch.equal(whole[rows, steps], part)
