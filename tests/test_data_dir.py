import shutil

import pytest
import soundfile as sf
from conftest import _testdata_sets

from speechssl.data.kaldi_dir import DataDir, DataDirError
from speechssl.data.librispeech import prepare_librispeech, read_ctm_frames


@pytest.mark.parametrize("name", _testdata_sets())
def test_read_real_data_dirs_and_utt2dur_from_headers(testdata, name):
    d = DataDir.read(testdata / name)
    assert len(d) == len((testdata / name / "utt2spk").read_text().splitlines())
    ref = {l.split()[0]: float(l.split()[1]) for l in (testdata / name / "utt2dur").read_text().splitlines()}
    durs = d.compute_utt2dur()
    assert durs.keys() == ref.keys()
    for utt, dur in durs.items():
        assert abs(dur - ref[utt]) < 0.01, utt
        src, _, _ = d.audio_source(utt)
        assert dur == pytest.approx(sf.info(src).duration)


def test_validate_reports_real_gaps(testdata):
    problems = [str(p) for p in DataDir.read(testdata / "librispeech").validate()]
    # two utterances only have reconstructed transcripts (text.unverified): reported, by name
    assert "error: text: 1088-134315-0000 has no entry in text" in problems
    assert "error: text: 2412-153948-0001 has no entry in text" in problems
    assert not [p for p in problems if "text.unverified" in p]


def make_dir(tmp_path, files):
    d = tmp_path / "d"
    d.mkdir(exist_ok=True)
    for name, content in files.items():
        (d / name).write_text(content)
    return d


def test_validate_every_kind_of_problem(tmp_path):
    d = make_dir(
        tmp_path,
        {
            "wav.scp": "s1-a a.wav\ns1-c c.wav\ns1-b b.wav\ns1-a dup.wav\ns2-x\n",
            "utt2spk": "s1-a s1\ns1-b s1\ns1-c s1\ns1-d s1\n",
            "text": "s1-a HELLO\ns1-z ORPHAN\n",
            "spk2utt": "s1 s1-a s1-b\n",
            "utt2dur": "s1-a 1.0\ns1-b zero\ns1-c -1\n",
        },
    )
    problems = [str(p) for p in DataDir.read(d).validate()]
    expect = [
        "error: wav.scp:3: not sorted: 's1-b' after 's1-c' (sort with LC_ALL=C)",
        "error: wav.scp:4: duplicate id 's1-a' (first on line 1)",
        "error: wav.scp:5: 's2-x' has no value",
        "error: utt2spk:4: s1-d has no entry in wav.scp",
        "error: text:2: s1-z is in text but not in utt2spk/wav.scp",
        "error: text: s1-b has no entry in text",
        "error: utt2dur:2: s1-b: duration 'zero' is not a number",
        "error: utt2dur:3: s1-c: duration must be > 0",
        "error: spk2utt:1: speaker 's1' disagrees with utt2spk (regenerate spk2utt)",
    ]
    for e in expect:
        assert e in problems, (e, problems)


def test_fix_keeps_consistent_entries_and_says_why(tmp_path):
    d = make_dir(
        tmp_path,
        {
            "wav.scp": "s1-a a.wav\ns1-b b.wav\ns1-c c.wav\ns1-a dup.wav\nzz-orphan o.wav\n",
            "utt2spk": "s1-a s1\ns1-b s1\ns1-c s1\ns1-d s1\n",
            "text": "s1-a HELLO\ns1-b WORLD\n",
        },
    )
    fixed, dropped = DataDir.read(d).fix()
    assert fixed.utt_ids == ["s1-a", "s1-b"]
    assert fixed.wav_scp == {"s1-a": "a.wav", "s1-b": "b.wav"}  # first occurrence wins
    assert dropped == {
        "duplicate lines in wav.scp": ["s1-a"],
        "no audio (wav.scp/segments)": ["s1-d"],
        "missing from text": ["s1-c"],
        "recordings with no utterance (wav.scp only)": ["zz-orphan"],
    }
    out = fixed.write(tmp_path / "fixed")
    assert DataDir.read(out).validate() == []
    assert (out / "spk2utt").read_text() == "s1 s1-a s1-b\n"


def test_segments_problems(tmp_path):
    d = make_dir(
        tmp_path,
        {
            "wav.scp": "rec a.wav\n",
            "segments": "rec-1 rec 0.0 1.0\nrec-2 rec 2.0 1.5\nrec-3 other 0 1\n",
            "utt2spk": "rec-1 rec\nrec-2 rec\nrec-3 rec\n",
        },
    )
    problems = [str(p) for p in DataDir.read(d).validate()]
    assert "error: segments:2: rec-2: need 0 <= start < end, got 2.0 1.5" in problems
    assert "error: segments:3: rec-3: recording 'other' not in wav.scp" in problems
    fixed, dropped = DataDir.read(d).fix()
    assert fixed.utt_ids == ["rec-1"] and dropped == {"no audio (wav.scp/segments)": ["rec-2", "rec-3"]}


def test_missing_required_files(tmp_path):
    with pytest.raises(DataDirError, match="not a directory"):
        DataDir.read(tmp_path / "none")
    d = make_dir(tmp_path, {"wav.scp": "a a.wav\n"})
    with pytest.raises(DataDirError, match=r"utt2spk: missing"):
        DataDir.read(d)


def test_check_audio_names_bad_files(testdata, tmp_path):
    good = testdata / "fsdd/recordings/0_george_0.wav"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    d = make_dir(
        tmp_path, {"wav.scp": f"u1 {good}\nu2 {empty}\nu3 {tmp_path}/missing.wav\n", "utt2spk": "u1 u\nu2 u\nu3 u\n"}
    )
    problems = [str(p) for p in DataDir.read(d).validate(check_audio=True)]
    assert any("u2" in p and "empty file" in p for p in problems)
    assert any("u3" in p and "file not found" in p for p in problems)
    assert not any(p.startswith("error: wav.scp: u1") for p in problems)


def build_librispeech_tree(testdata, root):
    """A tiny LibriSpeech-layout tree (dev-clean) from the real recordings."""
    src = DataDir.read(testdata / "librispeech")
    sub = root / "dev-clean"
    for utt in src.utt_ids:
        if utt not in src.text:
            continue
        reader, chapter, _ = utt.split("-")
        d = sub / reader / chapter
        d.mkdir(parents=True, exist_ok=True)
        audio, _, _ = src.audio_source(utt)
        shutil.copy(audio, d / (utt + (".flac" if audio.endswith(".flac") else ".wav")))
        with open(d / f"{reader}-{chapter}.trans.txt", "a") as f:
            f.write(f"{utt} {src.text[utt]}\n")
    (root / "SPEAKERS.TXT").write_text(
        "; ID  |SEX| SUBSET |MINUTES| NAME\n1089 | M | test-clean | 25.0 | Someone\n"
        "61 | M | test-clean | 25.0 | Other\n"
    )
    return src


def test_prepare_librispeech_layout(testdata, tmp_path):
    src = build_librispeech_tree(testdata, tmp_path / "LibriSpeech")
    d = prepare_librispeech(tmp_path / "LibriSpeech", "dev-clean", tmp_path / "data/dev_clean")
    assert len(d) == 9
    assert d.utt2spk["1089-134686-0000"] == "1089-134686"  # speaker = reader-chapter
    assert d.text["61-70968-0002"] == "A GOLDEN FORTUNE AND A HAPPY LIFE"
    back = DataDir.read(tmp_path / "data/dev_clean")
    assert back.validate() == []
    assert "1089-134686 m" in back.verbatim["spk2gender"]
    for utt in back.utt_ids:
        assert back.utt2dur[utt] == pytest.approx(src.compute_utt2dur()[utt], abs=1e-3)
    with pytest.raises(DataDirError, match="subset directory not found"):
        prepare_librispeech(tmp_path / "LibriSpeech", "train-other-500", tmp_path / "x")


def test_prepare_librispeech_missing_audio(testdata, tmp_path):
    build_librispeech_tree(testdata, tmp_path / "L")
    victim = next((tmp_path / "L/dev-clean").glob("*/*/*.flac"))
    victim.unlink()
    with pytest.raises(DataDirError, match=rf"no audio file {victim.stem}.flac"):
        prepare_librispeech(tmp_path / "L", "dev-clean", tmp_path / "x")


def test_ctm_to_frames():
    ctm = "u 1 0.0000 0.0250 SIL\nu 1 0.0250 0.0500 AH\nu 1 0.0750 0.0250 B\n"
    assert read_ctm_frames(ctm)["u"] == ["SIL", "SIL", "AH", "AH", "AH", "AH", "AH", "B", "B", "B"]


def test_subset_written_elsewhere_still_finds_its_audio(testdata, tmp_path):
    from speechssl.data.kaldi_dir import DataDir

    d = DataDir.read(testdata / "fsdd")  # wav.scp paths are relative to the data dir
    sub = d.subset(d.utt_ids[:3]).write(tmp_path / "sub")
    again = DataDir.read(sub)
    assert again.utt_ids == d.utt_ids[:3]
    for utt in again.utt_ids:
        assert len(again.load_audio(utt)) == len(d.load_audio(utt))


def test_fix_in_place_however_spelled_keeps_a_backup_and_loses_no_file(tmp_path, capsys, monkeypatch):
    import speechssl.data.kaldi_dir as kd
    from speechssl.cli import main

    original = "s1-a s1\ns1-b s1\nzz z\n"
    d = make_dir(
        tmp_path, {"wav.scp": "s1-a a.wav\ns1-b b.wav\n", "utt2spk": original, "text": "s1-a HI\ns1-b THERE\n"}
    )
    (d / "alignments.ctm").write_text("s1-a 1 0.0 0.5 HH\n" * 50)  # "large": over the in-memory limit below
    (d / "notes.ark").write_bytes(b"\x00\xff binary\n")  # not UTF-8: copied as bytes
    monkeypatch.setattr(kd, "VERBATIM_IN_MEMORY_BYTES", 100)
    assert main(["data", "fix", str(d), "--out", f"{d}/"]) == 0  # the same folder, spelled otherwise
    assert "dropped 1: no audio (wav.scp/segments): zz" in capsys.readouterr().out
    assert (d / ".backup" / "utt2spk").read_text() == original
    assert (d / "utt2spk").read_text() == "s1-a s1\ns1-b s1\n"
    assert main(["data", "fix", f"{d}/./"]) == 0  # a second fix keeps the first backup
    assert (d / ".backup" / "utt2spk").read_text() == original and (d / ".backup.1" / "utt2spk").is_file()
    for folder in (d, tmp_path / "other"):
        if folder != d:
            assert main(["data", "fix", str(d), "--out", str(folder)]) == 0
        assert (folder / "alignments.ctm").read_text() == "s1-a 1 0.0 0.5 HH\n" * 50
        assert (folder / "notes.ark").read_bytes() == b"\x00\xff binary\n"


def test_fix_reports_every_dropped_id(tmp_path, capsys):
    from speechssl.cli import main

    d = make_dir(
        tmp_path,
        {
            "wav.scp": "s1-a a.wav\ns1-b b.wav\n",
            "utt2spk": "s1-a s1\ns1-b s1\ns1-c s1\n",
            "text": "s1-a HI\ns1-b THERE\ns1-x ORPHAN\n",
        },
    )
    assert main(["data", "fix", str(d), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "kept 2 of 3 utterances" in out
    assert "dropped 1: no audio (wav.scp/segments): s1-c" in out
    assert "dropped 1: lines in text for no utterance in utt2spk: s1-x" in out


def test_combine_makes_the_union_and_names_conflicts(tmp_path):
    from speechssl.cli import main
    from speechssl.data.combine import combine_data_dirs
    from speechssl.errors import InputError

    for name, utts in (("a", ["u1", "u2"]), ("b", ["u3"])):
        d = tmp_path / name
        d.mkdir()
        (d / "wav.scp").write_text("".join(f"{u} {u}.wav\n" for u in utts))  # relative to the dir
        (d / "utt2spk").write_text("".join(f"{u} s{name}\n" for u in utts))
        (d / "text").write_text("".join(f"{u} HELLO {u}\n" for u in utts))
    (tmp_path / "a" / "utt2dur").write_text("u1 1.0\nu2 2.0\n")
    merged, dropped = combine_data_dirs(tmp_path / "all", [tmp_path / "a", tmp_path / "b"])
    assert merged.utt_ids == ["u1", "u2", "u3"] and dropped == ["utt2dur"]
    assert (tmp_path / "all" / "wav.scp").read_text().splitlines()[2] == f"u3 {tmp_path / 'b' / 'u3.wav'}"
    assert (tmp_path / "all" / "text").read_text().splitlines()[2] == "u3 HELLO u3"
    (tmp_path / "b" / "text").write_text("u3 OTHER\nu1 NOT THE SAME\n")
    (tmp_path / "b" / "utt2spk").write_text("u1 sa\nu3 sb\n")
    (tmp_path / "b" / "wav.scp").write_text(f"u1 {tmp_path / 'a' / 'u1.wav'}\nu3 u3.wav\n")
    with pytest.raises(InputError, match=r"text: id 'u1' is in .*a and .*b with different entries"):
        combine_data_dirs(tmp_path / "all2", [tmp_path / "a", tmp_path / "b"])
    assert main(["data", "combine", str(tmp_path / "x"), str(tmp_path / "a")]) == 2


def test_kaldi_legal_per_recording_and_per_speaker_files_pass_and_follow_fix(tmp_path):
    """reco2file_and_channel is a standard Kaldi file: validate accepts it; fix (and any subset) keeps the lines
    of the recordings, utterances and speakers it keeps, in feats.scp, cmvn.scp, spk2gender, reco2dur too."""
    from speechssl.data.kaldi_dir import DataDir

    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text("r1 a.wav\nr2 b.wav\n")
    (d / "segments").write_text("u1 r1 0.0 1.0\nu2 r2 0.0 1.0\nu3 r2 1.0 0.5\n")  # u3: end before start
    (d / "utt2spk").write_text("u1 s1\nu2 s2\nu3 s2\n")
    (d / "reco2file_and_channel").write_text("r1 a A\nr2 b A\n")
    (d / "reco2dur").write_text("r1 1.0\nr2 2.0\n")
    (d / "feats.scp").write_text("u1 f.ark:1\nu2 f.ark:2\nu3 f.ark:3\n")
    (d / "cmvn.scp").write_text("s1 c.ark:1\ns2 c.ark:2\n")
    (d / "spk2gender").write_text("s1 f\ns2 m\n")
    problems = DataDir.read(d).validate()
    assert not [p for p in problems if "reco2file_and_channel" in p.file and p.severity == "error"], problems
    fixed, dropped = DataDir.read(d).fix()
    assert dropped and "u3" in sum(dropped.values(), [])
    fixed.write(tmp_path / "fixed")
    out = tmp_path / "fixed"
    assert (out / "reco2file_and_channel").read_text() == "r1 a A\nr2 b A\n"
    assert (out / "feats.scp").read_text() == "u1 f.ark:1\nu2 f.ark:2\n"  # u3 went with fix
    only_s1 = DataDir.read(out).subset(["u1"])
    only_s1.write(tmp_path / "s1")
    for name, want in (
        ("feats.scp", "u1 f.ark:1\n"),
        ("cmvn.scp", "s1 c.ark:1\n"),
        ("spk2gender", "s1 f\n"),
        ("reco2dur", "r1 1.0\n"),
        ("reco2file_and_channel", "r1 a A\n"),
    ):
        assert (tmp_path / "s1" / name).read_text() == want, name
