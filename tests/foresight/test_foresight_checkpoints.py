"""Loading DINO-Foresight checkpoints in the released format, safely, and refusing everything else."""

from __future__ import annotations

import argparse

import pytest
import torch

from dfbench.errors import DfbenchError
from dfbench.features.dinov2 import block_outputs, dinov2_from_state_dict
from dfbench.features.foresight_space import load_multilayer_pca
from dfbench.lightning_checkpoint import load_weights_only, read_lightning_checkpoint
from dfbench.models.foresight_checkpoint import load_foresight_checkpoint, save_foresight_checkpoint
from foresight_helpers import backbone_config, close


class PCA:
    """Stands in for sklearn.decomposition.PCA: any pickled class must be refused."""

    def __init__(self, components: torch.Tensor) -> None:
        self.components_ = components
        self.n_components = components.shape[0]


def lightning_state(fx) -> dict:
    """Dino_f's state_dict at the fixture's size: PCA tensors, backbone under dino_v2., predictor."""
    sd = fx["state_dicts"]
    pca = {k: fx["pca"][k] for k in ("pca_mean", "pca_components", "mean", "std")}
    return {**pca, **{f"dino_v2.{k}": v for k, v in sd["backbone_dinov2"].items()}, **sd["predictor"]}


def write_dinof(path, fx, state: dict | None = None, **args) -> None:
    """A Lightning checkpoint as Trainer.save_checkpoint writes it, with the training Namespace."""
    p = fx["config"]["predictor"]
    namespace = argparse.Namespace(hidden_dim=p["hidden_dim"], heads=p["heads"], layers=p["layers"], dropout=p["dropout"],
                                   masking=p["masking"], seperable_attention=p["seperable_attention"], lr=1.6e-4,
                                   img_size=tuple(fx["config"]["img_size"]), d_layers=list(fx["config"]["d_layers"]))
    for key, value in args.items():
        setattr(namespace, key, value)
    first = next(iter(fx["state_dicts"]["predictor"].values()))
    torch.save({
        "epoch": 7, "global_step": 1234, "pytorch-lightning_version": "2.2.1",
        "state_dict": lightning_state(fx) if state is None else state,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros_like(first)}},
                              "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.99), "params": [0]}]}],
        "lr_schedulers": [], "callbacks": {"ModelCheckpoint{'monitor': 'val/loss'}": {"best_model_score": torch.tensor(0.5)}},
        "hparams_name": "args", "hyper_parameters": {"args": namespace},
    }, path)


def test_released_format_loads_and_predicts_like_the_reference(fx, parts, tmp_path):
    path = tmp_path / "dinof_tiny.ckpt"
    write_dinof(path, fx)
    assert set(read_lightning_checkpoint(path, "x").state_dict) == set(fx["state_dicts"]["dinof_ckpt_state_dict_keys"])
    ckpt = load_foresight_checkpoint(path)
    assert ckpt.args["heads"] == fx["config"]["predictor"]["heads"] and ckpt.predictor.config == parts.predictor.config
    short = fx["stages"]["short"]
    with torch.no_grad():
        close(ckpt.predictor(short["pca_feats"]), short["predictor_out"])
    close(ckpt.pca.inverse(short["predictor_out"][:, -1]), short["pred_feats"])
    model = dinov2_from_state_dict(backbone_config(fx), ckpt.backbone_state)
    pixels = torch.zeros(1, 3, *fx["config"]["img_size"])
    for got, want in zip(block_outputs(model, pixels, fx["config"]["d_layers"]),
                         block_outputs(parts.space.model, pixels, fx["config"]["d_layers"])):
        assert torch.equal(got, want)


def test_round_trip_without_namespace(fx, parts, tmp_path):
    path = tmp_path / "ours.ckpt"
    save_foresight_checkpoint(path, parts.predictor, parts.space.pca)
    ckpt = load_foresight_checkpoint(path)
    pca = fx["stages"]["short"]["pca_feats"]
    with torch.no_grad():
        assert torch.equal(ckpt.predictor(pca), parts.predictor(pca))
    assert ckpt.backbone_state == {}


def one_line_error(call, match: str) -> str:
    with pytest.raises(DfbenchError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_scikit_learn_style_pickle_is_refused(fx, tmp_path):
    path = tmp_path / "dinov2_pca_448_l[2_5_8_11]_1152.pth"
    torch.save({"pca_model": PCA(fx["pca"]["pca_components"]), "mean": fx["pca"]["mean"], "std": fx["pca"]["std"]}, path)
    message = one_line_error(lambda: load_foresight_checkpoint(path), "pickles .*PCA, which dfbench does not unpickle")
    assert "holding tensors only" in message
    one_line_error(lambda: load_weights_only(path, "a PCA"), "does not unpickle")
    # Nothing but argparse.Namespace is allowed inside hyper_parameters either.
    write_dinof(tmp_path / "evil.ckpt", fx, pca=PCA(fx["pca"]["pca_components"]))
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "evil.ckpt"), "pickles")


def test_other_checkpoints_are_refused_with_one_line(fx, tmp_path):
    head = tmp_path / "head.ckpt"
    torch.save({"state_dict": {f"head.{k}": v for k, v in fx["state_dicts"]["head_segm"].items()}}, head)
    one_line_error(lambda: load_foresight_checkpoint(head), "is not a DINO-Foresight checkpoint")
    state = lightning_state(fx)
    write_dinof(tmp_path / "ok.ckpt", fx)
    width = state["pca_components"].shape[1]
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "ok.ckpt", feature_width=width + 1),
                   f"fitted on {width}-wide features but the feature space gives {width + 1}")
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "ok.ckpt", components=1152 + 1), "components, expected")
    # The released feature space (ViT-B, 4 blocks) refuses a PCA of the tiny width.
    one_line_error(lambda: load_multilayer_pca("dinov2-vitb14-reg-pca1152", str(tmp_path / "ok.ckpt")), "-wide features")
    write_dinof(tmp_path / "mask.ckpt", fx, masking="gaussian")
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "mask.ckpt"), "masking 'gaussian'")
    fewer = {k: v for k, v in state.items() if k != "pca_mean"}
    write_dinof(tmp_path / "nopca.ckpt", fx, state=fewer)
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "nopca.ckpt"), "no PCA tensors")
    mismatched = dict(state, pca_components=state["pca_components"][:-1], pca_mean=state["pca_mean"])
    write_dinof(tmp_path / "inconsistent.ckpt", fx, state=mismatched)
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "inconsistent.ckpt"), "reads .* PCA components but its PCA has")
    torch.save([1, 2, 3], tmp_path / "list.ckpt")
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "list.ckpt"), "not a checkpoint dict")
    one_line_error(lambda: load_foresight_checkpoint(tmp_path / "absent.ckpt"), "does not exist")
