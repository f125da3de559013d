"""`dfbench run` end to end on generated trees of the real data sets (tiny feature space)."""

from __future__ import annotations

import json
import math

import pytest
from trees import KITTI_ODD, KITTI_WIDE, kitti_split_line, write_split_file

from dfbench.features import load_feature_space
from dfbench.heads.catalog import build_head, save_head
from dfbench.registry import get_dataset_spec
from dfbench.result_store import latest_result_path

FILE_DATASETS = ("cityscapes", "vspw", "kitti")


def _task(dataset: str) -> tuple[str, int]:
    """The one task of a real data set and its class count, from its spec."""
    ((task, classes),) = get_dataset_spec(dataset).tasks.items()
    return task, classes


@pytest.fixture(scope="module")
def head_files(tmp_path_factory):
    """Heads for the tiny feature space, saved in the released layout (untrained weights)."""
    folder = tmp_path_factory.mktemp("heads")
    dim = load_feature_space("tiny").dim
    paths = {}
    for dataset in FILE_DATASETS:
        task, classes = _task(dataset)
        path = folder / f"{dataset}-{task}.safetensors"
        save_head(build_head(task, dim, classes).eval(), path, {"dataset": dataset})
        paths[dataset] = f"{task}={path}"
    return paths


def _roots(request, dataset, tmp_path):
    if dataset == "cityscapes":
        return request.getfixturevalue("cityscapes_tree")[0], []
    if dataset == "vspw":
        return request.getfixturevalue("vspw_tree"), []
    split = write_split_file(tmp_path / "eigen.txt", [kitti_split_line(KITTI_WIDE, 21), kitti_split_line(KITTI_ODD, 20)])
    return request.getfixturevalue("kitti_tree"), ["--split-file", str(split)]


@pytest.mark.parametrize("dataset", FILE_DATASETS)
def test_copy_last_and_present_run_on_generated_trees(dataset, request, tmp_path, head_files, dfbench_cli):
    root, extra = _roots(request, dataset, tmp_path)
    task, _ = _task(dataset)
    metric = "miou" if task == "seg" else "rmse"
    for model in ("copy-last", "present"):
        result = dfbench_cli("run", "--model", model, "--dataset", dataset, "--data-root", str(root), *extra,
                             "--feature-space", "tiny", "--head", head_files[dataset],
                             "--output-dir", str(tmp_path / "results"), "--no-progress")
        assert result.code == 0, result.err
        payload = json.loads(latest_result_path(tmp_path / "results", dataset, model).read_text())
        assert payload["complete"] and payload["num_clips"] >= 1
        values = {(m["metric"], m["horizon"]): m["value"] for m in payload["metrics"]}
        assert set(values) <= {(metric, "short"), (metric, "mid")} and (metric, "short") in values
        assert all(math.isfinite(v) for v in values.values())


def test_a_broken_tree_stops_the_run_before_any_model(cityscapes_tree, tmp_path, head_files, dfbench_cli):
    import shutil

    root, _ = cityscapes_tree
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    label = next((broken / "gtFine").rglob("*_gtFine_labelIds.png"))
    frame = broken / "leftImg8bit_sequence" / label.parent.relative_to(broken / "gtFine") / label.name.replace(
        "gtFine_labelIds", "leftImg8bit"
    )
    frame.unlink()  # the labelled (last) frame of a clip
    result = dfbench_cli("run", "--model", "copy-last", "--dataset", "cityscapes", "--data-root", str(broken),
                         "--feature-space", "tiny", "--head", head_files["cityscapes"],
                         "--output-dir", str(tmp_path / "results"), "--no-progress")
    assert result.code == 2 and "problem" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_train_head_on_a_generated_training_split(tmp_path, dfbench_cli):
    from trees import make_cityscapes_tree

    from dfbench.heads.catalog import load_head

    root = tmp_path / "cityscapes"
    make_cityscapes_tree(root, split="train", cities=("aachen",), sequences=2)
    result = dfbench_cli("train-head", "--feature-space", "tiny", "--dataset", "cityscapes", "--data-root", str(root),
                         "--epochs", "2", "--out-dir", str(tmp_path / "heads"))
    assert result.code == 0, result.err
    path = tmp_path / "heads" / "cityscapes-seg.safetensors"
    head = load_head(str(path), "seg", load_feature_space("tiny").dim, 19)
    assert head.head.weight.shape == (19, load_feature_space("tiny").dim, 1, 1)
    assert head.bn.num_batches_tracked.item() > 0  # BatchNorm statistics come from the training features


def test_decoding_in_worker_processes_gives_the_same_numbers(vspw_tree, tmp_path, head_files, dfbench_cli):
    metrics = []
    for workers in ("0", "2"):
        out = tmp_path / workers
        result = dfbench_cli("run", "--model", "copy-last", "--dataset", "vspw", "--data-root", str(vspw_tree),
                             "--feature-space", "tiny", "--head", head_files["vspw"], "--batch-size", "2",
                             "--num-workers", workers, "--output-dir", str(out), "--no-progress")
        assert result.code == 0, result.err
        metrics.append(json.loads(latest_result_path(out, "vspw", "copy-last").read_text())["metrics"])
    assert metrics[0] == metrics[1]
