"""cosmos-tiny: the shipped, trained Cosmos-architecture pipeline runs offline through the whole benchmark."""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.config import load_protocol
from dfbench.evaluate import Evaluator
from dfbench.features import load_feature_space
from dfbench.registry import get_dataset_class, get_model_class, get_model_spec

pytest.importorskip("diffusers", reason='diffusers is not installed (pip install "dfbench[cosmos]")')


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


@pytest.fixture(scope="module")
def val_clip(tiny):
    dataset = get_dataset_class("synthetic")(frame_size=tiny.frame_size)
    return dataset.load(dataset.sample_ids()[0])


def test_cosmos_tiny_ships_and_runs_offline_with_best_and_mean(dfbench_cli, tmp_path):
    spec = get_model_spec("cosmos-tiny")
    assert spec.runs_offline("tiny") and spec.pixel_input.num_frames == 5
    result = dfbench_cli("run", "--model", "cosmos-tiny", "--dataset", "synthetic", "--limit", "2", "--num-samples", "3",
                         "--output-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    payload = json.loads((tmp_path / "synthetic" / "cosmos-tiny.json").read_text())
    assert {m["stat"] for m in payload["metrics"]} == {"best", "mean"}


def test_the_shipped_vae_reconstructs_the_world(tiny, val_clip):
    from dfbench.adapters.cosmos_train import to_pipeline_range
    from dfbench.pixels import prepare_frames

    model = get_model_class("cosmos-tiny")(tiny)
    vae = model.pipeline().vae
    frames, _ = prepare_frames(val_clip.frames[:5], model.input_format(), tiny.frame_size)
    video = to_pipeline_range(frames[None])
    with torch.no_grad():
        recon = vae.decode(vae.encode(video).latent_dist.mode()).sample
    # An untrained VAE is near 0.37 in [-1, 1] units; the trained one recovers the street's layout.
    assert (recon - video).abs().mean() < 0.3


def test_the_trained_transformer_beats_its_untrained_self(tiny, val_clip):
    """The same pipeline with the transformer re-initialised forecasts clearly worse features."""
    import diffusers

    trained = get_model_class("cosmos-tiny")(tiny)
    evaluator = Evaluator(trained, tiny, {}, load_protocol(), num_samples=2, horizons=["mid"])
    encoded = evaluator.encode(val_clip)
    (window,) = evaluator.windows()
    truth = encoded.features[:, list(window.targets)]

    def error(model) -> float:
        evaluator.model = model
        return (evaluator.forecast([encoded], window)["mean"] - truth).abs().mean().item()

    untrained = get_model_class("cosmos-tiny")(tiny)
    pipe = untrained.pipeline()
    torch.manual_seed(0)
    pipe.register_modules(transformer=diffusers.CosmosTransformer3DModel(**pipe.transformer.config).eval())
    assert error(trained) < 0.8 * error(untrained)


def test_the_demo_has_a_cosmos_row_with_its_gflops(tmp_path):
    from dfbench.demo import demo_models, write_demo_flops
    from dfbench.tables import load_flops

    assert "cosmos-tiny" in demo_models()
    gflops = load_flops(write_demo_flops(tmp_path))
    assert set(gflops) == {"cosmos-tiny"} and gflops["cosmos-tiny"] > 0
