"""The dfbench command keeps freed activation memory, so a block's large tensors reuse mapped pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Starts the dfbench command (``--version``: it applies its settings and returns), then runs a
# SwiGLU-shaped block over 4104 tokens (two crops of eight frame pairs at ViT-B: its tensors
# are above glibc's largest default mmap threshold) and prints the minor page faults of
# three more runs after the first.
PROBE = """
import resource, sys, torch
from dfbench.cli import main
sys.argv = ["dfbench", "--version"]
try:
    main()
except SystemExit:
    pass
x, w, w2 = torch.randn(4104, 768), torch.randn(2048, 768), torch.randn(768, 2048)
def block():
    gated = torch.nn.functional.silu(torch.nn.functional.linear(x, w)) * torch.nn.functional.linear(x, w)
    return torch.nn.functional.linear(gated, w2) + x
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(default_malloc: bool) -> int:
    env = {**os.environ, "DFBENCH_DEFAULT_MALLOC": "1" if default_malloc else "0"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_the_dfbench_command_reuses_freed_pages():
    tuned, default = page_faults(default_malloc=False), page_faults(default_malloc=True)
    # glibc's defaults map (and the kernel zero-fills) every large tensor afresh: 3 x 4 of them.
    assert default > 3 * 4 * (4104 * 768 * 4 // 4096)
    assert tuned < default / 2
