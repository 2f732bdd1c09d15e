"""``speechssl tts eval``: how good WavThruVec's speech is, measured with the toolkit's own models.

* Resynthesis (test audio -> upstream features -> vec2wav, its own speaker's reference): mel cepstral
  distortion and STOI against the original, and the ASR's WER on resynthesized against original audio.
* Text-to-speech of the test sentences in the voices of references from (by default unseen) speakers:
  WER / CER of the ASR, and speaker similarity (cosine of speaker embeddings) to the reference.
* Voice conversion of test utterances to other speakers: similarity to the target and to the source,
  and the WER kept.

MCD here: ``10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)`` over 24 mel cepstra c1..c24, frame by frame on
the time-aligned signals (no DTW: a resynthesis keeps the timing), averaged over frames. The cepstra are
librosa's orthonormal DCT-II of the 40-band log mel power spectrum (25 ms / 10 ms) brought to the scale of
the cepstra MCD is defined on (``log|H| = c0 + sum_d c_d cos(d w)``, natural log of the *amplitude*): x ln 10 / 10
(dB to nepers), x sqrt(2 / 40) (the orthonormal DCT's gain), x 1/2 (power to amplitude). Values land in the
usual range (a few dB) but mel bands are not SPTK's all-pass warping: compare within this toolkit.
The speaker embedding is the vocoder's own (mean and std of the upstream's speaker layer); real audio's
similarities (same speaker, source against target) are reported as the scale to read it on. On the mini
corpus that scale is narrow (0.850 against 0.842): the embedding follows content as much as the speaker, so
it is no verdict on voice identity (that wants an independent speaker verifier).

Every audio file goes into a Kaldi data dir under ``out`` (``resynth/``, ``tts/``, ``vc/``), so
``speechssl decode`` scores it and the results can be listened to. Plots: log-mel spectrograms of original,
resynthesized and synthesized speech for a few test sentences.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional

import numpy as np
from omegaconf import OmegaConf

from ..audio.io import load
from ..constants import SAMPLE_RATE
from ..data.kaldi_dir import DataDir
from ..downstream.asr_decode import decode_asr
from ..downstream.ctc_decode import DEFAULT_LM_WEIGHT, DEFAULT_WORD_SCORE
from ..downstream.wavthruvec import WavThruVec, save_wav
from ..errors import InputError, MissingInputError
from ..utils.artifacts import DecodeResult
from ..utils.atomic import atomic_path, write_json, write_text

log = logging.getLogger(__name__)


MEL_BANDS = 40


def mel_cepstra(wav: np.ndarray, n: int = 24) -> np.ndarray:
    """``[T]`` 16 kHz -> ``[frames, n]`` mel cepstra c1..cn on MCD's scale (natural log amplitude, see above)."""
    import librosa

    m = librosa.feature.mfcc(
        y=wav.astype(np.float32), sr=SAMPLE_RATE, n_mfcc=n + 1, n_fft=400, hop_length=160, n_mels=MEL_BANDS, lifter=0
    )
    return m[1:].T * (np.log(10) / 10) * np.sqrt(2 / MEL_BANDS) * 0.5


def mel_cepstral_distortion(ref: np.ndarray, hyp: np.ndarray) -> float:
    """Frame-averaged MCD in dB between two time-aligned 16 kHz signals."""
    a, b = mel_cepstra(ref), mel_cepstra(hyp)
    T = min(len(a), len(b))
    diff = a[:T] - b[:T]
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum(diff**2, axis=1))))


def stoi(ref: np.ndarray, hyp: np.ndarray) -> float:
    """STOI, or NaN where the utterance has too little speech for it (pystoi would return 1e-5 with a warning:
    it needs 30 frames of 384 ms after dropping silence), so short items do not drag a mean down."""

    from pystoi import stoi as _stoi

    T = min(len(ref), len(hyp))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref[:T], hyp[:T], SAMPLE_RATE, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")
    return value


def mean_stoi(values: List[float]) -> Optional[float]:
    """The mean over utterances STOI could score (None if none could)."""
    ok = [v for v in values if not np.isnan(v)]
    return float(np.mean(ok)) if ok else None


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def write_audio_dir(out: Path, wavs: Dict[str, np.ndarray], texts: Dict[str, str], spk: Dict[str, str]) -> Path:
    """``{utt: 16 kHz audio}`` with its transcripts and speakers -> a data dir ``out`` (wav.scp, text, utt2spk)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = {"wav.scp": [], "text": [], "utt2spk": []}
    for u in sorted(wavs):
        path = save_wav(out / "wav" / f"{u}.wav", wavs[u])
        lines["wav.scp"].append(f"{u} {path.resolve()}")
        lines["text"].append(f"{u} {texts[u]}")
        lines["utt2spk"].append(f"{u} {spk[u]}")
    for name, rows in lines.items():
        write_text(out / name, "\n".join(rows) + "\n")
    return out


def _asr(asr: Optional[str], data: Path, out: Path, decode: Optional[dict] = None) -> Optional[dict]:
    """WER / CER of the ASR on ``data``; ``decode``: ``decode_asr`` options (``beam``, ``lm``, ...)."""
    if not asr:
        return None

    r = decode_asr(asr, data, out, text_file="text", **(decode or {}))
    return {"wer": r["wer"]["rate"], "cer": r["cer"]["rate"]}


def _read_dir(d: Path, utts: List[str]) -> Optional[Dict[str, np.ndarray]]:
    """The audio ``write_audio_dir`` wrote for exactly ``utts``, or None where it is missing or incomplete."""

    if not (d / "utt2spk").is_file():  # written last
        return None
    listed = dict(line.split(maxsplit=1) for line in (d / "wav.scp").read_text().splitlines() if line)
    if sorted(listed) != sorted(utts):
        return None
    return {u: load(listed[u]) for u in utts}


def _scored(asr: Optional[str], data: Path, out: Path, decode: Optional[dict]) -> Optional[dict]:
    """``_asr`` unless ``out`` already holds this ASR's scoring of ``data`` with the same decoding."""
    if asr and (out / "results.json").is_file():
        r = DecodeResult.read(out).fields
        want = decode or {}
        decoder = f"beam{want['beam']}" if want.get("beam") else "greedy"
        same = (
            r.get("model") == str(asr)
            and r.get("decoder") == decoder
            and r.get("lm") == want.get("lm")
            and (
                not want.get("beam")
                or (r.get("lm_weight"), r.get("word_score"))
                == (want.get("lm_weight", DEFAULT_LM_WEIGHT), want.get("word_score", DEFAULT_WORD_SCORE))
            )
        )
        if same:
            return {"wer": r["wer"]["rate"], "cer": r["cer"]["rate"]}
    return _asr(asr, data, out, decode)


def _discriminator_start(run_dir: Path) -> int:
    """``optim.discriminator_start_steps`` of the vocoder run whose snapshots these are (0 if unknown)."""

    cfg = run_dir / "config.yaml"
    return (
        int(OmegaConf.select(OmegaConf.load(cfg), "optim.discriminator_start_steps", default=0) or 0)
        if cfg.is_file()
        else 0
    )


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
            mel = librosa.power_to_db(
                librosa.feature.melspectrogram(y=wav, sr=SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=80), ref=np.max
            )
            axes[i, j].imshow(mel, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma")
            axes[i, j].set_title(f"{title}: {label}", fontsize=8)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return out_png


def resynthesize(tts, d, utt: str, wav: np.ndarray):
    """``wav``'s features through the vocoder with another utterance of its speaker as the voice reference.
    -> ``(resynthesized wav, features [T, F], the original's speaker embedding, (MCD, STOI))``."""
    feats, spk_own = tts.layers(wav)
    refs = [x for x in d.spk2utt[d.utt2spk[utt]] if x != utt] or [utt]
    out = tts.vocode(feats, tts.layers(d.load_audio(refs[0]))[1])
    return out, feats, spk_own, (mel_cepstral_distortion(wav, out), stoi(wav, out))


def _judges_wanted(judges: Optional[bool]) -> tuple:
    """``(run the independent judges?, what of their extra is missing)``; refused when asked for and missing."""
    from ..downstream.tts_judges import judges_available

    missing = judges_available()
    if judges and missing:
        raise MissingInputError(f"--judges needs the judges extra, missing {missing}: pip install 'speechssl[judges]'")
    return (missing is None if judges is None else judges), missing


def _clean_twin(clean_data: Optional[str], data: str, utts: List[str]) -> Optional[DataDir]:
    """The clean twin's data dir, refused (before any vocoding) unless it holds every utterance judged."""
    if not clean_data:
        return None
    clean = DataDir.read(clean_data)
    missing = sorted(set(utts) - set(clean.utt_ids))
    if missing:
        raise InputError(f"{clean_data}: not the clean twin of {data}: it lacks {missing[0]}")
    return clean


def _clean_twin_figures(clean: DataDir, resyn: Dict[str, np.ndarray], score) -> dict:
    """The ASR's floor on the clean twin's audio, and resynthesis MCD / STOI against it."""
    wavs = {u: clean.load_audio(u) for u in resyn}
    return {
        "data": str(clean.path),
        "asr_original": score(wavs, "original_clean"),
        "resynthesis_mcd": float(np.mean([mel_cepstral_distortion(wavs[u], resyn[u]) for u in resyn])),
        "resynthesis_stoi": mean_stoi([stoi(wavs[u], resyn[u]) for u in resyn]),
    }


def _generate(tts, d: DataDir, refs: DataDir, utts: List[str], acoustic: Optional[str], judges: bool):
    """Every utterance resynthesized, converted to another speaker's voice and (``acoustic``) synthesized from
    its text, with the speaker similarities and resynthesis MCD / STOI on the way; the names of :func:`evaluate`."""
    ref_utts = refs.utt_ids
    orig, resyn, synth, conv, synth_own, targets = {}, {}, {}, {}, {}, {}
    mcd, st, sim_tts, sim_vc_t, sim_vc_s, sim_resyn = [], [], [], [], [], []
    sim_within, sim_between = [], []  # the scale: real audio of one speaker, and of source vs target
    for k, u in enumerate(utts):
        wav = orig[u] = d.load_audio(u)
        resyn[u], feats, spk_own, (m, s_) = resynthesize(tts, d, u, wav)
        mcd.append(m)
        st.append(s_)
        sim_resyn.append(cosine(tts.layers(resyn[u])[1], spk_own))
        # another speaker's reference: unseen speakers for TTS and the conversion target
        target = targets[u] = ref_utts[(k * 7) % len(ref_utts)]
        twav = refs.load_audio(target)
        _, spk_t = tts.layers(twav)
        sim_between.append(cosine(spk_own, spk_t))
        same = [x for x in d.spk2utt[d.utt2spk[u]] if x != u]
        if same:
            sim_within.append(cosine(spk_own, tts.layers(d.load_audio(same[0]))[1]))
        conv[u] = tts.vocode(feats, spk_t)
        vc_emb = tts.layers(conv[u])[1]
        sim_vc_t.append(cosine(vc_emb, spk_t))
        sim_vc_s.append(cosine(vc_emb, spk_own))
        if acoustic:
            synth[u], _, _ = tts.synthesize(d.text[u], twav)
            sim_tts.append(cosine(tts.layers(synth[u])[1], spk_t))
            if judges:  # in the speaker's own voice: published MCD against the recording of the sentence
                synth_own[u], _, _ = tts.synthesize(d.text[u], d.load_audio(same[0]) if same else wav)
    return SimpleNamespace(
        orig=orig, resyn=resyn, synth=synth, conv=conv, synth_own=synth_own, targets=targets, mcd=mcd, st=st,
        sim_tts=sim_tts, sim_vc_t=sim_vc_t, sim_vc_s=sim_vc_s, sim_resyn=sim_resyn, sim_within=sim_within,
        sim_between=sim_between,
    )  # fmt: skip


def evaluate(
    vocoder: str,
    data: str,
    out: str,
    acoustic: Optional[str] = None,
    asr: Optional[str] = None,
    ref_data: Optional[str] = None,
    max_utts: int = 128,
    plots: int = 3,
    asr_decode: Optional[dict] = None,
    device: str = "auto",
    judges: Optional[bool] = None,
    judge_lm: Optional[str] = None,
    clean_data: Optional[str] = None,
) -> dict:
    """Run the three measurements on ``data`` (test) with references from ``ref_data`` (unseen speakers);
    ``asr_decode``: how the ASR decodes (``decode_asr``'s beam, lm, lm_weight, word_score; greedy by default);
    ``judges``: also the independent judges (:mod:`speechssl.downstream.tts_judges`; None: when their extra is
    installed);
    ``judge_lm``: PocketSphinx's ARPA LM (default: the ASR's ``asr_decode["lm"]`` when there is one);
    ``clean_data``: the clean twin of ``data`` (its utterances before reverberation and noise, what a vocoder
    trained on clean targets aims at): its ASR floor and resynthesis MCD / STOI against it, in ``clean_twin``."""
    from ..downstream.tts_judges import judge

    judges, missing = _judges_wanted(judges)

    out = Path(out)
    tts = WavThruVec(vocoder, acoustic, device)
    d = DataDir.read(data)
    refs = DataDir.read(ref_data) if ref_data else d
    utts = [u for u in d.utt_ids if d.text and u in d.text][:max_utts]
    if not utts:
        raise InputError(f"{data}: no utterances with a transcript to evaluate on")
    clean = _clean_twin(clean_data, data, utts)
    res: Dict[str, dict] = {
        "utterances": len(utts),
        "vocoder": vocoder,
        "acoustic": acoustic,
        "asr": asr,
        "asr_decode": asr_decode or {"beam": 0},
    }
    g = _generate(tts, d, refs, utts, acoustic, judges)
    orig, resyn, synth, conv, synth_own, targets = g.orig, g.resyn, g.synth, g.conv, g.synth_own, g.targets
    mcd, st, sim_tts, sim_vc_t, sim_vc_s, sim_resyn = g.mcd, g.st, g.sim_tts, g.sim_vc_t, g.sim_vc_s, g.sim_resyn
    sim_within, sim_between = g.sim_within, g.sim_between
    texts, spk = {u: d.text[u] for u in utts}, {u: d.utt2spk[u] for u in utts}

    def score(wavs: Dict[str, np.ndarray], name: str) -> Optional[dict]:
        return _asr(asr, write_audio_dir(out / name, wavs, texts, spk), out / f"decode_{name}", asr_decode)

    res["resynthesis"] = {
        "mcd": float(np.mean(mcd)),
        "stoi": mean_stoi(st),
        "stoi_utterances": int(np.sum(~np.isnan(st))),
        "speaker_similarity": float(np.mean(sim_resyn)),
        "asr_original": score(orig, "original"),
        "asr": score(resyn, "resynth"),
    }
    if clean is not None:
        res["clean_twin"] = _clean_twin_figures(clean, resyn, score)
    res["speaker_similarity_scale"] = {
        "same_speaker_originals": float(np.mean(sim_within)) if sim_within else None,
        "source_vs_target_originals": float(np.mean(sim_between)),
    }
    res["voice_conversion"] = {
        "similarity_to_target": float(np.mean(sim_vc_t)),
        "similarity_to_source": float(np.mean(sim_vc_s)),
        "asr": score(conv, "vc"),
    }
    if acoustic:
        res["tts"] = {"speaker_similarity": float(np.mean(sim_tts)), "asr": score(synth, "tts")}
    if judges:
        res["judges"] = judge(
            d,
            refs,
            orig,
            resyn,
            conv,
            targets,
            synth,
            synth_own,
            texts,
            own_embedding=lambda w: tts.layers(w)[1].cpu().numpy(),
            lm=judge_lm or (asr_decode or {}).get("lm"),
        )
    else:
        res["judges"] = {"skipped": f"the judges extra is not installed: {missing}"}
    rows = [
        (u, [("original", orig[u]), ("resynthesized", resyn[u])] + ([("synthesized", synth[u])] if acoustic else []))
        for u in utts[:plots]
    ]
    res["plot"] = str(plot_spectrograms(rows, out / "spectrograms.png"))
    write_json(out / "tts_eval.json", res)
    return res


def resynthesis_curve(
    snapshots: str,
    data: str,
    out: str,
    asr: Optional[str] = None,
    max_utts: int = 16,
    asr_decode: Optional[dict] = None,
) -> dict:
    """Resynthesis MCD / STOI / WER of every vocoder snapshot (``out_dir/snapshots/stepN``) against training steps,
    with the ASR's WER on the original audio as the floor; ``out/curve.{json,png}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = sorted(p for p in Path(snapshots).glob("step*") if (p / "vocoder.yaml").is_file())
    if not snaps:
        raise MissingInputError(f"{snapshots}: no vocoder snapshots (train with snapshot_every_steps > 0)")
    out = Path(out)
    d = DataDir.read(data)
    utts = [u for u in d.utt_ids if d.text and u in d.text][:max_utts]
    texts, spk = {u: d.text[u] for u in utts}, {u: d.utt2spk[u] for u in utts}
    orig = {u: d.load_audio(u) for u in utts}
    floor = _scored(asr, write_audio_dir(out / "original", orig, texts, spk), out / "decode_original", asr_decode)
    points = []
    for snap in snaps:
        done = _read_dir(out / snap.name, utts)  # a rerun (or a resumed one) reuses what it wrote
        if done is not None:
            wavs = done
            mcd = [mel_cepstral_distortion(orig[u], wavs[u]) for u in utts]
            st = [stoi(orig[u], wavs[u]) for u in utts]
        else:
            tts = WavThruVec(str(snap))
            wavs, mcd, st = {}, [], []
            for u in utts:
                wavs[u], _, _, (m, s_) = resynthesize(tts, d, u, orig[u])
                mcd.append(m)
                st.append(s_)
            write_audio_dir(out / snap.name, wavs, texts, spk)
        step = int(snap.name[4:])
        r = _scored(asr, out / snap.name, out / f"decode_{snap.name}", asr_decode)
        points.append({"step": step, "mcd": float(np.mean(mcd)), "stoi": mean_stoi(st), "asr": r})
        log.info(
            "step %d: MCD %.2f STOI %s%s",
            step,
            points[-1]["mcd"],
            points[-1]["stoi"],
            f" WER {r['wer']:.1f}" if r else "",
        )
    d_start = _discriminator_start(Path(snapshots).parent)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    steps = [p["step"] for p in points]
    if asr:
        for key, color in (("wer", "C0"), ("cer", "C1")):
            axes[0].plot(
                steps, [p["asr"][key] for p in points], marker="o", color=color, label=f"{key.upper()}, resynthesized"
            )
            axes[0].axhline(floor[key], color=color, linestyle="--", label=f"{key.upper()}, original audio (floor)")
        axes[0].set_ylabel("ASR error rate (%)")
    axes[1].plot(steps, [p["mcd"] for p in points], marker="o", color="C3")
    axes[1].set_ylabel("MCD (dB)")
    axes[2].plot(steps, [np.nan if p["stoi"] is None else p["stoi"] for p in points], marker="o", color="C2")
    axes[2].set_ylabel("STOI")
    for ax in axes:
        ax.set_xlabel("vocoder training steps")
        if d_start:
            ax.axvline(d_start, color="gray", linestyle=":", label="discriminators start")
    if asr or d_start:
        axes[0].set_ylim(0, 100)
        axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "curve.png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    res = {
        "points": points,
        "asr_original": floor,
        "asr_decode": asr_decode or {"beam": 0},
        "discriminator_start_steps": d_start,
        "plot": str(out / "curve.png"),
    }
    write_text(out / "curve.json", json.dumps(res, indent=1))
    return res
