"""SUPERB: task dirs from each dataset's real layout (fixture trees built from real recordings in
../shared/testdata) and from the mini corpus; every task trains and scores from the CLI; results
agree with their own prediction files; the cache extracts each utterance once; the table scores
FBANK as zero."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechssl.cli import main
from speechssl.corpus import superb_prep as prep
from speechssl.data.kaldi_dir import DataDir
from speechssl.downstream.metrics import accuracy, equal_error_rate

DIGIT_WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
KS_FOLDERS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "nine"]  # nine -> _unknown_
INTENTS = [
    "activate|lights|none",
    "deactivate|lights|none",
    "increase|heat|kitchen",
    "decrease|heat|kitchen",
    "activate|music|none",
    "deactivate|music|none",
    "bring|shoes|none",
    "bring|socks|none",
    "increase|volume|none",
    "decrease|volume|none",
]
TINY = {
    "conv_layers": [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 2, 2], [32, 2, 2]],
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "ffn_dim": 64,
    "pos_conv_kernel": 16,
    "pos_conv_groups": 4,
    "layer_norm_first": True,
}
HEAD_FAST = {"project": 16, "hidden": 16, "xvector_channels": 16, "xvector_pool": 16, "xvector_embed": 8}


def fast(*tasks):
    """Small budgets, and small heads: only the head fields these tasks' heads have (a KS head takes no hidden)."""
    from dataclasses import fields

    from speechssl.tasks.superb import TASKS

    names = {f.name for t in tasks for f in fields(TASKS[t].head_config)}
    return [
        "trainer.max_steps=40",
        "trainer.val_every_steps=20",
        "batch_size=16",
        "trainer.progress_bar=false",
        "lr=3e-3",
    ] + [f"head.{k}={v}" for k, v in HEAD_FAST.items() if k in names]


FAST = fast("ks", "asr", "asv")  # every field of HEAD_FAST: for --task all


def _fsdd(testdata):
    """[(speaker, digit index, take, path)] of the free spoken digit recordings."""
    d = DataDir.read(testdata / "fsdd")
    out = []
    for u in d.utt_ids:
        spk, digit, take = d.utt2spk[u], DIGIT_WORDS.index(d.text[u]), int(u.rsplit("_", 1)[1])
        out.append((spk, digit, take, d.audio_source(u)[0]))
    return out


def _link(src, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.abspath(src), dst)


@pytest.fixture(scope="module")
def layouts(testdata, tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    rec = _fsdd(testdata)
    # Speech Commands v0.01: <word>/<speaker>_nohash_<n>.wav, split lists, background noise
    sc = root / "speech_commands_v0.01"
    val, tst = [], []
    for spk, digit, take, path in rec:
        rel = f"{KS_FOLDERS[digit]}/{spk}_nohash_{take}.wav"
        _link(path, sc / rel)
        (val if take == 3 else tst if take == 4 else []).append(rel)
    (sc / "validation_list.txt").write_text("\n".join(val) + "\n")
    (sc / "testing_list.txt").write_text("\n".join(tst) + "\n")
    (sc / "_background_noise_").mkdir()
    sf.write(
        sc / "_background_noise_" / "white_noise.wav",
        np.random.default_rng(0).normal(0, 0.05, 16000 * 12).astype(np.float32),
        16000,
    )
    # Fluent Speech Commands: data/{train,valid,test}_data.csv + wavs/speakers/<spk>/<id>.wav
    fsc = root / "fluent_speech_commands_dataset"
    rows = {"train": [], "valid": [], "test": []}
    for i, (spk, digit, take, path) in enumerate(rec):
        rel = f"wavs/speakers/{spk}/{digit}{take}-{i:04d}.wav"
        _link(path, fsc / rel)
        a, o, l = INTENTS[digit].split("|")
        split = "valid" if take == 3 else "test" if take == 4 else "train"
        rows[split].append([len(rows[split]), rel, spk, DIGIT_WORDS[digit].lower(), a, o, l])
    (fsc / "data").mkdir()
    for split, rs in rows.items():
        with open(fsc / "data" / f"{split}_data.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["", "path", "speakerId", "transcription", "action", "object", "location"])
            w.writerows(rs)
    # VoxCeleb1: wav/<id>/<video>/<n>.wav, iden_split.txt, veri_test.txt (the last two speakers)
    vox = root / "voxceleb1"
    speakers = sorted({r[0] for r in rec})
    iden, by_spk = [], {}
    for spk, digit, take, path in rec:
        rel = f"id1000{speakers.index(spk) + 1}/video{digit}/{take + 1:05d}.wav"
        _link(path, vox / "wav" / rel)
        iden.append(f"{2 if take == 3 else 3 if take == 4 else 1} {rel}")
        by_spk.setdefault(spk, []).append(rel)
    (vox / "iden_split.txt").write_text("\n".join(iden) + "\n")
    a, b = by_spk[speakers[2]][:6], by_spk[speakers[3]][:6]
    trials = (
        [f"1 {a[i]} {a[i + 1]}" for i in range(5)]
        + [f"1 {b[i]} {b[i + 1]}" for i in range(5)]
        + [f"0 {a[i]} {b[i]}" for i in range(6)]
    )
    (vox / "veri_test.txt").write_text("\n".join(trials) + "\n")
    # LibriSpeech PR: the real LibriSpeech utterances with a lexicon in CMUdict form (stress digits)
    words = sorted({w for t in DataDir.read(testdata / "librispeech").text.values() for w in t.split()})
    lex = root / "lexicon.txt"
    lex.write_text(
        "".join(f"{w} " + " ".join(c + ("1" if c in "AEIOU" else "") for c in w if c.isalpha()) + "\n" for w in words)
    )
    return {
        "root": root,
        "speech_commands": sc,
        "fluent": fsc,
        "voxceleb1": vox,
        "lexicon": lex,
        "librispeech": testdata / "librispeech",
    }


@pytest.fixture(scope="module")
def random_upstream(tmp_path_factory):
    from speechssl.models import build_model, save_model

    path = tmp_path_factory.mktemp("upstream") / "random"
    torch.manual_seed(0)
    save_model(build_model("hubert_small", **TINY), path)
    return path


# ------------------------------------------------------------------------------ preparation
def test_speech_commands_layout(layouts, tmp_path):
    counts = prep.prepare_speech_commands(layouts["speech_commands"], tmp_path / "ks")
    assert counts == {"train": 120 + 10, "dev": 41, "test": 41}  # 12 one-second noise slices: 10 / 1 / 1
    train = DataDir.read(tmp_path / "ks" / "train")
    labels = train.extra["utt2label"]
    assert sum(v == "_silence_" for v in labels.values()) == 10 and sum(v == "_unknown_" for v in labels.values()) == 12
    assert train.segments is not None and not train.validate()
    dev = DataDir.read(tmp_path / "ks" / "dev").extra["utt2label"]
    assert sum(v == "_silence_" for v in dev.values()) == 1 and len(set(dev.values())) == 11


def test_fluent_and_voxceleb_layouts(layouts, tmp_path):
    assert prep.prepare_fluent_speech_commands(layouts["fluent"], tmp_path / "ic") == {
        "train": 120,
        "dev": 40,
        "test": 40,
    }
    lab = DataDir.read(tmp_path / "ic" / "test").extra["utt2label"]
    assert set(lab.values()) == set(INTENTS)
    assert prep.prepare_voxceleb1_sid(layouts["voxceleb1"], tmp_path / "sid") == {"train": 120, "dev": 40, "test": 40}
    asv = prep.prepare_voxceleb1_asv(layouts["voxceleb1"], tmp_path / "asv")
    assert asv == {"train": 100, "test": 12, "trials": 16}  # train: the two speakers outside the trials
    trials = (tmp_path / "asv" / "test" / "trials").read_text().split("\n")
    assert trials[0].split()[2] == "target" and trials[-2].split()[2] == "nontarget"
    (layouts["root"] / "bad_vox").mkdir(exist_ok=True)
    (layouts["root"] / "bad_vox" / "iden_split.txt").write_text("1 id10001/v/00001.wav\n")
    with pytest.raises(FileNotFoundError, match=r"iden_split.txt:1: .*00001.wav does not exist"):
        prep.prepare_voxceleb1_sid(layouts["root"] / "bad_vox", tmp_path / "bad")


def test_librispeech_phones_through_a_lexicon(layouts, tmp_path):
    splits = {s: str(layouts["librispeech"]) for s in ("train", "dev", "test")}
    prep.prepare_librispeech_task("pr", splits, tmp_path / "pr", str(layouts["lexicon"]))
    d = DataDir.read(tmp_path / "pr" / "test")
    u = "1089-134686-0001"  # STUFF IT INTO YOU ...
    assert d.extra["text.phone"][u].startswith("S T U F F I T I N T O Y O U")  # stress digits removed
    lines = layouts["lexicon"].read_text().splitlines()
    short = tmp_path / "short.txt"
    short.write_text("\n".join(l for l in lines if not l.startswith("STUFF ")) + "\n")
    with pytest.raises(ValueError, match="words missing from .*short.txt \\(STUFF"):
        prep.prepare_librispeech_task("pr", splits, tmp_path / "pr2", str(short))
    n = prep.prepare_librispeech_task("pr", splits, tmp_path / "pr3", str(short), skip_oov=True)
    assert n["test"] == len(d) - 1


# ------------------------------------------------------------------------------ running
def _run(args):
    assert main(args) == 0


def _result(out, up, task):
    return json.loads((Path(out) / up / task / "result.json").read_text())


def test_every_task_on_its_real_layout_fixture_with_fbank(layouts, tmp_path):
    """The default suite's twin of the slow run below: FBANK alone (a multi-layer upstream's weighted sum is
    trained in test_all_tasks_on_the_mini_corpus_layout)."""
    _every_task_on_its_real_layout_fixture(layouts, None, tmp_path)


@pytest.mark.slow
def test_every_task_on_its_real_layout_fixture(layouts, random_upstream, tmp_path):
    _every_task_on_its_real_layout_fixture(layouts, random_upstream, tmp_path)


def _every_task_on_its_real_layout_fixture(layouts, random_upstream, tmp_path):
    tasks = tmp_path / "tasks"
    lay = layouts
    _run(
        [
            "data",
            "prep-superb",
            "--task",
            "ks",
            "--layout",
            "speech_commands",
            "--src",
            str(lay["speech_commands"]),
            "--out",
            str(tasks / "ks"),
        ]
    )
    _run(
        [
            "data",
            "prep-superb",
            "--task",
            "ic",
            "--layout",
            "fluent",
            "--src",
            str(lay["fluent"]),
            "--out",
            str(tasks / "ic"),
        ]
    )
    for t in ("sid", "asv"):
        _run(
            [
                "data",
                "prep-superb",
                "--task",
                t,
                "--layout",
                "voxceleb1",
                "--src",
                str(lay["voxceleb1"]),
                "--out",
                str(tasks / t),
            ]
        )
    src = ",".join(f"{s}={lay['librispeech']}" for s in ("train", "dev", "test"))
    _run(
        [
            "data",
            "prep-superb",
            "--task",
            "pr",
            "--layout",
            "librispeech",
            "--src",
            src,
            "--lexicon",
            str(lay["lexicon"]),
            "--out",
            str(tasks / "pr"),
        ]
    )
    _run(["data", "prep-superb", "--task", "asr", "--layout", "librispeech", "--src", src, "--out", str(tasks / "asr")])
    out = tmp_path / "exp"
    specs = ["fbank"] + ([f"random={random_upstream}"] if random_upstream else [])
    names = [s.split("=")[0] for s in specs]
    for up in specs:  # ASR: a BiLSTM over 35-s utterances, a few steps only
        _run(
            ["superb", "--task", "asr", "--upstream", up, "--tasks-dir", str(tasks), "--out", str(out)]
            + fast("asr")
            + ["trainer.max_steps=4", "trainer.val_every_steps=2"]
        )
    _run(
        [
            "superb",
            "--task",
            "all",
            *[a for spec in specs for a in ("--upstream", spec)],
            "--tasks-dir",
            str(tasks),
            "--out",
            str(out),
        ]
        + FAST
    )
    for up in names:
        ks = _result(out, up, "ks")
        pred = dict(l.split() for l in (out / up / "ks" / "predictions.txt").read_text().splitlines())
        gold = DataDir.read(tasks / "ks" / "test").extra["utt2label"]
        assert ks["value"] == pytest.approx(
            accuracy([pred[u] for u in sorted(gold)], [gold[u] for u in sorted(gold)]), abs=1e-3
        )
        asv = _result(out, up, "asv")
        rows = [l.split() for l in (out / up / "asv" / "scores.txt").read_text().splitlines()]
        assert len(rows) == 16
        eer, _ = equal_error_rate([float(r[2]) for r in rows], [r[3] == "target" for r in rows])
        assert asv["value"] == pytest.approx(eer, abs=1e-3)
        pr = _result(out, up, "pr")
        assert (out / up / "pr" / "decode_test" / "per").read_text().startswith(f"%PER {pr['value']:.2f}")
        assert (out / up / "asr" / "decode_test" / "per_utt").exists()
        for t in ("ks", "ic", "sid", "asv", "pr", "asr"):
            r = _result(out, up, t)
            assert len(r["layer_weights"]) == (1 if up == "fbank" else 3)
            assert (out / up / t / "layer_weights.png").exists()
            assert r["train_loss"]["end"] < r["train_loss"]["start"], (up, t)  # the head learns
            steps = 4 if t == "asr" else 40
            assert len(r["loss_curve"]) >= 2 and r["loss_curve"][-1]["step"] == steps, (up, t, r["loss_curve"])
    table = json.loads((out / "results.json").read_text())["superb"]
    for t, v in table["fbank"].items():  # FBANK is the zero; a task it already solves has no score
        if not t.startswith("_"):
            ideal = 100.0 if v["higher_is_better"] else 0.0
            assert v["mini_score"] == (None if v["value"] == ideal else 0), (t, v)
    assert "| fbank |" in (out / "results.md").read_text()
    # the cache: one extraction per upstream per audio source; a rerun redoes nothing
    up, spec = names[-1], specs[-1]
    parts = sorted((out / "cache").glob(f"{up}-*/part-*"))
    keys = [k for p in parts for k in (p / "data" / "utt2spk").read_text().split()[0::2]]
    assert len(keys) == len(set(keys))
    before = (out / up / "ks" / "result.json").stat().st_mtime
    _run(["superb", "--task", "ks", "--upstream", spec, "--tasks-dir", str(tasks), "--out", str(out)] + fast("ks"))
    assert (out / up / "ks" / "result.json").stat().st_mtime == before
    assert sorted((out / "cache").glob(f"{up}-*/part-*")) == parts


def test_all_tasks_on_the_mini_corpus_layout(tiny_data, random_upstream, tmp_path):
    _run(["data", "prep-superb", "--layout", "mini", "--src", str(tiny_data), "--out", str(tmp_path / "tasks")])
    info = json.loads((tmp_path / "tasks" / "asv" / "task.json").read_text())
    assert info["counts"]["trials"] > 0 and info["counts"]["target_trials"] > 0
    out = tmp_path / "exp"
    _run(
        [
            "superb",
            "--task",
            "all",
            "--upstream",
            f"random={random_upstream}",
            "--tasks-dir",
            str(tmp_path / "tasks"),
            "--out",
            str(out),
        ]
        + FAST
    )
    import hashlib

    weights = hashlib.sha256((Path(random_upstream) / "model.safetensors").read_bytes()).hexdigest()
    for t in ("pr", "asr", "ks", "ic", "sid", "asv", "sf", "qbe", "sd"):
        r = _result(out, "random", t)
        assert r["test_utterances"] > 0 and np.isfinite(r["value"])
        assert r["upstream_weights"] == {"source": str(Path(random_upstream).resolve()), "sha256": weights}
    # PR, ASR and SID read the same utterances: one cache part holds them
    parts = sorted((out / "cache").glob("random-*/part-*"))
    n_pr = sum(len(DataDir.read(tmp_path / "tasks" / "pr" / s)) for s in ("train", "dev", "test"))
    assert len((parts[0] / "data" / "utt2spk").read_text().splitlines()) == n_pr


def test_superb_errors_name_the_problem(tmp_path):
    with pytest.raises(SystemExit):
        main(["superb", "--task", "nope", "--upstream", "fbank"])
    assert main(["superb", "--task", "ks", "--upstream", "fbank", "--data", str(tmp_path / "none")]) == 2
    assert main(["superb", "--task", "ks", "--upstream", "fbank", "--tasks-dir", str(tmp_path), "lr=oops"]) == 2


def test_every_downstream_config_loads():
    from speechssl.config import CONF_DIR, load_config
    from speechssl.tasks.asr import AsrFinetuneConfig
    from speechssl.tasks.superb import TASKS, SuperbConfig

    for t in TASKS:
        cfg = load_config(SuperbConfig, [f"superb/{t}"], [])
        assert cfg.task == t
        cfg.validate()
    from speechssl.config_check import bases_of

    for f in sorted((CONF_DIR / "finetune").glob("*.yaml")):  # a layered file on its `# base:` files
        load_config(AsrFinetuneConfig, [*bases_of(f), str(f)], []).validate()


def test_mini_and_benchmark_scores_and_a_degenerate_baseline():
    from speechssl.tasks.superb import benchmark_score, load_anchors, mini_score

    assert mini_score(50.0, 50.0, True) == 0 and mini_score(100.0, 50.0, True) == 1000
    assert mini_score(10.0, 20.0, False) == pytest.approx(500.0)
    assert mini_score(3.0, 0.0, False) is None  # FBANK's EER already 0: the scale is undefined
    assert mini_score(100.0, 100.0, True) is None
    anchors = load_anchors()
    ks = anchors["tasks"]["ks"]
    assert benchmark_score("ks", [ks["fbank"]], anchors) == 0
    assert benchmark_score("ks", [ks["sota"]], anchors) == pytest.approx(1000)
    sf = anchors["tasks"]["sf"]  # two metrics: the task's score is their mean
    assert benchmark_score("sf", [sf["sota"][0], sf["fbank"][1]], anchors) == pytest.approx(500)
    assert benchmark_score("nonesuch", [1.0], anchors) is None


def test_heads_train_on_the_shared_lightning_path_with_trainer_settings(layouts, random_upstream, tmp_path):
    """The head's run is a Lightning run: its trainer section (precision here) comes from the config, it leaves
    the usual checkpoints and summary, and the kept step is the best on dev."""
    tasks = tmp_path / "tasks"
    _run(
        [
            "data",
            "prep-superb",
            "--task",
            "ks",
            "--layout",
            "speech_commands",
            "--src",
            str(layouts["speech_commands"]),
            "--out",
            str(tasks / "ks"),
        ]
    )
    out = tmp_path / "exp"
    _run(
        [
            "superb",
            "--task",
            "ks",
            "--upstream",
            f"random={random_upstream}",
            "--tasks-dir",
            str(tasks),
            "--out",
            str(out),
        ]
        + fast("ks")
        + ["trainer.accelerator=cpu", "trainer.precision=bf16-mixed"]
    )
    r = _result(out, "random", "ks")
    run = out / "random" / "ks" / "train"
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    history = last["superb_history"]  # what a resumed run continues from: losses, dev curve, the kept weights
    assert [c["step"] for c in history["curve"]] == [20, 40] and len(history["losses"]) == 40
    assert {f"model.{k}" for k in history["best_state"]} == set(last["state_dict"])
    assert json.loads((run / "summary.json").read_text())["steps"] == 40
    assert "precision: bf16-mixed" in (run / "config.yaml").read_text()
    assert [c["step"] for c in r["curve"]] == [20, 40]
    best = max(r["curve"], key=lambda c: c["dev"])
    assert r["dev"] == best["dev"] and r["best_step"] == best["step"]
    # a last step that no validation falls on is scored too (the old loop did; PR's demo budget needs it)
    _run(
        ["superb", "--task", "ks", "--upstream", f"odd={random_upstream}", "--tasks-dir", str(tasks), "--out", str(out)]
        + fast("ks")
        + ["trainer.max_steps=30"]
    )
    r = _result(out, "odd", "ks")
    assert [c["step"] for c in r["curve"]] == [20, 30]
    best = max(r["curve"], key=lambda c: c["dev"])
    assert r["dev"] == best["dev"] and r["best_step"] == best["step"]


def test_hidden_states_stay_on_disk_or_come_online_and_agree(tiny_data, random_upstream, tmp_path):
    """Cached states are read batch by batch from float16 files (nothing stacked in memory); online states
    recompute them from the upstream; both give the same batches (to float16 precision) and the same task."""

    from speechssl.data.kaldi_dir import DataDir
    from speechssl.downstream.cache import load_cached_states, source_key
    from speechssl.downstream.states import DiskStates, OnlineStates
    from speechssl.hub import load_upstream

    d = DataDir.read(tiny_data / "dev")
    disk, rate = load_cached_states(
        tmp_path / "cache", str(random_upstream), [d], lambda: load_upstream(str(random_upstream)), progress=False
    )
    assert isinstance(disk, DiskStates) and rate == 50.0
    online = OnlineStates(
        lambda: load_upstream(str(random_upstream)),
        {source_key(d, u): (lambda u=u: d.load_audio(u)) for u in d.utt_ids},
        "cpu",
    )
    keys = [source_key(d, u) for u in d.utt_ids[:5]]
    (a, la), (b, lb) = disk.batch(keys), online.batch(keys)
    assert torch.equal(la, lb) and a.shape == b.shape == (disk.num_states, 5, int(la.max()), disk.dim)
    valid = torch.arange(a.shape[2])[None, :, None] < la[:, None, None]
    assert float(((a - b).abs() * valid).max()) < 2e-2 * float(b.abs().max())  # float16 storage
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(disk.batch(keys, crop=10, generator=g1)[0], disk.batch(keys, crop=10, generator=g2)[0])
    assert disk.batch(keys, crop=10)[1].max() == 10


def test_superb_online_states_run_a_task_end_to_end(tiny_data, random_upstream, tmp_path):
    _run(["data", "prep-superb", "--layout", "mini", "--src", str(tiny_data), "--out", str(tmp_path / "tasks")])
    out = tmp_path / "exp"
    _run(
        [
            "superb",
            "--task",
            "ks",
            "--upstream",
            f"random={random_upstream}",
            "--tasks-dir",
            str(tmp_path / "tasks"),
            "--out",
            str(out),
            "states=online",
        ]
        + fast("ks")
    )
    r = _result(out, "random", "ks")
    assert r["test_utterances"] > 0 and r["config"]["states"] == "online"
    assert not (out / "cache").exists()  # nothing written to disk


def test_slot_filling_metrics_as_superb_computes_them():
    from speechssl.data.tokenizers import TokenVocab
    from speechssl.downstream.slot_metrics import slot_type_f1, slot_value_cer, slots_of

    ref = "TURN ON THE B-object LIGHTS E-object IN THE B-location KITCHEN E-location"
    assert slots_of(ref) == {"object": ["LIGHTS"], "location": ["KITCHEN"]}
    assert slot_type_f1([ref], [ref]) == 1.0 and slot_value_cer([ref], [ref]) == 0.0
    # the location type missed: P = 1, R = 1/2 -> F1 = 2/3; its value counts as deleted (7 of 13 letters)
    hyp = "TURN ON THE B-object LIGHT E-object IN THE KITCHEN"
    assert slot_type_f1([hyp], [ref]) == pytest.approx(2 / 3)
    assert slot_value_cer([hyp], [ref]) == pytest.approx((1 + 7) / (6 + 7))
    assert slot_type_f1(["NO SLOTS"], ["NO SLOTS"]) == 1.0 and slot_type_f1([hyp], ["NO SLOTS"]) == 0.0
    v = TokenVocab.build([ref], "char-slot")
    assert "B-object" in v.tokens and v.decode(v.encode(ref)) == ref


def test_qbe_dtw_finds_a_query_inside_a_document_and_the_metrics_are_right():
    import numpy as np

    from speechssl.downstream.qbe import QUESST_BETA, mean_average_precision, mtwv, subsequence_dtw_cost

    g = np.random.default_rng(0)
    query = g.normal(size=(20, 8))
    inside = np.concatenate([g.normal(size=(30, 8)), query + 0.05 * g.normal(size=(20, 8)), g.normal(size=(25, 8))])
    outside = g.normal(size=(75, 8))
    assert subsequence_dtw_cost(query, inside) < 0.2 < subsequence_dtw_cost(query, outside)
    assert QUESST_BETA == pytest.approx(12.49)
    truth = np.array([[1, 0, 0], [0, 1, 0]], bool)
    perfect = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1]])
    assert mtwv(perfect, truth) == pytest.approx(1.0) and mean_average_precision(perfect, truth) == 1.0
    # query 2 ranks its document second: AP 1/2; at the best threshold one false alarm costs beta / 2
    worse = np.array([[0.9, 0.1, 0.2], [0.85, 0.8, 0.1]])
    assert mean_average_precision(worse, truth) == pytest.approx(0.75)
    assert mtwv(worse, truth) == pytest.approx(max(1 - (0 + 1) / 2, 1 - QUESST_BETA * 0.5 / 2, 0.0))


def _iemocap_fixture(root, wav_path):
    """Two dialogs per session in IEMOCAP's layout, with lines of every kind the parser meets."""
    for k in range(1, 6):
        for g in ("F", "M"):
            dialog = f"Ses0{k}{g}_impro01"
            evals = root / f"Session{k}" / "dialog" / "EmoEvaluation"
            wavs = root / f"Session{k}" / "sentences" / "wav" / dialog
            evals.mkdir(parents=True, exist_ok=True)
            wavs.mkdir(parents=True, exist_ok=True)
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for i, emo in enumerate(["neu", "hap", "exc", "ang", "sad", "fru", "xxx", "neu"]):
                utt = f"{dialog}_{g}{i:03d}"
                lines.append(f"[{i}.0000 - {i}.9000]\t{utt}\t{emo}\t[2.5000, 2.5000, 2.5000]")
                lines.append(f"C-E1:\t{emo.title()};\t()")
                (wavs / f"{utt}.wav").write_bytes(wav_path.read_bytes())
            (evals / f"{dialog}.txt").write_text("\n".join(lines) + "\n")


def test_iemocap_layout_gives_four_classes_leave_one_session_out_and_the_er_head_trains(
    testdata, tmp_path, random_upstream
):
    from speechssl.corpus.superb_prep import prepare_iemocap
    from speechssl.errors import MissingInputError

    wav = next((testdata / "fsdd" / "recordings").glob("*.wav"))
    _iemocap_fixture(tmp_path / "IEMOCAP", wav)
    counts = prepare_iemocap(tmp_path / "IEMOCAP", tmp_path / "er", test_session=3)
    assert counts == {"train": 38, "dev": 10, "test": 12}  # 6 of 8 lines per dialog; dev: 20% of 48
    test = (tmp_path / "er" / "test" / "utt2label").read_text().split("\n")
    assert all(line.startswith("Ses03") for line in test if line)  # the held-out session only
    labels = {
        l.split()[1]
        for s in ("train", "dev", "test")
        for l in (tmp_path / "er" / s / "utt2label").read_text().splitlines()
    }
    assert labels == {"neu", "hap", "ang", "sad"}  # excited merged into happy; fru, xxx left out
    _run(
        [
            "superb",
            "--task",
            "er",
            "--upstream",
            f"random={random_upstream}",
            "--data",
            str(tmp_path / "er"),
            "--out",
            str(tmp_path / "exp"),
        ]
        + fast("er")
    )
    r = _result(tmp_path / "exp", "random", "er")
    assert r["test_utterances"] == 12 and r["layout"] == "iemocap"
    (tmp_path / "IEMOCAP" / "Session2" / "sentences" / "wav" / "Ses02M_impro01" / "Ses02M_impro01_M003.wav").unlink()
    with pytest.raises(MissingInputError, match=r"Ses02M_impro01.txt:\d+: .*Ses02M_impro01_M003.wav does not exist"):
        prepare_iemocap(tmp_path / "IEMOCAP", tmp_path / "er2")


def test_der_as_md_eval_counts_it_and_pit_is_order_free():

    from speechssl.downstream.diarization import der, diarization_errors, pit_bce, segments_to_frames

    ref = {"A": [(0.0, 2.0)], "B": [(1.5, 4.0)]}
    assert der([(ref, {"x": [(0.0, 2.0)], "y": [(1.5, 4.0)]})]) == pytest.approx(0.0, abs=0.5)  # names are mapped
    e = diarization_errors(ref, {"x": [(0.0, 2.0)]})  # B missed
    assert e["speech"] == pytest.approx(4.5, abs=0.02) and e["miss"] == pytest.approx(2.5, abs=0.02)
    # x maps to B (2.5 s agree): 1.5 s confusion while only A speaks, 0.5 s miss in the overlap
    assert der([(ref, {"x": [(0.0, 4.0)]})]) == pytest.approx(100 * (1.5 + 0.5) / 4.5, abs=0.5)
    # a collar of 0.25 s forgives a hypothesis 0.2 s late at every boundary
    late = {"x": [(0.2, 2.2)], "y": [(1.7, 4.2)]}
    assert der([(ref, late)], collar=0.0) > 5 and der([(ref, late)], collar=0.25) == pytest.approx(0.0, abs=0.5)
    labels = segments_to_frames([[(0.0, 0.5)], [(0.3, 1.0)]], 50, 50.0)
    logits = (labels * 8 - 4)[None]
    swapped = logits[..., [1, 0]]
    n = torch.tensor([50])
    assert pit_bce(logits, labels[None], n) == pytest.approx(float(pit_bce(swapped, labels[None], n)))
    assert pit_bce(logits, labels[None], n) < 0.05


def test_cache_keys_do_not_depend_on_where_the_recipe_lives(tiny_data, tmp_path, monkeypatch):
    """Two clones of a recipe (same files under different roots) give the same source keys, so their caches
    extract in the same order and their float16 states are bit-identical; different audio gets another key."""
    import shutil

    from speechssl.data.kaldi_dir import DataDir
    from speechssl.downstream.cache import source_key

    src = DataDir.read(tiny_data / "dev")
    utts = src.utt_ids[:4]
    keys = {}
    for clone in ("a", "b"):
        root = tmp_path / clone / "recipe"
        d = src.subset(utts)
        for u in utts:
            (root / "corpus").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.audio_source(u)[0], root / "corpus" / f"{u}.flac")
            d.wav_scp[u] = str(root / "corpus" / f"{u}.flac")  # absolute, as data prep writes them
        monkeypatch.chdir(root)
        keys[clone] = [source_key(d, u) for u in utts]
    assert keys["a"] == keys["b"] and len(set(keys["a"])) == len(utts)
    monkeypatch.chdir(tmp_path / "a")  # outside the recipe: absolute paths
    outside = DataDir.read(tiny_data / "dev").subset(utts)
    assert [source_key(outside, u) for u in utts] != keys["a"]


def test_cached_states_do_not_depend_on_which_utterances_were_extracted_together(tiny_data, random_upstream, tmp_path):
    """The cache runs one utterance per forward pass by default: an utterance's states are the same whether a task
    extracted it alone or among all of them (batched, padding moves them by float rounding, which made a
    standalone ASV run differ from the recipe's: 13.9 against 12.5 % EER for FBANK)."""

    from speechssl import load_model
    from speechssl.data.kaldi_dir import DataDir
    from speechssl.downstream.cache import load_cached_states, source_key
    from speechssl.errors import InputError

    dev = DataDir.read(tiny_data / "dev")
    few = dev.subset(dev.utt_ids[:2])

    def states(name, dirs, **kw):
        source, _ = load_cached_states(
            tmp_path / name, str(random_upstream), dirs, lambda: load_model(random_upstream), progress=False, **kw
        )
        return [source.get(source_key(few, u)) for u in few.utt_ids]

    alone, among_all = states("a", [few]), states("b", [dev])
    assert all(torch.equal(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(alone, among_all))
    batched = states("c", [dev], utts_per_batch=0)
    assert [p.name for p in (tmp_path / "c").iterdir()] != [p.name for p in (tmp_path / "b").iterdir()]
    assert all(x.shape == y.shape for x, y in zip(batched, among_all))
    with pytest.raises(InputError, match="utts_per_batch must be >= 0"):
        states("d", [few], utts_per_batch=-1)


def test_worked_custom_task_dir_from_the_docs(testdata, tmp_path):
    """docs/finetuning-and-superb.md's custom keyword-spotting example, its shell lines as written, on three
    spoken digits of the free spoken digit recordings (speakers s1, s2, s3 -> train, dev, test)."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "finetuning-and-superb.md").read_text()
    block = doc.split("A worked example: three spoken digits", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    speakers = {"george": "s1", "jackson": "s1", "lucas": "s2", "nicolas": "s3"}
    lines = [
        f"{speakers[spk]}-{spk}{digit}{take} {speakers[spk]} {DIGIT_WORDS[digit]} {path}"
        for spk, digit, take, path in _fsdd(testdata)
        if digit < 3
    ]
    (tmp_path / "my_recordings.txt").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "exp/mydigits/fbank/ks/result.json").read_text())
    assert result["test_utterances"] == sum(line.split()[1] == "s3" for line in lines) == 15
    assert result["train_utterances"] == 30 and result["steps"] == 20
    assert (tmp_path / "exp/mydigits/results.md").is_file() and (tmp_path / "exp/mydigits/results.json").is_file()
    assert sorted(set(re.findall(r"^\S+ (\S+)$", (tmp_path / "mydigits/train/utt2label").read_text(), re.M))) == [
        "ONE",
        "TWO",
        "ZERO",
    ]


def test_a_head_killed_and_resumed_equals_a_straight_run(layouts, random_upstream, tmp_path, monkeypatch):
    """Weights, the dev curve that picks the kept step, and the loss history in result.json all continue."""
    from _resume import Killed, kill_after

    import speechssl.tasks.superb.runner as runner

    fit = runner.fit_and_export
    _run(
        [
            "data",
            "prep-superb",
            "--task",
            "sid",
            "--layout",
            "voxceleb1",
            "--src",
            str(layouts["voxceleb1"]),
            "--out",
            str(tmp_path / "tasks" / "sid"),
        ]
    )
    args = [
        "superb",
        "--task",
        "sid",
        "--upstream",
        f"random={random_upstream}",
        "--tasks-dir",
        str(tmp_path / "tasks"),
        *fast("sid"),
        "trainer.max_steps=12",
        "trainer.val_every_steps=4",
    ]
    _run(args + ["--out", str(tmp_path / "straight")])
    monkeypatch.setattr(
        runner, "fit_and_export", lambda *a, callbacks=(), **k: fit(*a, callbacks=[*callbacks, kill_after(9)], **k)
    )
    with pytest.raises(Killed):
        main(args + ["--out", str(tmp_path / "killed")])
    monkeypatch.setattr(runner, "fit_and_export", fit)
    _run(args + ["--out", str(tmp_path / "killed")])
    a, b = _result(tmp_path / "straight", "random", "sid"), _result(tmp_path / "killed", "random", "sid")
    for key in ("value", "dev", "best_step", "train_loss", "curve", "loss_curve", "layer_weights"):
        assert b[key] == a[key], key


def test_each_head_takes_only_its_own_fields(tmp_path, capsys):
    """Issue 41: per-head config classes; `head.hidden` for KS was silently ignored, now refused naming the fields."""
    from speechssl.config import ConfigError
    from speechssl.tasks.superb import TASKS
    from speechssl.tasks.superb.base import head_config
    from speechssl.tasks.superb.runner import head_overrides_per_task

    ks, asr = TASKS["ks"], TASKS["asr"]
    assert head_config(ks, {"project": 8}).project == 8
    with pytest.raises(
        ConfigError,
        match=r"head.hidden: the ks head \(PoolingHeadConfig\) has no such field; its "
        r"fields: project",
    ):
        head_config(ks, {"hidden": 16})
    assert head_config(asr, {"hidden": 16}).hidden == 16
    split = head_overrides_per_task(["ks", "asr"], ["head.hidden=16", "head.project=8", "lr=1e-3"])
    assert split == {"ks": ["head.project=8", "lr=1e-3"], "asr": ["head.hidden=16", "head.project=8", "lr=1e-3"]}
    with pytest.raises(ConfigError, match="head.margin: none of the heads of ks, asr has this field"):
        head_overrides_per_task(["ks", "asr"], ["head.margin=0.2"])
    assert (
        main(
            [
                "superb",
                "--task",
                "ks",
                "--upstream",
                "fbank",
                "--data",
                str(tmp_path / "nowhere"),
                "--out",
                str(tmp_path / "exp"),
                "head.hidden=16",
            ]
        )
        == 2
    )
    assert "head.hidden: the ks head" in capsys.readouterr().err  # refused before any data is read
