"""CTC prefix beam search with word n-gram shallow fusion (Hannun et al., 2014, "First-pass large
vocabulary continuous speech recognition using bi-directional recurrent DNNs", Algorithm 1).

Each hypothesis is a collapsed token sequence with two acoustic log scores, ending in blank and not,
summed over every alignment that yields it. A word is scored by the LM when it ends (a word boundary
token arrives, or the utterance ends); the hypothesis score is

    log P_ctc(prefix | x) + alpha * ln P_lm(words) + beta * |words|

Numpy only (the decoder behind the toolkit's WER figures must not pin the environment's numpy); the
LM goes through KenLM's Python module (ARPA or binary), the ``lm`` extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.readers import reading

LOG10_TO_LN = math.log(10.0)
NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


@dataclass
class _Beam:
    """One prefix: acoustic scores (ending in blank / non-blank) and the LM's view of its words."""

    blank: float = NEG_INF
    nonblank: float = NEG_INF
    lm: float = 0.0  # alpha * ln P(completed words) + beta * their count
    lm_state: object = None  # KenLM state after the completed words
    partial: str = ""  # letters of the word being spelt
    words: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def acoustic(self) -> float:
        return _logaddexp(self.blank, self.nonblank)


class WordLM:
    """KenLM scoring of whole words, natural-log probabilities. ``path``: ARPA or KenLM binary."""

    def __init__(self, path: str):
        import kenlm

        with reading(path, "KenLM model (ARPA or binary)"):
            self.model = kenlm.Model(str(path))
        self._kenlm = kenlm

    def start(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def score(self, state, word: str):
        """``(ln P(word | state), next state)``."""
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out) * LOG10_TO_LN, out

    def end(self, state) -> float:
        """``ln P(</s> | state)``."""
        return self.score(state, "</s>")[0]


class CtcPrefixBeamSearch:
    """Decode ``[T, V]`` CTC log posteriors into a token-id sequence (best hypothesis).

    Args:
        token_text: text of each token id ("" for blank and other tokens that spell nothing).
        boundary: id of the word boundary token, or None (no word structure: the LM is not used).
        blank: blank id. beam: hypotheses kept per frame. token_beam: tokens tried per frame (the best
        ones), and tokens more than ``prune`` nats below the frame's best are never tried.
        lm: a :class:`WordLM`, alpha and beta its weight and per-word bonus.
    """

    def __init__(
        self,
        token_text: Sequence[str],
        boundary: Optional[int],
        blank: int = 0,
        beam: int = 20,
        token_beam: int = 16,
        prune: float = 12.0,
        lm: Optional[WordLM] = None,
        alpha: float = 0.5,
        beta: float = 1.0,
    ):
        self.token_text, self.boundary, self.blank = list(token_text), boundary, blank
        self.beam, self.token_beam, self.prune = beam, token_beam, prune
        self.lm, self.alpha, self.beta = (lm if boundary is not None else None), alpha, beta

    def _end_word(self, beam: _Beam) -> Tuple[float, object, str, Tuple[str, ...]]:
        """LM score, state and words after the beam's partial word is completed."""
        if not beam.partial:
            return beam.lm, beam.lm_state, "", beam.words
        lm_score, state = beam.lm, beam.lm_state
        if self.lm is not None:
            logp, state = self.lm.score(beam.lm_state, beam.partial)
            lm_score += self.alpha * logp + self.beta
        return lm_score, state, "", beam.words + (beam.partial,)

    def decode(self, log_probs: np.ndarray) -> List[int]:
        """``log_probs [T, V]`` -> token ids of the best collapsed sequence (blanks removed)."""
        log_probs = np.asarray(log_probs, dtype=np.float64)
        start = _Beam(blank=0.0, lm_state=self.lm.start() if self.lm else None)
        beams: Dict[Tuple[int, ...], _Beam] = {(): start}
        for frame in log_probs:
            order = np.argsort(-frame)[: self.token_beam]
            tokens = [int(c) for c in order if frame[c] >= frame[order[0]] - self.prune]
            next_beams: Dict[Tuple[int, ...], _Beam] = {}
            for prefix, beam in beams.items():
                for c in tokens:
                    p = float(frame[c])
                    if c == self.blank:
                        self._slot(next_beams, prefix, beam).blank = _logaddexp(
                            self._slot(next_beams, prefix, beam).blank, beam.acoustic + p
                        )
                        continue
                    last = prefix[-1] if prefix else None
                    if c == last:  # a repeat without blank between stays one token
                        same = self._slot(next_beams, prefix, beam)
                        same.nonblank = _logaddexp(same.nonblank, beam.nonblank + p)
                        from_score = beam.blank + p
                    else:
                        from_score = beam.acoustic + p
                    if from_score == NEG_INF:
                        continue
                    grown = self._extend(next_beams, prefix, beam, c)
                    grown.nonblank = _logaddexp(grown.nonblank, from_score)
            beams = dict(sorted(next_beams.items(), key=lambda kv: -(kv[1].acoustic + kv[1].lm))[: self.beam])
        return list(max(beams.items(), key=lambda kv: self._final_score(kv[1]))[0])

    def _final_score(self, beam: _Beam) -> float:
        lm_score, state, _, _ = self._end_word(beam)
        if self.lm is not None:
            lm_score += self.alpha * self.lm.end(state)
        return beam.acoustic + lm_score

    @staticmethod
    def _slot(beams: Dict[Tuple[int, ...], _Beam], prefix: Tuple[int, ...], like: _Beam) -> _Beam:
        """The entry for ``prefix`` in the next frame's beams (same words and LM state as ``like``)."""
        if prefix not in beams:
            beams[prefix] = _Beam(lm=like.lm, lm_state=like.lm_state, partial=like.partial, words=like.words)
        return beams[prefix]

    def _extend(self, beams: Dict[Tuple[int, ...], _Beam], prefix: Tuple[int, ...], beam: _Beam, c: int) -> _Beam:
        grown = prefix + (c,)
        if grown in beams:
            return beams[grown]
        if c == self.boundary:
            lm_score, state, partial, words = self._end_word(beam)
        else:
            lm_score, state, words = beam.lm, beam.lm_state, beam.words
            partial = beam.partial + self.token_text[c]
        beams[grown] = _Beam(lm=lm_score, lm_state=state, partial=partial, words=words)
        return beams[grown]
