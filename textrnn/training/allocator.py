"""glibc's malloc thresholds, pinned for CPU training.

glibc gives every allocation above its mmap threshold (adjusted as the process runs, at most
32 MiB on 64-bit) pages of its own with mmap and unmaps them on free, and returns the top of the
heap to the system above its trim threshold. A training step allocates and frees the same large
buffers every step (the oneDNN LSTM's workspaces and gradients over an IMDB batch of 400-token
reviews, a minLSTM's [B, T, 3·2H] gate gradient), so each step page-faults them in again.
Pinning both thresholds high (`mallopt`, what MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ do
at start-up) keeps those buffers in the heap, reused from step to step; the numbers computed
are the same. The first steps grow the heap until freed neighbours hold the next request
(posix_memalign asks for a little more than a freed buffer of the same size), then it stays.
Measured (benchmarks/README.md): IMDB LSTM training 1.43x as fast, peak memory +20 %; SST-2's
small batches unchanged.

Skipped where libc is not glibc, where the user set either variable (their choice stands), and
with TEXTRNN_MALLOC=default. Process-wide and once per process: `textrnn run` / `textrnn.train`
on a CPU and the training benchmarks call `pin()`.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 1 << 30  # single buffers above 1 GiB still get pages of their own
TRIM_THRESHOLD = 2 << 30  # up to 2 GiB freed at the top of the heap stays for the next step
ENV_KEYS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
LABEL = "malloc thresholds pinned"
_state: dict[str, Optional[str]] = {}


def pin() -> Optional[str]:
    """Pin glibc's mmap and trim thresholds (once per process): LABEL where they are, else None."""
    if "label" not in _state:
        _state["label"] = LABEL if _pin() else None
    return _state["label"]


def _pin() -> bool:
    if os.environ.get("TEXTRNN_MALLOC", "") == "default" or any(k in os.environ for k in ENV_KEYS):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
