"""Wall time of a call, as the benchmarks and the precision probe measure it."""
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


__all__ = ["best_time"]
