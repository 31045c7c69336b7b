"""Process memory policy for commands that churn through large temporary arrays: ``partwise run``'s inference and
``partwise eval ava`` at AVA-val size (7M detection rows: 3.5 -> 3.0 CPU-s, kernel time 0.9 -> 0.5 s, same peak RSS).
Set by the commands, not by library calls: it is a process-wide setting.

MultiPose at a frame's own resolution makes activations of tens of MB (a 768x576 frame: 288 x 384 x 144 floats,
64 MB, in its first blocks). glibc serves blocks that large with a fresh ``mmap`` and unmaps them on ``free``
(its adaptive threshold stops at 32 MB), so every forward faults every page of every large activation in again:
measured on one core, 0.55 CPU-s per 768x576 forward of which ~0.2 s kernel time, 0.31 s once freed memory is kept
for reuse. :func:`reuse_freed_memory` raises glibc's mmap and trim thresholds so freed activations stay in the heap
and the next forward reuses them; peak RSS is unchanged (the same blocks are live at the peak), but the heap does
not shrink back after a run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks up to this size come from the heap (and go back to it), larger ones are mapped
MMAP_THRESHOLD = 512 << 20
#: free memory at the top of the heap is returned to the system only beyond this
TRIM_THRESHOLD = 1 << 30
#: set to 0 to keep glibc's defaults
ENV = "PARTWISE_REUSE_MEMORY"

_done = False


def reuse_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds once per process (see the module docstring); True when they are set.
    Nothing happens off Linux/glibc or with ``PARTWISE_REUSE_MEMORY=0``."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get(ENV, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
