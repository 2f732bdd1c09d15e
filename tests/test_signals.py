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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_and_exits_non_zero_then_resumes(tiny_data, mfcc_labels, tmp_path, sig):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "speechssl.cli", "pretrain", "hubert", "--config", "pretrain/hubert_tiny",
            f"data.train={tiny_data / 'dev'}", f"data.train_labels=[{mfcc_labels / 'dev'}]", "data.valid=null",
            "trainer.val_every_steps=null", "trainer.checkpoint_every_steps=1000", "trainer.progress_bar=false",
            f"trainer.out_dir={out}", "trainer.threads=1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.Popen([*args, "trainer.max_steps=100000", "optim.total_steps=100000"], env=env,
                            stderr=subprocess.PIPE, text=True)
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
    # the rerun resumes there and finishes a budget of two more steps
    done = subprocess.run([*args, f"trainer.max_steps={step + 2}", "optim.total_steps=100000"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == step + 2
