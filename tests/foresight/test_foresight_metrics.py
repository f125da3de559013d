"""Segmentation and relative-depth metrics against the official accumulated values.

The model rows are recomputed from uint8 frames through every dfbench part; Copy-last and
the oracles from the fixture's features. Official values are float32 sums, ours float64, so
metrics are compared to 1e-5 relative (absolute for values below 1).
"""

from __future__ import annotations

import math

import pytest
import torch

from dfbench.models.foresight_eval import copy_last, forecast, horizon
from dfbench.tasks import get_task
from dfbench.tasks.relative_depth import METRIC_NAMES, SUM_FIELDS, depth_metrics, depth_sums, official_batches, official_mean
from foresight_helpers import snippet_frames

TOL = 1e-5


def near(got: float, expected: float) -> bool:
    if math.isinf(expected) or math.isnan(expected):
        return got == expected or (math.isnan(got) and math.isnan(expected))
    return abs(got - expected) <= TOL * max(1.0, abs(expected))


def pooled(clip_stats: list) -> dict:
    return {key: sum(s[key] for s in clip_stats if s is not None) for key in SUM_FIELDS}


def score(fx, parts, feats_of_batch) -> tuple[torch.Tensor, list]:
    """Confusion matrix and per-clip depth sums of the heads on each batch's [B, h, w, 4E] features."""
    seg, depth, data = get_task("seg-mo"), get_task("reldepth256"), fx["data"]
    classes = fx["config"]["dpt"]["nclass_segm"]
    confusion, clip_sums = torch.zeros(classes, classes, dtype=torch.long), []
    for index, batch in enumerate(parts.batches):
        feats = feats_of_batch(index, batch).permute(0, 3, 1, 2)
        with torch.no_grad():
            seg_logits, depth_logits = parts.seg_head(feats), parts.depth_head(feats)
        for stats in seg.statistics(seg_logits, data["labels_segm"][batch], classes):
            confusion += stats if stats is not None else 0
        clip_sums += depth.statistics(depth_logits, data["labels_depth"][batch], depth_logits.shape[1])
    return confusion, clip_sums


def check(fx, key: str, confusion: torch.Tensor, clip_sums: list) -> None:
    segm, depth = fx["metrics"]["segm"][key], fx["metrics"]["depth"][key]
    assert torch.equal(confusion, segm["confmat"])
    values = get_task("seg-mo").compute_fractions(confusion)
    torch.testing.assert_close(values["iou_per_class"].float(), segm["IoU_per_class"], atol=TOL, rtol=TOL)
    assert near(values["miou"], segm["mIoU"]) and near(values["mo_miou"], segm["MO_mIoU"])
    official = official_mean(clip_sums, fx["config"]["batch_size"])
    assert all(near(official[name], depth[name]) for name in METRIC_NAMES), (official, depth)
    batches = official_batches(len(clip_sums), fx["config"]["batch_size"])
    for number, batch in enumerate(batches):
        got = depth_metrics(pooled([clip_sums[i] for i in batch]))
        assert all(near(got[name], depth["per_batch"][name][number]) for name in METRIC_NAMES)


@pytest.mark.parametrize("name", ["short", "mid"])
def test_model_and_copy_last_from_uint8_frames(fx, parts, name):
    h, w = parts.grid

    def encoded(batch):
        return parts.space.encode(snippet_frames(fx, batch, list(horizon(name).frames))).unflatten(2, (h, w))

    check(fx, f"model_{name}", *score(fx, parts, lambda _, b: parts.space.decode(forecast(parts.predictor, encoded(b), name))))
    check(fx, f"copy_last_{name}", *score(fx, parts, lambda _, b: parts.space.decode(copy_last(encoded(b)))))


@pytest.mark.parametrize("key", ["oracle_pca", "oracle_raw"])
def test_oracles(fx, parts, key):
    feats = fx["stages"][key]["pred_feats_all_clips"]
    check(fx, key, *score(fx, parts, lambda _, batch: feats[batch]))


def test_reported_percentages(fx, parts):
    confusion = fx["metrics"]["segm"]["model_short"]["confmat"]
    logged = fx["metrics"]["segm"]["model_short"]["lightning_logged"]
    values = get_task("seg-mo").compute(confusion)
    assert near(values["miou_all"], logged["val/mIoU"]) and near(values["mo_miou"], logged["val/MO_mIoU"])


def test_downstream_oracle(fx, parts):
    """The head-validation protocol: labels NEAREST-resized to the input size, batches in listing order."""
    data, expected = fx["data"], fx["metrics"]["downstream_oracle"]
    order = [list(data["labelled_frame_names"]).index(n) for n in expected["image_order"]]
    maps = fx["predictions"]["downstream_oracle"]
    seg = get_task("seg-mo")
    classes = fx["config"]["dpt"]["nclass_segm"]
    one_hot = torch.nn.functional.one_hot(maps["segm"].long(), classes).permute(0, 3, 1, 2).float()
    confusion = sum(s for s in seg.statistics(one_hot, data["labels_segm_nearest_img_size"][order], classes) if s is not None)
    assert torch.equal(confusion, expected["segm"]["confmat"])
    assert near(seg.compute_fractions(confusion)["miou"], expected["segm"]["mIoU"])
    sums = depth_sums(maps["depth"].long(), data["labels_depth_nearest_img_size"][order])
    clips = [{k: float(v[i]) for k, v in sums.items()} for i in range(len(order))]
    official = official_mean(clips, fx["config"]["batch_size"])
    assert all(near(official[n], expected["depth"][n]) for n in METRIC_NAMES)


def edge_case_clips(case: dict) -> tuple[list, int]:
    """Per-image sums of an edge case's batches, and their batch size (the first batch's)."""
    clips = []
    for batch in case["inputs"]:
        sums = depth_sums(batch["pred"], batch["gt"])
        clips += [{k: float(v[i]) for k, v in sums.items()} if sums["count"][i] else None for i in range(batch["pred"].shape[0])]
    return clips, case["inputs"][0]["pred"].shape[0]


@pytest.mark.parametrize("case", ["unequal_batches_finite", "pred_zero_on_valid_pixel", "all_invalid_batch"])
def test_depth_edge_cases_follow_the_official_code(fx, case):
    expected = fx["metrics"]["edge_cases"][case]
    clips, batch_size = edge_case_clips(expected)
    assert official_batches(len(clips), batch_size) == [
        list(range(sum(b["pred"].shape[0] for b in expected["inputs"][:i]), sum(b["pred"].shape[0] for b in expected["inputs"][: i + 1])))
        for i in range(len(expected["inputs"]))
    ]
    final = official_mean(clips, batch_size)
    assert all(near(final[n], expected["final"][n]) for n in METRIC_NAMES), (final, expected["final"])
    for number, batch in enumerate(official_batches(len(clips), batch_size)):
        got = depth_metrics(pooled([clips[i] for i in batch]))
        assert all(near(got[n], expected["per_batch"][number][n]) for n in METRIC_NAMES)


def test_absent_classes_count_as_zero(fx):
    case = fx["metrics"]["edge_cases"]["jaccard_absent_class"]
    task = get_task("seg-mo")
    classes = case["logits"].shape[1]
    confusion = sum(s for s in task.statistics(case["logits"], case["target"], classes) if s is not None)
    assert torch.equal(confusion, case["confmat"])
    values = task.compute_fractions(confusion)
    torch.testing.assert_close(values["iou_per_class"].float(), case["IoU"], atol=TOL, rtol=TOL)
    assert near(values["miou"], case["mIoU"])
    assert values["mo_miou"] == 0.0  # no moving class exists at this class count


def test_pooled_default_and_official_aggregation_differ_and_pooled_ignores_batching(fx):
    """Pixel-pooled numbers are one mean over all valid pixels, whatever the batches."""
    depth, data = get_task("reldepth256"), fx["data"]
    bins = 256
    preds = fx["predictions"]["depth"]["model_short"].long()
    one_hot = torch.nn.functional.one_hot(preds, bins).permute(0, 3, 1, 2).float()
    clips = depth.statistics(one_hot, data["labels_depth"], bins)
    merged = clips[0]
    for other in clips[1:]:
        merged = depth.merge(merged, other)
    pooled_values = depth.compute(merged)
    valid = data["labels_depth"] > 0
    gt, pred = data["labels_depth"][valid].double(), preds[valid].double()
    assert near(pooled_values["rel_rmse"], float(((gt - pred) ** 2).mean().sqrt()))
    assert near(pooled_values["d1"], 100 * float((torch.maximum(gt / pred, pred / gt) < 1.25).double().mean()))
    official = official_mean(clips, fx["config"]["batch_size"])
    assert not near(pooled_values["rel_rmse"], official["rmse"])  # the uneven last batch weighs more officially
    assert official_mean(clips, 1) != official and official_mean(clips, len(clips))["rmse"] == pytest.approx(pooled_values["rel_rmse"])
    # Eight devices: DDP pads to a multiple of 8 by repeating the first clips, round-robin.
    assert official_batches(10, 2, devices=4) == [[0, 4], [8], [1, 5], [9], [2, 6], [0], [3, 7], [1]]
