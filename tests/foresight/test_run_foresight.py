"""`dfbench run` under the dinoforesight protocol, end to end through the real CLI.

A Cityscapes tree in the real layout (30-frame snippets, gtFine labelIds, depthv2 PNGs), a tiny
multi-layer PCA space over the embedded backbone, tiny random DINO-Foresight weights and DPT
heads saved as real files: the model, Copy-last and Present give complete results with seg-mo
and reldepth256 metrics at both horizons, beside a dinoworld result of the same model and data
set. Bad inputs are one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch

import tiny_foresight as tiny
from data.trees import cityscapes_depth_path, make_cityscapes_tree

SEG_METRICS = ("miou_all", "mo_miou")
DEPTH_METRICS = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rel_rmse", "rmse_log", "log_10", "silog")
ADAPTERS = Path(__file__).resolve().parents[2] / "adapters" / "assets"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The tree, the predictor and the heads, written once for the module."""
    tiny.register_space()
    root = tmp_path_factory.mktemp("foresight")
    tree = root / "cityscapes"
    make_cityscapes_tree(tree, cities=("lindau",), sequences=2, size=(64, 128), relative_depth=True)
    space = tiny.load_space()
    layer = space.layer_dim
    return {
        "tree": tree,
        "predictor": tiny.save_predictor(root / "dino-foresight.safetensors", space),
        "seg": tiny.save_dpt_head(root / "seg-mo.safetensors", layer, 19),
        "depth": tiny.save_dpt_head(root / "reldepth256.safetensors", layer, 256, seed=1),
        "linear": tiny.save_linear_head(root / "seg-linear.safetensors", 96, 19),
        "root": root,
    }


def foresight_args(files, out: Path, *extra: str) -> list[str]:
    return ["--dataset", "cityscapes", "--data-root", str(files["tree"]), "--feature-space", tiny.SPACE,
            "--head", f"seg-mo={files['seg']}", "--head", f"reldepth256={files['depth']}",
            "--output-dir", str(out), "--no-progress", "--num-workers", "0", *extra]


def results_of(out: Path, model: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "cityscapes" / model).glob("*.json")) if p.name != "latest.json"]


def headline(result: dict) -> dict[tuple[str, str], float]:
    return {(e["horizon"], e["metric"]): e["value"] for e in result["metrics"]}


@pytest.fixture(scope="module")
def results(files, tmp_path_factory):
    """One results folder: the model, Copy-last and Present under dinoforesight, Copy-last under dinoworld."""
    from dfbench.cli import main

    out = tmp_path_factory.mktemp("results")
    calls = [
        ["run", "--model", "dino-foresight", "--checkpoint", str(files["predictor"]), *foresight_args(files, out)],
        ["run", "--model", "copy-last", "--protocol", "dinoforesight", *foresight_args(files, out)],
        ["run", "--model", "present", "--protocol", "dinoforesight", *foresight_args(files, out)],
        ["run", "--model", "copy-last", "--dataset", "cityscapes", "--data-root", str(files["tree"]), "--feature-space",
         "tiny", "--head", f"seg={files['linear']}", "--output-dir", str(out), "--no-progress", "--num-workers", "0"],
    ]
    for args in calls:
        old = sys.argv
        sys.argv = ["dfbench", *args]
        try:
            main()
        except SystemExit as exit_:
            assert exit_.code in (0, None), f"dfbench {' '.join(args)} exited {exit_.code}"
        finally:
            sys.argv = old
    return out


@pytest.mark.parametrize("model", ["dino-foresight", "copy-last", "present"])
def test_complete_results_with_both_tasks_at_both_horizons(results, model):
    [result] = [r for r in results_of(results, model) if r["identity"]["protocol"] == "dinoforesight"]
    identity = result["identity"]
    assert result["complete"] and result["num_clips"] == 2
    assert identity["protocol_version"] == "1.0" and identity["feature_space"] == tiny.SPACE
    assert identity["protocol_options"] == {"depth_aggregation": "pixel", "official_batch_size": 2, "official_devices": 8}
    assert result["provenance"]["protocol"]["options"]["depth_aggregation"] == "pixel"
    values = headline(result)
    for horizon in ("short", "mid"):
        for metric in SEG_METRICS + DEPTH_METRICS:
            assert (horizon, metric) in values, (horizon, metric)
        assert 0 <= values[(horizon, "miou_all")] <= 100 and 0 <= values[(horizon, "d1")] <= 100
    steps = {(e["horizon"], e["step"]) for e in result["metrics_all_steps"]}
    assert steps == {("short", 0), ("mid", 2)}  # only frame 19 is labelled: the mid horizon's third pass


def test_present_scores_above_copy_last_and_the_three_differ(results):
    scores = {m: headline(next(r for r in results_of(results, m) if r["identity"]["protocol"] == "dinoforesight"))
              for m in ("dino-foresight", "copy-last", "present")}
    # Present reads the true frame 19 through the same PCA and heads: identical argmax maps, so
    # its depth is scored against the heads' own prediction of that frame, not against copying.
    assert scores["present"][("short", "miou_all")] != scores["copy-last"][("short", "miou_all")]
    assert scores["dino-foresight"][("mid", "d1")] != scores["copy-last"][("mid", "d1")]


def test_protocols_coexist_in_one_results_folder(results):
    copies = results_of(results, "copy-last")
    assert sorted(r["identity"]["protocol"] for r in copies) == ["dinoforesight", "dinoworld-dense-forecasting"]
    assert copies[0]["identity"] != copies[1]["identity"]
    dinoworld = next(r for r in copies if r["identity"]["protocol"] != "dinoforesight")
    assert "protocol_options" not in dinoworld["identity"]  # dinoworld identities are unchanged
    assert {e["metric"] for e in dinoworld["metrics"]} == {"miou"}


def test_official_depth_aggregation_is_its_own_result(results, files, dfbench_cli):
    args = ["run", "--model", "copy-last", "--protocol", "dinoforesight",
            "--protocol-arg", "depth_aggregation=official official_batch_size=1", "--protocol-arg", "official_devices=1",
            *foresight_args(files, results)]
    done = dfbench_cli(*args)
    assert done.code == 0, done.err
    assert "depth_aggregation=official" in done.out
    by_aggregation = {r["identity"]["protocol_options"]["depth_aggregation"]: headline(r)
                      for r in results_of(results, "copy-last") if r["identity"]["protocol"] == "dinoforesight"}
    pooled, official = by_aggregation["pixel"], by_aggregation["official"]
    assert official[("short", "miou_all")] == pooled[("short", "miou_all")]  # segmentation is one confusion matrix
    assert official[("short", "abs_rel")] != pooled[("short", "abs_rel")]  # per-clip means are not pooled pixels


def sklearn_like_pickle(path: Path) -> Path:
    """A file pickling a scikit-learn PCA object, as dinov2_pca_448_l[2_5_8_11]_1152.pth does."""
    module = types.ModuleType("sklearn.decomposition._pca")

    class PCA:
        pass

    PCA.__module__, PCA.__qualname__ = module.__name__, "PCA"
    module.PCA = PCA
    names = ["sklearn", "sklearn.decomposition", module.__name__]
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update({name: types.ModuleType(name) for name in names[:2]} | {module.__name__: module})
    try:
        torch.save({"pca_model": PCA(), "mean": torch.zeros(3)}, path)
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value
    return path


def bad_inputs(files) -> dict[str, tuple[list[str], str]]:
    root = files["root"]
    space = tiny.load_space()
    other_width = tiny.pca(space.pca.width // 2, space.dim, seed=3)
    narrow = tiny.save_predictor(root / "narrow.safetensors", space, other_width)
    seven = tiny.save_dpt_head(root / "seg-7.safetensors", space.layer_dim, 7)
    sklearn = sklearn_like_pickle(root / "dinov2_pca_448_l[2_5_8_11]_1152.pth")
    model = ["--model", "dino-foresight", "--checkpoint"]
    return {
        "another model's checkpoint": ([*model, str(ADAPTERS / "tiny-dino-world.safetensors")], "'dino-world' model"),
        "a PCA of another width": ([*model, str(narrow)], "192-wide"),
        "the scikit-learn pickle": ([*model, str(sklearn)], "sklearn.decomposition._pca.PCA"),
        "a head with another class count": ([*model, str(files["predictor"]), "--head", f"seg-mo={seven}"], "predicts 7 classes but this task needs 19"),
        "a model under another protocol": (["--model", "dino-world", "--protocol", "dinoforesight"], "protocol 'dinoworld'"),
        "a space the model does not predict in": ([*model, str(files["predictor"]), "--feature-space", "tiny"],
                                                  "multi-layer PCA"),
    }


@pytest.mark.parametrize("case", ["another model's checkpoint", "a PCA of another width", "the scikit-learn pickle",
                                  "a head with another class count", "a model under another protocol",
                                  "a space the model does not predict in"])
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, dfbench_cli, case):
    extra, expected = bad_inputs(files)[case]
    out = tmp_path / "out"
    args = foresight_args(files, out)
    for flag, value in (("--feature-space", tiny.SPACE), ("--head", f"seg-mo={files['seg']}")):
        if flag in extra:  # the case's own feature space or head replaces the default one
            at = args.index(value)
            del args[at - 1 : at + 1]
    done = dfbench_cli("run", *extra, *args)
    assert done.code == 2, done.err
    lines = done.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dfbench: error:") and expected in lines[0], done.err
    assert not list(out.rglob("*.json")) and not list(out.rglob("*.jsonl"))


def test_a_missing_depth_png_names_the_file(files, tmp_path, dfbench_cli):
    tree = tmp_path / "cityscapes"
    make_cityscapes_tree(tree, cities=("lindau",), sequences=1, size=(64, 128), relative_depth=True)
    missing = cityscapes_depth_path(tree, "val", "lindau", "lindau_000000_000294")
    missing.unlink()
    out = tmp_path / "out"
    args = foresight_args(files, out)
    args[args.index("--data-root") + 1] = str(tree)
    done = dfbench_cli("run", "--model", "copy-last", "--protocol", "dinoforesight", *args)
    assert done.code == 2
    [line] = done.err.strip().splitlines()
    assert str(missing) in line and "relative depth PNG" in line
    assert not list(out.rglob("*.json"))
