"""Helpers of the DINO-Foresight parity tests: the fixture and the dfbench parts built from it.

Every size, frame index, class count and batch comes from the fixture's ``config`` and
``data``, so the tests run unchanged on any fixture of the same generator
(``DFBENCH_FIXTURE_FORESIGHT=path``; default ../shared/reference/dino_foresight/fixture.pt).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dfbench.features.dinov2 import dinov2_from_state_dict
from dfbench.features.multilayer_pca import MultiLayerPcaSpace, PcaProjection
from dfbench.heads.dpt import DPTConfig, DPTHead
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig

FIXTURE_VARIABLE = "DFBENCH_FIXTURE_FORESIGHT"
DEFAULT_FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "dino_foresight" / "fixture.pt"
ATOL = RTOL = 1e-5


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal shapes and values within 1e-5 (float32 on the CPU)."""
    assert tuple(actual.shape) == tuple(expected.shape)
    torch.testing.assert_close(actual.float(), expected.float(), atol=ATOL, rtol=RTOL)


def fixture_path() -> Path:
    return Path(os.environ.get(FIXTURE_VARIABLE) or DEFAULT_FIXTURE)


@functools.cache
def load_fixture() -> dict | None:
    path = fixture_path()
    if not path.is_file():
        if FIXTURE_VARIABLE in os.environ:
            raise FileNotFoundError(f"{FIXTURE_VARIABLE}={path} is not a file")
        return None
    return torch.load(path, weights_only=True)


def backbone_config(fixture: dict) -> dict:
    """Dinov2WithRegistersConfig values of the fixture's backbone."""
    b = fixture["config"]["backbone"]
    return {
        "hidden_size": b["embed_dim"],
        "num_hidden_layers": b["depth"],
        "num_attention_heads": b["num_heads"],
        "mlp_ratio": b["mlp_ratio"],
        "patch_size": b["patch_size"],
        "image_size": b["pos_embed_img_size"],
        "num_register_tokens": b["num_register_tokens"],
        "layer_norm_eps": b["layer_norm_eps"],
    }


def predictor_config(fixture: dict) -> ForesightConfig:
    c, p = fixture["config"], fixture["config"]["predictor"]
    frames, *grid = p["pos_embd_shape"]
    return ForesightConfig(
        pca_dim=c["pca_components"], hidden_dim=p["hidden_dim"], layers=p["layers"], heads=p["heads"],
        mlp_dim=p["mlp_dim"], frames=frames, grid=tuple(grid), dropout=p["dropout"],
    )


def head_config(fixture: dict, num_classes: int) -> DPTConfig:
    d = fixture["config"]["dpt"]
    return DPTConfig(num_classes, fixture["config"]["feature_dim"], d["nfeats"], tuple(d["out_channels"]), d["use_bn"])


@dataclass
class Parts:
    """dfbench's modules loaded with the fixture's weights, and the fixture's sizes."""

    space: MultiLayerPcaSpace
    predictor: DinoForesight
    seg_head: DPTHead
    depth_head: DPTHead
    grid: tuple[int, int]
    label_size: tuple[int, int]
    batches: list[list[int]]


def build_parts(fx: dict) -> Parts:
    c, sd = fx["config"], fx["state_dicts"]
    model = dinov2_from_state_dict(backbone_config(fx), sd["backbone_dinov2"])
    pca = PcaProjection.from_state_dict(fx["pca"])
    space = MultiLayerPcaSpace(model, c["d_layers"], pca, tuple(c["img_size"]), name="foresight-fixture",
                               image_mean=c["normalize_mean"], image_std=c["normalize_std"])
    predictor = DinoForesight(predictor_config(fx))
    predictor.load_state_dict(sd["predictor"], strict=True)
    seg = DPTHead(head_config(fx, c["dpt"]["nclass_segm"]))
    seg.load_state_dict(sd["head_segm"], strict=True)
    depth = DPTHead(head_config(fx, c["dpt"]["nclass_depth"]))
    depth.load_state_dict(sd["head_depth"], strict=True)
    return Parts(space, predictor.eval(), seg.eval(), depth.eval(), tuple(c["token_grid"]), tuple(c["label_size"]),
                 [list(b) for b in fx["data"]["batches"]])


def snippet_frames(fixture: dict, clips: list[int], indices: list[int]) -> torch.Tensor:
    """uint8 frames [B, T, 3, Hs, Ws] of the given snippet indices, from the stored ones."""
    stored = list(fixture["data"]["stored_frame_indices"])
    positions = [stored.index(i) for i in indices]
    return fixture["data"]["frames_src_uint8"][clips][:, positions].permute(0, 1, 4, 2, 3).contiguous()
