"""Speaker diarization pieces: frame labels from segments, the permutation-invariant training loss, and the
diarization error rate as NIST's md-eval scores it.

DER = (missed speech + false alarm + speaker confusion) / reference speech, over time sampled every 10 ms:
at each instant with ``N_ref`` reference and ``N_hyp`` hypothesis speakers, of which ``N_correct`` agree under
the speaker mapping that maximises agreement over the whole recording, the error is
``max(N_ref, N_hyp) - N_correct``. A collar of ``c`` seconds around every reference boundary is not scored
(SUPERB reports collar 0; 0.25 is the other usual setting).
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..utils.atomic import atomic_path

Segments = Dict[str, List[Tuple[float, float]]]  # speaker -> [(start, end)] in seconds


def segments_to_frames(segments: Sequence[Sequence[Tuple[float, float]]], frames: int, rate: float) -> torch.Tensor:
    """``[frames, speakers]`` 0/1: frame ``i`` (covering ``[i, i+1) / rate``) is active when its centre is."""
    out = torch.zeros(frames, len(segments))
    centres = (torch.arange(frames) + 0.5) / rate
    for k, segs in enumerate(segments):
        for start, end in segs:
            out[(centres >= start) & (centres < end), k] = 1.0
    return out


def pit_bce(logits: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Permutation-invariant binary cross-entropy: per utterance the speaker order that fits best.
    ``logits, labels [B, T, S]``, ``lengths [B]`` -> mean over valid frames and speakers."""
    B, T, S = logits.shape
    valid = (torch.arange(T, device=logits.device)[None] < lengths[:, None]).float()[..., None]
    losses = []
    for perm in itertools.permutations(range(S)):
        bce = nn.functional.binary_cross_entropy_with_logits(logits, labels[..., list(perm)], reduction="none")
        losses.append((bce * valid).sum((1, 2)))
    best = torch.stack(losses).min(0).values
    return best.sum() / (valid.sum() * S).clamp_min(1)


def frames_to_segments(active: np.ndarray, rate: float) -> List[Tuple[float, float]]:
    """Runs of 1 in ``active [T]`` as ``(start, end)`` seconds."""
    segs, start = [], None
    for i, a in enumerate(list(active) + [0]):
        if a and start is None:
            start = i
        elif not a and start is not None:
            segs.append((start / rate, i / rate))
            start = None
    return segs


def _activity(segments: Segments, times: np.ndarray) -> Tuple[List[str], np.ndarray]:
    names = sorted(segments)
    act = np.zeros((len(times), len(names)), dtype=bool)
    for k, n in enumerate(names):
        for s, e in segments[n]:
            act[(times >= s) & (times < e), k] = True
    return names, act


def diarization_errors(ref: Segments, hyp: Segments, collar: float = 0.0, step: float = 0.01) -> Dict[str, float]:
    """Seconds of reference speech, miss, false alarm and confusion of one recording (see module doc)."""
    ends = [e for segs in list(ref.values()) + list(hyp.values()) for _, e in segs]
    if not ends:
        return {"speech": 0.0, "miss": 0.0, "false_alarm": 0.0, "confusion": 0.0}
    times = np.arange(0.0, max(ends) + step, step) + step / 2
    scored = np.ones(len(times), dtype=bool)
    for segs in ref.values():
        for s, e in segs:
            for b in (s, e):
                scored &= ~((times > b - collar) & (times < b + collar))
    _, r = _activity(ref, times)
    _, h = _activity(hyp, times)
    r, h = r[scored], h[scored]
    n_ref, n_hyp = r.sum(1), h.sum(1)
    best = None  # the mapping of hypothesis to reference speakers with the most agreement
    k = max(r.shape[1], h.shape[1])
    rp = np.pad(r, ((0, 0), (0, k - r.shape[1])))
    hp = np.pad(h, ((0, 0), (0, k - h.shape[1])))
    for perm in itertools.permutations(range(k)):
        agree = (rp & hp[:, list(perm)]).sum(1)
        if best is None or agree.sum() > best.sum():
            best = agree
    miss = np.maximum(n_ref - n_hyp, 0)
    fa = np.maximum(n_hyp - n_ref, 0)
    conf = np.minimum(n_ref, n_hyp) - best
    return {
        "speech": float(n_ref.sum() * step),
        "miss": float(miss.sum() * step),
        "false_alarm": float(fa.sum() * step),
        "confusion": float(conf.sum() * step),
    }


def der(pairs: Sequence[Tuple[Segments, Segments]], collar: float = 0.0) -> float:
    """DER in percent over recordings (errors and speech summed first, as md-eval does)."""
    totals = {"speech": 0.0, "miss": 0.0, "false_alarm": 0.0, "confusion": 0.0}
    for ref, hyp in pairs:
        for key, v in diarization_errors(ref, hyp, collar).items():
            totals[key] += v
    return 100.0 * (totals["miss"] + totals["false_alarm"] + totals["confusion"]) / max(totals["speech"], 1e-9)


def read_rttm(path) -> Dict[str, Segments]:
    """``{recording: {speaker: [(start, end)]}}`` from an RTTM file's SPEAKER lines."""
    out: Dict[str, Segments] = {}
    for line in open(path, encoding="utf-8"):
        f = line.split()
        if f and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            out.setdefault(f[1], {}).setdefault(f[7], []).append((start, start + dur))
    return out


def write_rttm(path, recordings: Dict[str, Segments]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in sorted(recordings):
            for spk in sorted(recordings[rec]):
                for s, e in recordings[rec][spk]:
                    f.write(f"SPEAKER {rec} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>\n")


__all__ = [
    "der",
    "diarization_errors",
    "frames_to_segments",
    "pit_bce",
    "read_rttm",
    "segments_to_frames",
    "write_rttm",
]
