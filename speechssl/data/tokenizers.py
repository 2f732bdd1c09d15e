"""Token vocabularies for CTC: letters with ``|`` as the word boundary (fairseq's letter
dictionary), or whitespace-separated units such as phones.

``tokens.txt`` holds one ``token index`` per line (the icefall / k2 format); index 0 is the CTC
blank. A fairseq ``dict.ltr.txt`` (``token count`` lines) loads too, with fairseq's ``<s>`` blank.
"""

from __future__ import annotations

import collections
import logging
import re
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from ..errors import InputError
from ..utils.atomic import write_text

log = logging.getLogger(__name__)

BLANK, UNK, WORD_BOUNDARY = "<blank>", "<unk>", "|"
UNITS = ("char", "phone", "word", "char-slot")
SLOT_TAG = re.compile(r"^[BE]-\S+$")  # slot filling: B-<type> and E-<type> are tokens of their own


class TokenVocab:
    """Maps text to token ids and back. ``unit``: ``char`` (letters + ``|``), ``phone`` or ``word``
    (whitespace-separated tokens, no boundary symbol), or ``char-slot`` (letters + ``|``, with slot tags
    ``B-<type>`` / ``E-<type>`` as single tokens: SUPERB's slot filling)."""

    def __init__(self, tokens: Sequence[str], unit: str = "char"):
        if unit not in UNITS:
            raise InputError(f"unit must be one of {UNITS}, got {unit!r}")
        if len(set(tokens)) != len(tokens):
            dup = [t for t, c in collections.Counter(tokens).items() if c > 1]
            raise InputError(f"duplicate tokens {dup}")
        self.tokens, self.unit = list(tokens), unit
        self.index: Dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        self.blank = 0
        self.unk = self.index.get(UNK)

    def __len__(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------------ building and files
    @classmethod
    def build(cls, texts: Iterable[str], unit: str = "char") -> TokenVocab:
        """From training transcripts: tokens by falling frequency (ties by name), after blank and unk."""
        counts = collections.Counter()
        for t in texts:
            counts.update(cls._split(t, unit))
        ordered = sorted(counts, key=lambda t: (-counts[t], t))
        return cls([BLANK, UNK] + [t for t in ordered if t not in (BLANK, UNK)], unit)

    @classmethod
    def load(cls, path, unit: str = "char") -> TokenVocab:
        """``tokens.txt`` (``token index``) or a fairseq dictionary (``token count``, no specials)."""
        rows = [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        bad = [i + 1 for i, r in enumerate(rows) if len(r) != 2]
        if bad:
            raise InputError(f"{path}: lines {bad[:5]} are not 'token number'")
        if rows and rows[0][0] == BLANK and rows[0][1] == "0":
            if [int(r[1]) for r in rows] != list(range(len(rows))):
                raise InputError(f"{path}: indices must run 0..{len(rows) - 1} in order")
            return cls([r[0] for r in rows], unit)
        # fairseq Dictionary: <s> <pad> </s> <unk> come first implicitly; CTC uses <s> as the blank
        return cls(["<s>", "<pad>", "</s>", UNK] + [r[0] for r in rows], unit)

    def save(self, path) -> Path:
        p = Path(path)
        write_text(p, "".join(f"{t} {i}\n" for i, t in enumerate(self.tokens)))
        return p

    # ------------------------------------------------------------------ text <-> ids
    @staticmethod
    def _split(text: str, unit: str) -> List[str]:
        if unit == "char":
            words = text.split()
            return [c for w in words for c in list(w) + [WORD_BOUNDARY]]
        if unit == "char-slot":
            return [t for w in text.split() for t in ([w] if SLOT_TAG.match(w) else list(w)) + [WORD_BOUNDARY]]
        return text.split()

    def encode(self, text: str, utt: str = "") -> List[int]:
        ids, unknown = [], set()
        for t in self._split(text, self.unit):
            i = self.index.get(t)
            if i is None:
                unknown.add(t)
                i = self.unk
            ids.append(i)
        if unknown:
            if self.unk is None:
                raise InputError(f"{utt or text!r}: tokens {sorted(unknown)} are not in the vocabulary")
            log.debug("%s: unknown tokens %s", utt, sorted(unknown))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids (blanks already removed) to text: ``|`` becomes a space in char mode."""
        toks = [self.tokens[i] for i in ids if i != self.blank]
        if self.unit == "char":
            return " ".join("".join(toks).replace(WORD_BOUNDARY, " ").split())
        if self.unit == "char-slot":  # a tag is a word of its own even without boundaries around it
            return " ".join(
                "".join(f" {t} " if SLOT_TAG.match(t) else t for t in toks).replace(WORD_BOUNDARY, " ").split()
            )
        return " ".join(toks)
