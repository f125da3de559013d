"""A separately installed package's adapter is found through the entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.plugin_packages import install_plugin

MODULE = '''
"""A third-party adapter: copy-last under another name."""
from dfbench.adapters.base import Forecast, WorldModel


class PluginLast(WorldModel):
    stochastic = False

    def predict(self, context, target_timestamps, num_samples):
        last = context.features[:, -1][:, None, None]
        return Forecast(last.expand(-1, 1, target_timestamps.shape[1], -1, -1))
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """Builds the example package and installs it into its own site folder with pip."""
    return install_plugin(tmp_path_factory.mktemp("plugin"), "dfbench_plugin_example",
                          {"__init__.py": textwrap.dedent(MODULE)}, "dfbench.adapters",
                          "plugin-last", "dfbench_plugin_example:PluginLast")


def _dfbench(site, *args, cwd):
    paths = [str(site)] if site else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    return subprocess.run(
        [sys.executable, "-c", "from dfbench.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=cwd,
    )


def test_installed_plugin_is_listed_and_runs(plugin_site, tmp_path):
    listed = _dfbench(plugin_site, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "plugin-last" in listed.stdout
    ran = _dfbench(plugin_site, "run", "--model", "plugin-last", "--dataset", "synthetic", "--limit", "2",
                   "--output-dir", str(tmp_path), "--no-progress", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    from dfbench.result_store import latest_result_path

    payload = json.loads(latest_result_path(tmp_path, "synthetic", "plugin-last").read_text())
    assert payload["model"] == "plugin-last" and payload["metrics"]


def test_without_the_package_the_name_is_unknown(tmp_path):
    missing = _dfbench(None, "run", "--model", "plugin-last", "--dataset", "synthetic", cwd=tmp_path)
    assert missing.returncode == 2 and "unknown model 'plugin-last'" in missing.stderr
