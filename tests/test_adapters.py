"""The paper's adapters: checkpoint errors through the CLI, sampling that ignores the batch."""

from __future__ import annotations

from importlib.resources import files

import pytest
import torch

from dfbench.adapters.base import Context
from dfbench.evaluate import row_generator
from dfbench.features import load_feature_space
from dfbench.registry import get_model_class, get_model_spec, model_names

ASSETS = files("dfbench.adapters").joinpath("assets")


def _asset(name):
    path = ASSETS.joinpath(name)
    assert path.is_file(), f"{name} must ship with the package"
    return str(path)


def _run(dfbench_cli, tmp_path, *extra):
    return dfbench_cli("run", "--model", "deltaworld", "--dataset", "synthetic", "--limit", "1",
                       "--output-dir", str(tmp_path / "out"), "--no-progress", *extra)


def test_a_checkpoint_of_another_model_is_refused_with_its_keys(dfbench_cli, tmp_path):
    result = _run(dfbench_cli, tmp_path, "--checkpoint", _asset("tiny-deltatok.safetensors"))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "'deltatok' model" in result.err
    assert not (tmp_path / "out" / "synthetic" / "deltaworld.json").exists()


def test_a_file_that_is_not_a_state_dict_is_refused(dfbench_cli, tmp_path):
    bogus = tmp_path / "weights.bin"
    torch.save([1, 2, 3], bogus)
    result = _run(dfbench_cli, tmp_path, "--checkpoint", str(bogus))
    assert result.code == 2 and "state dict" in result.err


def test_an_uncached_hub_id_offline_names_the_download_command(dfbench_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    result = _run(dfbench_cli, tmp_path, "--checkpoint", "Amazon-FAR/deltaworld-kinetics")
    assert result.code == 2 and "hf download" in result.err


@pytest.mark.parametrize("name", ["deltaworld", "dino-world-bom"])
def test_samples_of_a_row_do_not_depend_on_the_rest_of_the_batch(name):
    cls = get_model_class(name)
    assert cls.runs_offline("tiny"), f"{name} must ship tiny weights"
    space = load_feature_space("tiny")
    model = cls(space)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 4, 3, 64, 64), dtype=torch.uint8, generator=g)
    feats = space.encode(frames.reshape(-1, 3, 64, 64)).reshape(3, 4, 64, -1)
    stamps = torch.arange(7, dtype=torch.float32).expand(3, -1) / 10

    def predict(rows):
        ctx = Context(frames[rows], stamps[rows, :4], feats[rows], (8, 8),
                      [row_generator(0, f"clip-{r}", 0, "mid") for r in rows])
        return model.predict(ctx, stamps[rows, 4:], num_samples=5).features

    together = predict([0, 1, 2])
    assert together.shape == (3, 5, 3, 64, space.dim)
    for r in range(3):
        # same noise, same rollout: only float rounding of the batched matmuls may differ
        torch.testing.assert_close(predict([r])[0], together[r], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(together[0, 0], together[0, 1])  # the samples differ


@pytest.fixture(scope="module")
def tiny_batch():
    """Two clips of the tiny feature space: 4 context frames, 3 future ones."""
    space = load_feature_space("tiny")
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, 7, 3, 64, 64), dtype=torch.uint8, generator=g)
    feats = space.encode(frames.reshape(-1, 3, 64, 64)).reshape(2, 7, 64, -1)
    stamps = torch.arange(7, dtype=torch.float32).expand(2, -1) / 10
    return space, frames, feats, stamps


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_builds_and_predicts_a_tiny_batch(name, tiny_batch):
    """Declaring a spec is enough to be tested: build it in the tiny space, forecast two clips."""
    space, frames, feats, stamps = tiny_batch
    spec = get_model_spec(name)
    if spec.pixel_input is not None:
        pytest.skip("a pixel model: tests/cosmos runs every one end to end on tiny pipelines")
    if spec.default_protocol != "dinoworld":
        pytest.skip("predicts in its own protocol's feature space: tests/foresight runs it end to end")
    assert spec.runs_offline("tiny"), f"{name} needs tiny weights in adapters/assets to run offline"
    model = get_model_class(name)(space)
    context = Context(frames[:, :4], stamps[:, :4], feats[:, :4], (8, 8),
                      [row_generator(0, f"clip-{r}", 0, "mid") for r in range(2)],
                      future_features=feats[:, 4:] if spec.oracle else None)
    with torch.no_grad():
        forecast = model.predict(context, stamps[:, 4:], num_samples=3)
    samples = 3 if spec.stochastic else 1
    assert forecast.features.shape == (2, samples, 3, 64, space.dim)
    assert torch.isfinite(forecast.features).all()
    if spec.requires_weights:
        assert set(model.checkpoint_files()) >= {name}  # the spec's predictor weights were loaded


def test_one_adapter_class_serves_every_variant_of_a_family():
    from dfbench.adapters.predictor_models import DeltaWorldFamily, DinoWorldFamily

    for architecture, family in (("deltaworld", DeltaWorldFamily), ("dino-world", DinoWorldFamily)):
        variants = [n for n in model_names() if get_model_spec(n).architecture == architecture]
        assert len(variants) >= 2 and {get_model_class(n).__mro__[1] for n in variants} == {family}
    frame = get_model_class("deltaworld-frame")(load_feature_space("tiny"))
    assert frame.net.tokenizer.config.use_delta is False and frame.net.config.use_bom is True
    nobom = get_model_class("deltaworld-nobom")(load_feature_space("tiny"))
    assert nobom.net.tokenizer.config.use_delta is True and nobom.net.config.use_bom is False
