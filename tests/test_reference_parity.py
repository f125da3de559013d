"""End-to-end parity with the reference evaluation (tiny_fixture_a.pt).

The fixture holds validation batches of the reference code (Cityscapes-, VSPW- and
KITTI-shaped, overlapping and non-overlapping crops, odd label widths, invalid
pixels) with the rollouts it produced and the torchmetrics values it accumulated.
Replaying those rollouts through dfbench's crops, feature space, scoring, heads and
metrics must give every accumulated value.
"""

from pathlib import Path

import pytest
import torch

from dfbench.adapters.base import Context, Forecast, WorldModel
from dfbench.config import Protocol
from dfbench.data.base import Clip
from dfbench.evaluate import Evaluator, finalize_stats
from dfbench.features.dinov3 import Dinov3FeatureSpace
from dfbench.heads import DepthHead, SegHead
from dfbench.results import aggregate
from dfbench.scoring import best_of

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "tiny_fixture_a.pt"
pytestmark = pytest.mark.skipif(not FIXTURE.is_file(), reason="../shared/reference/tiny_fixture_a.pt is not beside the clone")

TASK = {"cityscapes": ("seg", 19, "seg_head_19"), "vspw": ("seg", 124, "seg_head_124"), "kitti": ("depth", 1, "depth_head")}


class Replay(WorldModel):
    """Returns the rollouts the reference produced for the current batch."""

    name = "replay"
    stochastic = True
    rollouts: list[torch.Tensor] = []

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        return Forecast(self.rollouts[target_timestamps.shape[1] - 1])


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture(scope="module")
def feature_space(fixture):
    return Dinov3FeatureSpace.from_config_and_state_dict(
        fixture["config"], fixture["state_dicts"]["backbone_hf"], frame_size=32, name="fixture"
    )


def _head(fixture, dataset):
    task, classes, key = TASK[dataset]
    head = SegHead(64, classes) if task == "seg" else DepthHead(64)
    head.load_state_dict(fixture["state_dicts"][key])
    return task, classes, head.eval()


def test_validation_runs_reproduce_every_accumulated_metric(fixture, feature_space):
    validation = fixture["outputs"]["validation_deltaworld"]
    ctx = validation["eval_ctx_lens"][0]
    horizons = {f"h{h}": h for h in validation["eval_horizons"]}
    records: dict[str, list] = {}
    num_classes: dict[str, dict[str, int]] = {}
    for inputs, batch in zip(fixture["outputs"]["validation_inputs"], validation["batches"]):
        dataset = inputs["dataset"]
        task, classes, head = _head(fixture, dataset)
        num_classes[dataset] = {task: classes}
        frames = inputs["frames"]
        protocol = Protocol("fixture", "0", frames.shape[1], ctx, horizons, 2.0, 0.1, 3)
        model = Replay(feature_space)
        model.rollouts = batch["all_rollouts"]
        evaluator = Evaluator(model, feature_space, {task: head}, protocol, num_samples=3, horizons=list(horizons))
        clips = [
            evaluator.encode(Clip(f"{dataset}-{int(i)}", frames[b], inputs["timestamps"][b], {task: inputs["labels"][b]}))
            for b, i in enumerate(inputs["sample_idx"])
        ]
        # the best sample the reference chose, per crop and horizon
        features = torch.cat([c.features for c in clips])
        for window, rollout, captured in zip(evaluator.windows(), batch["all_rollouts"], batch["captured"]):
            _, index = best_of(rollout, features[:, list(window.targets)])
            assert torch.equal(index, captured["best_idx"])
        records.setdefault(dataset, []).extend(finalize_stats(r) for r in evaluator.evaluate(clips))

    expected = validation["metrics_final"]
    found = {}
    for dataset, recs in records.items():
        for entry in aggregate(recs, num_classes[dataset]):
            task = "seg_miou" if entry["metric"] == "miou" else "depth_rmse"
            key = f"{dataset}/c{ctx}_{entry['horizon']}_t{entry['step']}_{task}_{entry['stat']}"
            found[key] = entry["value"] / (100.0 if entry["metric"] == "miou" else 1.0)
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert abs(found[key] - value.item()) < 1e-5, (key, found[key], value.item())


def test_backbone_features_of_the_validation_crops_drive_the_best_choice(fixture, feature_space):
    # Guards the test above against a vacuous pass: the chosen samples differ across crops.
    chosen = torch.cat([c["best_idx"] for b in fixture["outputs"]["validation_deltaworld"]["batches"] for c in b["captured"]])
    assert len(set(chosen.tolist())) > 1
