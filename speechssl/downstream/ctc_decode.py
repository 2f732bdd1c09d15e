"""CTC decoding: greedy (best path) and beam search with an optional n-gram word LM.

Beam search uses pyctcdecode: a maintained, pure-Python prefix beam search (the decoder behind
Hugging Face's ``Wav2Vec2ProcessorWithLM``) that takes any KenLM ARPA / binary model, so it needs
neither torchaudio (CUDA-linked wheels here) nor a flashlight build. It is installed with the
``decode`` extra; KenLM (``pip install kenlm``, a C++ build) is needed only for an LM.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from ..data.tokenizers import WORD_BOUNDARY, TokenVocab
from ..errors import InputError


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
        (added per word). unigrams: the LM's word list (read from an ARPA file when not given).
    """

    def __init__(self, vocab: TokenVocab, beam: int = 20, lm: Optional[str] = None, lm_weight: float = 0.5,
                 word_score: float = 1.0, unigrams: Optional[Sequence[str]] = None):
        try:
            from pyctcdecode import build_ctcdecoder
        except ImportError as e:
            raise ImportError("beam search needs pyctcdecode: pip install 'speechssl[decode]'") from e
        if vocab.unit != "char":
            raise InputError("beam search with an LM works on letter vocabularies; decode "
                             f"{vocab.unit} units greedily")
        labels = []
        for i, t in enumerate(vocab.tokens):
            if i == vocab.blank:
                labels.append("")
            elif t == WORD_BOUNDARY:
                labels.append(" ")
            elif len(t) == 1:
                labels.append(t)
            else:  # other specials (<unk>, fairseq's <pad> ...) must not produce text
                labels.append(f"\u2047{i}")
        if lm and unigrams is None and str(lm).endswith(".arpa"):
            unigrams = read_arpa_unigrams(lm)
        if lm:
            try:
                import kenlm  # noqa: F401
            except ImportError as e:
                raise ImportError("an n-gram LM needs kenlm: pip install kenlm") from e
        self.beam, self.vocab = beam, vocab
        self.decoder = build_ctcdecoder(labels, kenlm_model_path=str(lm) if lm else None, unigrams=unigrams,
                                        alpha=lm_weight, beta=word_score)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> List[str]:
        out = []
        for b, n in enumerate(lengths.tolist()):
            text = self.decoder.decode(log_probs[b, :n].float().cpu().numpy(), beam_width=self.beam)
            out.append(" ".join(w for w in text.split() if "\u2047" not in w))
        return out


def read_arpa_unigrams(path) -> List[str]:
    """The words of an ARPA file's ``\\1-grams:`` section (without ``<s>``, ``</s>``, ``<unk>``)."""
    words, inside = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                inside = True
            elif line.startswith("\\"):
                if inside:
                    break
            elif inside and line:
                parts = line.split()
                if len(parts) >= 2 and parts[1] not in ("<s>", "</s>", "<unk>"):
                    words.append(parts[1])
    return words
