"""`dfbench run` end to end on the embedded synthetic benchmark."""

from __future__ import annotations

import json

import pytest
import torch

from dfbench.adapters.base import Context, Forecast, WorldModel, randn_rows
from dfbench.registry import register_model
from dfbench.record_log import read_records
from dfbench.result_store import latest_result_path

LIMIT = "6"


@register_model("test-noisy-copy")
class NoisyCopy(WorldModel):
    """A stochastic model: copy-last plus per-row noise from the harness's generators."""

    stochastic = True
    calls = 0
    fail_after: int | None = None

    def predict(self, context: Context, target_timestamps: torch.Tensor, num_samples: int) -> Forecast:
        type(self).calls += 1
        if self.fail_after is not None and type(self).calls > self.fail_after:
            raise KeyboardInterrupt
        last = context.features[:, -1][:, None, None]
        steps = target_timestamps.shape[1]
        noise = randn_rows(context.generators, (num_samples, steps, *last.shape[-2:]))
        return Forecast(last + 0.5 * noise)


@register_model("test-nan")
class NaNModel(WorldModel):
    def predict(self, context, target_timestamps, num_samples):
        out = context.features[:, -1][:, None, None].repeat(1, 1, target_timestamps.shape[1], 1, 1)
        out[0, 0, 0, 0, 0] = float("nan")
        return Forecast(out)


@register_model("test-bad-shape")
class BadShape(WorldModel):
    def predict(self, context, target_timestamps, num_samples):
        return Forecast(context.features[:, -1:][:, None])  # one step, whatever the horizon


def _latest(out, model, dataset="synthetic"):
    return latest_result_path(out, dataset, model)


def _metrics(out, model):
    return json.loads(_latest(out, model).read_text())["metrics"]


def test_copy_last_and_present_write_the_results_schema(dfbench_cli, tmp_path):
    for model in ("copy-last", "present"):
        result = dfbench_cli("run", "--model", model, "--dataset", "synthetic", "--limit", LIMIT,
                             "--output-dir", str(tmp_path), "--no-progress")
        assert result.code == 0, result.err
        payload = json.loads(_latest(tmp_path, model).read_text())
        assert payload["model"] == model and payload["dataset"] == "synthetic" and payload["num_samples"] == 1
        assert {(m["metric"], m["horizon"], m["stat"]) for m in payload["metrics"]} == {
            (metric, horizon, "single") for metric in ("miou", "rmse") for horizon in ("short", "mid")
        }
        prov = payload["provenance"]
        assert prov["feature_space"] == "tiny" and prov["protocol"]["version"] and prov["seed"] == 0
        assert set(prov["checkpoints"]["heads"]) == {"seg", "depth"}
        assert all(len(h["sha256"]) == 64 for h in prov["checkpoints"]["heads"].values())
        assert payload["partial"] is True and payload["identity"]["limit"] == int(LIMIT)
        header, records = read_records(_latest(tmp_path, model).with_name(payload["records"]))
        assert header.model == model and len(records) == int(LIMIT)
    present = {(m["metric"], m["horizon"]): m["value"] for m in _metrics(tmp_path, "present")}
    copy = {(m["metric"], m["horizon"]): m["value"] for m in _metrics(tmp_path, "copy-last")}
    assert present[("miou", "mid")] > copy[("miou", "mid")]
    assert present[("rmse", "mid")] < copy[("rmse", "mid")]


def test_stochastic_model_gets_best_and_mean_and_is_batch_size_invariant(dfbench_cli, tmp_path):
    outs = []
    for batch in ("1", "4"):
        out = tmp_path / batch
        result = dfbench_cli("run", "--model", "test-noisy-copy", "--dataset", "synthetic", "--limit", LIMIT,
                             "--num-samples", "5", "--batch-size", batch, "--output-dir", str(out), "--no-progress")
        assert result.code == 0, result.err
        outs.append(json.loads(_latest(out, "test-noisy-copy").read_text()))
    assert outs[0]["metrics"] == outs[1]["metrics"]
    assert {m["stat"] for m in outs[0]["metrics"]} == {"best", "mean", "ensemble"}
    scores = {m["metric"] for m in outs[0]["metrics"] if m["stat"] == "ensemble"}
    assert scores == {"energy", "energy_skill", "energy_spread", "spread_skill", *(f"best_of_{k}" for k in range(1, 6))}
    best = {(m["metric"], m["horizon"]): m["value"] for m in outs[0]["metrics"] if m["stat"] == "best"}
    mean = {(m["metric"], m["horizon"]): m["value"] for m in outs[0]["metrics"] if m["stat"] == "mean"}
    assert best != mean


def test_another_seed_gives_other_samples(dfbench_cli, tmp_path):
    values = []
    for seed in ("0", "1"):
        dfbench_cli("run", "--model", "test-noisy-copy", "--dataset", "synthetic", "--limit", "3", "--num-samples", "3",
                    "--seed", seed, "--output-dir", str(tmp_path / seed), "--no-progress")
        values.append(_metrics(tmp_path / seed, "test-noisy-copy"))
    assert values[0] != values[1]


def test_interrupted_run_resumes_without_recomputing_and_matches(dfbench_cli, tmp_path):
    args = ["run", "--model", "test-noisy-copy", "--dataset", "synthetic", "--limit", LIMIT, "--num-samples", "4",
            "--batch-size", "2", "--no-progress"]
    assert dfbench_cli(*args, "--output-dir", str(tmp_path / "straight")).code == 0
    NoisyCopy.calls, NoisyCopy.fail_after = 0, 3  # dies during the second batch (2 windows per batch)
    try:
        result = dfbench_cli(*args, "--output-dir", str(tmp_path / "resumed"))
    finally:
        NoisyCopy.fail_after = None
    assert result.code == 130 and "resume" in result.err
    out = tmp_path / "resumed" / "synthetic" / "test-noisy-copy"
    assert not list(out.glob("*.json"))
    (partial,) = out.glob("*.records.jsonl.partial")
    lines = [json.loads(line) for line in partial.read_text().splitlines()]
    assert "header" in lines[0] and sum("sample_id" in line for line in lines) == 2  # the first batch's two clips
    NoisyCopy.calls = 0
    resumed = dfbench_cli(*args, "--output-dir", str(tmp_path / "resumed"))
    assert resumed.code == 0 and "2 of 6 clips resumed" in resumed.out
    assert NoisyCopy.calls == 2 * 2  # only the remaining two batches, two windows each
    assert _metrics(tmp_path / "resumed", "test-noisy-copy") == _metrics(tmp_path / "straight", "test-noisy-copy")
    assert not partial.exists() and not list(out.glob("*.lock"))
    # The compute of both invocations is summed.
    payload = json.loads(_latest(tmp_path / "resumed", "test-noisy-copy").read_text())
    assert payload["provenance"]["invocations"] == 2 and payload["resumed_clips"] == 2


@pytest.mark.parametrize(
    ("model", "message"), [("test-nan", "non-finite"), ("test-bad-shape", "shape")]
)
def test_bad_predictions_fail_cleanly_and_keep_existing_results(dfbench_cli, tmp_path, model, message):
    out = tmp_path / "synthetic" / model
    out.mkdir(parents=True)
    existing = out / "latest.json"
    existing.write_text('{"kept": true}')
    result = dfbench_cli("run", "--model", model, "--dataset", "synthetic", "--limit", "2",
                         "--output-dir", str(tmp_path), "--no-progress")
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert existing.read_text() == '{"kept": true}'
    assert sorted(p.name for p in out.iterdir()) == ["latest.json"]  # no records, no lock left


def test_unknown_model_and_dataset_suggest_the_nearest_name(dfbench_cli, tmp_path):
    result = dfbench_cli("run", "--model", "copy-lst", "--dataset", "synthetic", "--output-dir", str(tmp_path))
    assert result.code == 2 and "copy-last" in result.err and len(result.err.strip().splitlines()) == 1
    result = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthtic", "--output-dir", str(tmp_path))
    assert result.code == 2 and "synthetic" in result.err
    assert not any(tmp_path.rglob("*.json"))


def test_unwritable_output_dir_is_refused_before_any_compute(dfbench_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthetic", "--output-dir", str(blocker / "out"))
    assert result.code == 2 and "--output-dir" in result.err


def test_missing_data_root_names_the_fix(dfbench_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("KITTI_ROOT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = dfbench_cli("run", "--model", "copy-last", "--dataset", "kitti", "--feature-space", "tiny",
                         "--data-root", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "out"))
    assert result.code == 2 and "nowhere" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_disk_feature_cache_gives_the_same_numbers(dfbench_cli, tmp_path):
    args = ["run", "--model", "present", "--dataset", "synthetic", "--limit", "3", "--no-progress"]
    assert dfbench_cli(*args, "--output-dir", str(tmp_path / "plain")).code == 0
    cache = tmp_path / "cache"
    assert dfbench_cli(*args, "--output-dir", str(tmp_path / "cold"), "--feature-cache", str(cache)).code == 0
    assert len(list(cache.rglob("*.safetensors"))) == 3
    assert dfbench_cli(*args, "--output-dir", str(tmp_path / "warm"), "--feature-cache", str(cache)).code == 0
    plain = _metrics(tmp_path / "plain", "present")
    assert _metrics(tmp_path / "cold", "present") == plain
    assert _metrics(tmp_path / "warm", "present") == plain
