"""k-means targets: sampling, learn / assign / eval, label-count checks, PNMI definitions."""

import json

import numpy as np
import pytest

from speechssl.cli import main
from speechssl.clustering import (
    FeatureSource,
    KMeansModel,
    assign_labels,
    check_label_counts,
    cluster_quality,
    evaluate_labels,
    expected_label_frames,
    learn_kmeans,
    read_labels,
)
from speechssl.clustering.kmeans import kmeans_pp, sample_frames
from speechssl.clustering.metrics import frame_phones, label_set_quality
from speechssl.errors import InputError


def _blobs(n_utts=40, k=5, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, dim)).astype(np.float32)
    feats = {}
    for i in range(n_utts):
        ids = rng.integers(0, k, rng.integers(20, 60))
        feats[f"utt{i:03d}"] = (centres[ids] + rng.normal(0, 0.5, (len(ids), dim))).astype(np.float32)
    return centres, feats


def _write_scp(tmp_path, feats):
    import kaldiio

    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as w:
        for u in sorted(feats):
            w(u, feats[u])
    return tmp_path / "feats.scp"


def test_sample_frames_is_bounded_and_uniform():
    rng = np.random.default_rng(1)
    utts = [(f"u{i}", np.full((100, 2), i, dtype=np.float32)) for i in range(200)]  # value = utterance index
    everything, total = sample_frames(iter(utts), 1.0, 10**9)
    assert total == 20000 and len(everything) == 20000
    sample, total = sample_frames(iter(utts), 1.0, 3000, seed=3)
    assert total == 20000 and 1000 <= len(sample) <= 3000
    # uniform over the stream: early and late utterances equally represented (mean index ~ 99.5)
    assert abs(sample[:, 0].mean() - 99.5) < 6
    with pytest.raises(ValueError, match="u7.*NaN"):
        sample_frames(iter([("u7", np.full((3, 2), np.nan, dtype=np.float32))]), 1.0, 10)
    del rng


def test_kmeans_pp_spreads_seeds_over_clusters():
    centres, feats = _blobs(k=6)
    x = np.concatenate(list(feats.values()))
    seeds = kmeans_pp(x, 6, np.random.default_rng(0))
    nearest = ((seeds[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    assert len(set(nearest.tolist())) == 6  # one seed per true cluster


def test_learn_assign_recover_blobs_and_shards_match(tmp_path):
    centres, feats = _blobs()
    scp = _write_scp(tmp_path, feats)
    src = FeatureSource.open(str(scp))
    model = learn_kmeans(src, 5, tmp_path / "km", restarts=2, seed=0)
    assert model.spec["frames_used"] == sum(len(a) for a in feats.values())
    assert len(model.spec["inertia_per_restart"]) == 2
    # the centroids are the true centres (noise var 0.25 per dim -> inertia ~ 8 * 0.25)
    d = ((model.centroids[:, None] - centres[None]) ** 2).sum(-1)
    assert d.min(1).max() < 0.1 and model.spec["inertia_per_frame"] < 2.5
    loaded = KMeansModel.load(tmp_path / "km")
    np.testing.assert_array_equal(loaded.centroids, model.centroids)

    one = assign_labels(loaded, src, tmp_path / "one", progress=False)
    assert one["frames"] == model.spec["frames_used"]
    for r in range(2):
        assign_labels(loaded, src, tmp_path / "two", nshard=2, rank=r, progress=False)
    assert (tmp_path / "one" / "labels.txt").read_text() == (tmp_path / "two" / "labels.txt").read_text()
    labels = read_labels(tmp_path / "one")
    assert sorted(labels) == sorted(feats) and all(len(labels[u]) == len(feats[u]) for u in feats)
    # frames of one true cluster share one label
    u = "utt000"
    true = ((feats[u][:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    assert len({(t, l) for t, l in zip(true, labels[u])}) == len(set(true))
    again = assign_labels(loaded, src, tmp_path / "one", progress=False)
    assert again.get("skipped")  # a finished shard is not redone


def test_extract_output_is_a_feature_source(tmp_path):
    _, feats = _blobs(n_utts=6)
    out = tmp_path / "ext"
    (out / "layer3").mkdir(parents=True)
    utts = sorted(feats)
    np.save(out / "layer3" / "chunk.0.00000.npy", np.concatenate([feats[u] for u in utts]))
    (out / "index.0.00000.json").write_text(json.dumps({"utts": utts, "frames": [len(feats[u]) for u in utts]}))
    (out / "spec.json").write_text(
        json.dumps(
            {"model": "m", "layers": [3], "format": "npy", "nshard": 1, "frame_rate": 50.0, "data": "d", "dim": 8}
        )
    )
    with pytest.raises(ValueError, match="name one as .*ext:LAYER"):
        FeatureSource.open(str(out))
    with pytest.raises(ValueError, match="layer 5 was not extracted"):
        FeatureSource.open(f"{out}:5")
    src = FeatureSource.open(f"{out}:3")
    assert src.frame_rate == 50.0 and src.utt_ids() == utts
    got = dict(src.subset(utts[2:4]))
    assert sorted(got) == utts[2:4]
    np.testing.assert_array_equal(got[utts[2]], feats[utts[2]])


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no feats.scp"):
        FeatureSource.open(str(tmp_path))


def test_cluster_quality_definitions():
    perfect = np.diag([5.0, 3.0, 2.0])
    q = cluster_quality(perfect)
    assert q["pnmi"] == pytest.approx(1.0) and q["phone_purity"] == 1.0 and q["cluster_purity"] == 1.0
    independent = np.outer([1, 3], [2, 2, 4]).astype(float)
    assert cluster_quality(independent)["pnmi"] == pytest.approx(0.0, abs=1e-12)
    # phones y in rows, clusters z in columns: y0 -> z0 twice; y1 -> z0 once, z1 once
    q = cluster_quality(np.array([[2.0, 0.0], [1.0, 1.0]]))
    p = np.array([[0.5, 0], [0.25, 0.25]])
    py, pz = p.sum(1), p.sum(0)
    mi = sum(p[i, j] * np.log(p[i, j] / (py[i] * pz[j])) for i in range(2) for j in range(2) if p[i, j] > 0)
    assert q["pnmi"] == pytest.approx(mi / -(py * np.log(py)).sum())
    assert q["phone_purity"] == pytest.approx(0.5 + 0.25)  # z0: max 2/3 of 3/4; z1: 1 of 1/4
    assert q["cluster_purity"] == pytest.approx(0.5 + 0.25)  # y0: 1 of 1/2; y1: 1/2 of 1/2


def test_frame_phones_use_window_centres():
    ctm = "u 1 0.000 0.100 SIL\nu 1 0.100 0.050 AA\nu 1 0.150 0.100 B\n"
    ph = frame_phones(ctm, 100.0)["u"]  # frame i covers [10i, 10i + 25) ms, centre 10i + 12.5 ms
    assert len(ph) == 1 + int((0.25 - 0.025) * 100)
    assert list(ph[8:15]) == ["SIL"] + ["AA"] * 5 + ["B"]  # centres 92.5, 102.5, ..., 152.5 ms
    ph50 = frame_phones(ctm, 50.0)["u"]
    assert list(ph50[:6]) == ["SIL"] * 5 + ["AA"]  # centres 12.5, 32.5, ..., 92.5, 112.5 ms


def test_label_counts_are_checked_against_audio():
    assert expected_label_frames(16000, 100) == 98  # Kaldi: 1 + (16000 - 400) // 160
    assert expected_label_frames(16000, 50) == 49  # wav2vec2 CNN: 1 + (16000 - 400) // 320
    check_label_counts({"a": np.zeros(98)}, {"a": 16000}, 100)
    with pytest.raises(ValueError, match="b: 40 labels, audio of 16000 samples needs 98"):
        check_label_counts({"a": np.zeros(98), "b": np.zeros(40)}, {"a": 16000, "b": 16000}, 100)
    with pytest.raises(ValueError, match="c: no labels"):
        check_label_counts({}, {"c": 16000}, 100)


def test_mfcc_kmeans_pnmi_on_the_synthetic_corpus(tiny_data, tmp_path, capsys):
    """The whole CLI path: MFCC -> learn -> assign (2 shards) -> eval; MFCC clusters carry phone
    information (PNMI well above shuffled labels)."""
    train = tiny_data / "train"
    assert (
        main(
            [
                "features",
                "--data",
                str(train),
                "--out",
                str(tmp_path / "mfcc"),
                "--type",
                "mfcc",
                "--deltas",
                "--cmvn",
                "utt",
                "--scale",
                "float",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "kmeans",
                "learn",
                "--feats",
                str(tmp_path / "mfcc"),
                "-k",
                "20",
                "--out",
                str(tmp_path / "km"),
                "--restarts",
                "2",
            ]
        )
        == 0
    )
    for r in (0, 1):
        assert (
            main(
                [
                    "kmeans",
                    "assign",
                    "--model",
                    str(tmp_path / "km"),
                    "--feats",
                    str(tmp_path / "mfcc"),
                    "--out",
                    str(tmp_path / "lab"),
                    "--nshard",
                    "2",
                    "--rank",
                    str(r),
                ]
            )
            == 0
        )
    assert main(["kmeans", "eval", "--labels", str(tmp_path / "lab"), "--data", str(train)]) == 0
    q = json.loads((tmp_path / "lab" / "quality.json").read_text())
    labels = read_labels(tmp_path / "lab")
    rng = np.random.default_rng(0)
    shuffled = {u: rng.permutation(np.concatenate(list(labels.values())))[: len(v)] for u, v in labels.items()}
    q_random = evaluate_labels(shuffled, train, 100.0, 20)
    assert q["pnmi"] > 0.15 and q["pnmi"] > 5 * q_random["pnmi"]
    assert 0 < q["cluster_purity"] <= 1 and q["phone_purity"] > q_random["phone_purity"]
    # labels from other features than the alignments' frame rate: a clear error
    with pytest.raises(ValueError, match="label rate mismatch"):
        evaluate_labels(labels, train, 50.0, 20)
    # read at a model's frame rate: every other label, against the phones at 50 Hz, in its own file
    assert main(["kmeans", "eval", "--labels", str(tmp_path / "lab"), "--data", str(train), "--at-rate", "50"]) == 0
    q50 = json.loads((tmp_path / "lab" / "quality_at_50hz.json").read_text())
    assert q50["frame_rate"] == 50 and q50["frames"] == pytest.approx(q["frames"] / 2, rel=0.02)
    assert q50["pnmi"] == pytest.approx(
        evaluate_labels({u: v[::2] for u, v in labels.items()}, train, 50.0, 20)["pnmi"]
    )
    assert json.loads((tmp_path / "lab" / "quality.json").read_text()) == q  # the 100-Hz result is kept
    with pytest.raises(InputError, match="cannot be read at 30 Hz"):
        label_set_quality(tmp_path / "lab", train, at_rate=30)


def test_utterance_sampling_reads_only_the_chosen_utterances_and_still_finds_the_clusters(tmp_path, monkeypatch):
    centres, feats = _blobs()
    src = FeatureSource.open(str(_write_scp(tmp_path, feats)))
    read = []
    original = src.subset

    def counting(utts):
        for u, a in original(utts):
            read.append(u)
            yield u, a

    monkeypatch.setattr(src, "subset", counting)
    model = learn_kmeans(src, 5, None, restarts=1, seed=0, utt_fraction=0.5)
    assert model.spec["utterances_read"] == len(read) == round(0.5 * len(feats))
    assert model.spec["frames_total"] == sum(len(feats[u]) for u in read)  # nothing else was read
    d = ((model.centroids[:, None] - centres[None]) ** 2).sum(-1)
    assert d.min(1).max() < 0.2


def test_kmeans_json_is_read_through_its_typed_spec(tmp_path, capsys):
    """Issue 41, typed artifacts: an old, foreign or incomplete kmeans.json is one error naming the file and the
    field (it was a KeyError traceback in pretraining), and `kmeans info` serves the recipe's shell."""
    from speechssl.cli import main
    from speechssl.clustering.label_set import read_label_set
    from speechssl.clustering.spec import KMeansSpec
    from speechssl.errors import InputError

    spec = KMeansSpec.from_dict({"k": 4, "dim": 3, "source": {"frame_rate": 50.0}, "seed": 7})
    assert (spec.k, spec.dim, spec.frame_rate) == (4, 3, 50.0) and spec.to_dict()["seed"] == 7
    assert spec.to_dict()["schema"] == 1
    with pytest.raises(InputError, match="schema 2; this speechssl reads schema 1"):
        KMeansSpec.from_dict({"schema": 2, "k": 4, "source": {"frame_rate": 50.0}})
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "labels.txt").write_text("a 1 2 3\n")
    (labels / "kmeans.json").write_text('{"k": 4}')
    with pytest.raises(InputError, match=r"labels/kmeans.json: no source.frame_rate"):
        read_label_set(labels)
    (labels / "kmeans.json").write_text('{"k": 4, "source": {"frame_rate": 50.0}}')
    assert read_label_set(labels).rate == 50.0
    assert main(["kmeans", "info", str(labels), "--field", "frame_rate"]) == 0
    assert capsys.readouterr().out.strip() == "50"
