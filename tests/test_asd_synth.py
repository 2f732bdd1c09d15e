"""The synthetic active-speaker set: AVA layout, labels from the talkers' own speech, silent talkers never
speaking, mouths that move with the speech, and the UniTalk-style subsets."""
import random

import numpy as np

from speechssl.data.asd_synth import (AsdSynthConfig, frame_envelope, make_clip, read_split, speech_frames,
                                      synthesize_asd_set)


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
    utts = [(f"u{i}", (0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t)).astype(np.float32),
             [(0.0, 0.5, "SIL"), (0.5, 1.5, "AH"), (1.5, 2.0, "SIL")]) for i in range(4)]
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
