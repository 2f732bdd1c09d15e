"""SD: speaker diarization of two-speaker mixtures (SUPERB: LibriMix), an LSTM over the weighted sum giving
each speaker's activity per frame, trained with the permutation-invariant loss; DER with collar 0 (the
headline, as SUPERB reports it) and 0.25."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import torch
from torch import nn

from ...downstream.diarization import der, frames_to_segments, pit_bce, read_rttm, segments_to_frames
from ...downstream.heads import DiarizationHead
from ...errors import MissingInputError
from ...utils.atomic import write_text
from .base import DiarizationHeadConfig, Scored, Split, SuperbTask, register

SPEAKERS = 2


def _median11(active: np.ndarray) -> np.ndarray:
    """A binary median filter of 11 frames along time, per speaker: the majority of each window."""
    kernel = np.ones(11)
    return np.stack(
        [np.convolve(active[:, k].astype(float), kernel, mode="same") > 5.5 for k in range(active.shape[1])], axis=1
    ).astype(np.int8)


@register
class SpeakerDiarization(SuperbTask):
    name, metric, order = "sd", "DER", 9
    head_config = DiarizationHeadConfig
    higher_is_better = False
    frame_rate: float = 50.0  # set by the runner from the upstream

    def targets(self) -> Tuple[Dict[str, Dict[str, Any]], Any]:
        self.refs = {}
        out = {}
        for s, d in self.dirs.items():
            rttm = d.path / "rttm"
            if not rttm.is_file():
                raise MissingInputError(
                    f"{rttm}: the task dir's reference (prepare it with `speechssl data prep-superb --task sd`)"
                )
            self.refs[s] = read_rttm(rttm)
            # per mixture: each speaker's segments in order of first appearance (what PIT permutes)
            out[s] = {
                u: [segs for _, segs in sorted(self.refs[s].get(u, {}).items(), key=lambda kv: kv[1][0][0])]
                for u in d.utt_ids
            }
        return out, SPEAKERS

    def head(self, dim: int, cfg: DiarizationHeadConfig, num_out) -> nn.Module:
        return DiarizationHead(dim, cfg.hidden, cfg.layers, num_out)

    def loss(self, head_out, targets, head) -> torch.Tensor:
        logits, lengths = head_out
        labels = torch.stack(
            [
                segments_to_frames(list(t) + [[]] * (SPEAKERS - len(t)), logits.shape[1], self.frame_rate)
                for t in targets
            ]
        ).to(logits.device)
        return pit_bce(logits.float(), labels, lengths)

    def score(self, outputs, split: Split, write: bool) -> Scored:
        pairs, lines = [], []
        for utts, (logits, lengths) in outputs:
            probs = torch.sigmoid(logits.float()).cpu().numpy()
            for u, p, n in zip(utts, probs, lengths.tolist()):
                active = _median11(p[:n] > 0.5)  # s3prl's post-processing: an 11-frame median filter
                hyp = {f"spk{k}": frames_to_segments(active[:, k], self.frame_rate) for k in range(active.shape[1])}
                pairs.append((self.refs[split.name].get(u, {}), hyp))
                lines += [
                    f"SPEAKER {u} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>"
                    for spk, segs in hyp.items()
                    for s, e in segs
                ]
        if write:
            write_text(self.out / f"hyp_{split.name}.rttm", "\n".join(lines) + "\n")
        collar0, collar25 = der(pairs, 0.0), der(pairs, 0.25)
        return Scored(collar0, len(pairs), {"der_collar_0.25": round(collar25, 3)})
