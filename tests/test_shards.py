"""Shards: writing (settings recorded, kill-safe, deterministic), streaming (ranks and workers disjoint,
every utterance once an epoch, duration bucketing), exact resume, and pretraining from shards."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("webdataset")

from speechssl.cli import main  # noqa: E402
from speechssl.data.batching import padding_ratio  # noqa: E402
from speechssl.data.dataset import LabelSet  # noqa: E402
from speechssl.data.kaldi_dir import DataDir  # noqa: E402
from speechssl.data.labels import expected_label_frames  # noqa: E402
from speechssl.data.shards import decode_sample, iter_shard, read_index, read_listing, write_shards  # noqa: E402
from speechssl.data.stream import ShardStream, consumed_by_worker  # noqa: E402
from speechssl.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def labelled(tiny_data):
    """Tiny train set with one deterministic 50 Hz label set (k=20) that encodes the utterance and frame."""
    d = DataDir.read(tiny_data / "train")
    durs = d.utt2dur or d.compute_utt2dur()
    labels = {
        u: (np.arange(expected_label_frames(int(round(durs[u] * 16000)), 50.0)) + i) % 20
        for i, u in enumerate(d.utt_ids)
    }
    return tiny_data / "train", LabelSet(labels, 50.0, 20, "test-labels"), durs


@pytest.fixture(scope="module")
def shards(labelled, tmp_path_factory):
    data, ls, _ = labelled
    out = tmp_path_factory.mktemp("shards") / "s"
    write_shards(data, out, [ls], shard_seconds=20.0, seed=3, progress=False)
    return out


def test_every_utterance_once_with_its_audio_labels_and_alignments(labelled, shards):
    data, ls, durs = labelled
    index = read_index(shards)
    assert index["utterances"] == len(durs) and len(index["shards"]) >= 4
    seen = {}
    for s in index["shards"]:
        listing = read_listing(shards, s["name"])
        assert sum(sec for _, _, sec in listing) <= 20.0 or len(listing) == 1
        for key, members in iter_shard(shards, s["name"]):
            wav, meta, labels, ali = decode_sample(members, 1)
            assert [key, meta["utt"]] == [e[:2] for e in listing if e[0] == key][0]
            seen[meta["utt"]] = (wav, labels[0], ali)
    assert sorted(seen) == sorted(durs)
    d = DataDir.read(data)
    u = sorted(seen)[0]
    ref = d.load_audio(u)
    assert np.abs(seen[u][0] - ref).max() <= 1 / 32768 + 1e-7  # 16-bit FLAC: lossless for 16-bit sources
    np.testing.assert_array_equal(seen[u][1], ls.labels[u])
    if (data / "alignments.ctm").is_file():
        assert seen[u][2] and all(line.split()[0] == u for line in seen[u][2])


def test_rerun_is_a_no_op_a_killed_shard_is_rewritten_identically_other_settings_refused(labelled, shards, tmp_path):
    data, ls, _ = labelled
    out = tmp_path / "s"
    write_shards(data, out, [ls], shard_seconds=20.0, seed=3, progress=False)
    first = (out / "shard-000001.tar").read_bytes()
    assert first == (shards / "shard-000001.tar").read_bytes()  # deterministic bytes
    (out / "shard-000001.tar").unlink()
    (out / "index.json").unlink()  # as a kill before the end leaves it
    mtime0 = (out / "shard-000000.tar").stat().st_mtime_ns
    write_shards(data, out, [ls], shard_seconds=20.0, seed=3, progress=False)
    assert (out / "shard-000001.tar").read_bytes() == first
    assert (out / "shard-000000.tar").stat().st_mtime_ns == mtime0  # finished work not redone
    with pytest.raises(InputError, match=r"shards made with other settings \(shard_seconds: 20.0 there, 30.0 now"):
        write_shards(data, out, [ls], shard_seconds=30.0, seed=3, progress=False)


def _epoch(stream, epoch, workers):
    return [b for w in range(workers) for b in stream.plan(epoch, w, workers)]


def test_ranks_and_workers_get_disjoint_shards_and_all_utterances_once(labelled, shards):
    _, _, durs = labelled
    utts = []
    for rank in range(2):
        s = ShardStream(shards, batch_seconds=6.0, rank=rank, world=2)
        mine = [s.shards_for(1, w, 2) for w in range(2)]
        assert not set(mine[0]) & set(mine[1])
        utts += [e[2] for b in _epoch(s, 1, 2) for e in b.entries]
    assert sorted(utts) == sorted(durs)  # one epoch over all (rank, worker) pairs: each utterance once
    s = ShardStream(shards, batch_seconds=6.0)
    assert [b.entries for b in s.plan(0)] != [b.entries for b in s.plan(1)]  # epochs reshuffle
    for b in s.plan(0):
        assert len(b.entries) * max(e[3] for e in b.entries) <= 6.0 or len(b.entries) == 1
    bucketed = padding_ratio([[e[2] for e in b.entries] for b in s.plan(0)], durs)
    order = [e[2] for b in s.plan(0) for e in b.entries]
    sizes = [len(b.entries) for b in s.plan(0)]
    np.random.default_rng(0).shuffle(order)  # the same batch sizes without bucketing
    unsorted = [order[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes))]
    assert bucketed < padding_ratio(unsorted, durs)


def test_consumed_by_worker_is_the_loader_round_robin():
    assert [consumed_by_worker(n, 0, 2) for n in range(5)] == [0, 1, 1, 2, 2]
    assert [consumed_by_worker(n, 1, 2) for n in range(5)] == [0, 0, 1, 1, 2]


def _take(shards, start, n, workers, **kw):
    stream = ShardStream(shards, batch_seconds=6.0, crop_seconds=2.0, start_batch=start, **kw)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_serves_exactly_the_batches_that_would_have_come_next(shards, workers):
    full = _take(shards, 0, 14, workers)  # crosses an epoch boundary
    resumed = _take(shards, 9, 5, workers)
    assert len(full) == 14 and len(resumed) == 5
    for a, b in zip(full[9:], resumed):
        assert a["utts"] == b["utts"]
        assert torch.equal(a["wavs"], b["wavs"]) and torch.equal(a["labels"][0], b["labels"][0])
    # crops keep labels in step with the audio: label frames fit the cropped samples
    for batch in full:
        for n, lab in zip(batch["lengths"].tolist(), batch["labels"][0]):
            assert int((lab != -100).sum()) >= expected_label_frames(n, 50.0)


def test_too_few_shards_for_the_processes_is_said(shards):
    n = len(read_index(shards)["shards"])
    with pytest.raises(InputError, match=f"{n} shards for {n + 1} processes"):
        ShardStream(shards, batch_seconds=6.0, world=n + 1)


def test_hubert_pretrains_from_shards_and_resumes(labelled, shards, tmp_path):
    """The fast twin of pretraining at scale: a few steps from streamed shards, killed and resumed exactly."""
    from test_hubert_pretrain import TINY_MODEL, _Kill, _KillAfter, _losses

    from speechssl.config import load_config
    from speechssl.tasks.hubert import HubertPretrainConfig, pretrain_hubert

    def cfg(out, steps):
        return load_config(
            HubertPretrainConfig,
            [],
            [
                f"data.shards={shards}",
                "data.valid=null",
                "data.batch_seconds=6",
                "data.num_workers=2",
                "data.crop_seconds=2.0",
                "optim.lr=2e-3",
                "optim.warmup_steps=2",
                "optim.total_steps=50",
                f"trainer.out_dir={out}",
                "trainer.progress_bar=false",
                "trainer.log_every_steps=1",
                "trainer.val_every_steps=null",
                "trainer.checkpoint_every_steps=2",
                "trainer.accelerator=cpu",
                "trainer.devices=1",
                f"trainer.max_steps={steps}",
                "model=hubert_small",
                *[f"model_overrides.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()],
            ],
        )

    straight = pretrain_hubert(cfg(tmp_path / "a", 6))
    assert straight["steps"] == 6
    with pytest.raises(_Kill):
        pretrain_hubert(cfg(tmp_path / "b", 6), callbacks=[_KillAfter(4)])
    pretrain_hubert(cfg(tmp_path / "b", 6))
    la, lb = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    for s in (4, 5):
        assert lb[s] == la[s], s  # bit for bit


def test_cli_shard_and_its_errors(tiny_data, tmp_path, capsys):
    assert (
        main(
            ["data", "shard", "--data", str(tiny_data / "dev"), "--out", str(tmp_path / "s"), "--shard-hours", "0.005"]
        )
        == 0
    )
    assert "shards" in capsys.readouterr().out and read_index(tmp_path / "s")["label_sets"] == []
    assert (
        main(["data", "shard", "--data", str(tiny_data / "dev"), "--out", str(tmp_path / "s"), "--shard-hours", "0.01"])
        == 2
    )
    assert "other settings" in capsys.readouterr().err
