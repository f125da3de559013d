"""Shared helpers: run the real CLI in-process and capture its exit code and output."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from dfbench.cli import main


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
