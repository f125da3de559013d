"""The dfbench command runs with glibc settings that let a block's large tensors reuse mapped pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dfbench.allocator import TUNABLES, applies, running_as_dfbench, tuned_environment

# Runs as the dfbench program (``--version``: it applies its settings, re-executing itself
# once, and returns), then runs a SwiGLU-shaped block over 3591 tokens (seven frame pairs
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


def run_probe(default_malloc: bool) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["DFBENCH_DEFAULT_MALLOC"] = "1" if default_malloc else "0"
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    faults, tunables = out.stdout.split()[-2:]
    return int(faults), tunables


@pytest.mark.skipif(not applies({}), reason="glibc tunables exist on Linux with glibc only")
def test_the_dfbench_command_reuses_freed_pages():
    faults, tunables = run_probe(default_malloc=False)
    assert all(f"{name}={value}" in tunables.split(":") for name, value in TUNABLES.items())
    assert faults < LARGE_TENSOR_PAGES  # not one large tensor mapped afresh in three blocks
    default_faults, default_tunables = run_probe(default_malloc=True)
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
    assert not running_as_dfbench()  # pytest calling the command's function stays as it is
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/dfbench", "run"])
    assert running_as_dfbench()
    import dfbench.__main__ as module_main

    monkeypatch.setattr(sys, "argv", [module_main.__file__, "run"])
    assert running_as_dfbench()
