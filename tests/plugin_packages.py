"""Builds a tiny third-party package declaring one dfbench entry point, installed with pip into its own folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{project}"
version = "0.0.1"

[project.entry-points."{group}"]
{entry} = "{target}"
"""


def install_plugin(root: Path, package: str, modules: dict[str, str], group: str, entry: str, target: str) -> Path:
    """Writes ``package`` with ``modules`` (file name -> source) and pip-installs it; returns the site folder."""
    source = root / "src"
    (source / package).mkdir(parents=True)
    project = package.replace("_", "-")
    (source / "pyproject.toml").write_text(PYPROJECT.format(project=project, group=group, entry=entry, target=target))
    (source / package / "__init__.py").write_text("")
    for name, text in modules.items():
        (source / package / name).write_text(text)
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        check=True,
    )
    return site
