"""`--compile`: the networks compiled in place, and the result kept apart from uncompiled ones."""

from __future__ import annotations

import json

import pytest

from dfbench.gpu import blocks, compile_networks
from dfbench.result_store import latest_result_path
from dfbench.run import RunOptions
from dfbench.run_prepare import prepare


def test_compiling_marks_the_identity_and_the_feature_cache_key():
    prep = prepare(RunOptions(model="dino-world", dataset="synthetic", limit=1))
    plain_slug, plain_key = prep.identity.slug(), prep.cache_key
    compiled: set[int] = set()
    compile_networks(prep, compiled)
    assert prep.identity.precision == "fp32+compile" and prep.identity.slug() != plain_slug
    assert prep.cache_key == (*plain_key, "compiled")
    predictor_blocks = blocks(prep.model.net)
    assert len(predictor_blocks) > 1 and all(b._compiled_call_impl is not None for b in predictor_blocks)
    assert all(b._compiled_call_impl is not None for head in prep.heads.values() for b in blocks(head))
    assert prep.model.net._compiled_call_impl is None  # driven through rollout(), not __call__
    compile_networks(prep, compiled)  # a second model on the same prepared parts: recorded once
    assert prep.identity.precision == "fp32+compile"


@pytest.mark.slow
def test_a_compiled_run_is_a_result_of_its_own_with_close_numbers(dfbench_cli, tmp_path):
    args = ["run", "--model", "copy-last", "--dataset", "synthetic", "--limit", "1", "--no-progress",
            "--output-dir", str(tmp_path)]
    assert dfbench_cli(*args).code == 0
    plain = json.loads(latest_result_path(tmp_path, "synthetic", "copy-last").read_text())
    compiled_run = dfbench_cli(*args, "--compile")
    assert compiled_run.code == 0, compiled_run.err
    (path,) = (tmp_path / "synthetic" / "copy-last").glob("*+compile-*.json")
    compiled = json.loads(path.read_text())
    assert compiled["identity"]["precision"] == "fp32+compile"
    assert [m["value"] for m in compiled["metrics"]] == pytest.approx([m["value"] for m in plain["metrics"]], rel=1e-3)
