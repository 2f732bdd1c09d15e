"""An independent speaker judge: resemblyzer's GE2E speaker encoder (Wan et al. 2018, pretrained on
LibriSpeech, VoxCeleb 1 and 2; the weights ship in its wheel, so it runs offline). It shares nothing with
this toolkit's models, so it can say whether converted or synthesized speech sounds like a speaker.

Install with ``pip install 'speechssl[judges]'`` (resemblyzer needs ``webrtcvad``, which imports
``pkg_resources``: setuptools below 81, pinned by the extra).
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import MissingInputError
from .metrics import equal_error_rate


def _import_resemblyzer():
    try:
        import resemblyzer
    except ImportError as e:
        raise MissingInputError(f"the speaker judge needs resemblyzer ({e}): pip install 'speechssl[judges]'") from e
    return resemblyzer


class SpeakerJudge:
    """``embed(wav [T] at sample_rate) -> [256]`` unit-norm GE2E embedding; ``similarity`` is their cosine."""

    def __init__(self, device: str = "cpu"):
        r = _import_resemblyzer()
        self._preprocess = r.preprocess_wav
        self.encoder = r.VoiceEncoder(device=device, verbose=False)

    def embed(self, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        # resemblyzer's own front end: resample to 16 kHz, loudness-normalise, trim long silences (webrtcvad)
        x = self._preprocess(np.asarray(wav, np.float32), source_sr=sample_rate)
        if len(x) < 1600:  # the VAD removed (nearly) everything: embed the untrimmed signal
            x = np.asarray(wav, np.float32)
        return self.encoder.embed_utterance(x)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(self.embed(a), self.embed(b)))


def verification_trials(embeddings: Dict[str, np.ndarray], speakers: Dict[str, str]) -> dict:
    """Every pair of utterances as a trial (target when one speaker): EER and the mean cosine of target
    and non-target pairs. ``embeddings``: ``{utt: [D] unit vector}``; ``speakers``: ``{utt: speaker}``."""
    scores, targets = [], []
    for a, b in itertools.combinations(sorted(embeddings), 2):
        scores.append(float(np.dot(embeddings[a], embeddings[b])))
        targets.append(speakers[a] == speakers[b])
    t = np.array(targets)
    if t.all() or not t.any():
        raise MissingInputError(
            "speaker verification needs utterances of at least two speakers and a speaker with two utterances"
        )
    s = np.array(scores)
    eer, threshold = equal_error_rate(scores, targets)
    return {
        "eer": round(float(eer), 2),
        "threshold": round(float(threshold), 4),
        "trials": len(scores),
        "target_trials": int(t.sum()),
        "target_mean": round(float(s[t].mean()), 4),
        "nontarget_mean": round(float(s[~t].mean()), 4),
    }


def judge_data_dir(
    judge, d, per_speaker: int = 10, speakers: Sequence[str] = (), max_seconds: Optional[float] = None
) -> dict:
    """``verification_trials`` over up to ``per_speaker`` utterances of each speaker of data dir ``d``;
    ``judge``: a :class:`SpeakerJudge` or anything with ``embed(wav) -> [D] unit vector`` (so another
    speaker embedding can be measured on the same trials). ``max_seconds``: embed only the start of each
    utterance (a GE2E embedding averages 1.6-s windows, so a few seconds suffice; its cost grows with the audio)."""
    chosen: List[str] = []
    for spk in sorted(d.spk2utt):
        if speakers and spk not in speakers:
            continue
        chosen += sorted(d.spk2utt[spk])[:per_speaker]
    keep = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    emb = {u: judge.embed(d.load_audio(u)[:keep]) for u in chosen}
    return {
        **verification_trials(emb, {u: d.utt2spk[u] for u in chosen}),
        "speakers": len({d.utt2spk[u] for u in chosen}),
        "utterances": len(chosen),
    }


__all__ = ["SpeakerJudge", "judge_data_dir", "verification_trials"]
