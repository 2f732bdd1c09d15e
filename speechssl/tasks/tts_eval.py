"""``speechssl tts eval``: how good WavThruVec's speech is, measured with the toolkit's own models.

* Resynthesis (test audio -> upstream features -> vec2wav, its own speaker's reference): mel cepstral
  distortion and STOI against the original, and the ASR's WER on resynthesized against original audio.
* Text-to-speech of the test sentences in the voices of references from (by default unseen) speakers:
  WER / CER of the ASR, and speaker similarity (cosine of speaker embeddings) to the reference.
* Voice conversion of test utterances to other speakers: similarity to the target and to the source,
  and the WER kept.

MCD here: ``10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)`` over 24 mel cepstra (c1..c24 of librosa's
DCT-II of the log mel spectrum, 25 ms / 10 ms), frame by frame on the time-aligned signals (no DTW: a
resynthesis keeps the timing), averaged over frames. Values are comparable within this toolkit, not to
papers computing SPTK mel-generalized cepstra. The speaker embedding is the vocoder's own (mean and std of
the upstream's speaker layer), so similarity says how well the voice the vocoder conditions on is kept.

Every audio file goes into a Kaldi data dir under ``out`` (``resynth/``, ``tts/``, ``vc/``), so
``speechssl decode`` scores it and the results can be listened to. Plots: log-mel spectrograms of original,
resynthesized and synthesized speech for a few test sentences.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

log = logging.getLogger(__name__)


def mel_cepstra(wav: np.ndarray, n: int = 24) -> np.ndarray:
    """``[T]`` 16 kHz -> ``[frames, n]`` mel cepstra c1..cn."""
    import librosa

    m = librosa.feature.mfcc(y=wav.astype(np.float32), sr=16000, n_mfcc=n + 1, n_fft=400, hop_length=160,
                             n_mels=40, lifter=0)
    return m[1:].T


def mel_cepstral_distortion(ref: np.ndarray, hyp: np.ndarray) -> float:
    a, b = mel_cepstra(ref), mel_cepstra(hyp)
    T = min(len(a), len(b))
    diff = a[:T] - b[:T]
    # librosa's mfcc is in dB-scaled log mel (10 log10); MCD expects natural-log cepstra: rescale
    diff = diff * np.log(10) / 10
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum(diff ** 2, axis=1))))


def stoi(ref: np.ndarray, hyp: np.ndarray) -> float:
    from pystoi import stoi as _stoi

    T = min(len(ref), len(hyp))
    return float(_stoi(ref[:T], hyp[:T], 16000, extended=False))


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _write_dir(out: Path, wavs: Dict[str, np.ndarray], texts: Dict[str, str], spk: Dict[str, str]) -> Path:
    from .wavthruvec import save_wav

    out.mkdir(parents=True, exist_ok=True)
    lines = {"wav.scp": [], "text": [], "utt2spk": []}
    for u in sorted(wavs):
        path = save_wav(out / "wav" / f"{u}.wav", wavs[u])
        lines["wav.scp"].append(f"{u} {path.resolve()}")
        lines["text"].append(f"{u} {texts[u]}")
        lines["utt2spk"].append(f"{u} {spk[u]}")
    for name, rows in lines.items():
        (out / name).write_text("\n".join(rows) + "\n")
    return out


def _asr(asr: Optional[str], data: Path, out: Path) -> Optional[dict]:
    if not asr:
        return None
    from .asr import decode_asr

    r = decode_asr(asr, data, out, text_file="text")
    return {"wer": r["wer"]["rate"], "cer": r["cer"]["rate"]}


def plot_spectrograms(rows: List[tuple], out_png: Path) -> Path:
    """``rows``: ``(title, [(label, wav), ...])`` -> one row of log-mel panels per sentence."""
    import librosa
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(4 * cols, 2.4 * len(rows)), squeeze=False)
    for i, (title, panels) in enumerate(rows):
        for j, (label, wav) in enumerate(panels):
            mel = librosa.power_to_db(librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=1024, hop_length=256,
                                                                     n_mels=80), ref=np.max)
            axes[i, j].imshow(mel, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma")
            axes[i, j].set_title(f"{title}: {label}", fontsize=8)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png


def resynthesize(tts, d, utt: str, wav: np.ndarray):
    """``wav``'s features through the vocoder with another utterance of its speaker as the voice reference.
    -> ``(resynthesized wav, features [T, F], the original's speaker embedding, (MCD, STOI))``."""
    feats, spk_own = tts.layers(wav)
    refs = [x for x in d.spk2utt[d.utt2spk[utt]] if x != utt] or [utt]
    out = tts.vocode(feats, tts.layers(d.load_audio(refs[0]))[1])
    return out, feats, spk_own, (mel_cepstral_distortion(wav, out), stoi(wav, out))


def evaluate(vocoder: str, data: str, out: str, acoustic: Optional[str] = None, asr: Optional[str] = None,
             ref_data: Optional[str] = None, max_utts: int = 32, plots: int = 3) -> dict:
    """Run the three measurements on ``data`` (test) with references from ``ref_data`` (unseen speakers)."""
    from ..data.kaldi_dir import DataDir
    from .wavthruvec import WavThruVec

    out = Path(out)
    tts = WavThruVec(vocoder, acoustic)
    d = DataDir.read(data)
    refs = DataDir.read(ref_data) if ref_data else d
    utts = [u for u in d.utt_ids if d.text and u in d.text][:max_utts]
    if not utts:
        raise ValueError(f"{data}: no utterances with a transcript to evaluate on")
    ref_utts = refs.utt_ids
    res: Dict[str, dict] = {"utterances": len(utts), "vocoder": vocoder, "acoustic": acoustic, "asr": asr}
    orig, resyn, synth, conv = {}, {}, {}, {}
    mcd, st, sim_tts, sim_vc_t, sim_vc_s, sim_resyn = [], [], [], [], [], []
    for k, u in enumerate(utts):
        wav = d.load_audio(u)
        orig[u] = wav
        resyn[u], feats, spk_own, (m, s_) = resynthesize(tts, d, u, wav)
        mcd.append(m)
        st.append(s_)
        sim_resyn.append(cosine(tts.layers(resyn[u])[1], spk_own))
        # another speaker's reference: unseen speakers for TTS and the conversion target
        target = ref_utts[(k * 7) % len(ref_utts)]
        twav = refs.load_audio(target)
        _, spk_t = tts.layers(twav)
        conv[u] = tts.vocode(feats, spk_t)
        vc_emb = tts.layers(conv[u])[1]
        sim_vc_t.append(cosine(vc_emb, spk_t))
        sim_vc_s.append(cosine(vc_emb, spk_own))
        if acoustic:
            synth[u], _, _ = tts.synthesize(d.text[u], twav)
            sim_tts.append(cosine(tts.layers(synth[u])[1], spk_t))
    texts, spk = {u: d.text[u] for u in utts}, {u: d.utt2spk[u] for u in utts}
    res["resynthesis"] = {"mcd": float(np.mean(mcd)), "stoi": float(np.mean(st)),
                          "speaker_similarity": float(np.mean(sim_resyn)),
                          "asr_original": _asr(asr, _write_dir(out / "original", orig, texts, spk), out / "decode_original"),
                          "asr": _asr(asr, _write_dir(out / "resynth", resyn, texts, spk), out / "decode_resynth")}
    res["voice_conversion"] = {"similarity_to_target": float(np.mean(sim_vc_t)),
                               "similarity_to_source": float(np.mean(sim_vc_s)),
                               "asr": _asr(asr, _write_dir(out / "vc", conv, texts, spk), out / "decode_vc")}
    if acoustic:
        res["tts"] = {"speaker_similarity": float(np.mean(sim_tts)),
                      "asr": _asr(asr, _write_dir(out / "tts", synth, texts, spk), out / "decode_tts")}
    rows = [(u, [("original", orig[u]), ("resynthesized", resyn[u])] + ([("synthesized", synth[u])] if acoustic else []))
            for u in utts[:plots]]
    res["plot"] = str(plot_spectrograms(rows, out / "spectrograms.png"))
    tmp = out / "tts_eval.json.tmp"
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(out / "tts_eval.json")
    return res


def resynthesis_curve(snapshots: str, data: str, out: str, asr: Optional[str] = None, max_utts: int = 16) -> dict:
    """Resynthesis MCD / STOI / WER of every vocoder snapshot (``out_dir/snapshots/stepN``) against training steps,
    with the ASR's WER on the original audio as the floor; ``out/curve.{json,png}``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..data.kaldi_dir import DataDir
    from .wavthruvec import WavThruVec

    snaps = sorted(p for p in Path(snapshots).glob("step*") if (p / "vocoder.yaml").is_file())
    if not snaps:
        raise FileNotFoundError(f"{snapshots}: no vocoder snapshots (train with snapshot_every_steps > 0)")
    out = Path(out)
    d = DataDir.read(data)
    utts = [u for u in d.utt_ids if d.text and u in d.text][:max_utts]
    texts, spk = {u: d.text[u] for u in utts}, {u: d.utt2spk[u] for u in utts}
    orig = {u: d.load_audio(u) for u in utts}
    floor = _asr(asr, _write_dir(out / "original", orig, texts, spk), out / "decode_original")
    points = []
    for snap in snaps:
        tts = WavThruVec(str(snap))
        wavs, mcd, st = {}, [], []
        for u in utts:
            wavs[u], _, _, (m, s_) = resynthesize(tts, d, u, orig[u])
            mcd.append(m)
            st.append(s_)
        step = int(snap.name[4:])
        r = _asr(asr, _write_dir(out / snap.name, wavs, texts, spk), out / f"decode_{snap.name}")
        points.append({"step": step, "mcd": float(np.mean(mcd)), "stoi": float(np.mean(st)), "asr": r})
        log.info("step %d: MCD %.2f STOI %.3f%s", step, points[-1]["mcd"], points[-1]["stoi"],
                 f" WER {r['wer']:.1f}" if r else "")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    steps = [p["step"] for p in points]
    if asr:
        axes[0].plot(steps, [p["asr"]["wer"] for p in points], marker="o", label="resynthesized")
        axes[0].axhline(floor["wer"], color="gray", linestyle="--", label="original audio (floor)")
        axes[0].set_ylabel("ASR WER (%)")
        axes[0].legend(fontsize=8)
    axes[1].plot(steps, [p["stoi"] for p in points], marker="o", color="C2")
    axes[1].set_ylabel("STOI")
    for ax in axes:
        ax.set_xlabel("vocoder training steps")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "curve.png", dpi=90)
    plt.close(fig)
    res = {"points": points, "asr_original": floor, "plot": str(out / "curve.png")}
    (out / "curve.json").write_text(json.dumps(res, indent=1))
    return res
