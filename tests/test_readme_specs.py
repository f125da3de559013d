"""The README's "Adding a model" spec and "Adding a data set" file are real code that runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfbench.result_store import latest_result_path
from tests.plugin_packages import install_plugin

README = Path(__file__).resolve().parents[1] / "README.md"
SEG_HEAD = str(files("dfbench.heads").joinpath("assets", "tiny-synthetic-seg.safetensors"))
NOBOM_PREDICTOR = str(files("dfbench.adapters").joinpath("assets", "tiny-deltaworld-nobom.safetensors"))


def _block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def write_png_clips(root: Path, clips: int = 2, frames: int = 7) -> Path:
    """A tree in the README example's layout: moving bands of 7 classes on 64x96 frames."""
    rng = np.random.default_rng(0)
    for c in range(clips):
        folder = root / f"clip-{c}"
        folder.mkdir(parents=True)
        for i in range(frames):
            classes = (np.arange(96)[None, :] // 14 + i + c + np.zeros((64, 1), int)) % 7
            colour = (classes[..., None] * 35 + rng.integers(0, 20, (64, 96, 3))).astype(np.uint8)
            Image.fromarray(colour).save(folder / f"frame-{i}.png")
            Image.fromarray(classes.astype(np.uint8), mode="L").save(folder / f"seg-{i}.png")
    return root


def test_readme_variant_is_one_spec_that_runs(dfbench_cli, tmp_path):
    from dfbench.adapters.spec import ModelSpec
    from dfbench.registry import get_model_class, get_model_spec, register_model_spec

    namespace: dict = {}
    exec(compile(_block("DELTAWORLD_FRAME_NOBOM = ModelSpec("), "README.md", "exec"), namespace)
    spec = namespace["DELTAWORLD_FRAME_NOBOM"]
    assert isinstance(spec, ModelSpec) and not spec.runs_offline("tiny")  # its weights are not trained yet
    register_model_spec(spec)
    assert get_model_spec("deltaworld-frame-nobom") is spec and get_model_class("deltaworld-frame-nobom").spec is spec
    result = dfbench_cli("run", "--model", "deltaworld-frame-nobom", "--dataset", "synthetic", "--limit", "1",
                         "--checkpoint", NOBOM_PREDICTOR, "--output-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    payload = json.loads(latest_result_path(tmp_path, "synthetic", "deltaworld-frame-nobom").read_text())
    assert payload["stochastic"] is False and {m["stat"] for m in payload["metrics"]} == {"single"}


def test_readme_dataset_registers_checks_and_runs(dfbench_cli, tmp_path):
    namespace: dict = {}
    exec(compile(_block("@register_dataset"), "README.md", "exec"), namespace)
    root = write_png_clips(tmp_path / "clips")
    ok = dfbench_cli("check-data", "--dataset", "png-clips", "--data-root", str(root), "--deep")
    assert ok.code == 0 and "png-clips is ready" in ok.out, ok.err
    # A class defined by exec cannot be pickled into decoding workers: decode in process.
    ran = dfbench_cli("run", "--model", "copy-last", "--dataset", "png-clips", "--data-root", str(root),
                      "--feature-space", "tiny", "--head", f"seg={SEG_HEAD}", "--output-dir", str(tmp_path / "out"),
                      "--num-workers", "0", "--no-progress")
    assert ran.code == 0, ran.err
    payload = json.loads(latest_result_path(tmp_path / "out", "png-clips", "copy-last").read_text())
    assert payload["num_clips"] == 2 and payload["complete"] and payload["metrics"]
    (root / "clip-1" / "seg-3.png").unlink()
    broken = dfbench_cli("check-data", "--dataset", "png-clips", "--data-root", str(root))
    assert broken.code == 2 and "1 problem" in broken.err and "seg-3.png" in broken.err


@pytest.fixture(scope="module")
def dataset_site(tmp_path_factory):
    """The README's data set file, built into a package and pip-installed into its own folder."""
    return install_plugin(tmp_path_factory.mktemp("dataset-plugin"), "dfbench_dataset_example",
                          {"clips.py": _block("@register_dataset")}, "dfbench.datasets",
                          "png-clips", "dfbench_dataset_example.clips:PngClips")


def _dfbench(site, *args, cwd, env_extra=None):
    paths = [str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", "from dfbench.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=cwd)


def test_an_installed_dataset_package_is_found_through_its_entry_point(dataset_site, tmp_path):
    root = write_png_clips(tmp_path / "clips")
    listed = _dfbench(dataset_site, "list", cwd=tmp_path)
    assert listed.returncode == 0 and "png-clips" in listed.stdout, listed.stderr
    # The root from the variable its spec names.
    checked = _dfbench(dataset_site, "check-data", "--dataset", "png-clips", cwd=tmp_path,
                       env_extra={"PNG_CLIPS_ROOT": str(root)})
    assert checked.returncode == 0 and "png-clips is ready" in checked.stdout, checked.stderr
    ran = _dfbench(dataset_site, "run", "--model", "copy-last", "--dataset", "png-clips", "--data-root", str(root),
                   "--feature-space", "tiny", "--head", f"seg={SEG_HEAD}", "--limit", "1",
                   "--output-dir", str(tmp_path / "out"), "--no-progress", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(latest_result_path(tmp_path / "out", "png-clips", "copy-last").read_text())["num_clips"] == 1
