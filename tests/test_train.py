"""Training recipes, clip sampling, the loop (checkpoints, exact resume, loss CSV) and the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file
from transformers import AutoModel, DINOv3ViTConfig

from dfbench.errors import DfbenchError
from dfbench.features.dinov3 import Dinov3FeatureSpace
from dfbench.models import DeltaTok, DeltaTokConfig, DeltaWorld, DeltaWorldConfig, DINOWorld, DINOWorldConfig, PredictorConfig
from dfbench.train.clips import (
    ClipSampling,
    SyntheticSource,
    open_source,
    resized_crop,
    sample_clip,
    sample_crop_box,
    sample_frame_indices,
)
from dfbench.train.config import TrainConfig
from dfbench.train.loop import Trainer
from dfbench.train.objectives import trainable_spec
from dfbench.train.recipes import Recipe, delta_token_loss, param_groups, set_learning_rate, warmup_constant

WIDTH, HEADS, PATCH, SIDE = 32, 2, 8, 32


@pytest.fixture(scope="module")
def feature_space():
    """A random DINOv3 of the real architecture, small enough for the tests."""
    torch.manual_seed(0)
    config = DINOv3ViTConfig(
        hidden_size=WIDTH, num_attention_heads=HEADS, intermediate_size=64, num_hidden_layers=1,
        patch_size=PATCH, num_register_tokens=4, image_size=SIDE,
    )
    model = AutoModel.from_config(config, attn_implementation="sdpa")
    return Dinov3FeatureSpace(model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1 / 255, name="test", frame_size=SIDE)


def tokenizer_config(tmp_path, **overrides):
    raw = {
        "name": "test-deltatok", "part": "tokenizer", "feature_space": "test", "seed": 3,
        "steps": 4, "batch_size": 4, "checkpoint_every": 2, "log_every": 1,
        "recipe": {"lr": 3e-3, "weight_decay": 0.01, "warmup_steps": 2, "grad_clip": 0.01},
        "architecture": {"num_layers": 1, "intermediate_size": 32},
        "data": {"source": "synthetic", "split": "train", "cache_clips": 6},
        "clips": {"num_frames": 2, "min_gap": 0.1, "max_gap": 0.3, "frame_size": SIDE, "augment": True},
        "output": str(tmp_path / "run"),
    }
    raw.update(overrides)
    return raw


def predictor_config(tmp_path, **overrides):
    raw = {
        "name": "test-dino-world", "part": "predictor", "model": "dino-world-bom", "feature_space": "test", "seed": 1,
        "steps": 4, "batch_size": 2, "checkpoint_every": 2, "log_every": 2,
        "recipe": {"lr": 1e-3, "weight_decay": 0.4, "warmup_steps": 2},
        "architecture": {
            "predictor": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "rope_axis_sizes": [4, 4, 4], "rope_unrotated_size": 4},
            "num_samples_train": 3,
        },
        "data": {"source": "synthetic", "split": "train", "cache_clips": 3},
        "clips": {"num_frames": 4, "min_gap": 0.1, "max_gap": 0.2, "frame_size": SIDE, "augment": False},
    }
    raw.update(overrides)
    return raw


# -- recipes -----------------------------------------------------------------------------


def test_param_groups_decay_only_linear_and_conv_weights():
    tok = DeltaTok(DeltaTokConfig(hidden_size=32, num_heads=2, patch_size=8, num_layers=1, intermediate_size=32))
    decayed, others = param_groups(tok, 0.01)
    assert decayed["weight_decay"] == 0.01 and others["weight_decay"] == 0.0
    modules = dict(tok.named_modules())
    for name in decayed["names"]:
        owner, _, leaf = name.rpartition(".")
        assert leaf == "weight" and isinstance(modules[owner], torch.nn.Linear), name
    # Every Linear weight is decayed; embeddings, norms (incl. q/k-norm), LayerScale and biases are not.
    linear = {f"{n}.weight" for n, m in modules.items() if isinstance(m, torch.nn.Linear)}
    assert set(decayed["names"]) == linear
    for expected in ("z_embed.weight", "xy_embed.weight", "norm.weight", "encoder_blocks.0.attention.q_norm.weight",
                     "encoder_blocks.0.layer_scale1.lambda1", "encoder_blocks.0.attention.q_proj.bias"):
        assert expected in others["names"]
    assert len(decayed["params"]) + len(others["params"]) == sum(1 for _ in tok.parameters())

    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    decayed, others = param_groups(conv, 0.5)
    assert decayed["names"] == ["0.weight"] and others["names"] == ["0.bias", "1.weight", "1.bias"]


def test_param_groups_skip_frozen_tokenizer_and_keep_q_embed_undecayed():
    tok = DeltaTok(DeltaTokConfig(hidden_size=32, num_heads=2, patch_size=8, num_layers=1, intermediate_size=32))
    predictor = PredictorConfig(input_size=32, hidden_size=32, num_layers=1, num_heads=2, rope_axis_sizes=(12,), rope_unrotated_size=4)
    world = DeltaWorld(tok, DeltaWorldConfig(predictor=predictor, use_bom=False))
    decayed, others = param_groups(world, 0.4)
    names = decayed["names"] + others["names"]
    assert not any(n.startswith("tokenizer.") for n in names)
    assert "q_embed.weight" in others["names"]
    assert "predictor.head.weight" in decayed["names"] and "predictor.blocks.0.attention.kv_proj.weight" in decayed["names"]


def test_warmup_then_constant():
    assert [warmup_constant(s, 4) for s in range(7)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_constant(0, 0) == 1.0
    recipe = Recipe(lr=1e-3, weight_decay=0.0, warmup_steps=5000)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert set_learning_rate(optimizer, recipe, 2500) == pytest.approx(5e-4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert set_learning_rate(optimizer, recipe, 300_000) == pytest.approx(1e-3)


def test_delta_token_loss_equals_the_models_training_loss():
    torch.manual_seed(0)
    tok = DeltaTok(DeltaTokConfig(hidden_size=32, num_heads=2, patch_size=8, num_layers=1, intermediate_size=32))
    predictor = PredictorConfig(input_size=32, hidden_size=32, num_layers=1, num_heads=2, rope_axis_sizes=(12,), rope_unrotated_size=4)
    for use_bom in (True, False):
        world = DeltaWorld(tok, DeltaWorldConfig(predictor=predictor, use_bom=use_bom, noise_std=0.5, num_samples_train=5))
        y, black = torch.randn(2, 4, 16, 32), torch.randn(16, 32)
        ts = torch.tensor([[0.0, 0.1, 0.3, 0.4], [0.0, 0.2, 0.3, 0.5]])
        expected = world.training_loss(y, black, ts, (4, 4), generator=torch.Generator().manual_seed(7))
        z = world.context_tokens(y, black, (4, 4))
        got = delta_token_loss(world, z, ts, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


# -- clips -------------------------------------------------------------------------------


def test_frame_offsets_in_range_and_timestamps_consistent():
    rng = np.random.default_rng(0)
    for _ in range(200):
        indices, ts = sample_frame_indices(rng, 8, fps=10.0, min_gap=0.1, max_gap=0.2)
        gaps = np.diff(indices)
        assert indices[0] == 0 and gaps.min() >= 1 and gaps.max() <= 2
        np.testing.assert_allclose(ts, indices / 10.0, rtol=1e-6)
        assert ts[0] == 0.0
    # The reference range at 25 fps: snapped gaps stay within one frame of [1/25, 1/3] s.
    indices, ts = sample_frame_indices(np.random.default_rng(1), 64, fps=25.0, min_gap=1 / 25, max_gap=1 / 3)
    assert np.diff(ts).min() >= 1 / 25 - 1e-6 and np.diff(ts).max() <= 1 / 3 + 1 / 25 + 1e-6


def test_random_resized_crop_shares_the_box_across_frames():
    rng = np.random.default_rng(0)
    for _ in range(100):
        top, left, h, w = sample_crop_box(rng, 72, 142)
        assert 0 <= top and top + h <= 72 and 0 <= left and left + w <= 142
        assert 0.6 * 72**2 * 0.98 <= h * w <= 72**2 * 1.03
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
    # Frames that differ only by a constant offset must still differ by it after the crop.
    base = np.random.default_rng(1).integers(0, 200, (72, 142, 3), dtype=np.uint8)
    frames = np.stack([base, base + 10, base + 20])
    box = (5, 30, 60, 70)
    out = resized_crop(frames, box, 48, flip=True)
    assert out.shape == (3, 3, 48, 48) and out.dtype == torch.uint8
    torch.testing.assert_close(out[1].int() - out[0].int(), torch.full_like(out[0].int(), 10))
    torch.testing.assert_close(out[2].int() - out[0].int(), torch.full_like(out[0].int(), 20))
    unflipped = resized_crop(frames, box, 48)
    torch.testing.assert_close(out, unflipped.flip(-1))


def test_sample_clip_from_the_synthetic_world():
    source = SyntheticSource("train")
    augmented = ClipSampling(num_frames=3, min_gap=0.1, max_gap=0.3, frame_size=SIDE, augment=True)
    views, ts = sample_clip(source, 4, np.random.default_rng(0), augmented)
    assert views.shape == (1, 3, 3, SIDE, SIDE) and ts.shape == (3,) and ts[0] == 0
    plain = ClipSampling(num_frames=3, min_gap=0.1, max_gap=0.1, frame_size=SIDE, augment=False)
    views, ts = sample_clip(source, 4, np.random.default_rng(0), plain)
    assert views.shape[:2] == (2, 3) and views.shape[-1] == SIDE  # the protocol's two square crops
    torch.testing.assert_close(ts, torch.tensor([0.0, 0.1, 0.2]))


def test_video_source_needs_data_and_says_so(tmp_path):
    with pytest.raises(DfbenchError, match="not there"):
        open_source({"source": "videos", "root": str(tmp_path / "missing")})
    with pytest.raises(DfbenchError, match="does not ship"):
        open_source({"source": "videos", "root": str(tmp_path)})


def test_shipped_configs_parse_and_paper_scale_asks_for_videos(tmp_path):
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "configs" / "train"
    configs = {p.stem: TrainConfig.load(p) for p in folder.glob("*.yaml")}
    assert {"deltatok-vitb-256", "deltatok-vitb-512", "deltaworld-vitb-256", "dino-world-vitb-256"} <= set(configs)
    paper = configs["deltatok-vitb-256"]
    assert (paper.recipe.lr, paper.recipe.weight_decay, paper.recipe.warmup_steps, paper.recipe.grad_clip) == (1e-3, 1e-2, 5000, 1e-2)
    assert paper.batch_size == 1024 and paper.clips.num_frames == 2
    world = configs["deltaworld-vitb-256"]
    assert (world.recipe.lr, world.recipe.weight_decay, world.recipe.grad_clip) == (1e-4, 0.4, None)
    assert world.architecture["num_samples_train"] == 256 and world.clips.num_frames == 8
    with pytest.raises(DfbenchError, match="data.root"):
        Trainer(world, out_dir=tmp_path)
    for config in configs.values():
        if config.model is not None:  # every predictor a config names is a trainable spec
            assert trainable_spec(config.model).architecture is not None


def test_the_trained_part_is_named_part_and_older_configs_still_load(tmp_path):
    legacy = tokenizer_config(tmp_path)
    legacy["task"] = legacy.pop("part")
    assert TrainConfig.from_dict(legacy).part == "tokenizer"
    with pytest.raises(DfbenchError, match="part must be one of"):
        TrainConfig.from_dict(tokenizer_config(tmp_path, part="head"))


def test_only_models_with_an_architecture_train():
    assert (trainable_spec("deltaworld-frame").tokens, trainable_spec("dino-world-bom").best_of_many) == ("frame", True)
    with pytest.raises(DfbenchError, match="copy-last' has no predictor dfbench can train; choose one of dino-world"):
        trainable_spec("copy-last")


# -- the loop ----------------------------------------------------------------------------


def test_tokenizer_steps_reduce_the_loss(tmp_path, feature_space):
    config = TrainConfig.from_dict(tokenizer_config(tmp_path, steps=40, checkpoint_every=40, log_every=10,
                                                   recipe={"lr": 1e-2, "weight_decay": 0.01, "warmup_steps": 3, "grad_clip": None}))
    trainer = Trainer(config, feature_space=feature_space, log=lambda _: None)
    trainer.run()
    rows = list(csv.DictReader(open(tmp_path / "run" / "loss.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40]
    assert losses[-1] < 0.75 * losses[0]


def _weights(path):
    return load_file(str(path))


def test_resume_is_exact_and_the_loss_csv_continues(tmp_path, feature_space):
    whole = Trainer(TrainConfig.from_dict(tokenizer_config(tmp_path / "a")), feature_space=feature_space, log=lambda _: None)
    result = whole.run()
    split = Trainer(TrainConfig.from_dict(tokenizer_config(tmp_path / "b")), feature_space=feature_space, log=lambda _: None)
    split.run(steps=2)
    with pytest.raises(DfbenchError, match="--resume"):
        split.run()
    resumed = Trainer(TrainConfig.from_dict(tokenizer_config(tmp_path / "b")), feature_space=feature_space, log=lambda _: None)
    resumed.run(resume=True)
    a, b = _weights(result.weights), _weights(tmp_path / "b" / "run" / "weights.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    rows_a = list(csv.DictReader(open(tmp_path / "a" / "run" / "loss.csv")))
    rows_b = list(csv.DictReader(open(tmp_path / "b" / "run" / "loss.csv")))
    assert [r["step"] for r in rows_b] == ["1", "2", "3", "4"]
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    checkpoints = sorted(p.name for p in (tmp_path / "b" / "run" / "checkpoints").iterdir())
    assert checkpoints == ["step-0000002.safetensors", "step-0000004.optimizer.safetensors", "step-0000004.safetensors"]


def test_predictor_weights_load_like_the_shipped_assets(tmp_path, feature_space):
    from dfbench.checkpoints import load_checkpoint, read_safetensors_metadata

    trainer = Trainer(TrainConfig.from_dict(predictor_config(tmp_path)), out_dir=tmp_path / "dino", feature_space=feature_space, log=lambda _: None)
    result = trainer.run()
    meta = read_safetensors_metadata(result.weights)
    assert meta["model"] == "dino-world-bom" and meta["step"] == 4
    config = DINOWorldConfig.from_dict(meta["config"])
    assert config.use_bom and config.num_samples_train == 3
    assert all(k.startswith("predictor.") for k in _weights(result.weights))
    load_checkpoint(DINOWorld(config), str(result.weights), "dino-world-bom")


def test_cli_trains_a_two_step_job(tmp_path, feature_space, monkeypatch):
    from dfbench.cli.train import train_group

    monkeypatch.setattr("dfbench.features.load_feature_space", lambda name, *a, **k: feature_space, raising=False)
    # Tokenizer first, then a DeltaWorld predictor on it, as the tiny recipes do.
    tok_yaml = tmp_path / "tok.yaml"
    tok_yaml.write_text(yaml.safe_dump(tokenizer_config(tmp_path, steps=10, checkpoint_every=2, log_every=2)))
    runner = CliRunner()
    out = runner.invoke(train_group, ["tokenizer", "--config", str(tok_yaml), "--steps", "2",
                                      "--out", str(tmp_path / "tok"), "--export", str(tmp_path / "tok.safetensors")])
    assert out.exit_code == 0, out.output
    assert "trained 2 steps" in out.output and (tmp_path / "tok.safetensors").is_file()

    raw = predictor_config(tmp_path, architecture={
        "predictor": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "rope_axis_sizes": [12], "rope_unrotated_size": 4},
        "num_samples_train": 4,
    })
    pred_yaml = tmp_path / "pred.yaml"
    pred_yaml.write_text(yaml.safe_dump(raw))
    out = runner.invoke(train_group, ["predictor", "--config", str(pred_yaml), "--model", "deltaworld", "--steps", "2",
                                      "--tokenizer", str(tmp_path / "tok.safetensors"), "--out", str(tmp_path / "dw")])
    assert out.exit_code == 0, out.output
    weights = _weights(tmp_path / "dw" / "weights.safetensors")
    assert weights and all(k.startswith("predictor.") for k in weights)
    rows = list(csv.DictReader(open(tmp_path / "dw" / "loss.csv")))
    assert [r["step"] for r in rows] == ["2"] and float(rows[0]["loss"]) > 0

    # A frame-token variant refuses a delta tokenizer.
    out = runner.invoke(train_group, ["predictor", "--config", str(pred_yaml), "--model", "deltaworld-frame", "--steps", "2",
                                      "--tokenizer", str(tmp_path / "tok.safetensors"), "--out", str(tmp_path / "dwf")])
    assert out.exit_code != 0 and "use_delta=True" in str(out.exception)
