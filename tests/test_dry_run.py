"""Dry runs say what a config builds and will do: parameters with and without the pretraining heads (HuBERT Base
against its published size, which counts them), steps, audio per update and in all, a memory estimate for the
configured batch and precision, and with --time-steps a measured update on this device."""

import json

import pytest

from speechssl.cli.main import main


def dry_run(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_hubert_base_counts_its_heads_and_plans_the_paper_run(capsys, tmp_path):
    km = tmp_path / "km100"
    km.mkdir()
    (km / "kmeans.json").write_text(json.dumps({"k": 100, "source": {"frame_rate": 100.0}}))
    info = dry_run(
        capsys, "pretrain", "hubert", "--config", "pretrain/hubert_base_it1", "--dry-run", f"data.train_labels=[{km}]"
    )
    p = info["parameters"]
    # heads: final_proj 768 x 256 + 256 and 100 label embeddings of 256
    assert p["pretraining_heads"] == 768 * 256 + 256 + 100 * 256
    assert p["total"] == p["encoder"] + p["pretraining_heads"]
    assert p["encoder_human"] == "94.37M" and "assumed" not in p["heads_for"]
    # published: 94.68M with fairseq's 504 label embeddings (k=500 + 4 specials); k=500 here gives 94.70M
    k500 = dry_run(capsys, "pretrain", "hubert", "--config", "pretrain/hubert_base_it1", "--dry-run")["parameters"]
    assert k500["total"] == pytest.approx(94.68e6, rel=5e-4) and "assumed" in k500["heads_for"]
    run = info["run"]
    assert run["max_steps"] == 250_000 and run["warmup_steps"] == 32_000
    assert run["audio_hours_per_update"] == pytest.approx(2800 / 3600, abs=1e-4)
    assert run["audio_hours_in_all"] == pytest.approx(2800 * 250_000 / 3600, rel=1e-3)
    mem = run["memory_estimate_per_device"]
    assert mem["precision"] == "bf16-mixed" and mem["weights_grads_adam_gib"] == pytest.approx(
        p["total"] * 16 / 1024**3, abs=0.01
    )
    assert 1.0 < mem["activations_gib"] < 40.0 and mem["total_gib"] > mem["weights_grads_adam_gib"]


def test_a_smaller_micro_batch_needs_less_memory_and_fp32_activations_twice_bf16(capsys):
    def mem(*overrides):
        return dry_run(capsys, "pretrain", "hubert", "--config", "pretrain/hubert_base_it1", "--dry-run", *overrides)[
            "run"
        ]["memory_estimate_per_device"]["activations_gib"]

    assert mem("data.batch_seconds=43.75", "optim.global_batch_seconds=null") < mem()
    assert mem("trainer.precision=32-true") == pytest.approx(2 * mem(), rel=0.02)


def test_time_steps_measures_updates_on_a_synthetic_batch(capsys):
    info = dry_run(
        capsys,
        "pretrain",
        "hubert",
        "--config",
        "pretrain/hubert_tiny",
        "--dry-run",
        "--time-steps",
        "1",
        "trainer.accelerator=cpu",
    )
    m = info["measured"]
    assert m["measured_steps"] == 1 and m["device"] == "cpu"
    assert m["seconds_per_micro_batch"] > 0 and m["peak_memory_gib"] > 0
    assert m["seconds_per_update_here"] == pytest.approx(m["seconds_per_micro_batch"], rel=0.01)  # accumulate 1
    assert "hours_for_max_steps_here" in m


def test_time_steps_is_refused_for_a_task_that_needs_its_data(capsys):
    assert (
        main(
            [
                "finetune",
                "asr",
                "--config",
                "finetune/asr_mini",
                "--dry-run",
                "--time-steps",
                "1",
                "model.upstream=exp/x",
            ]
        )
        == 2
    )
    assert "cannot be timed without its data" in capsys.readouterr().err
