"""The same seed gives the same records and metrics at any ``--batch-size`` (README, issue 13).

Run through the real CLI on the synthetic world with the shipped tiny models that batched
kernels used to perturb: DeltaWorld's tokenizer and predictor (about 1e-8 on rmse between
batch sizes 1 and 2), and the DPT heads DINO-Foresight's protocol reads out with (one mIoU
pixel flipped on the first six clips at batch size 3).
"""

from __future__ import annotations

import json

import pytest

from dfbench.result_store import latest_result_path

LIMIT = "6"  # the sixth clip holds the pixel a DPT head flipped at batch size 3


def _run(dfbench_cli, out, model, protocol, batch):
    args = ["run", "--model", model, "--dataset", "synthetic", "--limit", LIMIT, "--num-samples", "3",
            "--batch-size", batch, "--output-dir", str(out), "--no-progress"]
    result = dfbench_cli(*args, *(["--protocol", protocol] if protocol else []))
    assert result.code == 0, result.err
    path = latest_result_path(out, "synthetic", model, protocol)
    payload = json.loads(path.read_text())
    # State lines carry the compute time; the header and every clip's statistics must match byte for byte.
    lines = path.with_name(payload["records"]).read_text().splitlines()
    return payload["metrics"], [line for line in lines if not line.startswith('{"state"')]


@pytest.mark.parametrize(
    ("model", "protocol"),
    [("deltaworld", None), ("deltaworld-frame", None), ("deltaworld-nobom", None), ("dino-foresight", "dinoforesight")],
)
def test_batch_size_changes_no_bit_of_the_records_or_metrics(dfbench_cli, tmp_path, model, protocol):
    metrics_one, records_one = _run(dfbench_cli, tmp_path / "one", model, protocol, "1")
    metrics_three, records_three = _run(dfbench_cli, tmp_path / "three", model, protocol, "3")
    assert len(records_one) == 1 + int(LIMIT)
    assert records_three == records_one
    assert metrics_three == metrics_one
