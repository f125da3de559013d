"""`dfbench train` checks its inputs before encoding any clip (that takes minutes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["predictor", "--config", str(CONFIGS / "tiny-deltaworld.yaml"), "--tokenizer", "{tmp}/typo.safetensors",
          "--out", "{tmp}/out"], "--tokenizer '{tmp}/typo.safetensors' does not exist"),
        (["predictor", "--config", str(CONFIGS / "tiny-deltaworld.yaml"), "--out", "{tmp}/file.txt/out"],
         "pass a writable --out"),
        (["tokenizer", "--config", str(CONFIGS / "tiny-deltatok.yaml"), "--out", "{tmp}/out",
          "--export", "{tmp}/file.txt/w.safetensors"], "pass a writable --export"),
        (["predictor", "--config", "{tmp}/broken.yaml", "--out", "{tmp}/out"], "is not valid (ParserError"),
    ],
)
def test_bad_train_inputs_fail_before_encoding(args, expected, dfbench_cli, tmp_path):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    (tmp_path / "broken.yaml").write_text("steps: [\n")
    started = time.perf_counter()
    result = dfbench_cli("train", *[a.format(tmp=tmp_path) for a in args])
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert expected.format(tmp=tmp_path) in result.err
    assert "encoded" not in result.out and time.perf_counter() - started < 30
    assert not (tmp_path / "out").exists()
