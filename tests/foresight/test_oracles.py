"""Present under DINO-Foresight's two oracle definitions reproduces the fixture's oracles (FACTS.md, section 11).

* ``oracle_raw``: the heads on the raw frame-19 features (the ``-raw`` space: identity projection),
  bicubic to the full label size, metrics of the dinoforesight protocol;
* ``downstream_oracle``: how the released heads were validated: PCA round trip, bicubic only to the
  network input size, labels nearest-resized to it (the dinoforesight-downstream protocol), depth
  averaged per batch in the Downstream code's image order.

Every size, order and batch comes from the fixture.
"""

from __future__ import annotations

import math

import pytest
import torch

from foresight_helpers import close
from test_foresight_harness_parity import DEPTH, SEG, fixture_clips

from dfbench.config import load_protocol
from dfbench.data.base import Clip
from dfbench.data.label_resize import resize_label_nearest
from dfbench.evaluate import Evaluator, run_evaluation
from dfbench.features.foresight_space import RECIPES, raw_space
from dfbench.heads.catalog import head_kind, head_source
from dfbench.heads.pca_dpt import PcaDptHead
from dfbench.protocol_aggregation import protocol_entries
from dfbench.registry import feature_space_names, get_model_class
from dfbench.results import aggregate

DEPTH_METRICS = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rel_rmse", "rmse_log", "log_10", "silog")
REPORTED = {"rel_rmse": "rmse"}


def present(space, parts, protocol: str) -> Evaluator:
    """Present with the fixture's heads behind ``space``'s projection, under ``protocol``."""
    heads = {}
    for task, released in ((SEG, parts.seg_head), (DEPTH, parts.depth_head)):
        heads[task] = PcaDptHead(released.config, space.pca).eval()
        heads[task].load_state_dict(released.state_dict())
    return Evaluator(get_model_class("present")(space), space, heads, load_protocol(protocol), num_samples=1, horizons=["short"])


def scores(evaluator: Evaluator, batches: list[list[Clip]], batch_size: int | None) -> dict[str, float]:
    """metric -> value at the short horizon's last step; depth per batch of ``batch_size`` (None: pixel-pooled)."""
    records = []
    run_evaluation(evaluator, batches, records.extend)
    tasks = {SEG: 19, DEPTH: 256}
    entries = aggregate(records, tasks)
    if batch_size is not None:
        options = {"depth_aggregation": "official", "official_batch_size": batch_size, "official_devices": 1}
        entries = protocol_entries(entries, records, tasks, options)
    last = len(evaluator.windows()[0].targets) - 1
    return {e["metric"]: e["value"] for e in entries if e["step"] == last and e["horizon"] == "short"}


def check(values: dict[str, float], segm: dict, depth: dict | None) -> None:
    assert values["miou_all"] == pytest.approx(100 * float(segm["mIoU"]), rel=1e-5)
    assert values["mo_miou"] == pytest.approx(100 * float(segm["MO_mIoU"]), rel=1e-5)
    for metric in DEPTH_METRICS if depth is not None else ():
        expected = float(depth[REPORTED.get(metric, metric)]) * (100 if metric in ("d1", "d2", "d3") else 1)
        assert math.isfinite(values[metric])
        assert values[metric] == pytest.approx(expected, rel=1e-5), metric


# ---------------------------------------------------------------- oracle_raw


def test_the_raw_space_is_registered_with_the_released_heads():
    assert "dinov2-vitb14-reg-raw" in feature_space_names()
    recipe, released = RECIPES["dinov2-vitb14-reg-raw"], RECIPES["dinov2-vitb14-reg-pca1152"]
    assert recipe.raw and (recipe.blocks, recipe.image_size, recipe.backbone) == (released.blocks, released.image_size, released.backbone)
    assert head_kind("dinov2-vitb14-reg-raw") == "pca-dpt"
    for task in (SEG, DEPTH):
        assert head_source("dinov2-vitb14-reg-raw", "cityscapes", task) == head_source("dinov2-vitb14-reg-pca1152", "cityscapes", task)


def test_the_identity_round_trip_is_exact(fx, parts):
    raw = raw_space(parts.space, "foresight-fixture-raw")
    h, w = parts.grid
    frames = fixture_clips(fx)[0].frames[-1:]
    features = raw.encode(frames)
    assert raw.dim == parts.space.pca.width
    assert torch.equal(raw.decode(features), features)
    # The raw space's features are the backbone's frame-19 features the fixture's oracle_raw reads.
    expected = fx["stages"]["oracle_raw"]["pred_feats_all_clips"][0]
    close(features.reshape(h, w, -1), expected)


def test_oracle_raw_metrics(fx, parts):
    evaluator = present(raw_space(parts.space, "foresight-fixture-raw"), parts, "dinoforesight")
    batches = [[fixture_clips(fx)[i] for i in batch] for batch in parts.batches]
    values = scores(evaluator, batches, len(parts.batches[0]))
    check(values, fx["metrics"]["segm"]["oracle_raw"], fx["metrics"]["depth"]["oracle_raw"])


# ---------------------------------------------------------------- downstream_oracle


def downstream_clips(fx: dict) -> list[Clip]:
    """The fixture's clips in the Downstream image order, labels nearest-resized to the network input."""
    data, size = fx["data"], tuple(fx["config"]["img_size"])
    clips = fixture_clips(fx)
    by_image = dict(zip(data["labelled_frame_names"], clips))
    out = []
    for name in fx["metrics"]["downstream_oracle"]["image_order"]:
        index = data["labelled_frame_names"].index(name)
        clip = by_image[name]
        labels = {}
        for task, key in ((SEG, "segm"), (DEPTH, "depth")):
            resized = resize_label_nearest(data[f"labels_{key}"][index].numpy(), size)
            assert torch.equal(torch.from_numpy(resized), data[f"labels_{key}_nearest_img_size"][index])
            full = torch.full((clip.labels[task].shape[0], *size), 255 if task == SEG else 0, dtype=clip.labels[task].dtype)
            full[-1] = torch.from_numpy(resized).to(full.dtype)
            labels[task] = full
        out.append(Clip(clip.sample_id, clip.frames, clip.timestamps, labels))
    return out


def test_the_downstream_protocol_declares_the_network_input_as_label_size(fx):
    protocol = load_protocol("dinoforesight-downstream")
    base = load_protocol("dinoforesight")
    assert protocol.label_size == tuple(fx["config"]["released_img_size"])
    assert (protocol.label_resize, protocol.clip_order) == ("nearest", "listdir")
    assert base.label_size is None and base.clip_order == "sorted"
    # Everything else is dinoforesight's: the same frames, tasks and options.
    assert (protocol.clip_length, protocol.context_length, protocol.horizons, protocol.crops, protocol.resize_frames) == (
        base.clip_length, base.context_length, base.horizons, base.crops, base.resize_frames)
    assert protocol.tasks == base.tasks and protocol.options == base.options


@pytest.mark.parametrize("batch_size", [None, "fixture"])
def test_downstream_oracle_metrics(fx, parts, batch_size):
    """Segmentation (one confusion matrix, batching-free) always; depth per batch as the Downstream validation ran."""
    evaluator = present(parts.space, parts, "dinoforesight-downstream")
    clips = downstream_clips(fx)
    size = fx["config"]["batch_size"]
    batches = [clips[i : i + size] for i in range(0, len(clips), size)]
    expected = fx["metrics"]["downstream_oracle"]
    assert len(expected["depth"]["per_batch"]["d1"]) == len(batches)  # the fixture's batches, in its order
    values = scores(evaluator, batches, size if batch_size else None)
    check(values, expected["segm"], expected["depth"] if batch_size else None)


def test_downstream_head_outputs_stay_at_the_input_size(fx, parts):
    """The heads' argmax at the label (= input) size equals the fixture's Downstream predictions."""
    from dfbench.tasks.relative_depth import to_label_size

    clips = downstream_clips(fx)
    space = parts.space
    predictions = fx["predictions"]["downstream_oracle"]
    order = [str(n) for n in predictions["order"]]
    assert order == list(fx["metrics"]["downstream_oracle"]["image_order"])
    h, w = parts.grid
    for position, clip in enumerate(clips):
        features = space.encode(clip.frames[-1:]).reshape(1, h, w, -1).permute(0, 3, 1, 2)
        for task, head, key in ((SEG, parts.seg_head, "segm"), (DEPTH, parts.depth_head, "depth")):
            pca_head = PcaDptHead(head.config, space.pca).eval()
            pca_head.load_state_dict(head.state_dict())
            with torch.no_grad():
                logits = to_label_size(pca_head(features), clip.labels[task][-1:])
            assert torch.equal(logits.argmax(1)[0].to(torch.uint8), predictions[key][position])


# ---------------------------------------------------------------- the loader and the CLI


def test_the_cityscapes_loader_reads_labels_the_downstream_way(tmp_path):
    import os

    import numpy as np

    from data.trees import cityscapes_depth_path, make_cityscapes_tree

    from dfbench.data.checks import read_label_array
    from dfbench.data.cityscapes import SPEC, CityscapesDataset, label_ids_to_train_ids
    from dfbench.run_prepare import scored_tasks

    make_cityscapes_tree(tmp_path, cities=("lindau", "bochum"), sequences=2, size=(48, 96), relative_depth=True)
    protocol = load_protocol("dinoforesight-downstream")
    tasks, loader = scored_tasks(protocol, SPEC)
    assert tasks[DEPTH] == 256 and len(tasks) == 2  # the moving-class segmentation and relative depth
    assert loader["label_size"] == protocol.label_size and loader["clip_order"] == "listdir"
    dataset = CityscapesDataset(str(tmp_path), frame_size=None, **loader)
    listed = [f"{city}/{name[: -len('_gtFine_labelIds.png')]}" for city in os.listdir(tmp_path / "gtFine" / "val")
              for name in os.listdir(tmp_path / "gtFine" / "val" / city) if name.endswith("_gtFine_labelIds.png")]
    assert dataset.sample_ids() == listed
    sample_id = listed[-1]
    clip = dataset.load(sample_id)
    seg_task = next(t for t in clip.labels if t != DEPTH)
    assert tuple(clip.frames.shape[-2:]) == (48, 96)  # frames as recorded: the feature space resizes them
    city, stem = sample_id.split("/")
    label_ids = read_label_array(tmp_path / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png")
    expected = label_ids_to_train_ids(resize_label_nearest(label_ids, protocol.label_size))
    assert torch.equal(clip.labels[seg_task][-1], torch.from_numpy(expected))
    depth = read_label_array(cityscapes_depth_path(tmp_path, "val", city, stem), np.uint8)
    assert torch.equal(clip.labels[DEPTH][-1], torch.from_numpy(resize_label_nearest(depth, protocol.label_size)))
    # Under dinoforesight the same tree gives sorted clips and labels as recorded.
    plain = CityscapesDataset(str(tmp_path), frame_size=None, **scored_tasks(load_protocol("dinoforesight"), SPEC)[1])
    assert plain.sample_ids() == sorted(listed)
    assert tuple(plain.load(sample_id).labels[DEPTH].shape[-2:]) == (48, 96)


def test_present_runs_under_both_oracle_definitions(tmp_path, dfbench_cli):
    """`dfbench run --model present` on a generated tree: the raw space under dinoforesight, the PCA space under
    dinoforesight-downstream; both results complete, each with its own protocol and feature space."""
    import json

    import tiny_foresight as tiny
    from data.trees import make_cityscapes_tree

    from dfbench.registry import FEATURE_SPACES

    tiny.register_space()
    raw_name = f"{tiny.SPACE}-raw"
    if raw_name not in FEATURE_SPACES.names():
        FEATURE_SPACES.register(raw_name, lambda path=None, device="cpu", dtype=None: raw_space(tiny.load_space(), raw_name).to(device))
    tree = tmp_path / "cityscapes"
    make_cityscapes_tree(tree, cities=("lindau",), sequences=2, size=(64, 128), relative_depth=True)
    layer = tiny.load_space().layer_dim
    seg = tiny.save_dpt_head(tmp_path / "seg-mo.safetensors", layer, 19)
    depth = tiny.save_dpt_head(tmp_path / "reldepth256.safetensors", layer, 256, seed=1)
    out = tmp_path / "results"
    for space, protocol in ((raw_name, "dinoforesight"), (tiny.SPACE, "dinoforesight-downstream")):
        done = dfbench_cli("run", "--model", "present", "--protocol", protocol, "--dataset", "cityscapes",
                           "--data-root", str(tree), "--feature-space", space, "--head", f"seg-mo={seg}",
                           "--head", f"reldepth256={depth}", "--output-dir", str(out), "--no-progress", "--num-workers", "0")
        assert done.code == 0, done.err
    results = [json.loads(p.read_text()) for p in sorted((out / "cityscapes" / "present").glob("*.json")) if p.name != "latest.json"]
    kinds = {(r["identity"]["protocol"], r["identity"]["feature_space"]): r for r in results}
    assert set(kinds) == {("dinoforesight", raw_name), ("dinoforesight-downstream", tiny.SPACE)}
    for result in kinds.values():
        assert result["complete"] and result["num_clips"] == 2
        assert {"miou_all", "mo_miou", "d1", "abs_rel"} <= {e["metric"] for e in result["metrics"]}
