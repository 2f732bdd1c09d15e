import json

import numpy as np
import pytest

from speechssl.audio import load
from speechssl.audio.phones import PHONE_SET, UnknownPhoneme, espeak_to_phone
from speechssl.corpus import grammar
from speechssl.corpus.synth import (
    ACCENTS,
    PRESETS,
    plan_corpus,
    segments_from_events,
    synthesize_corpus,
    synthesize_utterance,
)
from speechssl.data.kaldi_dir import DataDir


def test_phone_map():
    assert espeak_to_phone("'aI") == "AY"
    assert espeak_to_phone(",E") == "EH"
    assert espeak_to_phone("t#") == "T"
    assert espeak_to_phone("aI2") == "AY"  # longest known prefix
    assert espeak_to_phone("_:") == "SIL"
    with pytest.raises(UnknownPhoneme, match="'Q!' has no mapping"):
        espeak_to_phone("Q!")
    assert len(PHONE_SET) == 40


def test_every_accent_and_the_whole_vocabulary_map_to_phones():
    from speechssl.audio.espeak import Espeak

    engine = Espeak()
    words = grammar.vocabulary()
    assert len(words) >= 300
    used = set()
    for accent in ACCENTS:
        engine.set_voice(accent)
        # the whole vocabulary in one synthesis an accent: each synthesis forks this (large) test process
        syn = engine.synthesize(" ".join(words))
        used |= {p for p, _, _ in segments_from_events(syn.phonemes, syn.audio.shape[0], 1.0)}
    assert used <= set(PHONE_SET)
    assert len(used) >= 38  # the vocabulary exercises nearly the whole phone set


def test_segments_from_events():
    events = [("D", 100), ("@2", 300), (";", 350), ("_:", 500), ("_", 520)]
    segs = segments_from_events(events, 600, 0.5)
    assert segs == [("SIL", 0.0, 50.0), ("DH", 50.0, 150.0), ("AH", 150.0, 250.0), ("SIL", 250.0, 300.0)]


def test_espeak_unknown_voice():
    from speechssl.audio.espeak import Espeak, EspeakError

    with pytest.raises(EspeakError, match="no voice 'en-gb'"):
        Espeak().set_voice("en-gb")


def test_plan_is_deterministic_and_splits_are_clean():
    p1, p2 = plan_corpus(PRESETS["mini"], 0), plan_corpus(PRESETS["mini"], 0)
    assert [(p.utt_id, p.text, p.seed) for p in p1] == [(p.utt_id, p.text, p.seed) for p in p2]
    assert [p.text for p in plan_corpus(PRESETS["mini"], 1)] != [p.text for p in p1]
    train = {p.text for p in p1 if p.split == "train" and p.kind == "sentence"}
    for split in ("dev", "test", "test-unseen-speakers"):
        assert not train & {p.text for p in p1 if p.split == split and p.kind == "sentence"}
    seen = {p.speaker.id for p in p1 if p.split == "train"}
    unseen = {p.speaker.id for p in p1 if p.split == "test-unseen-speakers"}
    assert len(seen | unseen) >= 24 and not seen & unseen
    genders = {p.speaker.gender for p in p1}
    assert genders == {"m", "f"}
    kinds = {p.kind for p in p1}
    assert kinds == {"sentence", "command", "keyword"}
    lengths = [len(p.text.split()) for p in p1 if p.kind == "sentence"]
    assert min(lengths) >= 4 and max(lengths) <= 12
    assert {p.intent for p in p1 if p.intent} == set(grammar.INTENTS)  # all 31 intents occur


def test_utterance_synthesis_is_deterministic_and_aligned():
    plan = next(p for p in plan_corpus(PRESETS["tiny"], 0) if p.kind == "sentence")
    wav1, meta1 = synthesize_utterance(plan, PRESETS["tiny"])
    wav2, meta2 = synthesize_utterance(plan, PRESETS["tiny"])
    np.testing.assert_array_equal(wav1, wav2)
    assert meta1 == meta2
    phones = meta1["phones"]
    assert phones[0][1] == 0.0 and phones[-1][2] == pytest.approx(wav1.shape[0] / 16000, abs=1e-3)
    for (_, _, e), (_, s, _) in zip(phones, phones[1:]):
        assert s == pytest.approx(e, abs=1e-4)  # contiguous
    speech = [p for p in phones if p[0] != "SIL"]
    assert len(speech) >= 2 * len(plan.text.split())
    assert 0.2 < np.abs(wav1).max() <= 0.9 + 1e-6


def test_degradations_change_the_signal():
    plan = next(p for p in plan_corpus(PRESETS["tiny"], 0) if p.kind == "sentence")
    import dataclasses

    clean = dataclasses.replace(PRESETS["tiny"], noise_prob=0.0, reverb_prob=0.0, session_eq=False)
    noisy = dataclasses.replace(PRESETS["tiny"], noise_prob=1.0, snr_db=(5.0, 5.0), reverb_prob=1.0)
    a, _ = synthesize_utterance(plan, clean)
    b, meta = synthesize_utterance(plan, noisy)
    assert meta["augment"]["snr_db"] == 5.0 and "rt60" in meta["augment"]
    assert a.shape == b.shape
    corr = np.corrcoef(a, b)[0, 1]
    assert corr < 0.9


def test_clean_twin_is_the_same_corpus_without_reverberation_and_noise():
    tiny, twin = PRESETS["tiny"], PRESETS["tiny-clean"]
    plans = plan_corpus(tiny, 0)
    assert [(p.utt_id, p.text, p.speaker.voice) for p in plans] == [
        (p.utt_id, p.text, p.speaker.voice) for p in plan_corpus(twin, 0)
    ]
    seen = set()
    for plan in plans[:16]:
        a, meta = synthesize_utterance(plan, tiny)
        b, clean_meta = synthesize_utterance(plan, twin)
        assert clean_meta["augment"] == {} and clean_meta["pitch"] == meta["pitch"] and a.shape == b.shape
        corr = np.corrcoef(a, b)[0, 1]
        kind = "clean" if not meta["augment"] else "degraded"
        seen.add(kind)
        # sample for sample where the corpus added nothing (only the level differs); far apart where it did
        # (noise at the corpus's best SNR, 30 dB, leaves 1 - corr at about 5e-4)
        assert 1 - corr < 1e-6 if kind == "clean" else 1 - corr > 1e-4, (plan.utt_id, meta["augment"], corr)
    assert seen == {"clean", "degraded"}


def test_tiny_corpus_layout(tiny_corpus):
    summary = json.loads((tiny_corpus / "corpus.json").read_text())
    assert summary["utterances"] == 78 and summary["speakers"] == 8
    assert 60 < summary["seconds"] < 240  # about two minutes
    flacs = sorted(tiny_corpus.glob("*/*/*/*.flac"))
    assert len(flacs) == 78
    wav = load(flacs[0], sample_rate=None)
    assert wav.dtype == np.float32
    trans = sorted(tiny_corpus.glob("train/*/*/*.trans.txt"))
    assert len(trans) == 6
    line = trans[0].read_text().splitlines()[0]
    assert line.split()[0].count("-") == 2 and line.split(maxsplit=1)[1].isupper()
    ctm = (tiny_corpus / "train/alignments.ctm").read_text().splitlines()
    assert {l.split()[4] for l in ctm} <= set(PHONE_SET)
    assert not (tiny_corpus.parent / "tiny.partial").exists()


def test_tiny_corpus_data_dirs(tiny_data):
    train = DataDir.read(tiny_data / "train")
    assert train.validate() == []
    kinds = train.extra["utt2kind"]
    for utt, kw in train.extra["utt2keyword"].items():
        assert kinds[utt] == "keyword" and kw in grammar.KEYWORDS + ["_unknown_"]
    for intent in train.extra["utt2intent"].values():
        action, obj, loc = intent.split("|")
        assert (action.replace("_", " "), obj, loc) in grammar.INTENTS
    assert set(train.extra["text.phone"]) == set(train.utt_ids)
    unseen = DataDir.read(tiny_data / "test-unseen-speakers")
    assert not set(unseen.extra["utt2reader"].values()) & set(train.extra["utt2reader"].values())


def test_resume_after_kill_and_refuse_other_corpus(tmp_path, tiny_corpus):
    import dataclasses

    small = dataclasses.replace(
        PRESETS["tiny"],
        name="tiny",
        seen_speakers=2,
        unseen_speakers=1,
        utts_per_speaker={"train": 2, "dev": 1, "test": 1},
        unseen_utts_per_speaker=1,
    )
    root = tmp_path / "c"
    # Simulate a build killed after some utterances: run it, then put back a partial state.
    synthesize_corpus(root, small, seed=3, num_workers=1, progress=False)
    first = {p.name: p.read_bytes() for p in root.glob("*/*/*/*.flac")}
    # A partial dir holding one finished utterance (json written last = done) resumes.
    partial = tmp_path / "r.partial"
    plan = plan_corpus(small, 3)[0]
    (partial / ".cache").mkdir(parents=True)
    (partial / plan.rel_dir).mkdir(parents=True)
    (partial / plan.rel_dir / f"{plan.utt_id}.flac").write_bytes(first[f"{plan.utt_id}.flac"])
    wav, meta = synthesize_utterance(plan, small)
    meta["resumed"] = True
    (partial / ".cache" / f"{plan.utt_id}.json").write_text(json.dumps(meta))
    synthesize_corpus(tmp_path / "r", small, seed=3, num_workers=1, progress=False)
    again = {p.name: p.read_bytes() for p in (tmp_path / "r").glob("*/*/*/*.flac")}
    assert again.keys() == first.keys()
    md = (tmp_path / "r" / plan.split / "metadata.jsonl").read_text()
    assert '"resumed": true' in md  # the finished utterance was not redone
    # a complete corpus is not rebuilt; a different one is refused
    assert synthesize_corpus(root, small, seed=3, progress=False)["seed"] == 3
    with pytest.raises(FileExistsError, match="holds a different corpus"):
        synthesize_corpus(root, small, seed=4, progress=False)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        synthesize_corpus(tmp_path / "h", "huge")


def test_corpus_identical_whatever_the_worker_count(tiny_corpus, tmp_path):
    """espeak-ng carries state between calls; synthesis in forked children removes it, so the
    corpus depends on preset and seed only (the fixture was built with 2 workers)."""
    synthesize_corpus(tmp_path / "one", "tiny", seed=0, num_workers=1, progress=False)
    a = {p.relative_to(tiny_corpus): p.read_bytes() for p in tiny_corpus.glob("*/*/*/*.flac")}
    b = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").glob("*/*/*/*.flac")}
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    for split in ("train", "test"):
        assert (tiny_corpus / split / "alignments.ctm").read_text() == (
            tmp_path / "one" / split / "alignments.ctm"
        ).read_text()
