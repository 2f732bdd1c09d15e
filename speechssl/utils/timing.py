"""Wall time of a call, as the benchmarks and the precision probe measure it, and the CPU it ran on."""

import platform
import time
from typing import Callable


def best_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` after ``warmup`` untimed calls (kernel
    selection, JIT, caches): the minimum is the figure least disturbed by other load on the machine."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_name() -> str:
    """The CPU model and its bf16 units, printed beside every benchmark figure (machines differ between runs)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = next(l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name"))
        bf16 = [flag for flag in ("avx512_bf16", "amx_bf16") if f" {flag}" in info]
        return f"{model} ({'+'.join(bf16) or 'no bf16 units'})"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown CPU"


__all__ = ["best_time", "cpu_name"]
