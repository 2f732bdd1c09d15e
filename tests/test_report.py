"""The recipe's summary reads what the stages wrote: the decoder is chosen on dev and reported on test, and
the stage names come from the recipe's own timing file."""

import json

from speechssl.report import collect_asr, collect_stage_times, to_markdown


def _decode(exp, model, name, wer):
    d = exp / "asr" / model / f"decode_{name}"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"wer": {"rate": wer}, "cer": {"rate": wer / 2}}))


def test_decoder_chosen_on_dev_never_on_test(tmp_path):
    exp = tmp_path / "exp"
    # on test the greedy decoder looks better; on dev the beam does: the beam is the one reported
    for name, wer in (("dev_greedy", 40.0), ("dev_beam_lm", 30.0), ("test_greedy", 20.0), ("test_beam_lm", 25.0)):
        _decode(exp, "m", name, wer)
    r = collect_asr(exp)["m"]
    assert r["decoder"] == "beam_lm" and r["wer"] == 25.0 and r["chosen_on"] == "dev"
    md = to_markdown(
        {
            "corpus": "mini",
            "superb": {},
            "asr": {"m": r},
            "pnmi_by_split": {},
            "lighthubert": [],
            "models": {},
            "stages": {},
        },
        exp,
        {},
        [],
    )
    assert "decoder chosen on dev" in md and "| m | – | beam_lm | 25.00 |" in md


def test_stage_names_come_from_the_recipe(tmp_path):
    (tmp_path / "stage_times.tsv").write_text(
        "stage\tseconds\tfinished\twhat\n3\t10\tx\tHuBERT iteration 1\n"
        "3\t5\tx\tHuBERT iteration 1\n12\t7\tx\tWavThruVec\n"
    )
    t = collect_stage_times(tmp_path)
    assert t["3"] == {"seconds": 15.0, "runs": 2, "what": "HuBERT iteration 1"} and list(t) == ["3", "12"]


def test_training_runs_leave_out_the_superb_heads(tmp_path):
    from speechssl.report import training_runs

    # a head says so in its summary; one from before that field sits in the folder of its task's result.json
    summaries = {"hubert_it1": {}, "superb/fbank/ks/train": {"superb_head": "ks"}, "heads/x/sid/train": {}}
    for run, summary in summaries.items():
        d = tmp_path / run
        (d / "logs" / "version_0").mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(summary))
        (d / "logs" / "version_0" / "metrics.csv").write_text("step\n0\n")
    (tmp_path / "heads" / "x" / "sid" / "result.json").write_text("{}")
    assert list(training_runs(tmp_path)) == ["hubert_it1"]


def test_results_are_found_by_their_files_in_any_layout(tmp_path):
    """No recipe folder name is needed: an experiment laid out by hand is reported the same way."""
    from speechssl.report import collect
    from speechssl.utils.artifacts import SuperbResult

    exp = tmp_path / "my_exp"
    (exp / "labels" / "mfcc_k50" / "dev").mkdir(parents=True)
    (exp / "labels" / "mfcc_k50" / "dev" / "quality.json").write_text(json.dumps({"pnmi": 0.31234}))
    (exp / "labels" / "mfcc_k50" / "dev" / "quality_at_50hz.json").write_text(json.dumps({"pnmi": 0.35}))
    (exp / "heads" / "ks_run").mkdir(parents=True)
    SuperbResult.write(
        exp / "heads" / "ks_run" / "result.json", {"task": "ks", "upstream": "mine", "metric": "acc", "value": 61.5}
    )
    _decode(exp, "ft_runs/mine", "test_greedy", 33.0)
    res = collect(exp, "mine")
    assert res["pnmi"] == {"mfcc_k50": 0.3123, "mfcc_k50@50Hz": 0.35}
    assert res["superb"]["mine"]["ks"]["value"] == 61.5
    assert res["asr"]["mine"]["wer"] == 33.0 and res["asr"]["mine"]["chosen_on"] == "none"


def test_runs_cut_by_the_wall_clock_guard_are_named_beside_the_stage_times(tmp_path):
    from speechssl.report import collect

    exp = tmp_path / "exp"
    (exp / "hubert_it1" / "logs" / "version_0").mkdir(parents=True)
    (exp / "hubert_it1" / "logs" / "version_0" / "metrics.csv").write_text("step\n0\n")
    (exp / "hubert_it1" / "summary.json").write_text(
        json.dumps(
            {
                "steps": 179,
                "precision": "bf16-mixed",
                "cut_by_wall_clock_guard": {"at_step": 179, "max_steps": 450, "max_time_minutes": 7},
            }
        )
    )
    (exp / "stage_times.tsv").write_text("stage\tseconds\tfinished\twhat\n3\t420\tx\tHuBERT iteration 1\n")
    res = collect(exp, "mini")
    assert res["models"]["hubert_it1"]["precision"] == "bf16-mixed"
    md = to_markdown(res, exp, {}, [])
    assert "Cut short by the wall-clock guard" in md and "- hubert_it1: step 179 of 450 after 7 min" in md


def test_the_judges_rows_of_the_wavthruvec_table():
    from pathlib import Path

    from speechssl.report_sections import _tts_md

    judges = {
        "judge_on_real_audio": {"test_speakers": {"eer": 12.5}, "reference_speakers": {"eer": 8.0}},
        "vocoder_embedding_on_real_audio": {"test_speakers": {"eer": 50.5}, "reference_speakers": {"eer": 46.5}},
        "asr_judge_lm": "exp/lm/3gram.arpa",
        "speaker_similarity": {
            "vc_to_target": 0.61,
            "vc_to_source": 0.72,
            "tts_to_reference": 0.7,
            "tts_to_other_references": 0.6,
        },
        "vc_closer_to_target": 0.25,
        "wer": {"original": 60.0, "resynthesis": 80.0, "vc": 85.0, "tts": 90.0},
        "mcd_dtw": {"resynthesis": 7.5, "tts_own_voice": 9.1},
    }
    t = {
        "resynthesis": {"mcd": 8.0},
        "voice_conversion": {"similarity_to_target": 0.8, "similarity_to_source": 0.9},
        "judges": judges,
    }
    md = "\n".join(_tts_md({"tts": t}, Path("."), {}))
    assert "| 12.5 / 8.0 |" in md and "| 0.610 / 0.720 (0.25) |" in md and "| 60.0 / 80.0 / 85.0 / 90.0 |" in md
    assert "| 7.50 / 9.10 |" in md and "| 50.5 / 46.5 |" in md and "PocketSphinx WER (domain LM)" in md
    assert "clean twin" not in md
    t["clean_twin"] = {"asr_original": {"wer": 39.0, "cer": 20.0}, "resynthesis_mcd": 6.5, "resynthesis_stoi": 0.81}
    md = "\n".join(_tts_md({"tts": t}, Path("."), {}))
    assert "| ASR WER / CER on the clean twin of the original audio | 39.0 / 20.0 |" in md
    assert "| resynthesis MCD (dB) / STOI against the clean twin | 6.50 / 0.810 |" in md


def test_the_unseen_speaker_split_is_reported_with_the_decoder_chosen_on_dev(tmp_path):
    exp = tmp_path / "exp"
    for name, wer in (
        ("dev_greedy", 40.0),
        ("dev_beam_lm", 30.0),
        ("test_greedy", 35.0),
        ("test_beam_lm", 25.0),
        ("test_unseen_speakers_greedy", 50.0),
        ("test_unseen_speakers_beam_lm", 45.0),
    ):
        _decode(exp, "m", name, wer)
    r = collect_asr(exp)["m"]
    # the unseen split is neither a decoder of test nor a candidate for the choice
    assert r["decoder"] == "beam_lm" and r["wer"] == 25.0
    assert r["other_splits"] == {"test_unseen_speakers": {"wer": 45.0, "cer": 22.5}}
    md = to_markdown(
        {
            "corpus": "mini",
            "superb": {},
            "asr": {"m": r},
            "pnmi_by_split": {},
            "lighthubert": [],
            "models": {},
            "stages": {},
        },
        exp,
        {},
        [],
    )
    assert "| m | – | beam_lm | 25.00 | 12.50 | 45.00 / 22.50 |" in md


def test_a_head_still_improving_at_its_last_step_is_named():
    from speechssl.report_plots import still_improving

    rising = [{"step": 100, "dev": 5.0}, {"step": 200, "dev": 8.0}, {"step": 300, "dev": 11.0}]
    flat = [{"step": 100, "dev": 5.0}, {"step": 200, "dev": 11.0}, {"step": 300, "dev": 11.0}]
    assert still_improving(rising, higher_is_better=True) and not still_improving(flat, higher_is_better=True)
    falling_per = [{"step": 250, "dev": 90.0}, {"step": 500, "dev": 80.0}]
    assert still_improving(falling_per, higher_is_better=False)
    assert not still_improving(falling_per, higher_is_better=True)


def test_a_head_without_dev_split_whose_loss_still_falls_is_named(tmp_path):
    from speechssl.report import _superb_md
    from speechssl.report_plots import loss_still_falling
    from speechssl.tasks.superb.runner import loss_curve

    falling = loss_curve([5.0 - 0.01 * i for i in range(400)], points=20)  # 5.0 -> 1.0, still going
    flat = loss_curve([5.0 - 0.01 * i for i in range(200)] + [3.0] * 200, points=20)
    noisy_flat = loss_curve([3.0 + 0.05 * (-1) ** i for i in range(400)], points=20)
    assert loss_still_falling(falling)
    assert not loss_still_falling(flat) and not loss_still_falling(noisy_flat) and not loss_still_falling(falling[:3])
    superb = {
        "fbank": {"asv": {"metric": "EER", "value": 10.0, "curve": [], "loss_curve": falling}},
        "hubert": {"asv": {"metric": "EER", "value": 20.0, "curve": [], "loss_curve": flat}},
    }
    md = "\n".join(_superb_md({"superb": superb}, tmp_path, {}))
    assert "training loss was still falling over their last quarter" in md
    assert "fbank/asv" in md and "hubert/asv" not in md
    # the recipe's report reads the heads' result.json files: the loss curve must survive the collection
    from speechssl.report import collect_superb

    for u, rows in superb.items():
        out = tmp_path / "exp" / "superb" / u / "asv"
        out.mkdir(parents=True)
        (out / "result.json").write_text(json.dumps({**rows["asv"], "upstream": u, "task": "asv"}))
    collected = collect_superb(tmp_path / "exp")
    assert collected["fbank"]["asv"]["loss_curve"] == falling
    assert "fbank/asv" in "\n".join(_superb_md({"superb": collected}, tmp_path, {}))


def test_superb_curves_show_dev_metrics_and_asvs_training_loss(tmp_path):
    from speechssl.report_plots import plot_superb_curves, superb_curve_series
    from speechssl.tasks.superb.runner import loss_curve

    lc = loss_curve([4.0] * 10 + [2.0] * 10 + [1.0] * 20, accumulate=2, points=4)
    assert lc == [
        {"step": 5, "loss": 4.0},
        {"step": 10, "loss": 2.0},
        {"step": 15, "loss": 1.0},
        {"step": 20, "loss": 1.0},
    ]
    dev = [{"step": 20, "dev": 50.0}, {"step": 40, "dev": 60.0}]
    superb = {
        "fbank": {
            "ks": {"metric": "accuracy", "curve": dev, "loss_curve": lc},
            "asv": {"metric": "EER", "curve": [], "loss_curve": lc},
            "_note": "x",
        },
        "hubert": {"asv": {"metric": "EER", "curve": [], "loss_curve": lc[:1]}},
    }  # one point: no line
    series = superb_curve_series(superb)
    assert list(series) == ["asv", "ks"] and series["ks"] == ("dev", {"fbank": dev})
    assert series["asv"] == ("loss", {"fbank": lc})
    assert plot_superb_curves(superb, tmp_path / "c.png").stat().st_size > 1000
    assert plot_superb_curves({"fbank": {"asv": {"metric": "EER", "curve": []}}}, tmp_path / "none.png") is None
