"""The multi-layer PCA feature space against the official features (resize, normalise, backbone, PCA)."""

from __future__ import annotations

import pytest
import torch

from foresight_helpers import backbone_config, close, snippet_frames
from dfbench.errors import DfbenchError
from dfbench.features.dinov2 import block_outputs, dinov2_from_state_dict, dinov2_to_hf_keys
from dfbench.features.multilayer_pca import MultiLayerPcaSpace, PcaProjection, resize_frames


def test_resize_is_pil_bilinear_bit_for_bit(fx):
    data = fx["data"]
    src = data["frames_src_uint8"].flatten(0, 1).permute(0, 3, 1, 2)
    resized = resize_frames(src, tuple(fx["config"]["img_size"])).permute(0, 2, 3, 1)
    assert torch.equal(resized, data["frames_resized_uint8"].flatten(0, 1))


@pytest.mark.parametrize("horizon", ["short", "mid"])
def test_preprocess_backbone_and_pca_match_batch_0(fx, parts, horizon):
    stages, batch = fx["stages"], parts.batches[0]
    frames = snippet_frames(fx, batch, fx["data"][f"{horizon}_frame_indices"])
    if horizon == "short":
        pixels = parts.space.preprocess(frames.flatten(0, 1)).reshape(stages["short"]["input_frames"].shape)
        assert torch.equal(pixels, stages["short"]["input_frames"])  # ToTensor then Normalize, exactly
    feats = parts.space.layer_features(frames)
    close(feats, stages[horizon]["backbone_feats"])
    h, w = parts.grid
    pca = parts.space.encode(frames)
    close(pca.unflatten(2, (h, w)), stages[horizon]["pca_feats"])
    if horizon == "short":
        pca_module = parts.space.pca
        close((feats - pca_module.mean) / pca_module.std, stages["short"]["standardized_feats"])
        label = snippet_frames(fx, batch, [fx["data"]["gt_frame_index"]])[:, 0]
        close(parts.space.layer_features(label), stages["short"]["gt_feats"])


def test_inverse_pca_is_the_official_reconstruction(fx, parts):
    short, mid = fx["stages"]["short"], fx["stages"]["mid"]
    close(parts.space.decode(short["predictor_out"][:, -1]), short["pred_feats"])
    close(parts.space.decode(mid["final_state_pca"]), mid["final_state_inverse_pca"])
    layers = parts.space.split_layers(short["pred_feats"].flatten(1, 2))
    for got, expected in zip(layers, fx["heads"]["model_short_batch0_head_inputs"]):
        close(got, expected)


def test_every_key_layout_gives_the_same_backbone(fx, parts):
    sd = fx["state_dicts"]
    hub = dinov2_to_hf_keys(sd["backbone_dinov2"])
    assert hub.keys() == sd["backbone_hf_hub_format"].keys()
    assert all(torch.equal(hub[k], sd["backbone_hf_hub_format"][k]) for k in hub)
    pixels = parts.space.preprocess(snippet_frames(fx, [0], [fx["data"]["gt_frame_index"]])[:, 0])
    blocks = fx["config"]["d_layers"]
    expected = block_outputs(parts.space.model, pixels, blocks)
    for layout in ("backbone_hf_hub_format", "backbone_hf_transformers5_format"):
        model = dinov2_from_state_dict(backbone_config(fx), sd[layout])
        for got, want in zip(block_outputs(model, pixels, blocks), expected):
            assert torch.equal(got, want)


def test_bad_inputs_are_refused_with_one_line(fx, parts):
    pca = fx["pca"]
    narrow = PcaProjection(pca["mean"][:-1], pca["std"][:-1], pca["pca_mean"][:-1], pca["pca_components"][:, :-1])
    with pytest.raises(DfbenchError, match="the PCA is .* wide but") as err:
        MultiLayerPcaSpace(parts.space.model, fx["config"]["d_layers"], narrow, tuple(fx["config"]["img_size"]), name="x")
    assert "\n" not in str(err.value)
    with pytest.raises(DfbenchError, match="do not fit together"):
        PcaProjection(pca["mean"], pca["std"][:-1], pca["pca_mean"], pca["pca_components"])
    with pytest.raises(DfbenchError, match="takes uint8 frames"):
        parts.space.encode(torch.zeros(1, 3, 14, 14))
    with pytest.raises(DfbenchError, match="outside the backbone"):
        block_outputs(parts.space.model, torch.zeros(1, 3, 14, 14), [fx["config"]["backbone"]["depth"]])
    with pytest.raises(DfbenchError, match="no PCA tensors"):
        PcaProjection.from_state_dict({"mean": pca["mean"]})
