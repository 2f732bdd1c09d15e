"""WavThruVec judged by models that share nothing with it (``speechssl tts eval``'s ``judges`` section).

* Speaker (resemblyzer GE2E, :mod:`speechssl.downstream.speaker_judge`): first the judge's own EER on the
  real audio of the test and reference speakers, so its verdicts can be trusted on this corpus; then voice
  conversion's similarity to the target and to the source, text-to-speech's similarity to its reference
  against the other references, and resynthesis' similarity to its original.
* Intelligibility (PocketSphinx, :mod:`speechssl.downstream.sphinx_judge`): WER on the original audio (the
  floor), resynthesis, conversion and synthesis; the ratio to the floor is what the targets read.
* Published MCD (:mod:`speechssl.downstream.mcd`, WORLD + SPTK, DTW, c0 excluded): resynthesis against the
  original, and synthesis in the speaker's own voice against the original recording of the sentence.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

import numpy as np

from .mcd import mcd_dtw
from .speaker_judge import SpeakerJudge, judge_data_dir
from .sphinx_judge import SphinxJudge, judge_wer

log = logging.getLogger(__name__)


def judges_available() -> Optional[str]:
    """None when the judges extra is installed, else what is missing."""
    for module in ("resemblyzer", "pocketsphinx", "pyworld", "pysptk"):
        try:
            __import__(module)
        except ImportError as e:
            return f"{module} ({e})"
    return None


def _mean(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


class _Embedding:
    """``embed(wav) -> [S]`` unit vector from a function returning any vector (the vocoder's own embedding)."""

    def __init__(self, fn):
        self.fn = fn

    def embed(self, wav):
        v = np.asarray(self.fn(wav), np.float64)
        return v / max(float(np.linalg.norm(v)), 1e-12)


SOURCE_SPEAKER_UTTS = 3  # other utterances of the source speaker a conversion is also compared with


def judge(
    d,
    refs,
    orig: Dict[str, np.ndarray],
    resyn: Dict[str, np.ndarray],
    conv: Dict[str, np.ndarray],
    targets: Dict[str, str],
    synth: Dict[str, np.ndarray],
    synth_own: Dict[str, np.ndarray],
    texts: Dict[str, str],
    own_embedding=None,
    lm: Optional[str] = None,
) -> dict:
    """``d`` / ``refs``: the test and reference data dirs; ``targets``: the reference utterance (of ``refs``)
    each conversion and synthesis used; ``synth_own``: synthesis with the speaker's own reference;
    ``own_embedding``: ``wav -> vector``, the speaker embedding the vocoder is conditioned on, whose EER on the
    same trials says how much voice identity it can carry; ``lm``: PocketSphinx's language model (an ARPA
    file of the task's domain; its general US English one when None)."""
    speaker, sphinx = SpeakerJudge(), SphinxJudge(lm)
    out: dict = {
        "speaker_judge": "resemblyzer GE2E",
        "asr_judge": "pocketsphinx en-us",
        "asr_judge_lm": lm or "pocketsphinx's US English LM",
        "mcd": "WORLD + SPTK order 23, alpha 0.42, DTW, c0 excluded",
    }
    out["judge_on_real_audio"] = {
        "test_speakers": judge_data_dir(speaker, d, per_speaker=6),
        "reference_speakers": judge_data_dir(speaker, refs, per_speaker=6),
    }
    if own_embedding is not None:
        own = _Embedding(own_embedding)
        out["vocoder_embedding_on_real_audio"] = {
            "test_speakers": judge_data_dir(own, d, per_speaker=6),
            "reference_speakers": judge_data_dir(own, refs, per_speaker=6),
        }
    emb = {u: speaker.embed(w) for u, w in orig.items()}
    ref_emb = {t: speaker.embed(refs.load_audio(t)) for t in sorted(set(targets.values()))}
    sims = {"resynthesis_to_original": [float(speaker.embed(resyn[u]) @ emb[u]) for u in resyn]}
    vc_t, vc_s, vc_ss = [], [], []
    other_emb: Dict[str, np.ndarray] = {}
    for u, w in conv.items():
        e = speaker.embed(w)
        vc_t.append(float(e @ ref_emb[targets[u]]))
        vc_s.append(float(e @ emb[u]))
        # the source *speaker* on other sentences: the target reference says other words too, while the source
        # utterance shares the converted one's words and timing, which GE2E partly hears
        others = [o for o in d.spk2utt[d.utt2spk[u]] if o != u][:SOURCE_SPEAKER_UTTS]
        for o in others:
            if o not in other_emb:
                other_emb[o] = emb[o] if o in emb else speaker.embed(d.load_audio(o))
        vc_ss.append(float(np.mean([e @ other_emb[o] for o in others])) if others else None)
    sims["vc_to_target"], sims["vc_to_source"], sims["vc_to_source_speaker"] = vc_t, vc_s, vc_ss
    tts_ref, tts_other = [], []
    for u, w in synth.items():
        e = speaker.embed(w)
        tts_ref.append(float(e @ ref_emb[targets[u]]))
        others = [float(e @ v) for t, v in ref_emb.items() if refs.utt2spk[t] != refs.utt2spk[targets[u]]]
        tts_other.append(float(np.mean(others)) if others else None)
    sims["tts_to_reference"], sims["tts_to_other_references"] = tts_ref, tts_other
    out["speaker_similarity"] = {k: _mean(v) for k, v in sims.items()}
    out["vc_closer_to_target"] = round(float(np.mean([t > s for t, s in zip(vc_t, vc_s)])), 3) if vc_t else None
    pairs = [(t, s) for t, s in zip(vc_t, vc_ss) if s is not None]
    out["vc_closer_to_target_than_source_speaker"] = (
        round(float(np.mean([t > s for t, s in pairs])), 3) if pairs else None
    )
    floor = judge_wer(sphinx, orig, texts)
    out["wer"] = {"original": floor["wer"]}
    for name, wavs in (("resynthesis", resyn), ("vc", conv), ("tts", synth)):
        if wavs:
            r = judge_wer(sphinx, wavs, texts)
            out["wer"][name] = r["wer"]
            out["wer"][f"{name}_over_floor"] = round(r["wer"] / max(floor["wer"], 1e-9), 3)
    out["mcd_dtw"] = {"resynthesis": _mean([mcd_dtw(orig[u], resyn[u])[0] for u in resyn])}
    if synth_own:
        out["mcd_dtw"]["tts_own_voice"] = _mean([mcd_dtw(orig[u], synth_own[u])[0] for u in synth_own])
    log.info(
        "judges: VC to target %.3f / source %.3f; PocketSphinx WER original %.1f, TTS %s",
        out["speaker_similarity"]["vc_to_target"] or 0,
        out["speaker_similarity"]["vc_to_source"] or 0,
        floor["wer"],
        out["wer"].get("tts"),
    )
    return out


__all__ = ["judge", "judges_available"]
