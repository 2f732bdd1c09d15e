"""The synthetic active-speaker set: AVA layout, labels from the talkers' own speech, silent talkers never
speaking, mouths that move with the speech, and the UniTalk-style subsets."""

import random

import numpy as np
import pytest

from speechssl.corpus.asd_synth import (
    AsdSynthConfig,
    frame_envelope,
    make_clip,
    read_split,
    speech_frames,
    synthesize_asd_set,
)


def test_labels_follow_the_phones_and_the_envelope():
    phones = [(0.0, 0.2, "SIL"), (0.2, 0.6, "AA"), (0.6, 1.0, "SIL")]
    active = speech_frames(phones, 25)
    assert active.sum() == 10 and active[5] and not active[4] and not active[15]
    wav = np.zeros(16000, np.float32)
    wav[3200:9600] = np.sin(np.arange(6400) * 0.3)
    env = frame_envelope(wav)
    assert env.shape == (25,) and env[8] > 0.9 and env[2] == 0


def test_clip_conditions():
    rng = random.Random(0)
    t = np.arange(32000) / 16000
    utts = [
        (
            f"u{i}",
            (0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t)).astype(np.float32),
            [(0.0, 0.5, "SIL"), (0.5, 1.5, "AH"), (1.5, 2.0, "SIL")],
        )
        for i in range(4)
    ]
    cfg = AsdSynthConfig(seconds=3.0, silent_talker_prob=0.5, max_faces=3)
    seen_silent = False
    for _ in range(12):
        clip = make_clip(utts, cfg, rng)
        assert clip["audio"].shape == (48000,) and np.abs(clip["audio"]).max() <= 0.5 + 1e-6
        for face in clip["faces"]:
            assert face["frames"].shape == (75, 112, 112) and face["frames"].dtype == np.uint8
            if face["silent"]:
                seen_silent = True
                assert not face["labels"].any()
            else:
                assert 0 < face["labels"].sum() < 75
                # the mouth region is darker (open) on the frames where the face speaks
                mouth = face["frames"][:, 62:100, 36:76].astype(float).mean((1, 2))
                assert mouth[face["labels"]].mean() < mouth[~face["labels"]].mean() - 3
    assert seen_silent


def test_writes_the_ava_layout(tiny_data, tmp_path):
    cfg = AsdSynthConfig(clips=3, seconds=2.0, seed=1)
    summary = synthesize_asd_set({"val": str(tiny_data / "dev")}, tmp_path / "asd", {"val": cfg})
    rows = read_split(tmp_path / "asd", "val")
    assert summary["val"]["face_frames"] == len(rows) and 0 < summary["val"]["speaking_share"] < 1
    r = rows[0]
    jpg = tmp_path / "asd" / "clips_videos" / "val" / r["video_id"] / r["entity_id"] / f"{r['frame_timestamp']}.jpg"
    wav = tmp_path / "asd" / "clips_audios" / "val" / r["video_id"] / f"{r['entity_id']}.wav"
    assert jpg.is_file() and wav.is_file()
    assert {x["label"] for x in rows} == {"SPEAKING_AUDIBLE", "NOT_SPEAKING"}
    assert all(x["instance_id"].startswith(x["entity_id"] + ":") for x in rows)
    # a second call keeps the finished split
    stamp = (tmp_path / "asd" / "csv" / "val_orig.csv").stat().st_mtime
    synthesize_asd_set({"val": str(tiny_data / "dev")}, tmp_path / "asd", {"val": cfg})
    assert (tmp_path / "asd" / "csv" / "val_orig.csv").stat().st_mtime == stamp


HEADER = "video_id,frame_timestamp,entity_box_x1,entity_box_y1,entity_box_x2,entity_box_y2,label,entity_id"


def write_video(path, frames: int, draw, audio: np.ndarray):
    """An MPEG-4 + PCM file (320 x 240, 25 fps, 16 kHz mono): ``draw(i) -> [240, 320] uint8`` is frame ``i``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuv420p"
        aus = c.add_stream("pcm_s16le", rate=16000)
        aus.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.stack([draw(i)] * 3, -1), format="rgb24")
            for p in vs.encode(frame):
                c.mux(p)
        af = av.AudioFrame.from_ndarray((audio * 32767).astype(np.int16)[None], format="s16", layout="mono")
        af.sample_rate = 16000
        for p in aus.encode(af):
            c.mux(p)
        for s in (vs, aus):
            for p in s.encode(None):
                c.mux(p)


def test_crops_from_a_raw_video(tmp_path):
    """A video with a bright square moving right and a tone: crops follow the box, audio spans the track."""
    pytest.importorskip("av")  # the [video] extra (in the test extra)
    from PIL import Image

    from speechssl.audio.io import info
    from speechssl.cli import main

    def draw(i):
        img = np.zeros((240, 320), np.uint8)
        img[100:140, 20 + 4 * i : 60 + 4 * i] = 255
        return img

    path = tmp_path / "vids" / "vid1.mkv"
    write_video(path, 50, draw, 0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000))
    rows = [HEADER]
    for i in range(10, 30):
        x1 = (20 + 4 * i) / 320
        rows.append(
            f"vid1,{i / 25:.2f},{x1:.4f},{100 / 240:.4f},{x1 + 40 / 320:.4f},{140 / 240:.4f},NOT_SPEAKING,vid1:0"
        )
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "asd"
    args = [
        "asd",
        "prepare",
        "--videos",
        str(tmp_path / "vids"),
        "--csv",
        str(tmp_path / "val.csv"),
        "--split",
        "val",
        "--video-ext",
        ".mkv",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    crops = sorted((out / "clips_videos" / "val" / "vid1" / "vid1:0").glob("*.jpg"))
    assert len(crops) == 20
    for c in crops[::5]:
        img = np.asarray(Image.open(c))
        assert img.shape == (112, 112)
        centre, corner = img[40:72, 40:72].mean(), img[:12, :12].mean()
        assert centre > 200 and corner < 60  # the box's bright square sits in the middle of every crop
    wav = out / "clips_audios" / "val" / "vid1" / "vid1:0.wav"
    assert info(str(wav)).num_frames == int((29 / 25 + 0.04) * 16000) - int(10 / 25 * 16000)
    stamp = wav.stat().st_mtime
    assert main(args) == 0 and wav.stat().st_mtime == stamp  # a finished track is kept


def test_prepare_train_eval_predict_on_raw_videos_in_the_ava_layout(tmp_path):
    """The real layout end to end: AVA-style ids, header-less CSVs as AVA ships them, raw videos -> crops
    (prepare --videos) -> train -> eval -> predict. Each video has one face whose mouth opens while a tone plays."""
    pytest.importorskip("av")
    import csv
    import json

    from speechssl.cli import main
    from speechssl.downstream.ava_ap import ava_average_precision, read_ava_csv

    rng = np.random.default_rng(0)
    for split, videos in (("train", ["-5KQ66BBWC4", "2qQs3Y9OJX0"]), ("test", ["_a9SWtcaNj8"])):
        rows = []
        for v in videos:
            talking = np.repeat(rng.random(10) > 0.5, 10)  # 4 s in 0.4 s turns
            tone = np.repeat(talking, 640) * 0.3 * np.sin(2 * np.pi * 300 * np.arange(64000) / 16000)

            def draw(i, talking=talking):
                img = np.full((240, 320), 40, np.uint8)
                img[60:180, 100:220] = 180  # the face
                if talking[i] and i % 4 < 2:
                    img[140:165, 135:185] = 10  # its open mouth
                return img

            write_video(tmp_path / "vids" / f"{v}.mp4", 100, draw, tone)
            entity = f"{v}_0900_0960:1"
            for i in range(2, 98):
                label = "SPEAKING_AUDIBLE" if talking[i] else "NOT_SPEAKING"
                rows.append(f"{v},{i / 25:.2f},0.3125,0.25,0.6875,0.75,{label},{entity}")
        (tmp_path / f"ava_activespeaker_{split}.csv").write_text("\n".join(rows) + "\n")
    root = tmp_path / "ava"
    for split in ("train", "test"):
        assert (
            main(
                [
                    "asd",
                    "prepare",
                    "--videos",
                    str(tmp_path / "vids"),
                    "--csv",
                    str(tmp_path / f"ava_activespeaker_{split}.csv"),
                    "--split",
                    split,
                    "--out",
                    str(root),
                ]
            )
            == 0
        )
        assert read_ava_csv(root / "csv" / f"{split}_orig.csv")[0]["video_id"] in ("-5KQ66BBWC4", "_a9SWtcaNj8")
    out = tmp_path / "mfcc"
    assert (
        main(
            [
                "asd",
                "train",
                "--config",
                "asd/mfcc_tiny",
                f"data.root={root}",
                "data.valid=null",
                f"trainer.out_dir={out}",
            ]
        )
        == 0
    )
    assert json.loads((out / "summary.json").read_text())["tracks"] == 2
    assert (
        main(
            [
                "asd",
                "eval",
                "--model",
                str(out / "final"),
                "--root",
                str(root),
                "--split",
                "test",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "eval" / "test_results.json").read_text())
    assert res["face_frames"] == 96 and set(res["mAP"]) == {"overall"}
    pred_csv = tmp_path / "pred.csv"
    assert (
        main(
            [
                "asd",
                "predict",
                "--model",
                str(out / "final"),
                "--root",
                str(root),
                "--split",
                "test",
                "--out",
                str(pred_csv),
            ]
        )
        == 0
    )
    with open(pred_csv) as f:
        preds = list(csv.DictReader(f))
    gt = read_ava_csv(root / "csv" / "test_orig.csv")
    assert [p["frame_timestamp"] for p in preds] == [g["frame_timestamp"] for g in gt]
    assert round(100 * ava_average_precision(gt, preds), 2) == res["mAP"]["overall"]
