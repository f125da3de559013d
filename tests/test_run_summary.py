"""The table `dfbench run` prints at its end shows each metric as the tables do."""

import json
import re

from dfbench.formatting import format_number
from dfbench.result_store import latest_result_path
from dfbench.tasks import metric_defs


def test_headline_values_use_the_task_decimals(dfbench_cli, tmp_path):
    ran = dfbench_cli("run", "--model", "copy-last", "--dataset", "synthetic", "--limit", "1",
                      "--output-dir", str(tmp_path), "--no-progress")
    assert ran.code == 0, ran.err
    payload = json.loads(latest_result_path(tmp_path, "synthetic", "copy-last").read_text())
    decimals = {m.name: m.decimals for m in metric_defs()}
    printed = {(m, h): v for m, h, v in re.findall(r"│ (\w+)\s+│ (\w+)\s+│ single\s+│\s+([\d.]+) │", ran.out)}
    headline = [e for e in payload["metrics"] if "step" not in e]
    assert {(e["metric"], e["horizon"]) for e in headline} == set(printed)
    for entry in headline:
        assert printed[(entry["metric"], entry["horizon"])] == format_number(entry["value"], decimals[entry["metric"]])
