"""Only the frames an evaluation reads go through the backbone, and the records do not change."""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.config import load_protocol
from dfbench.errors import DfbenchError
from dfbench.evaluate import Evaluator, encode_clip, finalize_stats, frames_read_by
from dfbench.feature_cache import FeatureCache
from dfbench.features import load_feature_space
from dfbench.registry import get_model_class
from dfbench.scoring import score_rollouts
from test_clip_batch import backbone_calls
from test_head_stats import Jitter, make_clip, random_heads


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


def adapter(name: str, space):
    return Jitter(space) if name == "jitter" else get_model_class(name)(space)


@pytest.mark.parametrize(
    "model, samples, horizons, read",
    [
        ("copy-last", 1, ["short", "mid"], [0, 1, 2, 3, 4, 5]),  # the last frame is only ever a target
        ("jitter", 1, ["short", "mid"], [0, 1, 2, 3, 4, 5]),  # one sample: no best to choose
        ("jitter", 2, ["short", "mid"], [0, 1, 2, 3, 4, 5, 6]),  # best of two is chosen against the truth
        ("present", 1, ["short", "mid"], [0, 1, 2, 3, 4, 5, 6]),  # an oracle reads the future
        ("copy-last", 1, ["short"], [2, 3, 4, 5]),
        ("deltaworld", 1, ["mid"], [0, 1, 2, 3]),
    ],
)
def test_frames_read_are_the_context_and_the_targets_only_when_read(tiny, model, samples, horizons, read):
    evaluator = Evaluator(adapter(model, tiny), tiny, {}, load_protocol(), samples, horizons)
    assert evaluator.frames_read() == read
    calls = backbone_calls(tiny)
    try:
        encoded = evaluator.encode(make_clip(tiny.frame_size, 2 * tiny.frame_size, (6,)))
    finally:
        del tiny.encode
    assert calls == [2 * len(read)]  # both crops, read frames only, one call
    unread = [t for t in range(encoded.features.shape[1]) if t not in read]
    assert torch.isfinite(encoded.features[:, read]).all() and torch.isnan(encoded.features[:, unread]).all()


def test_read_frames_have_the_features_of_a_whole_clip_encode(tiny):
    clip = make_clip(tiny.frame_size, 2 * tiny.frame_size, (6,))
    whole = encode_clip(clip, tiny, torch.device("cpu"))
    part = encode_clip(clip, tiny, torch.device("cpu"), frames=[5, 2, 3])
    assert torch.equal(part.features[:, [2, 3, 5]], whole.features[:, [2, 3, 5]])
    assert torch.isnan(part.features[:, [0, 1, 4, 6]]).all()
    assert torch.equal(part.crops, whole.crops) and all(torch.equal(part.halves[t], whole.halves[t]) for t in whole.halves)


def test_a_feature_cache_gets_every_frame(tiny, tmp_path):
    clip = make_clip(tiny.frame_size, 2 * tiny.frame_size, (6,))
    cache = FeatureCache(tmp_path)
    calls = backbone_calls(tiny)
    try:
        cached = encode_clip(clip, tiny, torch.device("cpu"), cache, ("key",), frames=[0, 1])
    finally:
        del tiny.encode
    assert calls == [14] and torch.isfinite(cached.features).all()
    assert torch.equal(cache.get(("key", clip.sample_id)), cached.features)


@pytest.mark.parametrize("model, samples", [("copy-last", 1), ("jitter", 1), ("jitter", 3), ("present", 1),
                                            ("deltaworld", 1)])
def test_records_equal_those_of_every_frame_encoded(tiny, model, samples):
    evaluator = Evaluator(adapter(model, tiny), tiny, random_heads(tiny.dim), load_protocol(), samples, ["short", "mid"])
    clips = [make_clip(tiny.frame_size, 2 * tiny.frame_size, (4, 6), seed) for seed in (0, 1)]
    every = [encode_clip(c, tiny, torch.device("cpu")) for c in clips]
    read = [evaluator.encode(c) for c in clips]
    expected = [finalize_stats(r) for r in evaluator.evaluate(every)]
    got = [finalize_stats(r) for r in evaluator.evaluate(read)]
    assert got[0]["stats"] and json.dumps(got) == json.dumps(expected)


def test_one_sample_is_its_own_best_and_mean_without_targets():
    preds = torch.randn(3, 1, 2, 4, 5)
    scored = score_rollouts(preds, None, stochastic=True)
    assert torch.equal(scored["best"], preds[:, 0]) and torch.equal(scored["mean"], preds[:, 0])
    with pytest.raises(ValueError, match="targets"):
        score_rollouts(torch.randn(3, 2, 2, 4, 5), None, stochastic=True)


def test_an_encoding_without_the_frames_a_model_reads_is_refused(tiny):
    copy_last = Evaluator(adapter("copy-last", tiny), tiny, {}, load_protocol(), 1, ["mid"])
    best_of_two = Evaluator(adapter("jitter", tiny), tiny, {}, load_protocol(), 2, ["mid"])
    clip = make_clip(tiny.frame_size, 2 * tiny.frame_size, (6,))
    (window,) = best_of_two.windows()
    with pytest.raises(DfbenchError, match=r"reads frames \[4, 5, 6\] that were not encoded"):
        best_of_two.rollouts([copy_last.encode(clip)], window)
    shared = copy_last.encode(clip, frames_read_by([copy_last, best_of_two]))
    assert shared.encoded_frames == tuple(range(7)) and set(best_of_two.forecast([shared], window)) == {"best", "mean"}
