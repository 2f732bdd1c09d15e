"""``precision: auto``: choose the training precision for this machine once, and say what was chosen.

* CUDA with bf16 support: ``bf16-mixed``; other CUDA devices: ``16-mixed``.
* CPU: bf16 autocast pays off only on cores with bf16 units (``avx512_bf16`` / ``amx_bf16``); elsewhere it
  runs many times slower (tools/bench_pretrain_step.py). Without those flags: ``32-true`` without probing;
  with them, a short probe times a linear layer's forward + backward in float32 and under bf16 autocast
  and picks bf16 when it is at least ``MIN_SPEEDUP`` faster.
The choice is cached in the environment (``SPEECHSSL_AUTO_PRECISION``) so processes started from this one
(DDP workers) use the same answer instead of probing again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Optional

import torch

from .timing import best_time

log = logging.getLogger(__name__)

ENV = "SPEECHSSL_AUTO_PRECISION"
MIN_SPEEDUP = 1.3
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list:
    """The bf16 instruction-set flags this CPU advertises (empty where unknown)."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return []
    return [f for f in BF16_FLAGS if f in flags]


def probe_cpu_bf16_speedup(width: int = 768, tokens: int = 512, repeats: int = 7) -> float:
    """fp32 time / bf16-autocast time of ``Linear(width, 4 width)`` forward + backward on ``tokens`` rows."""
    layer = torch.nn.Linear(width, 4 * width)
    x = torch.randn(tokens, width, requires_grad=True)

    def step():
        layer(x).square().mean().backward()

    def step_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        y.float().square().mean().backward()

    return best_time(step, repeats, warmup=2) / max(best_time(step_bf16, repeats, warmup=2), 1e-9)


def resolve_precision(setting: str, accelerator: str = "auto", probe: Optional[Callable[[], float]] = None) -> str:
    """``setting`` unless it is ``auto``; then the machine's choice (see the module doc), logged once."""
    if setting != "auto":
        return setting
    if os.environ.get(ENV):
        return os.environ[ENV]
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        choice = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        why = f"CUDA device {torch.cuda.get_device_name(0)}"
    else:
        flags = cpu_bf16_flags()
        if not flags:
            choice, why = "32-true", "CPU without bf16 units (no avx512_bf16 / amx_bf16)"
        else:
            speedup = (probe or probe_cpu_bf16_speedup)()
            choice = "bf16-mixed" if speedup >= MIN_SPEEDUP else "32-true"
            why = f"CPU with {', '.join(flags)}: bf16 autocast measured {speedup:.2f}x float32 (needs {MIN_SPEEDUP}x)"
    os.environ[ENV] = choice
    log.info("precision auto -> %s (%s)", choice, why)
    return choice


__all__ = ["cpu_bf16_flags", "probe_cpu_bf16_speedup", "resolve_precision"]
