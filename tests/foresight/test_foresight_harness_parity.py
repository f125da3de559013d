"""The dino-foresight adapter through dfbench's Evaluator reproduces the official evaluation (fixture.pt).

The fixture's clips are fed as a tiny data set under the dinoforesight protocol (whole frames,
full-size labels); the predictor's outputs at both horizons and the accumulated metrics of the
model, Copy-last and Present (the PCA oracle) must match the official ones within 1e-5, with the
depth metrics aggregated the official way for the fixture's batches. Every size comes from the
fixture's config.
"""

from __future__ import annotations

import math

import pytest
import torch

from foresight_helpers import close

from dfbench.config import load_protocol
from dfbench.data.base import Clip
from dfbench.evaluate import Evaluator, run_evaluation
from dfbench.models.foresight_weights import save_foresight_safetensors
from dfbench.protocol_aggregation import protocol_entries
from dfbench.registry import get_model_class
from dfbench.results import aggregate
from dfbench.heads.pca_dpt import PcaDptHead

SEG, DEPTH = "seg-mo", "reldepth256"
# The fixture's metric keys for dfbench's models and horizons.
CASES = [("dino-foresight", "short", "model_short"), ("dino-foresight", "mid", "model_mid"),
         ("copy-last", "short", "copy_last_short"), ("copy-last", "mid", "copy_last_mid"),
         ("present", "short", "oracle_pca"), ("present", "mid", "oracle_pca")]


def fixture_clips(fx: dict) -> list[Clip]:
    """The fixture's clips as the Cityscapes loader gives them under dinoforesight: 7 frames, last one labelled."""
    data = fx["data"]
    stored = list(data["stored_frame_indices"])
    clips = []
    for index, name in enumerate(data["sequence_names"]):
        frames = data["frames_src_uint8"][index].permute(0, 3, 1, 2).contiguous()
        seg = torch.full((len(stored), *data["labels_segm"].shape[1:]), 255, dtype=torch.int64)
        seg[-1] = data["labels_segm"][index].long()
        depth = torch.zeros((len(stored), *data["labels_depth"].shape[1:]), dtype=torch.uint8)
        depth[-1] = data["labels_depth"][index]
        stamps = torch.tensor(stored, dtype=torch.float32) / 17.0
        clips.append(Clip(name, frames, stamps - stamps[0], {SEG: seg, DEPTH: depth}))
    return clips


@pytest.fixture(scope="module")
def harness(fx, parts, tmp_path_factory):
    """model name -> its Evaluator under dinoforesight, on the fixture's weights (the predictor saved as a file)."""
    path = save_foresight_safetensors(tmp_path_factory.mktemp("w") / "fixture.safetensors", parts.predictor, parts.space.pca)
    heads = {}
    for task, released in ((SEG, parts.seg_head), (DEPTH, parts.depth_head)):
        heads[task] = PcaDptHead(released.config, parts.space.pca).eval()
        heads[task].load_state_dict(released.state_dict())
    protocol = load_protocol("dinoforesight")
    models = {"dino-foresight": get_model_class("dino-foresight")(parts.space, checkpoint=str(path)),
              "copy-last": get_model_class("copy-last")(parts.space), "present": get_model_class("present")(parts.space)}
    return {name: Evaluator(model, parts.space, heads, protocol, num_samples=1, horizons=["short", "mid"])
            for name, model in models.items()}


def test_the_protocol_windows_are_the_official_frames(fx):
    stored = list(fx["data"]["stored_frame_indices"])
    protocol = load_protocol("dinoforesight")
    from dfbench.protocol import windows

    by_name = {w.horizon_name: w for w in windows(protocol.clip_length, protocol.context_length, protocol.horizons)}
    assert [stored[i] for i in by_name["short"].context] + [stored[by_name["short"].targets[-1]]] == fx["data"]["short_frame_indices"]
    assert [stored[i] for i in by_name["mid"].context] == fx["data"]["mid_frame_indices"][:4]
    assert stored[by_name["mid"].targets[-1]] == fx["data"]["gt_frame_index"]


def test_predictor_outputs_at_both_horizons(fx, parts, harness):
    evaluator = harness["dino-foresight"]
    clips = [evaluator.encode(c) for c in fixture_clips(fx)]
    first = clips[: len(fx["data"]["batches"][0])]
    windows = {w.horizon_name: w for w in evaluator.windows()}
    stages, (h, w) = fx["stages"], parts.grid
    preds, _ = evaluator.rollouts(first, windows["short"])
    close(preds[:, 0, 0].reshape(-1, h, w, preds.shape[-1]), stages["short"]["predictor_out"][:, -1])
    preds, _ = evaluator.rollouts(first, windows["mid"])
    for step, out in enumerate(stages["mid"]["unroll_predictor_out"]):
        close(preds[:, 0, step].reshape(-1, h, w, preds.shape[-1]), out[:, -1])
    for name in ("short", "mid"):  # every clip, as the heads read it (inverse PCA of the forecast of frame 19)
        preds, _ = evaluator.rollouts(clips, windows[name])
        close(parts.space.decode(preds[:, 0, -1]).reshape(len(clips), h, w, -1), stages[name]["pred_feats_all_clips"])


def metrics_of(fx, evaluator) -> dict[tuple[str, str], float]:
    """(horizon, metric) -> value at each horizon's last step, depth averaged over the fixture's batches."""
    records = []
    batches = [[fixture_clips(fx)[i] for i in batch] for batch in fx["data"]["batches"]]
    run_evaluation(evaluator, batches, records.extend)
    tasks = {SEG: 19, DEPTH: 256}
    entries = aggregate(records, tasks)
    options = {"depth_aggregation": "official", "official_batch_size": len(fx["data"]["batches"][0]), "official_devices": 1}
    entries = protocol_entries(entries, records, tasks, options)
    last = {w.horizon_name: len(w.targets) - 1 for w in evaluator.windows()}
    return {(e["horizon"], e["metric"]): e["value"] for e in entries if e["step"] == last[e["horizon"]]}


@pytest.mark.parametrize("model,horizon,key", CASES)
def test_accumulated_metrics_match_the_official_ones(fx, harness, model, horizon, key):
    values = metrics_of(fx, harness[model])
    segm, depth = fx["metrics"]["segm"][key], fx["metrics"]["depth"][key]
    assert values[(horizon, "miou_all")] == pytest.approx(100 * float(segm["mIoU"]), rel=1e-5)
    assert values[(horizon, "mo_miou")] == pytest.approx(100 * float(segm["MO_mIoU"]), rel=1e-5)
    reported = {"rel_rmse": "rmse"}
    for metric in ("d1", "d2", "d3", "abs_rel", "sq_rel", "rel_rmse", "rmse_log", "log_10", "silog"):
        expected = float(depth[reported.get(metric, metric)]) * (100 if metric in ("d1", "d2", "d3") else 1)
        assert math.isfinite(values[(horizon, metric)])
        assert values[(horizon, metric)] == pytest.approx(expected, rel=1e-5), metric
