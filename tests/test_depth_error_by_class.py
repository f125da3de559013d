"""scripts/depth_error_by_class.py: its per-class errors add up to the RMSE the run records."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from dfbench.result_store import latest_result_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from depth_error_by_class import class_errors  # noqa: E402


def test_class_errors_sum_to_the_recorded_rmse(dfbench_cli, tmp_path):
    models = ["copy-last", "deltaworld"]
    for model in models:
        result = dfbench_cli("run", "--model", model, "--dataset", "synthetic", "--limit", "2", "--horizons", "mid",
                             "--num-samples", "20", "--output-dir", str(tmp_path), "--no-progress")
        assert result.code == 0, result.err
    classes, errors, counts = class_errors(models, "synthetic", "mid", 2)
    assert classes[1] == "building" and counts[0] == 0  # sky has no valid depth
    for model in models:
        payload = json.loads(latest_result_path(tmp_path, "synthetic", model).read_text())
        stat = "best" if model == "deltaworld" else "single"
        (rmse,) = [m["value"] for m in payload["metrics"]
                   if (m["metric"], m["horizon"], m["stat"], m.get("step")) == ("rmse", "mid", stat, None)]
        assert math.isclose(math.sqrt(errors[model].sum() / counts.sum()), rmse, rel_tol=1e-6)
    assert not all(errors["copy-last"] == errors["deltaworld"])
