"""Frame-level phone alignments from an independent aligner: CMU PocketSphinx's forced alignment with the US
English acoustic model and CMUdict that ship in its wheel (offline). A word outside CMUdict gets the entry of a
spelling variant (British -ll-, -our, -ise), else espeak-ng's letter-to-sound pronunciation (the ``tts`` extra).

``align_data_dir(data)`` writes ``alignments.ctm`` (``utt 1 start dur phone``, the synthetic corpus's format and
phone set: 39 ARPAbet phones + ``SIL``), so PNMI (``speechssl kmeans eval``) works on real speech, and
``alignments.unaligned`` (``utt reason``) for every utterance it could not align: a word outside the dictionary
(after the spelling variants below) or a failed search. Nothing is dropped silently: PNMI counts them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..audio.phones import PHONES, SILENCE
from ..constants import SAMPLE_RATE
from ..data.kaldi_dir import DataDir
from ..errors import MissingInputError
from ..utils.atomic import write_text

log = logging.getLogger(__name__)

FRAME_SHIFT = 0.01  # PocketSphinx's frame rate: 100 Hz
_PHONES = frozenset(PHONES)


def _variants(word: str) -> Iterable[str]:
    """Spellings tried for a word outside CMUdict: itself, British doubled-l/-our/-ise forms, without
    an apostrophe."""
    yield word
    yield re.sub(r"ll(ed|ing|er|ors?)$", r"l\1", word)
    yield re.sub(r"our(s|ed|ing|able)?$", r"or\1", word)
    yield re.sub(r"is(e|ed|es|ing|ation)$", r"iz\1", word)
    yield word.replace("'", "")


class SphinxAligner:
    """``align(wav [T] float at 16 kHz, words) -> [(phone, start_s, dur_s)]``, or a reason string on failure."""

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise MissingInputError(f"phone alignment needs pocketsphinx ({e}): pip install 'speechssl[judges]'") from e
        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", bestpath=False)
        self._espeak = None
        self.guessed = 0  # words pronounced by espeak-ng's rules (outside CMUdict)

    def _spell(self, word: str) -> Optional[str]:
        """The word as the decoder knows it: CMUdict, a spelling variant's entry, else espeak-ng's letter-to-
        sound rules folded onto ARPAbet (``audio.phones``); None when none gives a pronunciation."""
        w = word.lower()
        for v in _variants(w):
            pron = self.decoder.lookup_word(v)
            if pron is not None:
                if v != w:
                    self.decoder.add_word(w, pron, True)
                return w
        pron = self._letter_to_sound(w)
        if pron:
            self.decoder.add_word(w, pron, True)
            self.guessed += 1
            return w
        return None

    def _letter_to_sound(self, word: str) -> Optional[str]:
        try:
            from ..audio.espeak import Espeak, EspeakError
            from ..audio.phones import MODIFIERS, UnknownPhoneme, espeak_to_phone
        except ImportError:
            return None
        try:
            if self._espeak is None:
                self._espeak = Espeak()
                self._espeak.set_voice("en-us")
            phones = [espeak_to_phone(m) for m, _ in self._espeak.synthesize(word).phonemes if m not in MODIFIERS]
        except (EspeakError, UnknownPhoneme, OSError):
            return None
        phones = [p for p in phones if p != SILENCE]
        return " ".join(phones) or None

    def align(self, wav: np.ndarray, text: str):
        words = text.split()
        spelled = [self._spell(w) for w in words]
        oov = [w for w, s in zip(words, spelled) if s is None]
        if oov:
            return f"not in the dictionary: {' '.join(oov)}"
        pcm = (np.clip(np.asarray(wav, np.float32), -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        d = self.decoder
        try:
            d.set_align_text(" ".join(spelled))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            d.set_alignment()  # second pass: phone (and state) segmentation of the word alignment
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            alignment = d.get_alignment()
        except RuntimeError as e:
            return f"alignment failed: {e}"
        finally:
            d.activate_search()  # back to the default search for the next utterance's set-up
        if alignment is None:
            return "alignment failed: no path through the audio"
        segments: List[Tuple[str, float, float]] = []
        for word in alignment:
            for phone in word:
                name = phone.name if phone.name in _PHONES else SILENCE  # SIL and fillers (+NSN+, +SPN+)
                start, dur = phone.start * FRAME_SHIFT, phone.duration * FRAME_SHIFT
                if segments and segments[-1][0] == name == SILENCE:
                    segments[-1] = (name, segments[-1][1], segments[-1][2] + dur)
                else:
                    segments.append((name, start, dur))
        return segments


def align_data_dir(data_dir, out_dir=None, utts: Optional[Iterable[str]] = None) -> Dict[str, int]:
    """Align every utterance of ``data_dir`` (its ``text``) and write ``alignments.ctm`` and
    ``alignments.unaligned`` to ``out_dir`` (default the data dir). Returns the counts."""
    d = DataDir.read(data_dir)
    if d.text is None:
        raise MissingInputError(f"{data_dir}: no text to align")
    out = Path(out_dir or data_dir)
    aligner = SphinxAligner()
    ctm, failed = [], []
    for utt in list(utts) if utts is not None else d.utt_ids:
        if not d.text.get(utt, "").strip():
            failed.append(f"{utt} no transcript in text")
            continue
        result = aligner.align(d.load_audio(utt), d.text[utt])
        if isinstance(result, str):
            failed.append(f"{utt} {result}")
            continue
        ctm.extend(f"{utt} 1 {s:.2f} {dur:.2f} {p}" for p, s, dur in result)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "alignments.ctm", "".join(line + "\n" for line in ctm))
    write_text(out / "alignments.unaligned", "".join(line + "\n" for line in failed))
    aligned = len({line.split()[0] for line in ctm})
    if failed:
        log.warning(
            "%s: %d of %d utterances not aligned (listed in %s)",
            data_dir,
            len(failed),
            aligned + len(failed),
            out / "alignments.unaligned",
        )
    return {"aligned": aligned, "unaligned": len(failed), "words_by_letter_to_sound": aligner.guessed}


def read_unaligned(data_dir) -> Dict[str, str]:
    """``alignments.unaligned`` of a data dir: ``{utt: reason}`` (empty when the file is absent)."""
    path = Path(data_dir) / "alignments.unaligned"
    if not path.is_file():
        return {}
    return dict(
        (line.split(maxsplit=1) + [""])[:2] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    )


__all__ = ["SphinxAligner", "align_data_dir", "read_unaligned"]


def alignment_agreement(reference_ctm: str, hypothesis_ctm: str) -> Dict[str, float]:
    """How close an aligner comes to the truth, both CTMs in one phone set (10-ms frames, each frame labelled
    by the segment over its centre): ``frame_agreement`` (share of frames with the same phone, silence
    included), ``boundary_error_ms`` (mean distance from each reference phone boundary to the nearest
    hypothesised one, within an utterance) and ``boundaries_within_20ms`` (share), over the utterances in both."""
    from ..data.librispeech import read_ctm_frames

    ref, hyp = read_ctm_frames(reference_ctm, FRAME_SHIFT), read_ctm_frames(hypothesis_ctm, FRAME_SHIFT)
    same = total = 0
    errors: List[float] = []
    for utt in sorted(set(ref) & set(hyp)):
        r, h = ref[utt], hyp[utt]
        n = min(len(r), len(h))
        same += sum(a == b for a, b in zip(r[:n], h[:n]))
        total += n
        rb = np.array([i for i in range(1, len(r)) if r[i] != r[i - 1]])
        hb = np.array([i for i in range(1, len(h)) if h[i] != h[i - 1]])
        if len(rb) and len(hb):
            errors.extend(np.abs(rb[:, None] - hb[None, :]).min(1) * FRAME_SHIFT * 1000)
    errs = np.array(errors) if errors else np.zeros(1)
    return {
        "utterances": len(set(ref) & set(hyp)),
        "frames": total,
        "frame_agreement": same / max(total, 1),
        "boundary_error_ms": float(errs.mean()),
        "boundaries_within_20ms": float((errs <= 20).mean()),
    }
