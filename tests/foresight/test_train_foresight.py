"""`dfbench train predictor --model dino-foresight`: the official objective, both stages, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

from dfbench.checkpoints import load_checkpoint, read_safetensors_metadata
from dfbench.errors import DfbenchError
from dfbench.models.dino_foresight import DinoForesight, ForesightConfig
from dfbench.train.clips import ClipSampling, SyntheticSource, clip_rng, sample_clip, scaled_crop_box
from dfbench.train.config import TrainConfig
from dfbench.train.foresight import foresight_loss, full_mask, masked_tokens, official_init, resize_position_tables
from dfbench.train.loop import Trainer
from dfbench.train.recipes import Recipe, build_optimizer, set_learning_rate

TINY_YAML = "configs/train/tiny-dino-foresight.yaml"
RELEASED_YAML = "configs/train/dino-foresight-vitb14-pca1152.yaml"
SMALL = {"hidden_dim": 24, "layers": 1, "heads": 2, "mlp_dim": 48, "dropout": 0.1}


@pytest.fixture(scope="module", autouse=True)
def foresight_spec():
    """The dino-foresight spec, registered here until the built-in one is present."""
    from dfbench.adapters.spec import ModelSpec
    from dfbench.registry import MODELS, model_names, register_model_spec

    added = "dino-foresight" not in model_names()
    if added:
        register_model_spec(ModelSpec(name="dino-foresight", display="DINO-Foresight", architecture="dino-foresight",
                                      family="dfbench.adapters.dino_foresight:DinoForesightAdapter",
                                      default_feature_space="dinov2-vitb14-reg-pca1152"))
    yield
    if added:
        MODELS._registered.pop("dino-foresight", None)
        MODELS._resolved.pop("dino-foresight", None)


def tiny_config(tmp_path, path=TINY_YAML, **overrides) -> TrainConfig:
    """A config file with small sizes, written to tmp_path; returns it loaded."""
    raw = yaml.safe_load(open(path))
    raw["architecture"]["predictor"] = dict(SMALL)
    raw.update({"batch_size": 2, "checkpoint_every": 2, "log_every": 1, "data": {"source": "synthetic", "split": "train", "cache_clips": 3}})
    for stage in raw.get("stages", {}).values():
        stage.update({"steps": 2, "checkpoint_every": 2})
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) else value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return TrainConfig.load(tmp_path / "config.yaml")


def test_masking_replaces_every_token_of_the_last_slot():
    torch.manual_seed(0)
    model = official_init(DinoForesight(ForesightConfig(pca_dim=8, hidden_dim=12, layers=1, heads=2, mlp_dim=24, grid=(2, 3))))
    x = torch.randn(2, 5, 2, 3, 8)
    mask = full_mask(2, 5, (2, 3))
    assert mask[:, 4].all() and not mask[:, :4].any()
    tokens = masked_tokens(model, x, mask)
    assert torch.equal(tokens[:, :4], model.embed(x[:, :4]))
    assert torch.equal(tokens[:, 4], model.replace_vector[0, 0].expand(2, 2, 3, 12))
    assert torch.equal(tokens, model.tokens(x))  # the evaluation path masks the same way
    # What the masked slot held never reaches the loss's prediction.
    other = x.clone()
    other[:, 4] = torch.randn(2, 2, 3, 8)
    model.eval()
    assert torch.equal(model.maskvit(masked_tokens(model, other, mask)), model.maskvit(tokens))
    # The loss is SmoothL1 (beta 0.1) over the masked tokens only.
    out = model.maskvit(tokens)
    expected = torch.nn.functional.smooth_l1_loss(out[:, 4], x[:, 4], beta=0.1)
    assert torch.allclose(foresight_loss(model, x, mask), expected)
    assert torch.equal(model.maskvit.fc_out.weight, torch.zeros(8, 12))


def test_one_step_decreases_the_loss_on_a_fixed_batch(tmp_path):
    config = tiny_config(tmp_path).stage("lowres", tmp_path)
    trainer = Trainer(config, out_dir=tmp_path / "run", model="dino-foresight", log=lambda _: None)
    objective, index = trainer.objective, torch.arange(3)

    def loss() -> float:
        torch.manual_seed(0)  # the same dropout draws before and after
        return float(objective.loss(index, torch.Generator().manual_seed(0)).detach())

    before = loss()
    set_learning_rate(trainer.optimizer, config.recipe, 0, 10)
    trainer.optimizer.zero_grad()
    objective.loss(index, torch.Generator()).backward()
    trainer.optimizer.step()
    assert loss() < before


def test_cli_runs_both_stages_and_the_weights_load(tmp_path):
    from dfbench.cli.train import train_group

    tiny_config(tmp_path)
    out, export = tmp_path / "out", tmp_path / "tiny-dino-foresight.safetensors"
    result = CliRunner().invoke(train_group, ["predictor", "--config", str(tmp_path / "config.yaml"), "--model", "dino-foresight",
                                              "--out", str(out), "--export", str(export)])
    assert result.exit_code == 0, result.output
    assert "stage tiny-dino-foresight-lowres" in result.output and "initialised from" in result.output
    low, high = load_file(str(out / "lowres" / "weights.safetensors")), load_file(str(export))
    assert low["maskvit.pos_embd.emb.d_1"].shape == (4, 8) and high["maskvit.pos_embd.emb.d_1"].shape == (8, 8)
    meta = read_safetensors_metadata(export)
    assert meta["model"] == "dino-foresight" and meta["feature_space"] == "tiny-ml-pca" and meta["step"] == 2
    config = ForesightConfig.from_dict(meta["config"])
    assert config.grid == (8, 16) and config.pca_dim == 64 and config.frames == 5
    model = DinoForesight(config)
    load_checkpoint(model, str(export), "dino-foresight")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in high.items())
    with pytest.raises(DfbenchError):  # the low-resolution weights do not fit the high-resolution model
        load_checkpoint(model, str(out / "lowres" / "weights.safetensors"), "dino-foresight")
    # Resuming a finished run trains nothing more and gives the same weights.
    again = CliRunner().invoke(train_group, ["predictor", "--config", str(tmp_path / "config.yaml"), "--model", "dino-foresight",
                                             "--out", str(out), "--stage", "highres", "--resume"])
    assert again.exit_code == 0, again.output
    assert torch.equal(load_file(str(out / "highres" / "weights.safetensors"))["embed.weight"], high["embed.weight"])


def test_high_resolution_stage_starts_from_resized_low_resolution_tables(tmp_path):
    config = tiny_config(tmp_path)
    low = Trainer(config.stage("lowres", tmp_path), out_dir=tmp_path / "lowres", model="dino-foresight", log=lambda _: None)
    low.run()
    high = Trainer(config.stage("highres", tmp_path), out_dir=tmp_path / "highres", model="dino-foresight", log=lambda _: None)
    trained, started = low.model.state_dict(), high.model.state_dict()
    for key, value in trained.items():
        if key.endswith(("d_1", "d_2")):
            assert started[key].shape[0] == 2 * value.shape[0]
            # Bilinear on [1, 1, L, C], half-pixel centres: the new rows blend neighbouring old rows.
            assert torch.allclose(started[key][1], 0.75 * value[0] + 0.25 * value[1])
            assert torch.equal(started[key][0], value[0])
        else:
            assert torch.equal(started[key], value)


def test_resize_position_tables_leaves_other_tensors_alone():
    state = {"maskvit.pos_embd.emb.d_1": torch.arange(4.0)[:, None].repeat(1, 3), "embed.weight": torch.ones(2, 2)}
    resized = resize_position_tables(state, (8, 16))
    assert resized["maskvit.pos_embd.emb.d_1"].shape == (8, 3)
    assert torch.equal(resized["embed.weight"], state["embed.weight"])
    assert resize_position_tables(state, (4, 16))["maskvit.pos_embd.emb.d_1"] is state["maskvit.pos_embd.emb.d_1"]


def test_released_config_is_the_official_recipe_and_steps_at_tiny_size(tmp_path):
    config = TrainConfig.load(RELEASED_YAML)
    low, high = config.stage("lowres", "runs/x"), config.stage("highres", "runs/x")
    assert config.stage_order() == ["lowres", "highres"]
    assert (low.steps, low.batch_size, low.recipe.lr, low.clips.view_size) == (36800, 64, 6.4e-4, (224, 448))
    assert (high.steps, high.batch_size, high.recipe.lr, high.clips.view_size) == (920, 64, 8e-5, (448, 896))
    assert high.init == "runs/x/lowres/weights.safetensors" and low.init is None
    assert low.feature_space == "dinov2-vitb14-reg-pca1152-lowres" and high.feature_space == "dinov2-vitb14-reg-pca1152"
    for stage in (low, high):
        assert stage.recipe.schedule == "cosine" and stage.recipe.grad_clip == 1.0 and stage.recipe.weight_decay == 0
        assert stage.recipe.warmup_steps == 0 and stage.clips.num_frames == 5 and stage.seed == 123
        assert stage.architecture["predictor"] == {"hidden_dim": 1152, "layers": 12, "heads": 8, "mlp_dim": 4608, "dropout": 0.1}
    with pytest.raises(DfbenchError, match="folder of videos"):
        Trainer(high, out_dir=tmp_path / "x", model="dino-foresight")
    # The same recipe at tiny size: one step of each stage on the synthetic world.
    small = tiny_config(tmp_path, RELEASED_YAML, feature_space="tiny-ml-pca", steps=1,
                        clips={"frame_size": 64, "frame_width": 128})
    small.stages["lowres"].update({"feature_space": "tiny-ml-pca-lowres", "steps": 1, "clips": {"frame_size": 32, "frame_width": 64}})
    small.stages["highres"]["steps"] = 1
    for name in small.stage_order():
        result = Trainer(small.stage(name, tmp_path), out_dir=tmp_path / name, model="dino-foresight", log=lambda _: None).run()
        assert result.steps == 1 and math.isfinite(result.last_loss)


def test_cosine_schedule_is_torch_cosine_annealing():
    recipe = Recipe(lr=0.1, weight_decay=0.0, warmup_steps=0, schedule="cosine")
    param = torch.nn.Parameter(torch.zeros(1))
    reference = torch.optim.SGD([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(reference, 10)
    optimizer = build_optimizer(torch.nn.Linear(1, 1), recipe)
    for step in range(10):
        assert set_learning_rate(optimizer, recipe, step, 10) == pytest.approx(reference.param_groups[0]["lr"], abs=1e-12)
        reference.step()
        scheduler.step()
    with pytest.raises(ValueError, match="schedule"):
        Recipe(lr=0.1, weight_decay=0.0, warmup_steps=0, schedule="linear")


def test_whole_frame_clips_and_the_official_crop():
    sampling = ClipSampling(num_frames=5, min_gap=0.1, max_gap=0.1, frame_size=32, frame_width=64, full_frame=True, augment=False)
    views, stamps = sample_clip(SyntheticSource(), 0, clip_rng(0, 0), sampling)
    assert views.shape == (1, 5, 3, 32, 64) and views.dtype == torch.uint8
    assert torch.allclose(stamps, torch.arange(5) / 10)
    augmented = ClipSampling(**{**sampling.to_dict(), "augment": True})
    assert sample_clip(SyntheticSource(), 0, clip_rng(0, 0), augmented)[0].shape == (1, 5, 3, 32, 64)
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left, h, w = scaled_crop_box(rng, 72, 142)
        assert 36 <= h <= 72 and 71 <= w <= 142 and top + h <= 72 and left + w <= 142
        assert abs(w / h - 142 / 72) < 0.05  # both sides scale together
    with pytest.raises(ValueError, match="frame_width"):
        ClipSampling(num_frames=5, min_gap=0.1, max_gap=0.1, frame_size=32, full_frame=True)
