"""The command line's shape: every command answers --help without torch, `train head`
and its old spelling, and check-data over every data set name `run` takes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dfbench.cli import LAZY_COMMANDS, cli
from dfbench.registry import dataset_names

# Runs in a fresh interpreter: the test process has torch imported already. Every
# command and subcommand found by walking the group gets its --help, then `list`;
# the first one after which torch (or pandas) is loaded is named.
_PROBE = r"""
import json, sys
import click
from dfbench.cli import cli, main

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), [*path, name])

calls = [[*path, "--help"] for path in walk(cli, [])] + [["list"]]
report = {"calls": [], "heavy": {}}
for args in calls:
    sys.argv = ["dfbench", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    report["calls"].append([args, code])
    for heavy in ("torch", "pandas"):
        if heavy in sys.modules and heavy not in report["heavy"]:
            report["heavy"][heavy] = args
print("REPORT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    return json.loads(line.removeprefix("REPORT "))


def test_help_and_list_never_import_torch_or_pandas(probe):
    assert probe["heavy"] == {}, f"imported by 'dfbench {' '.join(next(iter(probe['heavy'].values())))}'"


def test_help_covers_every_command_and_exits_zero(probe):
    called = {" ".join(args[:-1]) for args, _ in probe["calls"] if args[-1] == "--help"}
    expected = {"", *LAZY_COMMANDS, "train tokenizer", "train predictor", "train head", "table main"}
    assert expected <= called
    assert all(code == 0 for _, code in probe["calls"]), probe["calls"]


def test_train_head_is_a_train_subcommand_and_the_old_spelling_is_hidden(dfbench_cli):
    top = dfbench_cli("--help")
    assert top.code == 0 and "train-head" not in top.out
    train = dfbench_cli("train", "--help")
    assert all(name in train.out for name in ("tokenizer", "predictor", "head"))
    new, old = dfbench_cli("train", "head", "--help"), dfbench_cli("train-head", "--help")
    assert new.code == old.code == 0
    assert "--feature-space" in old.out and "DEPRECATED" in old.out
    assert old.out.replace(" (DEPRECATED)", "").split("\n", 1)[1] == new.out.split("\n", 1)[1]


def test_lazy_choices_still_refuse_unknown_names(dfbench_cli):
    result = dfbench_cli("flops", "--model", "deltawrld")
    assert result.code == 2 and "'deltawrld' is not one of" in result.err and "'deltaworld'" in result.err
    result = dfbench_cli("flops", "--resolution", "300")
    assert result.code == 2 and "'256', '512'" in result.err


@pytest.mark.parametrize("name", dataset_names())
def test_check_data_takes_every_name_run_takes(name, dfbench_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no user data config
    result = dfbench_cli("check-data", "--dataset", name, "--data-root", str(tmp_path / "absent"))
    assert "Invalid value" not in result.err
    if name == "synthetic":
        assert result.code == 0 and "synthetic is ready" in result.out, result.err
    else:
        # A real data set at a missing root: one error line that names the root.
        errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
        assert result.code == 2 and len(errors) == 1 and "absent" in errors[0], result.err


def test_check_data_suggests_the_nearest_name(dfbench_cli):
    result = dfbench_cli("check-data", "--dataset", "synthtic")
    assert result.code == 2 and "Did you mean 'synthetic'?" in result.err


def test_every_lazy_command_resolves():
    ctx = cli.make_context("dfbench", ["--help"], resilient_parsing=True)
    assert sorted(cli.list_commands(ctx)) == sorted(LAZY_COMMANDS)
    assert all(cli.get_command(ctx, name).name == name for name in LAZY_COMMANDS)
