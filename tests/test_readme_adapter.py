"""The README's "adding an adapter" example is real code that runs as written."""

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "@register_model" in b]
    return block


def test_readme_adapter_registers_and_runs(dfbench_cli, tmp_path):
    namespace: dict = {}
    exec(compile(_example(), "README.md", "exec"), namespace)
    result = dfbench_cli("run", "--model", "linear-extrapolation", "--dataset", "synthetic", "--limit", "2",
                         "--num-samples", "3", "--output-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    from dfbench.result_store import latest_result_path

    payload = json.loads(latest_result_path(tmp_path, "synthetic", "linear-extrapolation").read_text())
    assert {m["stat"] for m in payload["metrics"]} == {"best", "mean", "ensemble"}  # ensemble: the sample scores
