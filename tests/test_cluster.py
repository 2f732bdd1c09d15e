"""SLURM: the requeue signal saves a checkpoint and calls `scontrol requeue`; the requeued job resumes from
that checkpoint exactly; interactive allocations are left alone; bf16 autocast trains on the CPU."""

import os
import signal
import stat

import pytest
import torch
from test_hubert_pretrain import _cfg, _Kill, _losses

from speechssl.tasks.hubert import pretrain_hubert


def _slurm_env(monkeypatch, tmp_path, job_name="pretrain"):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for k, v in {
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NAME": job_name,
        "SLURM_NODELIST": "localhost",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }.items():
        monkeypatch.setenv(k, v)


class _SignalAt:
    """Sends the requeue signal after step ``n`` (SLURM's --signal before the time limit), then dies at ``n + 1``
    as the job does when SLURM ends it."""

    def __new__(cls, n):
        import lightning as L

        class Cb(L.Callback):
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                if trainer.global_step == n:
                    os.kill(os.getpid(), signal.SIGUSR1)
                elif trainer.global_step == n + 1:
                    raise _Kill()

        return Cb()


def test_requeue_signal_checkpoints_requeues_and_the_job_resumes_exactly(tiny_data, mfcc_labels, tmp_path, monkeypatch):
    steps = 6
    straight = pretrain_hubert(
        _cfg(tiny_data, mfcc_labels, tmp_path / "a", f"trainer.max_steps={steps}", "trainer.checkpoint_every_steps=100")
    )
    _slurm_env(monkeypatch, tmp_path)
    out = tmp_path / "b"
    with pytest.raises(_Kill):
        pretrain_hubert(
            _cfg(tiny_data, mfcc_labels, out, f"trainer.max_steps={steps}", "trainer.checkpoint_every_steps=100"),
            callbacks=[_SignalAt(3)],
        )
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    assert list(out.glob("hpc_ckpt_*.ckpt")) and not (out / "checkpoints" / "last.ckpt").exists()
    resumed = pretrain_hubert(
        _cfg(tiny_data, mfcc_labels, out, f"trainer.max_steps={steps}", "trainer.checkpoint_every_steps=100")
    )  # the requeued job
    assert resumed["steps"] == straight["steps"] == steps
    la, lb = _losses(tmp_path / "a"), _losses(out)
    for s in range(3, steps):
        assert lb[s] == la[s], s  # bit for bit


def test_interactive_allocations_are_not_treated_as_batch_jobs(monkeypatch, tmp_path):
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from speechssl.training.config import TrainerConfig
    from speechssl.training.fit import _cluster_plugins

    _slurm_env(monkeypatch, tmp_path, job_name="bash")
    assert not SLURMEnvironment.detect() and _cluster_plugins(TrainerConfig()) == []
    monkeypatch.setenv("SLURM_JOB_NAME", "pretrain")
    (env,) = _cluster_plugins(TrainerConfig(requeue_signal="SIGUSR2"))
    assert env.auto_requeue and env.requeue_signal == signal.SIGUSR2


def test_bf16_autocast_training_step_on_cpu(tiny_data, mfcc_labels, tmp_path):
    """The precision GPU runs use, as a CPU smoke test: a few bf16-mixed steps train and the loss is finite."""
    summary = pretrain_hubert(
        _cfg(tiny_data, mfcc_labels, tmp_path / "bf16", "trainer.max_steps=3", "trainer.precision=bf16-mixed")
    )
    losses = _losses(tmp_path / "bf16")
    assert summary["steps"] == 3 and all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_the_prepared_gpu_script_runs_its_cpu_smoke_mode(tmp_path):
    """tools/gpu_checks.py is what a lent GPU runs; on the CPU with --tiny it must run end to end."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "tools" / "gpu_checks.py"
    r = subprocess.run(
        [sys.executable, str(script), "--device", "cpu", "--tiny", "--steps", "1", "--out", str(tmp_path / "g.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert [r["what"].split(" (")[0] for r in rows][:2] == [
        "HuBERT Base it1 pretraining step",
        "HuBERT Base encoder fwd+bwd",
    ]
    assert all(r["seconds"] > 0 and r["peak_MiB"] > 0 for r in rows)


def test_labels_are_read_only_for_the_utterances_in_use(tmp_path, caplog):
    """Issue 40: a labels.txt of a corpus far larger than the data dir (10M lines) was parsed whole. Only the ids in
    use are parsed; the others are counted; bad lines among the skipped ones cost nothing."""
    import logging

    from speechssl.clustering.kmeans import read_labels

    lines = [f"u{i:05d} 1 2 3" for i in range(5000)] + ["other not numbers at all"]
    (tmp_path / "labels.txt").write_text("\n".join(lines) + "\n")
    caplog.set_level(logging.INFO)
    got = read_labels(tmp_path, keep=["u00007", "u04999"])
    assert sorted(got) == ["u00007", "u04999"] and got["u00007"].tolist() == [1, 2, 3]
    assert "2 utterances read, 4999 others skipped" in caplog.text
    with pytest.raises(Exception, match="labels.txt:5001: labels of other are not integers"):
        read_labels(tmp_path)
