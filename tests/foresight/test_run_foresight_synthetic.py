"""The synthetic world under dinoforesight: relative-depth pseudo-labels, its own moving classes, its own space.

Also how a run picks its protocol and feature space: the model's protocol, the data set's space
for that protocol (the synthetic world's tiny one), else the protocol's.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import tiny_foresight as tiny

from dfbench.config import load_protocol
from dfbench.registry import get_dataset_spec
from dfbench.run_prepare import resolve_feature_space, resolve_protocol, scored_tasks


def options(**given):
    return SimpleNamespace(**{"model": "copy-last", "protocol": None, "feature_space": None, **given})


def test_the_model_picks_its_protocol_and_the_data_set_its_space():
    assert resolve_protocol(options(model="dino-foresight")).name == "dinoforesight"
    assert resolve_protocol(options()).name == "dinoworld-dense-forecasting"
    foresight = load_protocol("dinoforesight")
    assert resolve_feature_space(options(), foresight, get_dataset_spec("cityscapes")) == "dinov2-vitb14-reg-pca1152"
    assert resolve_feature_space(options(), foresight, get_dataset_spec("synthetic")) == "tiny-ml-pca"
    assert resolve_feature_space(options(), load_protocol("dinoworld"), get_dataset_spec("synthetic")) == "tiny"
    assert resolve_feature_space(options(feature_space="x"), foresight, get_dataset_spec("synthetic")) == "x"


def test_each_data_set_declares_what_its_tasks_become():
    foresight = load_protocol("dinoforesight")
    tasks, loader = scored_tasks(foresight, get_dataset_spec("cityscapes"))
    assert tasks == {"seg-mo": 19, "reldepth256": 256}
    assert loader == {"labels": {"seg-mo": "seg", "reldepth256": "depth"}, "resize": False}
    tasks, loader = scored_tasks(foresight, get_dataset_spec("synthetic"))
    assert tasks == {"seg-mo[5,6]": 7, "reldepth256": 256}  # car and person move
    assert scored_tasks(load_protocol("dinoworld"), get_dataset_spec("cityscapes")) == ({"seg": 19}, {})


def test_kitti_without_moving_classes_is_still_scored_on_depth():
    tasks, loader = scored_tasks(load_protocol("dinoforesight"), get_dataset_spec("kitti"))
    assert tasks == {"reldepth256": 256} and loader["labels"] == {"reldepth256": "depth"}


def test_the_model_copy_last_and_present_on_the_synthetic_world(tmp_path, dfbench_cli):
    tiny.register_space()
    space = tiny.load_space()
    predictor = tiny.save_predictor(tmp_path / "p.safetensors", space)
    seg = tiny.save_dpt_head(tmp_path / "seg.safetensors", space.layer_dim, 7)
    depth = tiny.save_dpt_head(tmp_path / "depth.safetensors", space.layer_dim, 256, seed=1)
    out = tmp_path / "results"
    common = ["--dataset", "synthetic", "--feature-space", tiny.SPACE, "--limit", "2", "--output-dir", str(out),
              "--head", f"seg-mo[5,6]={seg}", "--head", f"reldepth256={depth}", "--no-progress"]
    for model in (["dino-foresight", "--checkpoint", str(predictor)], ["copy-last", "--protocol", "dinoforesight"],
                  ["present", "--protocol", "dinoforesight"]):
        done = dfbench_cli("run", "--model", *model, *common)
        assert done.code == 0, done.err
    for model in ("dino-foresight", "copy-last", "present"):
        [path] = [p for p in (out / "synthetic" / model).glob("*.json") if p.name != "latest.json"]
        result = json.loads(path.read_text())
        assert result["identity"]["protocol"] == "dinoforesight"
        records = [json.loads(line) for line in path.with_name(path.stem + ".records.jsonl").read_text().splitlines()]
        keys = {k for r in records if "stats" in r for k in r["stats"]}
        # every frame of the synthetic world is labelled: all three mid steps are scored
        assert {"seg-mo[5,6]/mid/2/single", "reldepth256/mid/0/single", "reldepth256/short/0/single"} <= keys
        metrics = {(e["horizon"], e["metric"]) for e in result["metrics"]}
        assert {("short", "mo_miou"), ("mid", "d1"), ("mid", "silog")} <= metrics


@pytest.mark.parametrize("bad", ["depth_aggregation=batch", "official_batch_size=0", "window=3"])
def test_bad_protocol_options_are_one_line(bad, tmp_path, dfbench_cli):
    done = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthetic", "--protocol", "dinoforesight",
                       "--protocol-arg", bad, "--output-dir", str(tmp_path / "out"), "--no-progress")
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1 and "protocol" in done.err
    assert not (tmp_path / "out" / "synthetic").exists()


def test_all_models_under_a_protocol_are_those_evaluated_under_it():
    from dfbench.run_pairs import expand_pairs

    names = [m for m, _ in expand_pairs("all", "synthetic", None, "dinoforesight")]
    assert {"copy-last", "present"} <= set(names) and "dino-world" not in names and "deltaworld" not in names
    assert "dino-world" in [m for m, _ in expand_pairs("all", "synthetic", None)]
