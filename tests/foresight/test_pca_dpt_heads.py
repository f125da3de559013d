"""PCA-DPT heads: the harness's PCA feature maps -> the official logits, and loading head files safely."""

from __future__ import annotations

import argparse

import pytest
import torch
from safetensors.torch import load_file

from dfbench.errors import DfbenchError
from dfbench.heads.catalog import build_head, head_kind, load_heads, save_head
from dfbench.heads.linear import features_to_map
from dfbench.heads.pca_dpt import PcaDptHead, load_pca_dpt_head
from foresight_helpers import close

TASKS = ("seg-mo", "reldepth256")


def pca_maps(pca_feats: torch.Tensor) -> torch.Tensor:
    """Predicted PCA features [B, h, w, K] -> the maps [B, K, h, w] the harness gives heads."""
    return features_to_map(pca_feats.flatten(1, 2), tuple(pca_feats.shape[1:3]))


def write_lightning_head(path, state: dict) -> None:
    """A head file in the released layout: 'head.'-prefixed keys beside a pickled argparse Namespace."""
    args = argparse.Namespace(nfeats=16, use_bn=True, dpt_out_channels="8,16,32,32")
    torch.save({"epoch": 1, "global_step": 2, "state_dict": {f"head.{k}": v for k, v in state.items()},
                "hyper_parameters": {"args": args}}, path)


@pytest.fixture
def head_files(fx, tmp_path):
    sd = fx["state_dicts"]
    paths = {"seg-mo": tmp_path / "head_segm.ckpt", "reldepth256": tmp_path / "head_depth.ckpt"}
    write_lightning_head(paths["seg-mo"], sd["head_segm"])
    write_lightning_head(paths["reldepth256"], sd["head_depth"])
    return paths


def classes(fx) -> dict[str, int]:
    dpt = fx["config"]["dpt"]
    return {"seg-mo": dpt["nclass_segm"], "reldepth256": dpt["nclass_depth"]}


def test_pca_feature_maps_give_the_official_logits(fx, parts, head_files):
    heads = load_heads(parts.space, parts.space.dim, "cityscapes", classes(fx), {t: str(p) for t, p in head_files.items()})
    assert all(isinstance(h, PcaDptHead) and not h.training for h in heads.values())
    predicted = fx["stages"]["short"]["predictor_out"][:, -1]  # [B, h, w, K], PCA space
    with torch.no_grad():
        close(heads["seg-mo"](pca_maps(predicted)), fx["heads"]["model_short_batch0_segm_logits"])
        close(heads["reldepth256"](pca_maps(predicted[:1]))[0], fx["heads"]["model_short_batch0_img0_depth_logits"])
        # Same numbers as decoding first and running the plain DPT head on the concatenated layers.
        decoded = parts.space.decode(predicted).permute(0, 3, 1, 2)
        close(heads["seg-mo"](pca_maps(predicted)), parts.seg_head(decoded))


def test_the_head_file_holds_the_dpt_weights_only(fx, parts, head_files, tmp_path):
    head = load_pca_dpt_head(head_files["seg-mo"], classes(fx)["seg-mo"], parts.space.pca)
    assert set(head.state_dict()) == set(fx["state_dicts"]["head_segm"])
    path = tmp_path / "seg.safetensors"
    save_head(head, path, {"feature_space": "foresight-fixture", "task": "seg-mo"})
    assert set(load_file(path)) == set(fx["state_dicts"]["head_segm"])
    again = load_pca_dpt_head(path, classes(fx)["seg-mo"], parts.space.pca)
    maps = pca_maps(fx["stages"]["short"]["predictor_out"][:, -1])
    with torch.no_grad():
        assert torch.equal(again(maps), head(maps))


def test_fresh_heads_on_a_pca_space_are_pca_dpt(fx, parts):
    head = build_head("seg-mo", parts.space.dim, 19, parts.space)
    assert isinstance(head, PcaDptHead) and head.config.in_channels == parts.space.layer_dim
    assert head.config.num_classes == 19 and head.config.out_channels == (128, 256, 512, 512)


def test_bad_heads_are_one_line(fx, parts, head_files, tmp_path):
    pca, n = parts.space.pca, classes(fx)
    cases = [
        (lambda: load_pca_dpt_head(head_files["seg-mo"], n["reldepth256"], pca),
         f"predicts {n['seg-mo']} classes but this task needs {n['reldepth256']}"),
        (lambda: load_heads(parts.space, parts.space.dim, "cityscapes", {"seg-mo": n["seg-mo"] + 1},
                            {"seg-mo": str(head_files["seg-mo"])}), "classes but this task needs"),
    ]
    # A linear head (another model's head) in safetensors.
    linear = tmp_path / "linear.safetensors"
    save_head(torch.nn.Conv2d(4, 19, 1), linear, {})
    cases.append((lambda: load_pca_dpt_head(linear, 19, pca), "has no weight"))
    # A head trained on layers of another width.
    sd = dict(fx["state_dicts"]["head_segm"])
    sd = {k: (v[:, :-1] if k.startswith("projects.") and k.endswith("weight") else v) for k, v in sd.items()}
    write_lightning_head(tmp_path / "narrow.ckpt", sd)
    cases.append((lambda: load_pca_dpt_head(tmp_path / "narrow.ckpt", n["seg-mo"], pca), "-wide layers"))
    # A file pickling something other than tensors and a Namespace.
    torch.save({"state_dict": {}, "hyper_parameters": {"x": torch.nn.Identity()}}, tmp_path / "pickled.ckpt")
    cases.append((lambda: load_pca_dpt_head(tmp_path / "pickled.ckpt", 19, pca), "does not unpickle"))
    for call, message in cases:
        with pytest.raises(DfbenchError, match=message) as err:
            call()
        assert "\n" not in str(err.value)
    head = load_pca_dpt_head(head_files["seg-mo"], n["seg-mo"], pca)
    with pytest.raises(DfbenchError, match="takes PCA feature maps"):
        head(torch.zeros(1, pca.components + 1, 2, 2))


def test_pca_spaces_declare_pca_dpt_heads(tmp_path):
    assert head_kind("dinov2-vitb14-reg-pca1152") == "pca-dpt" and head_kind("tiny") == "linear"
    assert head_kind("tiny-ml-pca") == "pca-dpt"
    # Called with the space's name only (as 'dfbench run' did), the catalog loads the space for its PCA.
    path = tmp_path / "seg.safetensors"
    from dfbench.features import load_feature_space
    from dfbench.heads.catalog import dpt_config

    space = load_feature_space("tiny-ml-pca")
    save_head(build_head("seg-mo", space.dim, 7, space, dpt_config("tiny-ml-pca")), path, {})
    (head,) = load_heads("tiny-ml-pca", space.dim, "synthetic", {"seg-mo": 7}, {"seg-mo": str(path)}).values()
    assert isinstance(head, PcaDptHead) and torch.equal(head.pca.pca_components, space.pca.pca_components)
