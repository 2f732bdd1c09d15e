"""CTC fine-tuning: the tri-stage schedule, frozen CNN and delayed encoder training, a short run whose
loss falls, export + Kaldi-style decoding (greedy and beam), and clear errors."""

import json
import math

import pytest
import torch

from speechssl.cli import main
from speechssl.config import load_config
from speechssl.data.kaldi_dir import DataDir
from speechssl.tasks.asr import AsrFinetuneConfig, decode_asr, finetune_asr, load_ctc_model, tri_stage
from speechssl.training import read_metrics

TINY = {
    "conv_layers": [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 2, 2], [32, 2, 2]],
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "ffn_dim": 64,
    "pos_conv_kernel": 16,
    "pos_conv_groups": 4,
    "layer_norm_first": True,
    "dropout": 0.0,
    "attention_dropout": 0.0,
}


def test_tri_stage_schedule():
    r, total = [0.1, 0.4, 0.5], 1000
    assert tri_stage(0, total, r, 0.01, 0.05) == pytest.approx(0.01)
    assert tri_stage(50, total, r, 0.01, 0.05) == pytest.approx(0.01 + 0.99 * 0.5)
    assert tri_stage(100, total, r, 0.01, 0.05) == tri_stage(499, total, r, 0.01, 0.05) == 1.0
    assert tri_stage(750, total, r, 0.01, 0.05) == pytest.approx(math.sqrt(0.05))  # exponential decay
    assert tri_stage(1000, total, r, 0.01, 0.05) == tri_stage(5000, total, r, 0.01, 0.05) == 0.05


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    from speechssl.models import build_model, save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("up") / "random"
    save_model(build_model("hubert_small", **TINY), path)
    return path


def _cfg(tiny_data, upstream, out, *extra):
    return load_config(
        AsrFinetuneConfig,
        [],
        [
            f"model.upstream={upstream}",
            f"data.train={tiny_data / 'train'}",
            f"data.valid={tiny_data / 'dev'}",
            f"trainer.out_dir={out}",
            "data.batch_seconds=20",
            "data.num_workers=0",
            "optim.lr=3e-3",
            "optim.total_steps=40",
            "trainer.max_steps=40",
            "trainer.val_every_steps=20",
            "trainer.checkpoint_every_steps=20",
            "trainer.progress_bar=false",
            "model.mask_prob=0.2",
            "model.mask_channel_prob=0.1",
            "model.mask_channel_length=4",
            *extra,
        ],
    )


def test_frozen_encoder_first_then_loss_falls_and_decodes(tiny_data, upstream, tmp_path):
    from speechssl.models import load_model

    init = load_model(upstream).state_dict()
    # 1. only the CTC layer learns during the first freeze_encoder_steps updates
    s = finetune_asr(
        _cfg(tiny_data, upstream, tmp_path / "frozen", "model.freeze_encoder_steps=100", "trainer.max_steps=6")
    )
    enc = load_model(tmp_path / "frozen" / "final").state_dict()
    assert all(torch.equal(enc[k], v) for k, v in init.items())
    model, vocab = load_ctc_model(tmp_path / "frozen" / "final")
    assert s["steps"] == 6 and vocab.tokens[vocab.index["|"]] == "|"
    # 2. after them the Transformer trains, the waveform CNN never does; the CTC loss falls
    s = finetune_asr(_cfg(tiny_data, upstream, tmp_path / "ft", "model.freeze_encoder_steps=5"))
    enc = load_model(tmp_path / "ft" / "final").state_dict()
    assert all(torch.equal(enc[k], v) for k, v in init.items() if k.startswith("frontend."))
    k = next(k for k in init if "layers.1." in k and k.endswith("q_proj.weight"))
    assert not torch.equal(enc[k], init[k])
    losses = [r["train/ctc_loss"] for r in read_metrics(tmp_path / "ft") if "train/ctc_loss" in r]
    assert losses[-1] < losses[0] * 0.9, losses
    assert "best_val_wer" in s and (tmp_path / "ft" / "final" / "tokens.txt").exists()
    # 3. decoding: Kaldi-style files, WER/CER lines equal to jiwer's counts in results.json
    r = decode_asr(tmp_path / "ft" / "final", tiny_data / "test", tmp_path / "dec")
    res = json.loads((tmp_path / "dec" / "results.json").read_text())
    assert r["lines"][0] == (tmp_path / "dec" / "wer").read_text().splitlines()[0]
    assert r["lines"][0].startswith(
        f"%WER {res['wer']['rate']:.2f} [ {res['wer']['errors']} / {res['wer']['ref_tokens']},"
    )
    hyp = (tmp_path / "dec" / "hyp.txt").read_text().splitlines()
    assert len(hyp) == len(DataDir.read(tiny_data / "test"))
    assert (
        main(
            [
                "decode",
                "--model",
                str(tmp_path / "ft" / "final"),
                "--data",
                str(tiny_data / "test"),
                "--out",
                str(tmp_path / "beam"),
                "--beam",
                "4",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "beam" / "results.json").read_text())["decoder"] == "beam4"


def test_finetune_errors_are_clear(tiny_data, upstream, tmp_path):
    d = DataDir.read(tiny_data / "train")
    first = d.utt_ids[0]
    d.text = {u: t for u, t in d.text.items() if u != first}
    d.write(tmp_path / "notext")
    with pytest.raises(ValueError, match=f"1 utterances have no transcript \\(first: {first}\\)"):
        finetune_asr(_cfg(tiny_data, upstream, tmp_path / "x", f"data.train={tmp_path / 'notext'}"))
    with pytest.raises(ValueError, match="phase_ratio"):
        finetune_asr(_cfg(tiny_data, upstream, tmp_path / "y", "optim.phase_ratio=[0.5,0.6,0.1]"))
    assert (
        main(["decode", "--model", str(upstream), "--data", str(tiny_data / "test"), "--out", str(tmp_path / "d")]) == 2
    )


def test_lm_weight_and_word_score_are_chosen_on_dev_and_reused_on_test(tiny_data, upstream, tmp_path):
    """The grid is swept on dev (one forward pass), the lowest-WER point is written, and a test decode takes
    exactly that point with --settings-from; a greedy decode has no setting to give."""
    pytest.importorskip("kenlm")
    finetune_asr(_cfg(tiny_data, upstream, tmp_path / "ft", "model.freeze_encoder_steps=5"))
    model = str(tmp_path / "ft" / "final")
    assert (
        main(["lm", "ngram", "--text", str(tiny_data / "train"), "--order", "2", "--out", str(tmp_path / "lm.arpa")])
        == 0
    )
    lm = ["--beam", "4", "--lm", str(tmp_path / "lm.arpa")]
    assert (
        main(
            [
                "decode",
                "--model",
                model,
                "--data",
                str(tiny_data / "dev"),
                "--out",
                str(tmp_path / "dev"),
                *lm,
                "--lm-weight",
                "0",
                "2",
                "--word-score",
                "0",
                "3",
            ]
        )
        == 0
    )
    tuning = json.loads((tmp_path / "dev" / "tuning.json").read_text())
    grid = tuning["grid"]
    assert [(g["lm_weight"], g["word_score"]) for g in grid] == [(0, 0), (0, 3), (2, 0), (2, 3)]
    best = min(grid, key=lambda g: g["wer"])  # min keeps the first of equals, as the sweep does
    assert tuning["chosen"] == {"lm_weight": best["lm_weight"], "word_score": best["word_score"]}
    dev = json.loads((tmp_path / "dev" / "results.json").read_text())
    assert dev["wer"]["rate"] == pytest.approx(best["wer"], abs=1e-3) and dev["grid_points"] == 4
    assert (
        main(
            [
                "decode",
                "--model",
                model,
                "--data",
                str(tiny_data / "test"),
                "--out",
                str(tmp_path / "test"),
                *lm,
                "--settings-from",
                str(tmp_path / "dev"),
            ]
        )
        == 0
    )
    test = json.loads((tmp_path / "test" / "results.json").read_text())
    assert (test["lm_weight"], test["word_score"]) == (best["lm_weight"], best["word_score"])
    # the WavThruVec judge decodes with the same choice
    from argparse import Namespace

    from speechssl.cli.tts import asr_decoding

    judge = asr_decoding(
        Namespace(
            asr_beam=20,
            asr_lm="lm.arpa",
            asr_lm_weight=0.5,
            asr_word_score=1.0,
            asr_settings_from=str(tmp_path / "dev"),
        )
    )
    assert judge == {"beam": 20, "lm": "lm.arpa", "lm_weight": best["lm_weight"], "word_score": best["word_score"]}
    assert main(["decode", "--model", model, "--data", str(tiny_data / "test"), "--out", str(tmp_path / "g")]) == 0
    assert (
        main(
            [
                "decode",
                "--model",
                model,
                "--data",
                str(tiny_data / "test"),
                "--out",
                str(tmp_path / "x"),
                *lm,
                "--settings-from",
                str(tmp_path / "g"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "decode",
                "--model",
                model,
                "--data",
                str(tiny_data / "dev"),
                "--out",
                str(tmp_path / "y"),
                "--lm-weight",
                "0",
                "1",
            ]
        )
        == 2
    )


def test_transcripts_ctc_cannot_emit_are_named_before_training(tiny_data, upstream, tmp_path, caplog):
    """A transcript longer than its utterance's frames (issue 40: 20,000 words for 0.33 s trained silently) is
    named with the frames it needs and has; the others train."""
    from speechssl.objectives.ctc import frames_needed

    assert frames_needed([1, 2, 2, 3]) == 5 and frames_needed([]) == 0
    d = DataDir.read(tiny_data / "train")
    victim = d.utt_ids[0]
    d.text[victim] = " ".join(["SEVEN"] * 2000)
    d.write(tmp_path / "long")
    summary = finetune_asr(
        _cfg(
            tiny_data,
            upstream,
            tmp_path / "run",
            f"data.train={tmp_path / 'long'}",
            "trainer.max_steps=2",
            "trainer.val_every_steps=null",
        )
    )
    assert summary["steps"] == 2
    report = (tmp_path / "run" / "infeasible_targets.txt").read_text().splitlines()
    assert len(report) == 1 and report[0].startswith(f"{victim} needs ")
    assert f"1 of {len(d.utt_ids)} training utterances have a transcript longer than CTC can emit" in caplog.text


def test_the_kept_checkpoint_breaks_wer_ties_by_cer_then_ctc_loss(tiny_data, upstream, tmp_path):
    """Issue 39: every early validation scores WER 100, and the first of equals was kept. The kept model is the one
    of lowest WER, then CER, then CTC loss; the summary says which step and WER it was."""
    s = finetune_asr(_cfg(tiny_data, upstream, tmp_path / "ft", "trainer.max_steps=6", "trainer.val_every_steps=2"))
    import torch

    state = torch.load(tmp_path / "ft" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    vals = state["validations"]
    assert [v["step"] for v in vals] == [2, 4, 6]
    best = min(vals, key=lambda v: (v["wer"], v["cer"], v["ctc"]))
    assert s["best_val_step"] == best["step"] and s["best_val_wer"] == round(best["wer"], 3)


def test_kill_and_resume_equals_a_straight_run(tiny_data, upstream, tmp_path):
    """The CTC run, its freezing schedule, SpecAugment draws and kept-checkpoint choice continue where they stopped."""
    from _resume import Killed, assert_same_weights, kill_after

    steps = [
        "trainer.max_steps=8",
        "optim.total_steps=8",
        "trainer.val_every_steps=4",
        "trainer.checkpoint_every_steps=2",
        "model.freeze_encoder_steps=3",
        "trainer.threads=2",
        "trainer.precision=32-true",
    ]
    a = finetune_asr(_cfg(tiny_data, upstream, tmp_path / "straight", *steps))
    with pytest.raises(Killed):
        finetune_asr(_cfg(tiny_data, upstream, tmp_path / "killed", *steps), callbacks=[kill_after(6)])
    b = finetune_asr(_cfg(tiny_data, upstream, tmp_path / "killed", *steps))
    assert a["steps"] == b["steps"] == 8 and a["best_val_wer"] == b["best_val_wer"]
    assert assert_same_weights(tmp_path / "straight" / "final", tmp_path / "killed" / "final") > 10
