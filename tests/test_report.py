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
    md = to_markdown({"corpus": "mini", "superb": {}, "asr": {"m": r}, "pnmi_by_split": {}, "lighthubert": [],
                      "models": {}, "stages": {}}, exp, {}, [])
    assert "decoder chosen on dev" in md and "| m | – | beam_lm | 25.00 |" in md


def test_stage_names_come_from_the_recipe(tmp_path):
    (tmp_path / "stage_times.tsv").write_text("stage\tseconds\tfinished\twhat\n3\t10\tx\tHuBERT iteration 1\n"
                                              "3\t5\tx\tHuBERT iteration 1\n12\t7\tx\tWavThruVec\n")
    t = collect_stage_times(tmp_path)
    assert t["3"] == {"seconds": 15.0, "runs": 2, "what": "HuBERT iteration 1"} and list(t) == ["3", "12"]


def test_training_runs_leave_out_the_superb_heads(tmp_path):
    from speechssl.report import training_runs
    for run in ("hubert_it1", "superb/fbank/ks/train"):
        d = tmp_path / run
        (d / "logs" / "version_0").mkdir(parents=True)
        (d / "summary.json").write_text("{}")
        (d / "logs" / "version_0" / "metrics.csv").write_text("step\n0\n")
    assert list(training_runs(tmp_path)) == ["hubert_it1"]
