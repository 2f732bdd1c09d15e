"""The synthetic mini corpus: espeak-ng speech in LibriSpeech layout, with phone alignments,
speakers and task labels, made offline on any machine.

Layout written under ``root``::

    <split>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac      16 kHz mono
    <split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt         LibriSpeech transcripts
    <split>/alignments.ctm     utt 1 start dur phone   (phone set: speechssl.audio.phones)
    <split>/metadata.jsonl     per utterance: speaker, kind, keyword, intent, voice, degradations
    speakers.tsv, phones.txt, corpus.json (written last: the corpus is complete)

Splits: ``train``, ``dev``, ``test`` (general sentences unseen in train) from the seen
speakers, and ``test-unseen-speakers`` from held-out speakers. Every utterance draws from its
own seeded generator, so the corpus depends only on preset and seed, not on worker timing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ..audio import augment
from ..audio.espeak import Espeak
from ..audio.io import resample, save
from ..audio.phones import MODIFIERS, PHONE_SET, SILENCE, espeak_to_phone
from ..errors import InputError, OutputExistsError
from ..utils.atomic import write_json
from . import grammar
from .presets import PRESETS, Preset, clean_twin  # noqa: F401  (re-exported: the corpus's public names)

log = logging.getLogger(__name__)

ACCENTS = ["en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
MALE_VARIANTS = [f"m{i}" for i in range(1, 8)]
FEMALE_VARIANTS = [f"f{i}" for i in range(1, 6)]
SPLITS = ["train", "dev", "test", "test-unseen-speakers"]
_CHAPTER = {"train": 101, "dev": 201, "test": 301, "test-unseen-speakers": 401}


@dataclass
class Speaker:
    id: int
    gender: str
    accent: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    seen: bool
    channel: augment.Channel = field(repr=False)

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass
class UttPlan:
    utt_id: str
    split: str
    speaker: Speaker
    text: str
    kind: str
    keyword: Optional[str]
    intent: Optional[Tuple[str, str, str]]
    seed: int

    @property
    def rel_dir(self) -> str:
        return f"{self.split}/{self.speaker.id}/{_CHAPTER[self.split]}"


def make_speakers(preset: Preset, seed: int) -> List[Speaker]:
    """Distinct (accent, variant) voices, alternating male/female, with random pitch/speed."""
    rng = np.random.default_rng([seed, 1])
    combos = {
        "m": [(a, v) for a in ACCENTS for v in MALE_VARIANTS],
        "f": [(a, v) for a in ACCENTS for v in FEMALE_VARIANTS],
    }
    for g in combos:
        order = rng.permutation(len(combos[g]))
        combos[g] = [combos[g][i] for i in order]
    speakers = []
    total = preset.seen_speakers + preset.unseen_speakers
    for i in range(total):
        gender = "m" if i % 2 == 0 else "f"
        accent, variant = combos[gender][(i // 2) % len(combos[gender])]
        base = (25, 55) if gender == "m" else (45, 80)
        speakers.append(
            Speaker(
                id=100 + i,
                gender=gender,
                accent=accent,
                variant=variant,
                pitch=int(rng.integers(*base)),
                pitch_range=int(rng.integers(30, 80)),
                rate=int(rng.integers(140, 200)),
                seen=i < preset.seen_speakers,
                channel=(
                    augment.Channel.random(rng, preset.sample_rate)
                    if preset.channel_colouring
                    else augment.Channel(0.0, [])
                ),
            )
        )
    return speakers


def plan_corpus(preset: Preset, seed: int) -> List[UttPlan]:
    """Every utterance to make, in a fixed order. General sentences are unique corpus-wide, so
    dev/test sentences never occur in train; commands and keywords repeat (they are classes)."""

    rng = random.Random(seed)
    speakers = make_speakers(preset, seed)
    used_sentences: set = set()
    plans: List[UttPlan] = []

    def next_prompt() -> grammar.Prompt:
        r = rng.random()
        p_sent, p_cmd, _ = preset.kind_probs
        if r < p_sent:
            for _ in range(1000):
                text = grammar.general_sentence(rng)
                if text not in used_sentences:
                    used_sentences.add(text)
                    return grammar.Prompt(text=text, kind="sentence")
            raise RuntimeError("grammar exhausted: cannot draw a new unique sentence")
        if r < p_sent + p_cmd:
            return grammar.command_utterance(rng)
        return grammar.keyword_utterance(rng)

    for split in SPLITS:
        group = [s for s in speakers if s.seen == (split != "test-unseen-speakers")]
        count = preset.unseen_utts_per_speaker if split == "test-unseen-speakers" else preset.utts_per_speaker[split]
        for spk in group:
            for n in range(count):
                p = next_prompt()
                utt = f"{spk.id}-{_CHAPTER[split]}-{n:04d}"
                plans.append(UttPlan(utt, split, spk, p.text, p.kind, p.keyword, p.intent, seed=rng.randrange(2**31)))
    return plans


def segments_from_events(
    events: Sequence[Tuple[str, int]], num_samples: int, ratio: float
) -> List[Tuple[str, float, float]]:
    """espeak phoneme events ``(mnemonic, start_sample)`` -> ``(phone, start, end)`` samples
    in the output rate (``ratio`` = out_rate / espeak_rate). Leading audio before the first
    event is silence; modifiers extend the previous phone; adjacent silences merge."""
    points = [(SILENCE, 0)] + [(espeak_to_phone(n), s) for n, s in events if n not in MODIFIERS]
    segs: List[List] = []
    for i, (phone, start) in enumerate(points):
        end = points[i + 1][1] if i + 1 < len(points) else num_samples
        start, end = min(start, num_samples), min(max(end, start), num_samples)
        if end <= start:
            continue
        if segs and segs[-1][0] == phone == SILENCE:
            segs[-1][2] = end
        else:
            segs.append([phone, start, end])
    if segs and segs[-1][2] < num_samples:
        segs[-1][2] = num_samples
    return [(p, s * ratio, e * ratio) for p, s, e in segs]


def synthesize_utterance(plan: UttPlan, preset: Preset):
    """Synthesize, resample, degrade. Returns ``(wav [T] float32, meta dict)``."""

    rng = np.random.default_rng(plan.seed)
    spk = plan.speaker
    engine = Espeak()
    # Per-utterance prosody jitter: one speaker never sounds exactly the same twice.
    pitch = int(np.clip(spk.pitch + rng.integers(-6, 7), 0, 99))
    rate = int(spk.rate + rng.integers(-12, 13))
    engine.set_voice(spk.voice, rate=rate, pitch=pitch, pitch_range=spk.pitch_range)
    syn = engine.synthesize(plan.text, seed=plan.seed)
    if syn.audio.size == 0:
        raise RuntimeError(f"{plan.utt_id}: espeak produced no audio for {plan.text!r}")
    sr = preset.sample_rate
    wav = resample(syn.audio, syn.sample_rate, sr)
    ratio = sr / syn.sample_rate
    segs = segments_from_events(syn.phonemes, syn.audio.shape[0], ratio)
    wav = spk.channel.apply(wav, sr)
    if preset.session_eq:
        wav = augment.Channel(
            tilt=float(rng.uniform(-0.3, 0.3)),
            bands=[
                (
                    float(np.exp(rng.uniform(np.log(200), np.log(6000)))),
                    float(rng.uniform(-6, 6)),
                    float(rng.uniform(0.7, 2.0)),
                )
                for _ in range(2)
            ],
        ).apply(wav, sr)
    meta_aug: Dict[str, float] = {}
    if rng.random() < preset.reverb_prob:
        rt60 = float(rng.uniform(*preset.rt60_s))
        wav = augment.reverberate(wav, rt60, rng, sr)
        meta_aug["rt60"] = round(rt60, 3)
    if rng.random() < preset.noise_prob:
        snr = float(rng.uniform(*preset.snr_db))
        wav = augment.add_noise(wav, snr, rng, sr)
        meta_aug["snr_db"] = round(snr, 2)
    peak = float(np.abs(wav).max()) + 1e-9
    gain = float(rng.uniform(0.25, 0.9)) / peak
    wav = (wav * gain).astype(np.float32)
    meta = {
        "utt": plan.utt_id,
        "split": plan.split,
        "speaker": spk.id,
        "gender": spk.gender,
        "text": plan.text,
        "kind": plan.kind,
        "keyword": plan.keyword,
        "intent": list(plan.intent) if plan.intent else None,
        "voice": spk.voice,
        "pitch": pitch,
        "rate": rate,
        "duration": round(wav.shape[0] / sr, 4),
        "augment": meta_aug,
        "phones": [[p, round(s / sr, 4), round(e / sr, 4)] for p, s, e in segs],
    }
    return wav, meta


# ------------------------------------------------------------------------------------------
# Parallel, resumable build
# ------------------------------------------------------------------------------------------

_WORKER: Dict[str, object] = {}


def _worker_init(build_dir: str, preset: Preset) -> None:
    _WORKER["dir"], _WORKER["preset"] = Path(build_dir), preset


def _worker_run(plan: UttPlan) -> dict:
    build_dir: Path = _WORKER["dir"]  # type: ignore[assignment]
    meta_path = build_dir / ".cache" / f"{plan.utt_id}.json"
    if meta_path.exists():  # finished in an earlier, interrupted run
        return json.loads(meta_path.read_text())
    wav, meta = synthesize_utterance(plan, _WORKER["preset"])  # type: ignore[arg-type]
    save(build_dir / plan.rel_dir / f"{plan.utt_id}.flac", wav, preset_rate())
    write_json(meta_path, meta)  # the json is written last: its presence means "done"
    return meta


def preset_rate() -> int:
    return _WORKER["preset"].sample_rate  # type: ignore[union-attr]


def synthesize_corpus(
    root: os.PathLike, preset="mini", seed: int = 0, num_workers: Optional[int] = None, progress: bool = True
) -> dict:
    """Build the corpus at ``root`` (skipped when a complete one with the same preset and seed
    is there). An interrupted build resumes from ``root + '.partial'``. Returns the summary."""

    if isinstance(preset, Preset):  # a custom preset (ablations such as a clean corpus)
        cfg, preset = preset, preset.name
    elif preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise InputError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    root = Path(root)
    done = root / "corpus.json"
    if done.exists():
        summary = json.loads(done.read_text())
        if summary.get("preset") == preset and summary.get("seed") == seed:
            log.info("corpus at %s is complete; nothing to do", root)
            return summary
        raise OutputExistsError(
            f"{root} holds a different corpus (preset "
            f"{summary.get('preset')}, seed {summary.get('seed')}); "
            "remove it or choose another directory"
        )
    if root.exists() and any(root.iterdir()):
        raise OutputExistsError(f"{root} exists and is not a finished corpus; remove it first")
    build = Path(str(root) + ".partial")
    (build / ".cache").mkdir(parents=True, exist_ok=True)
    plans = plan_corpus(cfg, seed)
    for d in {p.rel_dir for p in plans}:
        (build / d).mkdir(parents=True, exist_ok=True)
    workers = num_workers or os.cpu_count() or 1
    start = time.time()
    metas: List[dict] = []
    ctx = mp.get_context("spawn")  # espeak-ng keeps global state: one fresh library per worker
    with ctx.Pool(workers, initializer=_worker_init, initargs=(str(build), cfg)) as pool:
        it = pool.imap(_worker_run, plans, chunksize=8)
        for meta in tqdm(it, total=len(plans), desc=f"synthesizing {preset}", unit="utt", disable=not progress):
            metas.append(meta)
    _write_manifests(build, plans, metas, cfg)
    elapsed = time.time() - start
    summary = _summarize(metas, cfg, seed, elapsed, workers)
    shutil.rmtree(build / ".cache")
    write_json(build / "corpus.json", summary, indent=2)
    if root.exists():
        root.rmdir()
    os.replace(build, root)
    return summary


def _write_manifests(build: Path, plans: List[UttPlan], metas: List[dict], cfg: Preset) -> None:
    by_split: Dict[str, List[dict]] = {s: [] for s in SPLITS}
    for m in metas:
        by_split[m["split"]].append(m)
    chapters: Dict[str, List[dict]] = {}
    for plan, m in zip(plans, metas):
        chapters.setdefault(plan.rel_dir, []).append(m)
    for rel, ms in chapters.items():
        spk, chap = rel.split("/")[1:]
        lines = [f"{m['utt']} {m['text'].upper()}" for m in sorted(ms, key=lambda m: m["utt"])]
        (build / rel / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")  # not atomic: staged in build/
    for split, ms in by_split.items():
        ms = sorted(ms, key=lambda m: m["utt"])
        with open(build / split / "metadata.jsonl", "w") as f:  # not atomic: staged in build/
            for m in ms:
                f.write(json.dumps({k: v for k, v in m.items() if k != "phones"}) + "\n")
        with open(build / split / "alignments.ctm", "w") as f:  # not atomic: staged in build/
            for m in ms:
                for phone, s, e in m["phones"]:
                    f.write(f"{m['utt']} 1 {s:.4f} {e - s:.4f} {phone}\n")
    speakers = {p.speaker.id: p.speaker for p in plans}
    with open(build / "speakers.tsv", "w") as f:  # not atomic: staged in build/
        f.write("speaker\tgender\tvoice\tpitch\trange\trate\tseen\tchannel\n")
        for s in sorted(speakers.values(), key=lambda s: s.id):
            ch = json.dumps(asdict(s.channel))
            f.write(f"{s.id}\t{s.gender}\t{s.voice}\t{s.pitch}\t{s.pitch_range}\t{s.rate}\t{int(s.seen)}\t{ch}\n")
    phones = "".join(f"{p} {i}\n" for i, p in enumerate(PHONE_SET))
    (build / "phones.txt").write_text(phones)  # not atomic: staged in build/


def _summarize(metas: List[dict], cfg: Preset, seed: int, elapsed: float, workers: int) -> dict:
    per_split = {}
    for split in SPLITS:
        ms = [m for m in metas if m["split"] == split]
        per_split[split] = {
            "utterances": len(ms),
            "speakers": len({m["speaker"] for m in ms}),
            "hours": round(sum(m["duration"] for m in ms) / 3600, 4),
        }
    total = sum(m["duration"] for m in metas)
    return {
        "preset": cfg.name,
        "seed": seed,
        "sample_rate": cfg.sample_rate,
        "utterances": len(metas),
        "speakers": len({m["speaker"] for m in metas}),
        "seconds": round(total, 2),
        "splits": per_split,
        "kinds": {k: sum(m["kind"] == k for m in metas) for k in ("sentence", "command", "keyword")},
        "vocabulary": len({w for m in metas for w in m["text"].split()}),
        "build_seconds": round(elapsed, 2),
        "workers": workers,
        "audio_seconds_per_second": round(total / max(elapsed, 1e-9), 1),
    }
