"""DPT heads against the official logits and label-size argmax maps, and loading head checkpoints."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import torch.nn.functional as F

from dfbench.errors import DfbenchError
from dfbench.heads.dpt import DPTConfig, DPTHead, load_dpt_head, upsample_logits
from foresight_helpers import DEFAULT_FIXTURE, close

# predictions key -> the stage whose pred_feats_all_clips the heads read
SOURCES = {
    "model_short": "short", "model_mid": "mid", "copy_last_short": "copy_last_short",
    "copy_last_mid": "copy_last_mid", "oracle_pca": "oracle_pca", "oracle_raw": "oracle_raw",
}


def as_map(feats: torch.Tensor) -> torch.Tensor:
    """[B, h, w, 4E] -> [B, 4E, h, w]."""
    return feats.permute(0, 3, 1, 2)


def test_head_logits_at_head_resolution(fx, parts):
    heads, stages, batch = fx["heads"], fx["stages"], parts.batches[0]
    with torch.no_grad():
        close(parts.seg_head.forward_tokens(heads["model_short_batch0_head_inputs"], parts.grid),
              heads["model_short_batch0_segm_logits"])
        close(parts.seg_head(as_map(stages["short"]["pred_feats"])), heads["model_short_batch0_segm_logits"])
        close(parts.depth_head(as_map(stages["short"]["pred_feats"][:1]))[0], heads["model_short_batch0_img0_depth_logits"])
        close(parts.seg_head(as_map(stages["mid"]["pred_feats"])), heads["model_mid_batch0_segm_logits"])
        oracle = as_map(stages["oracle_pca"]["pred_feats_all_clips"][batch])
        close(parts.seg_head(oracle), heads["oracle_pca_batch0_segm_logits"])
        bins = heads["oracle_pca_batch0_img0_depth_logits_ch0_31"].shape[0]
        close(parts.depth_head(oracle[:1])[0, :bins], heads["oracle_pca_batch0_img0_depth_logits_ch0_31"])
    assert heads["model_short_batch0_segm_logits"].shape[-2:] == tuple(fx["config"]["dpt"]["head_output_size"])


@pytest.mark.parametrize("key", list(SOURCES))
def test_label_size_argmax_maps_are_exact(fx, parts, key):
    feats = as_map(fx["stages"][SOURCES[key]]["pred_feats_all_clips"])
    for task, head in (("segm", parts.seg_head), ("depth", parts.depth_head)):
        with torch.no_grad():
            pred = torch.cat([upsample_logits(head(feats[b]), parts.label_size).argmax(1) for b in parts.batches])
        assert torch.equal(pred.to(torch.uint8), fx["predictions"][task][key]), f"{task} {key}"


def test_downstream_oracle_maps_at_input_size(fx, parts):
    data, oracle = fx["data"], fx["predictions"]["downstream_oracle"]
    order = [list(data["labelled_frame_names"]).index(name) for name in oracle["order"]]
    feats = as_map(fx["stages"]["oracle_pca"]["pred_feats_all_clips"][order])
    size = tuple(fx["config"]["img_size"])
    with torch.no_grad():
        assert torch.equal(upsample_logits(parts.seg_head(feats), size).argmax(1).to(torch.uint8), oracle["segm"])
        assert torch.equal(upsample_logits(parts.depth_head(feats), size).argmax(1).to(torch.uint8), oracle["depth"])


def write_head_checkpoint(path, state: dict) -> None:
    """A head file as Downstream/dinov2dpt.py writes it: 'head.'-prefixed keys and a pickled Namespace."""
    args = argparse.Namespace(nfeats=16, use_bn=True, dpt_out_channels="8,16,32,32", lr=1e-4)
    torch.save({"epoch": 3, "global_step": 10, "pytorch-lightning_version": "2.1.0",
                "state_dict": {f"head.{k}": v for k, v in state.items()}, "hyper_parameters": {"args": args}}, path)


def test_head_checkpoints_load_and_bad_ones_are_refused(fx, parts, tmp_path):
    classes = fx["config"]["dpt"]["nclass_segm"]
    path = tmp_path / "head_segm.ckpt"
    write_head_checkpoint(path, fx["state_dicts"]["head_segm"])
    head = load_dpt_head(path, classes, in_channels=fx["config"]["feature_dim"])
    feats = as_map(fx["stages"]["short"]["pred_feats"])
    with torch.no_grad():
        assert torch.equal(head(feats), parts.seg_head(feats))
    for call, message in (
        (lambda: load_dpt_head(path, classes + 1), f"predicts {classes} classes but this task needs {classes + 1}"),
        (lambda: load_dpt_head(path, classes, in_channels=fx["config"]["feature_dim"] + 1), "reads .*-wide layers"),
        (lambda: load_dpt_head(tmp_path / "absent.ckpt", classes), "does not exist"),
    ):
        with pytest.raises(DfbenchError, match=message) as err:
            call()
        assert "\n" not in str(err.value)
    broken = dict(fx["state_dicts"]["head_segm"])
    broken.pop("scratch.refinenet2.out_conv.bias")
    write_head_checkpoint(tmp_path / "broken.ckpt", broken)
    with pytest.raises(DfbenchError, match="does not fit the DPT layout"):
        load_dpt_head(tmp_path / "broken.ckpt", classes)
    with pytest.raises(DfbenchError, match="takes features"):
        head(feats[:, :-1])


def test_released_heads_have_the_released_layout():
    layout_file = DEFAULT_FIXTURE.parent / "checkpoint_layout.json"
    if not layout_file.is_file():
        pytest.skip("checkpoint_layout.json not found beside the fixture")
    layout = json.loads(layout_file.read_text())
    for name, classes in (("head_segm_pca1152.ckpt", 19), ("head_depth_pca1152.ckpt", 256), ("head_normals_pca1152.ckpt", 3)):
        entry = layout[name]
        with torch.device("meta"):
            head = DPTHead(DPTConfig(num_classes=classes))
        shapes = {f"head.{k}": list(v.shape) for k, v in head.state_dict().items()}
        assert shapes == {k: v[0] for k, v in entry["state_dict"].items()}
        assert sum(v.numel() for v in head.state_dict().values()) == entry["num_params"]  # BN statistics included


def test_upsampling_is_plain_bicubic():
    x = torch.randn(1, 2, 3, 4)
    assert torch.equal(upsample_logits(x, (6, 8)), F.interpolate(x, size=(6, 8), mode="bicubic", align_corners=False))
