"""Shared helpers: run the real CLI in-process, and find the reference files beside the clone."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dfbench.cli import main

# CI keeps ../shared beside the clone.
REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"


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


@pytest.fixture(scope="session")
def reference_file() -> Callable[[str], Path]:
    """Returns the path of a file of ``../shared/reference``; skips the test when it is absent."""

    def path(name: str) -> Path:
        file = REFERENCE / name
        if not file.is_file():
            pytest.skip(f"reference file {name} not found in {REFERENCE} (CI keeps ../shared beside the clone)")
        return file

    return path
