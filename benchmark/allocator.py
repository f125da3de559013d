"""Keep freed activation memory in the process instead of handing it back to the kernel.

glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a
fresh ``mmap`` and returns it with ``munmap`` when freed. A ViT-B block over a batch of
frame pairs allocates such tensors many times per clip (a [8, 513, 2048] fp32 activation
is 34 MB), and each time the kernel zero-fills every page again on first touch: on the
CPU that is about 5% of an evaluated DeltaWorld clip. Raising the mmap and trim
thresholds keeps those pages in the heap for the next block. The arithmetic is untouched,
so numbers do not change; only the page faults go. PyTorch's CPU tuning guide reaches the
same end by preloading jemalloc or tcmalloc; this needs no extra library.

There is no library call for this (``mallopt`` is glibc's own), so it goes through ctypes.
It is applied by the ``dfbench`` command and the benchmark scripts, never on import:
a library should not change its host process's allocator behind its back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

# Allocations below this come from the heap and are reused; above it, glibc still mmaps.
KEEP_BELOW_BYTES = 1 << 30

# Set to 1 to keep glibc's defaults (for instance to compare the two).
OPT_OUT_ENV = "DFBENCH_DEFAULT_MALLOC"


def keep_freed_memory() -> bool:
    """Raises glibc's mmap and trim thresholds for this process; True when applied.

    A no-op (False) off Linux, on another C library, or when ``DFBENCH_DEFAULT_MALLOC=1``.
    """
    if os.environ.get(OPT_OUT_ENV) == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BELOW_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BELOW_BYTES))
