"""CTC decoding: greedy (best path) and beam search with an optional n-gram word LM.

Beam search is :mod:`.beam_search`, our numpy prefix beam search (pyctcdecode, the usual choice, pins
numpy below 2 and has had no release since January 2023; torchaudio's flashlight decoder needs a
CUDA-linked wheel here). KenLM, for an n-gram LM, comes with the ``lm`` extra
(``pip install 'speechssl[lm]'``, a C++ build of about a minute).
"""

from __future__ import annotations

from typing import List, Optional

import torch

from ..constants import DEFAULT_LM_WEIGHT, DEFAULT_WORD_SCORE  # noqa: F401  (re-exported)
from ..data.tokenizers import WORD_BOUNDARY, TokenVocab
from ..errors import InputError
from .beam_search import CtcPrefixBeamSearch, WordLM

# beam search's LM weight (alpha) and per-word score (beta) when none were chosen on dev


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> List[List[int]]:
    """Best path per utterance: argmax, collapse repeats, drop blanks. ``log_probs [B, T, V]``."""
    best = log_probs.argmax(-1)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != blank
    return [best[b, :n][keep[b, :n]].tolist() for b, n in enumerate(lengths.tolist())]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: TokenVocab) -> List[str]:
    return [vocab.decode(ids) for ids in greedy_ids(log_probs, lengths, vocab.blank)]


class BeamSearchDecoder:
    """Prefix beam search over a :class:`TokenVocab` (char units) with an optional word n-gram LM.

    Args:
        beam: beam width. lm: ARPA or KenLM binary path. lm_weight: alpha. word_score: beta
        (added per word).
    """

    def __init__(
        self,
        vocab: TokenVocab,
        beam: int = 20,
        lm: Optional[str] = None,
        lm_weight: float = DEFAULT_LM_WEIGHT,
        word_score: float = DEFAULT_WORD_SCORE,
    ):
        if vocab.unit != "char":
            raise InputError(f"beam search with an LM works on letter vocabularies; decode {vocab.unit} units greedily")
        word_lm = None
        if lm:
            try:
                word_lm = WordLM(str(lm))
            except ImportError as e:
                raise ImportError("an n-gram LM needs kenlm: pip install 'speechssl[lm]'") from e
        # tokens that spell nothing (blank, <unk>, fairseq's <pad> ...) add no letters
        text = ["" if i == vocab.blank or t == WORD_BOUNDARY or len(t) != 1 else t for i, t in enumerate(vocab.tokens)]
        boundary = vocab.tokens.index(WORD_BOUNDARY) if WORD_BOUNDARY in vocab.tokens else None
        self.beam, self.vocab = beam, vocab
        self.search = CtcPrefixBeamSearch(
            text, boundary, vocab.blank, beam=beam, lm=word_lm, alpha=lm_weight, beta=word_score
        )

    def set_weights(self, lm_weight: float, word_score: float) -> BeamSearchDecoder:
        """New LM weight and word score on the same loaded LM (a sweep loads a large n-gram once)."""
        self.search.alpha, self.search.beta = lm_weight, word_score
        return self

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> List[str]:
        rows = log_probs.float().cpu().numpy()
        return [" ".join(self._spell(self.search.decode(rows[b, :n])).split()) for b, n in enumerate(lengths.tolist())]

    def _spell(self, ids: List[int]) -> str:
        return "".join(" " if i == self.search.boundary else self.search.token_text[i] for i in ids)
