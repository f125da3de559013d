"""Shared helpers: run the real CLI in-process, and find the reference files beside the clone."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from dfbench.cli import main

# CI keeps ../shared beside the clone.
REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
# Names another fixture of the reference generator (other sizes) to run the parity tests on.
FIXTURE_A_VARIABLE = "DFBENCH_FIXTURE_A"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def dfbench_cli(capsys, monkeypatch):
    """Calls ``dfbench ARGS...`` through the console-script entry point."""

    def call(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["dfbench", *args])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call


@pytest.fixture
def offline_hub(monkeypatch, tmp_path) -> Path:
    """An empty Hugging Face cache under ``tmp_path`` with HF_HUB_OFFLINE set; returns the cache folder."""
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these variables once, at import.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture(scope="session")
def reference_file() -> Callable[[str], Path]:
    """Returns the path of a file of ``../shared/reference``; skips the test when it is absent."""

    def path(name: str) -> Path:
        file = REFERENCE / name
        if not file.is_file():
            pytest.skip(f"reference file {name} not found in {REFERENCE} (CI keeps ../shared beside the clone)")
        return file

    return path


def fixture_a_path() -> Path:
    """The reference fixture the parity tests replay: $DFBENCH_FIXTURE_A, else tiny_fixture_a.pt."""
    return Path(os.environ.get(FIXTURE_A_VARIABLE) or REFERENCE / "tiny_fixture_a.pt")


@functools.cache
def load_fixture_a() -> dict | None:
    """The fixture's inputs, weights, outputs and config, or None when the default one is absent.

    Loaded once per session: collection reads its config to parametrize tests by its sizes.
    """
    path = fixture_a_path()
    if not path.is_file():
        if FIXTURE_A_VARIABLE in os.environ:
            raise FileNotFoundError(f"{FIXTURE_A_VARIABLE}={path} is not a file")
        return None
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="session")
def fixture_a() -> dict:
    """A reference fixture: ``readme``, ``config`` (every size), ``state_dicts``, ``inputs``, ``outputs``."""
    fixture = load_fixture_a()
    if fixture is None:
        pytest.skip(f"reference fixture {fixture_a_path()} not found (CI keeps ../shared beside the clone)")
    return fixture


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``deltatok_horizon``: one test per horizon the fixture's tokenizer rollouts were made at."""
    if "deltatok_horizon" in metafunc.fixturenames:
        fixture = load_fixture_a()
        horizons = [] if fixture is None else list(fixture["config"]["deltatok_horizons"])
        metafunc.parametrize("deltatok_horizon", horizons)
