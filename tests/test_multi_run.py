"""`dfbench run` with several models and data sets: one pass over the clips, the numbers of separate runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


import dfbench.multi_run
from dfbench.demo import demo_models
from dfbench.registry import register_model
from dfbench.result_store import latest_result_path
from dfbench.run_pairs import runnable_models
from test_run import NoisyCopy

BASE = ["--dataset", "synthetic", "--limit", "2", "--num-samples", "2", "--no-progress"]
MODELS = ("copy-last", "dino-world-bom", "deltaworld")


@register_model("test-multi-interrupt")
class InterruptingCopy(NoisyCopy):
    """Copy-last plus noise; interrupted (Ctrl-C) once ``fail_after`` predictions are made."""

    calls = 0
    fail_after: int | None = None


def record_lines(out: Path, model: str, dataset: str = "synthetic") -> list[str]:
    """The records file's header and record lines, byte for byte (state lines hold wall times)."""
    result = latest_result_path(out, dataset, model)
    records = result.with_name(json.loads(result.read_text())["records"])
    return [line for line in records.read_text().splitlines() if not line.startswith('{"state"')]


def metrics(out: Path, model: str, dataset: str = "synthetic") -> list:
    return json.loads(latest_result_path(out, dataset, model).read_text())["metrics"]


def test_several_models_share_each_clip_and_match_separate_runs_byte_for_byte(dfbench_cli, tmp_path, monkeypatch):
    for model in MODELS:
        result = dfbench_cli("run", "--model", model, *BASE, "--output-dir", str(tmp_path / "single"))
        assert result.code == 0, result.err
    encoded = []
    real_encode = dfbench.multi_run.encode_clips

    def counting_encode(clips, *args, **kwargs):
        encoded.extend(clip.sample_id for clip in clips)
        return real_encode(clips, *args, **kwargs)

    monkeypatch.setattr(dfbench.multi_run, "encode_clips", counting_encode)
    result = dfbench_cli("run", "--model", ",".join(MODELS), *BASE, "--output-dir", str(tmp_path / "multi"))
    assert result.code == 0, result.err
    assert len(encoded) == 2 and len(set(encoded)) == 2  # each clip through the backbone once for all models
    for model in MODELS:
        assert record_lines(tmp_path / "multi", model) == record_lines(tmp_path / "single", model)
        assert metrics(tmp_path / "multi", model) == metrics(tmp_path / "single", model)
        assert f"{model} on synthetic" in result.out
    assert result.out.count("wrote ") == len(MODELS)


def test_each_result_resumes_and_is_reported_on_its_own(dfbench_cli, tmp_path):
    out = str(tmp_path / "out")
    assert dfbench_cli("run", "--model", "copy-last", *BASE, "--output-dir", out).code == 0
    InterruptingCopy.calls, InterruptingCopy.fail_after = 0, 2  # two windows per clip: dies on the second clip
    try:
        interrupted = dfbench_cli("run", "--model", "copy-last,test-multi-interrupt,present", *BASE, "--output-dir", out)
    finally:
        InterruptingCopy.fail_after = None
    assert interrupted.code == 130
    folder = tmp_path / "out" / "synthetic"
    assert not list((folder / "test-multi-interrupt").glob("*.json"))
    assert not list(folder.glob("*/*.lock"))
    for model in ("test-multi-interrupt", "present"):  # both have the first clip's record, neither a result
        (partial,) = (folder / model).glob("*.records.jsonl.partial")
        assert sum('"sample_id"' in line for line in partial.read_text().splitlines()) == 1

    InterruptingCopy.calls = 0
    resumed = dfbench_cli("run", "--model", "copy-last,test-multi-interrupt,present", *BASE, "--output-dir", out)
    assert resumed.code == 0, resumed.err
    assert "already computed" in resumed.out and resumed.out.count("1 of 2 clips resumed") == 2
    assert InterruptingCopy.calls == 2  # only the second clip, two windows
    for model in ("test-multi-interrupt", "present"):
        straight = dfbench_cli("run", "--model", model, *BASE, "--output-dir", str(tmp_path / model))
        assert straight.code == 0, straight.err
        assert record_lines(tmp_path / "out", model) == record_lines(tmp_path / model, model)


def test_options_of_one_model_or_data_set_are_refused_with_several(dfbench_cli, tmp_path):
    checkpoint = tmp_path / "weights.safetensors"
    checkpoint.write_bytes(b"")
    several_models = dfbench_cli("run", "--model", "copy-last,dino-world", *BASE, "--checkpoint", str(checkpoint),
                                 "--output-dir", str(tmp_path))
    assert several_models.code == 2 and len(several_models.err.strip().splitlines()) == 1
    assert "--checkpoint applies to one model" in several_models.err
    several_sets = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthetic,kitti", "--dataset-arg",
                               "num_clips=3", "--output-dir", str(tmp_path), "--no-progress")
    assert several_sets.code == 2 and "--dataset-arg applies to one data set" in several_sets.err
    unknown = dfbench_cli("run", "--model", "copy-last,copy-lats", *BASE, "--output-dir", str(tmp_path))
    assert unknown.code == 2 and "copy-lats" in unknown.err
    assert not (tmp_path / "synthetic").exists()


def test_a_bad_root_of_a_later_data_set_fails_before_anything_is_computed(dfbench_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no data.yaml of the machine's
    monkeypatch.setenv("CITYSCAPES_ROOT", str(tmp_path / "cityscapes"))
    (tmp_path / "cityscapes").mkdir()  # exists, but holds neither leftImg8bit_sequence/ nor gtFine/
    encoded = []
    monkeypatch.setattr(dfbench.multi_run, "encode_clips", lambda clips, *a, **k: encoded.extend(clips))
    result = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthetic,cityscapes", "--limit", "1",
                         "--no-progress", "--output-dir", str(tmp_path / "out"))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "cityscapes" in result.err and str(tmp_path / "cityscapes") in result.err
    assert encoded == [] and not (tmp_path / "out" / "synthetic").exists()


def test_all_is_every_model_with_weights_for_the_feature_space(tmp_path):
    assert set(demo_models()) <= set(runnable_models("tiny"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    # Offline with an empty hub cache, the released ViT-B weights are out of reach: not part of 'all'.
    offline = subprocess.run([sys.executable, "-c", "from dfbench.run_pairs import runnable_models as r;"
                              "print(','.join(r('dinov3-vitb16')))"], env=env, capture_output=True, text=True)
    assert offline.returncode == 0, offline.stderr
    assert "copy-last" in offline.stdout.split(",") and "deltaworld" not in offline.stdout

    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "dfbench", "run", "--model", "all", *BASE, "--limit", "1",
                          "--output-dir", str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    evaluated = {p.name for p in (out / "synthetic").iterdir()}
    assert set(demo_models()) <= evaluated <= set(runnable_models("tiny"))
