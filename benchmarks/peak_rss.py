"""Peak resident size of the calling process, for the benchmarks' child processes."""
from __future__ import annotations

from pathlib import Path


def vm_hwm_kib() -> int | None:
    """Peak RSS of this process's own address space (``VmHWM``, Linux) in KiB, or None without /proc. Unlike
    ``ru_maxrss``, it does not start from the parent's size at fork (Linux carries that over exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None
