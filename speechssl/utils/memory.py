"""Keep long batch jobs' memory at what they hold, not at what they once held.

glibc serves large allocations from its heap once its mmap threshold has adapted upwards (after the first
large ``free``), and a fragmented heap is not returned to the system: a job that extracts hidden states
batch after batch then grows with the number of batches, not with what it holds (measured: SUPERB's cache
extraction peaked at 2.6 GB on a 4x corpus against 0.7 GB with the threshold fixed;
docs/benchmarks.md). Fixing the threshold makes every allocation above it a mapping of its own, returned on
``free``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Optional

from ..errors import InputError

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def release_large_allocations(threshold_bytes: int = 1 << 20) -> bool:
    """Serve allocations of at least ``threshold_bytes`` by their own mappings (glibc only; a no-op elsewhere).
    Returns whether it took effect."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    except (OSError, AttributeError):
        log.debug("mallopt unavailable: heap left as it is")
        return False


def available_bytes() -> Optional[int]:
    """Memory the system can still give this process (``MemAvailable``), None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(num_bytes: float, what: str, hint: str = "") -> None:
    """Refuse, before allocating, something larger than the memory this machine has available."""
    free = available_bytes()
    if free is not None and num_bytes > free:
        raise InputError(
            f"{what} needs {num_bytes / 2**30:.1f} GiB, and this machine has {free / 2**30:.1f} GiB "
            "available" + (f": {hint}" if hint else "")
        )


def _status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Set this process's peak-RSS mark to what it holds now (Linux >= 4.0: ``/proc/self/clear_refs``). Linux
    carries the mark across ``exec`` from the forked parent, so a tool started from a large process (a test
    suite, a notebook) otherwise reads the parent's peak as its own. Returns whether it was reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:  # not atomic: a kernel control file, not data
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started or since :func:`reset_peak_rss` (``VmHWM``; where
    there is no ``/proc``, ``ru_maxrss``, which cannot be reset)."""
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


__all__ = ["available_bytes", "check_fits", "peak_rss_bytes", "release_large_allocations", "reset_peak_rss"]
