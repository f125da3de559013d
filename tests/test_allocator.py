"""The dfbench command runs with glibc settings that let a block's large tensors reuse mapped pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dfbench.allocator import TUNABLES, applies, running_as_dfbench, tuned_environment

# Started as a program named ``dfbench`` (so it counts as the dfbench program), it runs the
# command with ``--version`` (which applies the settings, re-executing itself once, and
# returns), then runs a SwiGLU-shaped block over 3591 tokens (seven frame pairs
# at ViT-B: its tensors are above glibc's largest default mmap threshold) and prints the
# minor page faults of three more runs after the first, and the tunables it ran with.
PROBE = """
import os, resource, sys, torch
sys.argv[:] = ["dfbench", "--version"]
from dfbench.cli import main
try:
    main()
except SystemExit:
    pass
x, w, w2 = torch.randn(3591, 768), torch.randn(2048, 768), torch.randn(768, 2048)
def block():
    gated = torch.nn.functional.silu(torch.nn.functional.linear(x, w)) * torch.nn.functional.linear(x, w)
    return torch.nn.functional.linear(gated, w2) + x
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, os.environ.get("GLIBC_TUNABLES", "-"))
"""

LARGE_TENSOR_PAGES = 3591 * 2048 * 4 // 4096


def run_probe(folder, default_malloc: bool) -> tuple[int, str]:
    program = folder / "dfbench"
    program.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["DFBENCH_DEFAULT_MALLOC"] = "1" if default_malloc else "0"
    out = subprocess.run([sys.executable, str(program)], env=env, capture_output=True, text=True, check=True)
    faults, tunables = out.stdout.split()[-2:]
    return int(faults), tunables


@pytest.mark.skipif(not applies({}), reason="glibc tunables exist on Linux with glibc only")
def test_the_dfbench_command_reuses_freed_pages(tmp_path):
    faults, tunables = run_probe(tmp_path, default_malloc=False)
    assert all(f"{name}={value}" in tunables.split(":") for name, value in TUNABLES.items())
    assert faults < LARGE_TENSOR_PAGES  # not one large tensor mapped afresh in three blocks
    default_faults, default_tunables = run_probe(tmp_path, default_malloc=True)
    assert default_tunables == "-"
    # glibc's defaults map (and the kernel zero-fills) the large tensors again in every block.
    assert default_faults > 3 * LARGE_TENSOR_PAGES


def test_tunables_the_user_set_are_kept():
    env = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=3:glibc.cpu.x86_ibt=on"}
    tuned = tuned_environment(env)["GLIBC_TUNABLES"].split(":")
    if applies(env):
        assert tuned[:2] == ["glibc.malloc.tcache_count=3", "glibc.cpu.x86_ibt=on"]
        assert sorted(tuned[2:]) == sorted(f"{n}={v}" for n, v in TUNABLES.items() if n != "glibc.malloc.tcache_count")
    assert tuned_environment({**env, "DFBENCH_DEFAULT_MALLOC": "1"}) == {**env, "DFBENCH_DEFAULT_MALLOC": "1"}


def test_only_the_dfbench_program_restarts_itself(monkeypatch):
    python = sys.executable
    assert running_as_dfbench([python, "/venv/bin/dfbench", "run", "--model", "deltaworld"])
    assert running_as_dfbench([python, "-u", "-m", "dfbench", "run"])  # torchrun's form
    assert running_as_dfbench([python, "-X", "dev", "-m", "dfbench", "list"])
    assert not running_as_dfbench([python, "-m", "pytest", "-q"])
    assert not running_as_dfbench([python, "-c", "from dfbench.cli import main; main()"])
    assert not running_as_dfbench([python, "/venv/bin/pytest"])
    # A test that calls the command in-process with sys.argv rewritten is never restarted.
    monkeypatch.setattr(sys, "argv", ["dfbench", "run"])
    assert not running_as_dfbench()
