"""What a dry run says beyond parameter counts: steps, audio per update and in all, an estimate of the peak memory
per device for the configured batch and precision, and (``--time-steps N``) a measured update on this machine.

The memory estimate is arithmetic, not a measurement: float32 weights, gradients and AdamW's two moments, plus the
activations a waveform CNN + Transformer keeps for the backward pass at the configured batch (each CNN layer's
output, normalisation and GELU; per Transformer layer about 12 copies of the hidden state, 2 of the FFN's and the
attention probabilities with their dropout mask). It is the size to plan a device by; ``--time-steps`` measures.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Optional

from ..constants import SAMPLE_RATE
from ..utils.memory import peak_rss_bytes

BYTES_PER_STATE = 16  # float32 weight + gradient + AdamW's two moments
GiB = 1024**3


def activation_bytes(encoder_cfg, seconds: float, utterance_seconds: float, precision: str) -> float:
    """Saved activations of one micro-batch of ``seconds`` of audio in utterances of ``utterance_seconds``."""
    width = 2 if precision.startswith(("bf16", "16")) else 4
    samples = seconds * SAMPLE_RATE
    floats, stride = 0.0, 1
    conv = getattr(encoder_cfg, "conv_layers", None) or []
    if getattr(encoder_cfg, "frontend", "cnn") in ("cnn", "waveform") or conv:
        for channels, _kernel, step in conv:
            stride *= step
            floats += 3 * samples / stride * channels  # conv output, its norm, its GELU
    frame_rate = SAMPLE_RATE / stride if stride > 1 else 25.0  # fbank frontends: 40 ms frames after subsampling
    frames = seconds * frame_rate
    per_utt = max(1.0, utterance_seconds * frame_rate)
    utterances = max(1.0, seconds / max(utterance_seconds, 1e-6))
    hidden, ffn = encoder_cfg.hidden_size, encoder_cfg.ffn_dim
    per_layer = frames * (12 * hidden + 2 * ffn) + 2 * utterances * encoder_cfg.num_heads * per_utt**2
    floats += encoder_cfg.num_layers * per_layer
    return floats * width


def run_plan(cfg, parameters: int, batch: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Steps, hours of audio per update and in all, and the memory estimate per device."""
    plan: Dict[str, Any] = {}
    trainer = getattr(cfg, "trainer", None)
    steps = getattr(trainer, "max_steps", None)
    if steps:
        plan["max_steps"] = steps
    if batch and steps:
        plan["audio_hours_per_update"] = round(batch["global_seconds"] / 3600, 4)
        plan["audio_hours_in_all"] = round(batch["global_seconds"] * steps / 3600, 1)
        warmup = getattr(getattr(cfg, "optim", None), "warmup_steps", None)
        if warmup is not None:
            plan["warmup_steps"] = warmup
    encoder_cfg = None
    if hasattr(cfg, "encoder_config"):
        try:
            encoder_cfg = cfg.encoder_config()
        except Exception:  # a config the dry run could not build already says so elsewhere
            encoder_cfg = None
    data = getattr(cfg, "data", None)
    seconds = getattr(data, "batch_seconds", None)
    if encoder_cfg is not None and seconds:
        precision = str(getattr(trainer, "precision", "32-true"))
        utt = getattr(data, "crop_seconds", None) or 15.0
        states = parameters * BYTES_PER_STATE
        acts = activation_bytes(encoder_cfg, seconds, utt, precision)
        plan["memory_estimate_per_device"] = {
            "weights_grads_adam_gib": round(states / GiB, 2),
            "activations_gib": round(acts / GiB, 2),
            "total_gib": round((states + acts) / GiB, 2),
            "precision": precision,
            "micro_batch": f"{seconds:g} s of audio in utterances of <= {utt:g} s",
            "note": "an estimate (docs/pretraining.md); --time-steps N measures",
        }
    return plan


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (:func:`speechssl.utils.memory.peak_rss_bytes`; the mark is
    reset at the CLI's start, so a run started from a large parent does not read the parent's peak)."""
    return peak_rss_bytes() / GiB


def measure_updates(
    step: Callable[[], None], steps: int, device: str = "cpu", rss_before_gib: float = 0.0
) -> Dict[str, Any]:
    """Run ``step`` (one forward + backward + optimizer update on a synthetic batch) ``steps + 1`` times; the
    first is a warm-up. Returns the mean seconds of the rest and the peak memory (CUDA: allocated; CPU: the
    process's peak RSS, and its rise over ``rss_before_gib``, the peak before the model was built)."""
    import torch

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / GiB
    else:
        peak = peak_rss_gib()
    per_update = (time.perf_counter() - t0) / max(steps, 1)
    out = {
        "seconds_per_micro_batch": round(per_update, 3),
        "measured_steps": steps,
        "device": device,
        "peak_memory_gib": round(peak, 2),
        "peak_memory_is": "CUDA allocated" if device.startswith("cuda") else "process RSS (libraries included)",
    }
    if not device.startswith("cuda"):
        out["model_and_step_gib"] = round(peak - rss_before_gib, 2)
    return out


def time_estimate(measured: Dict[str, Any], cfg, batch: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Per update: the measured micro-batch times the accumulation; the whole run at that pace on one device."""
    accumulate = (batch or {}).get("accumulate", 1) or 1
    per_update = measured["seconds_per_micro_batch"] * accumulate
    steps = getattr(getattr(cfg, "trainer", None), "max_steps", None) or 0
    if not math.isfinite(per_update):
        return {}
    out = {"seconds_per_update_here": round(per_update, 3)}
    if steps:
        out["hours_for_max_steps_here"] = round(per_update * steps / 3600, 1)
        out["note"] = "at this device's pace with this process alone; devices x nodes share the micro-batches"
    return out
