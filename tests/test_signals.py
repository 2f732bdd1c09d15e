"""A signal mid-training is not a success: SIGTERM (kill, timeout, a scheduler) and SIGUSR1 outside SLURM stop
after the current batch, checkpoint, and exit 128 + the signal number; the same command then resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch


# SIGUSR1 takes the same handler as SIGTERM (outside SLURM): it runs with the slow tests, SIGTERM in the default suite
@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGUSR1, marks=pytest.mark.slow)])
def test_signal_checkpoints_and_exits_non_zero_then_resumes(tiny_data, mfcc_labels, tmp_path, sig):
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "speechssl.cli",
        "pretrain",
        "hubert",
        "--config",
        "pretrain/hubert_tiny",
        f"data.train={tiny_data / 'dev'}",
        f"data.train_labels=[{mfcc_labels / 'dev'}]",
        "data.valid=null",
        "trainer.val_every_steps=null",
        "trainer.checkpoint_every_steps=1000",
        "trainer.progress_bar=false",
        f"trainer.out_dir={out}",
        "trainer.threads=1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.Popen(
        [*args, "trainer.max_steps=100000", "optim.total_steps=100000"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while not (out / "logs").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)  # the logger's folder appears when fit starts
    time.sleep(4)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert f"stopped by {signal.Signals(sig).name} at step" in err and "Run the same command again" in err
    assert not (out / "final").exists() and not (out / "summary.json").exists()
    step = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert step >= 1
    if sig != signal.SIGTERM:
        return  # the resume after a signal's checkpoint is one path, run once
    # the rerun resumes there and finishes a budget of two more steps
    done = subprocess.run(
        [*args, f"trainer.max_steps={step + 2}", "optim.total_steps=100000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == step + 2


def test_a_non_finite_loss_stops_the_run_naming_the_step_and_exports_nothing(tiny_data, mfcc_labels, tmp_path, capsys):
    from speechssl.cli import main

    out = tmp_path / "run"
    assert (
        main(
            [
                "pretrain",
                "hubert",
                "--config",
                "pretrain/hubert_tiny",
                f"data.train={tiny_data / 'dev'}",
                f"data.train_labels=[{mfcc_labels / 'dev'}]",
                "data.valid=null",
                "trainer.val_every_steps=null",
                "optim.lr=inf",
                "optim.warmup_steps=0",
                "trainer.max_steps=6",
                f"trainer.out_dir={out}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "training loss is nan at step" in err and "learning rate" in err and "nothing was exported" in err
    assert not (out / "final").exists()


def test_non_finite_weights_are_never_exported(tmp_path):
    from speechssl.errors import InputError
    from speechssl.models import save_model
    from speechssl.models.encoder import EncoderConfig, SpeechEncoder

    enc = SpeechEncoder(
        EncoderConfig(
            hidden_size=16, num_layers=1, num_heads=2, ffn_dim=16, pos_conv_kernel=0, conv_layers=[[16, 10, 5]]
        )
    )
    with torch.no_grad():
        enc.encoder.layers[0].ffn.fc1.weight[0, 0] = float("nan")
    with pytest.raises(InputError, match="refusing to export non-finite weights .*encoder.layers.0.ffn.fc1.weight"):
        save_model(enc, tmp_path / "m")
    assert not (tmp_path / "m").exists()
