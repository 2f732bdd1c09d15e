"""An independent intelligibility judge: CMU PocketSphinx with the US English acoustic model, dictionary
and language model that ship in its wheel (offline). Nothing in this toolkit is tuned on it; its word
error rate on real audio is the floor that synthesized audio is read against.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import MissingInputError
from ..utils.atomic import write_text
from .metrics import error_counts


class SphinxJudge:
    """``transcribe(wav [T] float at 16 kHz) -> upper-case words``.

    ``lm``: an ARPA n-gram of the task's domain in place of PocketSphinx's general US English LM (the
    acoustic model and dictionary stay its own). Its general LM barely reads the mini corpus's synthetic
    voices (97.6 % WER on the real test audio); the corpus's training-text 3-gram gives it a usable floor
    (about 70 %). The same LM serves the floor and the synthesized audio, so the ratio stays fair."""

    def __init__(self, lm: Optional[str] = None):
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise MissingInputError(
                f"the PocketSphinx judge needs pocketsphinx ({e}): pip install 'speechssl[judges]'"
            ) from e
        self.lm = lm
        kw = {}
        if lm:
            if not Path(lm).is_file():
                raise MissingInputError(f"{lm}: the judge's language model does not exist")
            self._tmp = tempfile.TemporaryDirectory(prefix="sphinx_lm_")
            kw["lm"] = _lower_case_arpa(Path(lm), Path(self._tmp.name) / "lm.arpa")
        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **kw)

    def transcribe(self, wav: np.ndarray) -> str:
        pcm = (np.clip(np.asarray(wav, np.float32), -1.0, 1.0) * 32767).astype(np.int16)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        words = hyp.hypstr if hyp is not None else ""
        return " ".join(re.sub(r"\(\d+\)$", "", w) for w in words.upper().split())  # drop alternates' (2)


def _lower_case_arpa(src: Path, dst: Path) -> str:
    """A copy of an ARPA file with lower-case words (PocketSphinx's dictionary is lower case; the
    toolkit's LMs are upper case); the ``<s>``, ``</s>``, ``<unk>`` markers stay as ARPA spells them."""
    write_text(dst, src.read_text(encoding="utf-8").lower())  # ARPA's own tokens are lower case
    return str(dst)


def judge_wer(judge: SphinxJudge, wavs: Dict[str, np.ndarray], refs: Dict[str, str]) -> dict:
    """Corpus WER and CER (%) of the judge's transcripts of ``wavs`` against ``refs``, counted as the
    toolkit's ASR scoring counts them (:func:`~speechssl.downstream.metrics.error_counts`: an empty
    transcript is all deletions)."""
    utts = sorted(u for u in wavs if refs.get(u, "").strip())
    hyps = {u: judge.transcribe(wavs[u]) for u in utts}
    ref_l, hyp_l = [refs[u].upper() for u in utts], [hyps[u] for u in utts]
    return {
        "wer": round(error_counts(ref_l, hyp_l, "word").rate, 2),
        "cer": round(error_counts(ref_l, hyp_l, "char").rate, 2),
        "utterances": len(utts),
        "hypotheses": hyps,
    }


__all__ = ["SphinxJudge", "judge_wer"]
