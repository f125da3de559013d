"""Run identity: a result's numbers always belong to the inputs that made them, nothing finished is lost."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from dfbench.adapters.base import Forecast, WorldModel, randn_rows
from dfbench.heads.catalog import head_source
from dfbench.record_log import read_records
from dfbench.registry import register_model
from dfbench.result_store import LATEST, latest_result_path, load_all

# Three clips make a complete synthetic result that takes seconds.
SMALL = ("--dataset", "synthetic", "--dataset-arg", "num_clips=3", "--no-progress")


@register_model("test-scaled-copy")
class ScaledCopy(WorldModel):
    """Copy-last scaled by an option, to show --model-arg reaches the constructor."""

    def __init__(self, feature_space, checkpoint=None, scale: float = 1.0) -> None:
        super().__init__(feature_space, checkpoint)
        self.scale = scale

    def predict(self, context, target_timestamps, num_samples):
        last = context.features[:, -1][:, None, None] * self.scale
        return Forecast(last.repeat(1, 1, target_timestamps.shape[1], 1, 1))


@register_model("test-noisy-identity")
class Noisy(WorldModel):
    stochastic = True

    def predict(self, context, target_timestamps, num_samples):
        last = context.features[:, -1][:, None, None]
        noise = randn_rows(context.generators, (num_samples, target_timestamps.shape[1], *last.shape[-2:]))
        return Forecast(last + 0.5 * noise)


def _run(cli, out: Path, *args: str, model: str = "copy-last"):
    return cli("run", "--model", model, *SMALL, "--output-dir", str(out), *args)


def _latest(out: Path, model: str = "copy-last") -> dict:
    return json.loads(latest_result_path(out, "synthetic", model).read_text())


def _values(payload: dict) -> dict:
    return {(m["metric"], m["horizon"], m["stat"]): m["value"] for m in payload["metrics"]}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.json") if p.name != LATEST}


def test_other_weights_at_the_same_path_give_fresh_numbers(dfbench_cli, tmp_path):
    head = tmp_path / "seg.safetensors"
    state = load_file(head_source("tiny", "synthetic", "seg"))
    save_file(state, head)
    assert _run(dfbench_cli, tmp_path / "out", "--head", f"seg={head}").code == 0
    first = _latest(tmp_path / "out")
    save_file({k: (-v if v.is_floating_point() else v) for k, v in state.items()}, head)  # retrained in place
    rerun = _run(dfbench_cli, tmp_path / "out", "--head", f"seg={head}")
    assert rerun.code == 0 and "0 of 3 clips resumed" in rerun.out
    second = _latest(tmp_path / "out")
    assert second["identity"]["weights"]["head/seg"] != first["identity"]["weights"]["head/seg"]
    assert second["provenance"]["checkpoints"]["heads"]["seg"]["sha256"] == second["identity"]["weights"]["head/seg"]
    assert _values(second)[("miou", "mid", "single")] != _values(first)[("miou", "mid", "single")]
    assert _values(second)[("rmse", "mid", "single")] == _values(first)[("rmse", "mid", "single")]
    assert len(load_all(tmp_path / "out")) == 2  # the first result is still there


def test_limit_seed_and_samples_never_replace_a_finished_result(dfbench_cli, tmp_path):
    out, model = tmp_path / "out", "test-noisy-identity"
    assert _run(dfbench_cli, out, "--num-samples", "3", model=model).code == 0
    folder = out / "synthetic" / model
    complete = _snapshot(folder)
    (name,) = complete

    partial = _run(dfbench_cli, out, "--num-samples", "3", "--limit", "2", model=model)
    assert partial.code == 0 and "partial" in partial.out and "tables keep reading" in partial.out
    assert json.loads((folder / LATEST).read_text())["result"] == name  # a partial never displaces a complete one
    for args in (("--num-samples", "3", "--seed", "1"), ("--num-samples", "2")):
        assert _run(dfbench_cli, out, *args, model=model).code == 0
    results = {p.name: r for p, r in load_all(out)}
    assert len(results) == 4 and all(folder.joinpath(n).read_bytes() == b for n, b in complete.items())
    assert sorted((r.identity.seed, r.identity.num_samples, r.identity.limit or 0, r.complete)
                  for r in results.values()) == [(0, 2, 0, True), (0, 3, 0, True), (0, 3, 2, False), (1, 3, 0, True)]
    for path, result in load_all(out):  # every result's records are its own
        identity, records = read_records(path.with_name(result.records))
        assert identity == result.identity and len(records) == result.num_clips
    # The same identity again is reported, not recomputed.
    again = _run(dfbench_cli, out, "--num-samples", "3", model=model)
    assert again.code == 0 and "already computed" in again.out and _snapshot(folder)[name] == complete[name]


def test_model_and_dataset_args_reach_the_constructors_and_the_identity(dfbench_cli, tmp_path):
    assert _run(dfbench_cli, tmp_path, model="test-scaled-copy").code == 0
    assert _run(dfbench_cli, tmp_path, "--model-arg", "scale=0.5", model="test-scaled-copy").code == 0
    payload = _latest(tmp_path, "test-scaled-copy")
    assert payload["identity"]["model_options"] == {"scale": 0.5}
    assert payload["identity"]["dataset_options"] == {"num_clips": 3} and payload["num_clips"] == 3
    (plain,) = [r for _, r in load_all(tmp_path) if not r.identity.model_options]
    assert plain.identity.to_json() != payload["identity"]
    assert _values(payload)[("rmse", "mid", "single")] != plain.headline_values()[("rmse", "mid", "single")]


def test_feature_cache_key_includes_the_feature_space_weights(dfbench_cli, tmp_path):
    from dfbench.features.tiny import TINY_FOLDER

    other = tmp_path / "tiny-other"
    other.mkdir()
    for file in TINY_FOLDER.iterdir():
        other.joinpath(file.name).write_bytes(file.read_bytes())
    weights = load_file(other / "model.safetensors")
    save_file({k: v * 1.01 if v.is_floating_point() else v for k, v in weights.items()}, other / "model.safetensors",
              metadata={"format": "pt"})
    cache = tmp_path / "cache"
    args = ("--limit", "1", "--feature-cache", str(cache))
    assert _run(dfbench_cli, tmp_path / "a", *args).code == 0
    assert _run(dfbench_cli, tmp_path / "b", *args, "--feature-space-path", str(other)).code == 0
    assert len(list(cache.rglob("*.safetensors"))) == 2  # the other weights never read the first weights' features
    a, b = _latest(tmp_path / "a"), _latest(tmp_path / "b")
    assert a["identity"]["weights"]["feature_space"] != b["identity"]["weights"]["feature_space"]
    assert _values(a) != _values(b)


def test_umask_is_honoured_for_every_file_written(dfbench_cli, tmp_path):
    import os

    from dfbench.heads.catalog import build_head, save_head
    from dfbench.tables import write_main_table

    old = os.umask(0o002)
    try:
        assert _run(dfbench_cli, tmp_path, "--limit", "1").code == 0
        write_main_table(tmp_path)
        save_head(build_head("seg", 8, 3), tmp_path / "heads" / "seg.safetensors", {"task": "seg"})
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 6
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o664)}


def test_hf_download_command_exists_in_the_installed_huggingface_hub():
    from importlib.metadata import distribution

    scripts = {e.name for e in distribution("huggingface_hub").entry_points if e.group == "console_scripts"}
    assert "hf" in scripts
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "hf download" in readme and "huggingface-cli" not in readme


def test_records_line_format_is_typed(tmp_path):
    from dfbench.record_log import RecordLog
    from dfbench.schema import RunIdentity

    identity = RunIdentity(model="m", dataset="d", dataset_version="1", feature_space="f", protocol="p",
                           protocol_version="1", seed=0, num_samples=1, horizons=("short",), precision="fp32",
                           limit=None, numerics_version=1)
    log = RecordLog(tmp_path / "r.records.jsonl", identity)
    assert not list(tmp_path.iterdir())  # nothing is written before the first record
    log.append([{"sample_id": "a", "stats": {"seg/short/0/single": {"confusion": []}}}], 1.5)
    log.append([{"sample_id": "b", "stats": {}}], 2.5)
    again = RecordLog(tmp_path / "r.records.jsonl", identity)
    assert set(again.records) == {"a", "b"} and again.prior_wall_time_s == 2.5 and again.prior_invocations == 1


def test_records_of_another_identity_are_never_read(tmp_path):
    from dataclasses import replace

    from dfbench.record_log import RecordLog
    from dfbench.schema import RunIdentity

    seed0 = RunIdentity(model="m", dataset="d", dataset_version="1", feature_space="f", protocol="p",
                        protocol_version="1", seed=0, num_samples=20, horizons=("short",), precision="fp32",
                        limit=None, numerics_version=1)
    path = tmp_path / "r.records.jsonl"
    RecordLog(path, seed0).append([{"sample_id": "a", "stats": {}}], 1.0)
    other = RecordLog(path, replace(seed0, seed=1))  # e.g. a file copied or renamed by hand
    assert other.records == {} and "records of another run (seed differ)" in other.notes[0]
    assert seed0.slug() != replace(seed0, seed=1).slug() and seed0.slug().startswith("seed0-n20-fp32-all-")
