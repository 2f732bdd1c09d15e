"""HuBERT pretraining: target alignment, loss, sampler, label checks, config errors, a short run
whose loss falls, exact resume after a kill, and DDP parity with one process."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechssl.config import ConfigError, load_config
from speechssl.data.sampler import BucketBatchSampler
from speechssl.objectives.masked_prediction import IGNORE, align_targets, masked_prediction_sums
from speechssl.tasks.hubert import HubertPretrainConfig, pretrain_hubert

TINY_MODEL = {
    "conv_layers": [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 2, 2], [32, 2, 2]],
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "ffn_dim": 64,
    "pos_conv_kernel": 16,
    "pos_conv_groups": 4,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "feature_dropout": 0.0,
    "layer_norm_first": True,
}


def test_targets_align_100hz_labels_to_50hz_frames():
    labels = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [7, 8, 9, IGNORE, IGNORE, IGNORE, IGNORE]])
    out = align_targets(labels, 4, 100.0, 50.0)
    assert out.tolist() == [[0, 2, 4, 6], [7, 9, IGNORE, IGNORE]]
    assert align_targets(labels, 5, 50.0, 50.0)[0].tolist() == [0, 1, 2, 3, 4]
    assert align_targets(labels, 9, 50.0, 50.0)[0, 7:].tolist() == [IGNORE, IGNORE]


def test_masked_prediction_matches_a_naive_computation():
    torch.manual_seed(0)
    B, T, D, C1, C2 = 2, 7, 4, 5, 3
    proj, emb = torch.randn(B, T, 2 * D), torch.randn(C1 + C2, D)
    t1, t2 = torch.randint(0, C1, (B, T)), torch.randint(0, C2, (B, T))
    t2[1, 6] = IGNORE
    mask = torch.rand(B, T) < 0.5
    valid = torch.ones(B, T, dtype=torch.bool)
    valid[1, 5:] = False
    sums = masked_prediction_sums(proj, emb, [C1, C2], [t1, t2], mask, valid, 0.1)
    loss_m = loss_u = n_m = 0.0
    for k, (tgt, e) in enumerate(((t1, emb[:C1]), (t2, emb[C1:]))):
        for b in range(B):
            for t in range(T):
                if not valid[b, t] or tgt[b, t] == IGNORE:
                    continue
                x = proj[b, t, k * D : (k + 1) * D]
                logits = torch.stack([F.cosine_similarity(x, e[c], dim=0) for c in range(len(e))]) / 0.1
                ce = -torch.log_softmax(logits, 0)[tgt[b, t]]
                if mask[b, t]:
                    loss_m, n_m = loss_m + ce, n_m + 1
                else:
                    loss_u = loss_u + ce
    assert sums["loss_m"].item() == pytest.approx(float(loss_m), rel=1e-5)
    assert sums["loss_u"].item() == pytest.approx(float(loss_u), rel=1e-5)
    assert sums["n_m"].item() == n_m


def test_sampler_splits_global_batches_and_resumes():
    durs = {f"u{i:02d}": 1.0 + (i % 7) * 0.3 for i in range(40)}
    one = BucketBatchSampler(list(durs), durs, 6.0, seed=1)
    two = [BucketBatchSampler(list(durs), durs, 3.0, seed=1, num_replicas=2, rank=r) for r in range(2)]
    one.set_epoch(2)
    for s in two:
        s.set_epoch(2)
    for b, r0, r1 in zip(one, *two):  # the same global batches, interleaved over ranks
        assert sorted(b) == sorted(r0 + r1) and abs(len(r0) - len(r1)) <= 1
    assert one.padding_ratio < 0.2
    full = list(one)
    resumed = BucketBatchSampler(list(durs), durs, 6.0, seed=1)
    resumed.load_state_dict({"epoch": 2, "consumed": 3})
    resumed.set_epoch(2)
    assert list(resumed) == full[3:]
    assert list(resumed) == full  # the next pass starts the epoch again
    other_epoch = BucketBatchSampler(list(durs), durs, 6.0, seed=1)
    other_epoch.set_epoch(3)
    assert list(other_epoch) != full


def test_config_typos_and_missing_values_fail_loudly(tmp_path):
    with pytest.raises(ConfigError, match="did you mean optim.warmup_steps"):
        load_config(HubertPretrainConfig, [], ["optim.warmup_step=10", "data.train_labels=[x]"])
    with pytest.raises(ConfigError, match="data.train_labels"):
        load_config(HubertPretrainConfig, [], [])
    with pytest.raises(ValueError, match="did you mean hubert_small"):
        load_config(HubertPretrainConfig, [], ["model=hubert_smal", "data.train_labels=[x]"])
    with pytest.raises(ValueError, match="unknown encoder config fields: hiden_size"):
        load_config(HubertPretrainConfig, [], ["model_overrides.hiden_size=3", "data.train_labels=[x]"])


def _cfg(tiny_data, labels, out, *extra):
    overrides = [
        f"data.train={tiny_data / 'train'}",
        f"data.valid={tiny_data / 'dev'}",
        f"data.train_labels=[{labels / 'train'}]",
        f"data.valid_labels=[{labels / 'dev'}]",
        "data.batch_seconds=8",
        "data.num_workers=0",
        "data.crop_seconds=2.0",
        "optim.lr=2e-3",
        "optim.warmup_steps=5",
        "optim.total_steps=100",
        f"trainer.out_dir={out}",
        "trainer.progress_bar=false",
        "trainer.log_every_steps=1",
        "trainer.val_every_steps=null",
        "trainer.checkpoint_every_steps=3",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "objective.pred_nomask_weight=0.5",
        "model=hubert_small",
        *[f"model_overrides.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()],
        *extra,
    ]
    return load_config(HubertPretrainConfig, [], overrides)


def _losses(out):
    from speechssl.training import read_metrics

    return {int(r["step"]): r["train/loss"] for r in read_metrics(out) if "train/loss" in r}


def test_labels_that_do_not_fit_the_audio_name_the_utterance(tiny_data, mfcc_labels, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "kmeans.json").write_text((mfcc_labels / "train" / "kmeans.json").read_text())
    lines = (mfcc_labels / "train" / "labels.txt").read_text().splitlines()
    utt, *labs = lines[0].split()
    lines[0] = " ".join([utt] + labs[:-20])
    (bad / "labels.txt").write_text("\n".join(lines) + "\n")
    cfg = _cfg(tiny_data, mfcc_labels, tmp_path / "run", f"data.train_labels=[{bad}]")
    with pytest.raises(ValueError, match=f"label count mismatch: {utt}: {len(labs) - 20} labels"):
        pretrain_hubert(cfg)


def test_short_run_loss_falls_validates_and_exports(tiny_data, mfcc_labels, tmp_path):
    from speechssl import load_model

    cfg = _cfg(tiny_data, mfcc_labels, tmp_path / "run", "trainer.max_steps=40", "trainer.val_every_steps=20")
    summary = pretrain_hubert(cfg)
    losses = _losses(tmp_path / "run")
    first, last = np.mean([losses[s] for s in range(0, 5)]), np.mean([losses[s] for s in range(35, 40)])
    assert last < first - 0.3, (first, last)
    assert "val/acc_m" in summary["metrics"] and summary["steps"] == 40
    model = load_model(summary["export"])
    assert model.config.normalize_waveform == cfg.data.normalize  # users get the input the model trained on
    untrained = load_model(tmp_path / "run" / "init")  # the control: same architecture, step 0
    assert not torch.equal(model.encoder.layers[0].ffn.fc1.weight, untrained.encoder.layers[0].ffn.fc1.weight)
    out = model(torch.randn(1, 16000))
    assert len(out.hidden_states) == 3 and out.hidden_states[-1].shape == (1, 49, 32)
    header = open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv").readline()
    for key in ("train/acc_m", "train/acc_u", "train/audio_s_per_s", "lr-AdamW"):
        assert key in header
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_fast_hubert_option_trains_at_25_hz_and_its_loss_falls(tiny_data, mfcc_labels, tmp_path):
    """The Fast-HuBERT frontend (log-mel + conv1d/GLU to 25 Hz) on the same 100-Hz MFCC labels."""
    from speechssl import load_model

    fast = [
        "model_overrides.frontend=fbank_conv1d",
        "model_overrides.subsampler_channels=32",
        "model_overrides.pos_conv_kernel=8",
        "objective.mask_length=5",
    ]
    summary = pretrain_hubert(_cfg(tiny_data, mfcc_labels, tmp_path / "run", "trainer.max_steps=40", *fast))
    losses = _losses(tmp_path / "run")
    first, last = np.mean([losses[s] for s in range(0, 5)]), np.mean([losses[s] for s in range(35, 40)])
    assert last < first - 0.3, (first, last)
    model = load_model(summary["export"])
    assert model.downsample_rate == 640
    assert model(torch.randn(1, 16000)).hidden_states[-1].shape == (1, 25, 32)


def test_wall_clock_guard_says_loudly_where_it_cut_a_step_budget(tiny_data, mfcc_labels, tmp_path, caplog):
    cfg = _cfg(tiny_data, mfcc_labels, tmp_path / "run", "trainer.max_steps=500", "trainer.max_time_minutes=0.0001")
    summary = pretrain_hubert(cfg)
    assert summary["steps"] < 500
    assert summary["cut_by_wall_clock_guard"] == {
        "at_step": summary["steps"],
        "max_steps": 500,
        "max_time_minutes": 0.0001,
    }
    assert "WALL-CLOCK GUARD" in caplog.text and f"at step {summary['steps']} of max_steps 500" in caplog.text
    full = pretrain_hubert(_cfg(tiny_data, mfcc_labels, tmp_path / "run2", "trainer.max_steps=3"))
    assert "cut_by_wall_clock_guard" not in full and full["precision"] == "32-true"  # steps: nothing to say


class _Kill(Exception):
    pass


class _KillAfter:
    """A callback that dies like a killed job right after step ``n``'s checkpoint."""

    def __new__(cls, n):
        import lightning as L

        class Kill(L.Callback):
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                if trainer.global_step == n:
                    raise _Kill()

        return Kill()


def test_resume_after_kill_continues_exactly(tiny_data, mfcc_labels, tmp_path):
    steps = 9  # crosses an epoch boundary of the tiny corpus (4-5 batches an epoch)
    straight = pretrain_hubert(_cfg(tiny_data, mfcc_labels, tmp_path / "a", f"trainer.max_steps={steps}"))
    with pytest.raises(_Kill):
        pretrain_hubert(
            _cfg(tiny_data, mfcc_labels, tmp_path / "b", f"trainer.max_steps={steps}"), callbacks=[_KillAfter(6)]
        )
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").exists()
    resumed = pretrain_hubert(_cfg(tiny_data, mfcc_labels, tmp_path / "b", f"trainer.max_steps={steps}"))
    assert resumed["steps"] == straight["steps"] == steps
    la, lb = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert set(range(6, steps)) <= set(lb)  # logged by the resumed run
    for s in range(6, steps):
        assert lb[s] == la[s], s  # the same float32 bits: a resumed run is the straight run
    from _resume import assert_same_weights

    assert assert_same_weights(tmp_path / "a" / "final", tmp_path / "b" / "final") > 10
    # a larger budget continues from the final state (not from the last periodic checkpoint)
    more = pretrain_hubert(_cfg(tiny_data, mfcc_labels, tmp_path / "b", f"trainer.max_steps={steps + 2}"))
    assert more["steps"] == steps + 2 and set(_losses(tmp_path / "b")) >= {steps, steps + 1}


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_ddp_matches_one_process(tiny_data, mfcc_labels, tmp_path):
    """Same global batch: 1 process with 8 s batches vs 2 gloo processes with 4 s each, launched
    the way torchrun / srun launch them (RANK, WORLD_SIZE, LOCAL_RANK in the environment)."""
    import os
    import subprocess
    import sys

    steps = 4
    cfg = _cfg(tiny_data, mfcc_labels, tmp_path / "one", f"trainer.max_steps={steps}", "data.batch_seconds=8")
    pretrain_hubert(cfg)
    overrides = [
        f"data.train={tiny_data / 'train'}",
        f"data.valid={tiny_data / 'dev'}",
        f"data.train_labels=[{mfcc_labels / 'train'}]",
        f"data.valid_labels=[{mfcc_labels / 'dev'}]",
        "data.batch_seconds=4",
        "data.num_workers=0",
        "data.crop_seconds=2.0",
        "optim.lr=2e-3",
        "optim.warmup_steps=5",
        "optim.total_steps=100",
        f"trainer.out_dir={tmp_path / 'ddp'}",
        "trainer.progress_bar=false",
        "trainer.log_every_steps=1",
        "trainer.val_every_steps=null",
        "trainer.checkpoint_every_steps=3",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.threads=1",
        f"trainer.max_steps={steps}",
        "objective.pred_nomask_weight=0.5",
        "model=hubert_small",
        *[f"model_overrides.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()],
    ]
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            WORLD_SIZE="2",
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            NODE_RANK="0",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "speechssl.cli", "pretrain", "hubert", *overrides],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs[0][-3000:] + logs[1][-3000:]
    one, ddp = _losses(tmp_path / "one"), _losses(tmp_path / "ddp")
    assert sorted(one) == sorted(ddp) == list(range(steps))
    for s in range(steps):
        assert ddp[s] == pytest.approx(one[s], rel=2e-4), (s, one, ddp)
    assert one[steps - 1] != one[0]  # the steps did change the model


def test_dataset_crops_and_normalises(tiny_data):
    from speechssl.data.dataset import AudioLabelDataset

    ds = AudioLabelDataset(tiny_data / "train", [], crop_seconds=1.0, normalize=True)
    u = max(ds.utts, key=ds.durations.get)
    a, b = ds[(u, 0)], ds[(u, 1)]
    assert a["wav"].shape == (16000,) and abs(float(a["wav"].mean())) < 1e-4
    assert float(a["wav"].std()) == pytest.approx(1.0, rel=1e-3)
    assert ds[(u, 0)]["seed"] == a["seed"] != b["seed"]  # per-epoch crops, reproducible
    assert max(ds.seconds.values()) == 1.0


def test_warmup_polynomial_schedule():
    from speechssl.training import warmup_polynomial

    f = [warmup_polynomial(s, 10, 110, 1.0, 0.0) for s in range(120)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx(0.5) and f[110] == 0.0 and f[119] == 0.0
    assert warmup_polynomial(60, 10, 110, 2.0, 0.1) == pytest.approx(0.1 + 0.9 * 0.25)


def test_a_normal_run_is_quiet_and_its_bar_counts_steps_of_max_steps(tiny_data, mfcc_labels, tmp_path, capfd, caplog):
    """No Lightning tips or accelerator lines, no weights_only or pytree notices, no DDP wrapper for one process
    (a ddp strategy on one device runs without it); the precision at INFO; one bar of steps out of max_steps."""
    import logging

    caplog.set_level(logging.INFO)
    cfg = _cfg(
        tiny_data,
        mfcc_labels,
        tmp_path / "run",
        "trainer.max_steps=4",
        "trainer.progress_bar=true",
        "trainer.strategy=ddp_find_unused_parameters_true",
    )
    summary = pretrain_hubert(cfg)
    assert summary["steps"] == 4
    printed = capfd.readouterr()
    text = printed.out + printed.err + caplog.text
    for noise in (
        "Tip:",
        "GPU available",
        "TPU available",
        "weights_only",
        "LeafSpec",
        "find_unused_parameters",
        "Trainer.fit` stopped",
    ):
        assert noise not in text, noise
    assert "precision 32-true" in caplog.text
    assert "4/4" in printed.err and "steps" in printed.err  # tqdm: steps of max_steps, not batches of an epoch


def test_truncated_last_checkpoint_falls_back_and_an_incompatible_resume_is_refused(
    tiny_data, mfcc_labels, tmp_path, caplog
):
    """A truncated last.ckpt: the run resumes from the newest intact periodic checkpoint, saying so. A config of
    another shape: refused naming the tensors and both shapes, the run's config.yaml left as it was."""
    from speechssl.errors import ConfigError

    out = tmp_path / "run"
    pretrain_hubert(_cfg(tiny_data, mfcc_labels, out, "trainer.max_steps=6"))
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    summary = pretrain_hubert(_cfg(tiny_data, mfcc_labels, out, "trainer.max_steps=8"))
    assert summary["steps"] == 8
    assert "last.ckpt is truncated or unreadable; resuming from" in caplog.text and "step0000006.ckpt" in caplog.text
    before = (out / "config.yaml").read_text()
    with pytest.raises(
        ConfigError, match=r"does not fit the checkpoint.*mask_embedding: checkpoint \(32,\), this config \(48,\)"
    ):
        pretrain_hubert(_cfg(tiny_data, mfcc_labels, out, "trainer.max_steps=10", "model_overrides.hidden_size=48"))
    assert (out / "config.yaml").read_text() == before


@pytest.mark.parametrize("every", [2])  # 1 and 3 also pass (measured); one case keeps the suite short
def test_periodic_checkpoints_land_on_every_configured_step(tiny_data, mfcc_labels, tmp_path, every):
    """Issue 40: with checkpoint_every_steps equal to (or dividing) the epoch length, the checkpoint due on an
    epoch's last batch was deferred to validation and dropped when none was due. Every multiple must be there.
    (Batches of 20 s over the tiny training set: a few batches an epoch.)"""
    from speechssl.tasks.audio_data import AudioDataModule  # noqa: F401

    out = tmp_path / "run"
    cfg = _cfg(
        tiny_data,
        mfcc_labels,
        out,
        "trainer.max_steps=9",
        f"trainer.checkpoint_every_steps={every}",
        "trainer.keep_checkpoints=20",
        "data.batch_seconds=20",
        "data.crop_seconds=null",
    )
    summary = pretrain_hubert(cfg)
    assert summary["steps"] == 9
    saved = sorted(int(p.stem[4:]) for p in (out / "checkpoints").glob("step*.ckpt"))
    assert summary["epochs"] >= 2  # epoch boundaries crossed
    assert saved == list(range(every, 10, every)), (saved, summary["epochs"])
