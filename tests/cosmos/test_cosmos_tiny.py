"""cosmos-tiny: the shipped, trained Cosmos-architecture pipeline runs offline through the whole benchmark."""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.features import load_feature_space
from dfbench.registry import get_dataset_class, get_model_class, get_model_spec
from dfbench.result_store import latest_result_path

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
    payload = json.loads(latest_result_path(tmp_path, "synthetic", "cosmos-tiny").read_text())
    assert {m["stat"] for m in payload["metrics"]} == {"best", "mean", "ensemble"}
    assert payload["provenance"]["pixel_input"]["num_frames"] == 5


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


def test_the_trained_transformer_predicts_the_future_latent(tiny):
    """On unseen clips the generated latent frame is far closer to the truth than a re-initialised
    transformer's or than repeating the last context latent: a trained generator, not a stand-in.

    (In pixels the tiny VAE's blur dominates: its reconstruction of the true future is as far off.)
    """
    import diffusers

    from dfbench.adapters.cosmos_train import to_pipeline_range, training_videos

    model = get_model_class("cosmos-tiny")(tiny)
    pipe, (prompt, _) = model.pipeline(), model._embeds
    videos = training_videos(4, first_index=100_000)  # the recipe trains on the first 640 clips
    config = pipe.vae.config
    mean, std = (torch.tensor(v).view(1, -1, 1, 1, 1) for v in (config.latents_mean, config.latents_std))
    with torch.no_grad():
        truth = (pipe.vae.encode(to_pipeline_range(videos)).latent_dist.mode() - mean) / std

    def error(pipeline) -> float:
        with torch.no_grad():
            latents = pipeline(video=videos[:, :5].float() / 255, prompt_embeds=prompt.expand(4, -1, -1), height=64,
                               width=128, num_frames=9, num_inference_steps=10, guidance_scale=1.0, fps=10,
                               generator=[torch.Generator().manual_seed(i) for i in range(4)], output_type="latent",
                               return_dict=False)[0]
        return (latents[:, :, 2] - truth[:, :, 2]).abs().mean().item()

    trained = error(pipe)
    copy_last = (truth[:, :, 1] - truth[:, :, 2]).abs().mean().item()
    torch.manual_seed(0)
    pipe.register_modules(transformer=diffusers.CosmosTransformer3DModel(**pipe.transformer.config).eval())
    untrained = error(pipe)
    assert trained < 0.6 * min(untrained, copy_last), (trained, untrained, copy_last)


def test_the_demo_has_a_cosmos_row_with_its_gflops(tmp_path):
    from dfbench.demo import demo_models, write_demo_flops
    from dfbench.tables import load_flops

    assert "cosmos-tiny" in demo_models()
    gflops = load_flops(write_demo_flops(tmp_path))
    assert set(gflops) == {"cosmos-tiny"} and gflops["cosmos-tiny"] > 0
