"""End-to-end parity with the reference evaluation (tiny_fixture_a.pt, or $DFBENCH_FIXTURE_A).

The fixture holds validation batches of the reference code (Cityscapes-, VSPW- and
KITTI-shaped, overlapping and non-overlapping crops, odd label widths, invalid
pixels) with the rollouts it produced and the torchmetrics values it accumulated.
Replaying those rollouts through dfbench's crops, feature space, scoring, heads and
metrics must give every accumulated value. Every size (crop side, head width, class
counts, context lengths, horizons, samples) is read from the fixture.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dfbench.adapters.base import Context, Forecast, WorldModel
from dfbench.config import load_protocol
from dfbench.data.base import Clip
from dfbench.evaluate import Evaluator, finalize_stats
from dfbench.features.dinov3 import Dinov3FeatureSpace
from dfbench.heads import DepthHead, SegHead
from dfbench.heads.linear import features_to_map
from dfbench.results import aggregate
from dfbench.scoring import best_of

# The generator gives Cityscapes the first of config["seg_head_classes"] and VSPW the second;
# every other data set of the fixture is a depth one.
SEG_HEAD_INDEX = {"cityscapes": 0, "vspw": 1}


class Replay(WorldModel):
    """Returns the rollouts the reference produced for the current batch, by horizon."""

    name = "replay"
    stochastic = True
    rollouts: dict[int, torch.Tensor] = {}

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        return Forecast(self.rollouts[target_timestamps.shape[1]])


@pytest.fixture(scope="module")
def feature_space(fixture_a):
    return Dinov3FeatureSpace.from_config_and_state_dict(
        fixture_a["config"], fixture_a["state_dicts"]["backbone_hf"],
        frame_size=fixture_a["config"]["validation"]["frame_size"], name="fixture",
    )


def _seg_head(fixture, classes: int) -> SegHead:
    head = SegHead(fixture["config"]["backbone_config"]["hidden_size"], classes)
    head.load_state_dict(fixture["state_dicts"][f"seg_head_{classes}"])
    return head.eval()


def _depth_head(fixture) -> DepthHead:
    depth = fixture["config"]["depth_head"]
    head = DepthHead(fixture["config"]["backbone_config"]["hidden_size"], depth["min_depth"], depth["max_depth"], depth["num_bins"])
    head.load_state_dict(fixture["state_dicts"]["depth_head"])
    return head.eval()


def _head(fixture, dataset: str) -> tuple[str, int, torch.nn.Module]:
    """The task, class count and head the reference evaluated ``dataset`` with."""
    if dataset in SEG_HEAD_INDEX:
        classes = fixture["config"]["seg_head_classes"][SEG_HEAD_INDEX[dataset]]
        return "seg", classes, _seg_head(fixture, classes)
    return "depth", 1, _depth_head(fixture)


@torch.no_grad()
def test_heads_match_the_reference_on_its_feature_maps(fixture_a):
    config, expected = fixture_a["config"], fixture_a["outputs"]["heads"]
    patch = config["backbone_config"]["patch_size"]
    grid = (config["frames"]["H"] // patch, config["frames"]["W"] // patch)
    feature_map = features_to_map(fixture_a["outputs"]["backbone"]["features"], grid)
    torch.testing.assert_close(feature_map, expected["feature_map"], atol=0, rtol=0)
    for classes in config["seg_head_classes"]:
        logits = _seg_head(fixture_a, classes)(feature_map)
        torch.testing.assert_close(logits, expected[f"seg_head_{classes}_logits"], atol=1e-5, rtol=0)
    depth = _depth_head(fixture_a)(feature_map)
    # depths run up to max_depth metres: fp32 rounding there is relative (~3e-7)
    torch.testing.assert_close(depth, expected["depth_head_depth"], atol=1e-5, rtol=1e-6)


def _rollouts_by_context(batch: dict) -> dict[int, dict[int, tuple[torch.Tensor, dict]]]:
    """Context length -> horizon -> (rollouts [2B, S, K, N, D], what the reference captured)."""
    out: dict[int, dict[int, tuple[torch.Tensor, dict]]] = {}
    for rollout, captured in zip(batch["all_rollouts"], batch["captured"], strict=True):
        horizon = rollout.shape[2]
        assert captured["prefix"].endswith(f"_c{captured['ctx_len']}_h{horizon}"), captured["prefix"]
        out.setdefault(captured["ctx_len"], {})[horizon] = (rollout, captured)
    return out


def test_validation_runs_reproduce_every_accumulated_metric(fixture_a, feature_space):
    config, validation = fixture_a["config"], fixture_a["outputs"]["validation_deltaworld"]
    samples = config["deltaworld"]["num_samples_eval"]
    beta = fixture_a["outputs"]["deltaworld"]["smooth_l1_beta"]
    records: dict[tuple[str, int], list] = {}
    num_classes: dict[str, dict[str, int]] = {}
    for inputs, batch in zip(fixture_a["outputs"]["validation_inputs"], validation["batches"], strict=True):
        dataset = inputs["dataset"]
        task, classes, head = _head(fixture_a, dataset)
        num_classes[dataset] = {task: classes}
        frames = inputs["frames"]
        by_context = _rollouts_by_context(batch)
        assert sorted(by_context) == sorted(validation["eval_ctx_lens"])
        for ctx, by_horizon in by_context.items():
            assert sorted(by_horizon) == sorted(validation["eval_horizons"])
            horizons = {f"h{h}": h for h in sorted(by_horizon)}
            protocol = dataclasses.replace(
                load_protocol(), name="fixture", version="0", clip_length=frames.shape[1], context_length=ctx,
                horizons=horizons, loss_beta=beta, default_num_samples=samples,
            )
            model = Replay(feature_space)
            model.rollouts = {h: rollout for h, (rollout, _) in by_horizon.items()}
            evaluator = Evaluator(model, feature_space, {task: head}, protocol, num_samples=samples, horizons=list(horizons))
            clips = [
                evaluator.encode(Clip(f"{dataset}-{int(i)}", frames[b], inputs["timestamps"][b], {task: inputs["labels"][b]}))
                for b, i in enumerate(inputs["sample_idx"])
            ]
            # the best sample the reference chose, per crop and horizon
            features = torch.cat([c.features for c in clips])
            for window in evaluator.windows():
                rollout, captured = by_horizon[len(window.targets)]
                _, index = best_of(rollout, features[:, list(window.targets)], beta)
                assert torch.equal(index, captured["best_idx"])
            records.setdefault((dataset, ctx), []).extend(finalize_stats(r) for r in evaluator.evaluate(clips))

    expected = validation["metrics_final"]
    found = {}
    for (dataset, ctx), recs in records.items():
        for entry in aggregate(recs, num_classes[dataset]):
            if entry["stat"] == "ensemble":  # the samples' scores: beyond what the reference computes
                continue
            task = "seg_miou" if entry["metric"] == "miou" else "depth_rmse"
            key = f"{dataset}/c{ctx}_{entry['horizon']}_t{entry['step']}_{task}_{entry['stat']}"
            found[key] = entry["value"] / (100.0 if entry["metric"] == "miou" else 1.0)
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert abs(found[key] - value.item()) < 1e-5, (key, found[key], value.item())


def test_backbone_features_of_the_validation_crops_drive_the_best_choice(fixture_a):
    # Guards the test above against a vacuous pass: the chosen samples differ across crops.
    chosen = torch.cat([c["best_idx"] for b in fixture_a["outputs"]["validation_deltaworld"]["batches"] for c in b["captured"]])
    assert len(set(chosen.tolist())) > 1
