"""Maps the top-level folders into the single ``dfbench`` import namespace.

The repository keeps ``benchmark/``, ``adapters/``, ``heads/`` and ``configs/`` at the
top level, but nothing is installed under those generic names: every folder becomes
a subpackage of ``dfbench``. Metadata lives in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "dfbench": "benchmark",
    "dfbench.adapters": "adapters",
    "dfbench.heads": "heads",
    "dfbench.configs": "configs",
    "dfbench.reference": "results/reference",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in ROOTS.items():
        root = Path(folder)
        for sub in sorted([root, *[p for p in root.rglob("*") if p.is_dir()]]):
            if "__pycache__" in sub.parts:
                continue
            rel = sub.relative_to(root).parts
            pkg = ".".join((name, *rel))
            packages.append(pkg)
            package_dir[pkg] = str(sub)
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={pkg: ["*.yaml", "*.safetensors", "*.csv", "*.json", "*.txt"] for pkg in PACKAGES},
    include_package_data=True,
)
