"""Long recordings in bounded memory: features framed block by block and written an utterance at a time,
extraction window by window on the whole-utterance frame grid (issue 40)."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speechssl.audio import features as F
from speechssl.data.kaldi_dir import DataDir
from speechssl.models import build_model, model_config
from speechssl.pipelines.extract import extract_features, read_features
from speechssl.pipelines.features import compute_features
from speechssl.pipelines.outputs import read_scp
from speechssl.pipelines.windowed import Windowing, receptive_field, windowed_states

TINY = dict(
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    ffn_dim=64,
    pos_conv_kernel=16,
    conv_layers=[[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 2, 2]],
)


def _recording_dir(tmp_path, seconds: float, name="long", seed=0):
    """A data dir of one noise-and-tone recording of ``seconds`` (16 kHz int16)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    wav = (0.1 * np.sin(2 * np.pi * 220 * t) * np.sin(t) + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
    sf.write(tmp_path / f"{name}.wav", wav, 16000, subtype="PCM_16")
    data = tmp_path / f"data_{name}"
    data.mkdir()
    (data / "wav.scp").write_text(f"{name} {tmp_path / f'{name}.wav'}\n")
    (data / "utt2spk").write_text(f"{name} spk\n")
    (data / "spk2utt").write_text(f"spk {name}\n")
    return data


def test_long_rows_are_framed_in_blocks_with_the_same_features(monkeypatch):
    torch.manual_seed(0)
    wavs = torch.randn(2, 1_000_000) * 0.1
    lengths = torch.tensor([1_000_000, 700_123])
    blocks = {fn.__name__: fn(wavs, lengths) for fn in (F.fbank, F.mfcc)}
    calls = []
    real = F._by_frame_blocks
    monkeypatch.setattr(F, "_by_frame_blocks", lambda *a: calls.append(a[1].shape) or real(*a))
    F.fbank(wavs, lengths)
    assert len(calls) == 2  # one per row: both are longer than _LONG_ROW_SAMPLES
    monkeypatch.setattr(F, "_LONG_ROW_SAMPLES", 10**12)  # framed whole, as before
    for fn in (F.fbank, F.mfcc):
        whole, counts = fn(wavs, lengths)
        assert torch.equal(blocks[fn.__name__][1], counts) and counts.tolist() == [6248, 4374]
        assert torch.equal(blocks[fn.__name__][0], whole), fn.__name__  # frame-local: bit-identical


def test_features_of_a_long_recording_are_streamed(tmp_path, monkeypatch):
    data = _recording_dir(tmp_path, 75.0)
    scp = compute_features(data, tmp_path / "feats", kind="fbank", progress=False)
    streamed = dict(read_scp(scp))
    monkeypatch.setattr(F, "_LONG_ROW_SAMPLES", 10**12)
    whole = dict(read_scp(compute_features(data, tmp_path / "whole", kind="fbank", progress=False)))
    assert streamed["long"].shape == (7498, 80)
    np.testing.assert_array_equal(streamed["long"], whole["long"])


def test_speaker_cmvn_goes_through_a_temporary_ark_and_leaves_none(testdata, tmp_path):
    src = testdata / "librispeech"
    out = tmp_path / "feats"
    scp = compute_features(src, out, kind="mfcc", cmvn="spk", progress=False)
    feats = dict(read_scp(scp))
    raw = dict(read_scp(compute_features(src, tmp_path / "raw", kind="mfcc", progress=False)))
    d = DataDir.read(src)
    assert sorted(feats) == d.utt_ids
    for _spk, utts in d.spk2utt.items():  # Kaldi's apply-cmvn default: the speaker's mean subtracted
        mean = np.concatenate([raw[u] for u in utts]).astype(np.float64).mean(0)
        for u in utts:
            np.testing.assert_allclose(feats[u], raw[u] - mean, atol=2e-3)
    assert not list(out.glob("*raw*")) and not list(out.glob("*.tmp"))


_PEAK = """
import sys
import speechssl.audio.features as F
from speechssl.pipelines.features import compute_features

def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":"))

if sys.argv[3] == "whole":
    F._LONG_ROW_SAMPLES = 10 ** 12
# the high-water mark reset to what is resident now: Linux carries it across exec from the forked parent (in the
# suite, a pytest process of gigabytes), which hid the features' peak (both read 0 MB)
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
compute_features(sys.argv[1], sys.argv[2], kind="fbank", progress=False)
print((status("VmHWM") - before) / 1024)
"""


def test_features_peak_memory_of_a_long_recording_is_a_fraction_of_framing_it_whole(tmp_path):
    """6 minutes of audio (5.8M samples): framed whole, the frames and spectra alone are several hundred MB;
    in blocks the peak is the audio, its features and one block. Measured (AMD EPYC): 80 vs 330 MB, and 131 vs 287 MB
    in another fresh clone's suite (the peak carries what the interpreter holds at start, which varies)."""
    try:  # Linux resets the peak-RSS mark through this file (since 4.0); elsewhere there is nothing to measure with
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        pytest.skip(f"the peak-memory mark cannot be reset here: {e}")
    data = _recording_dir(tmp_path, 360.0)
    peaks = {}
    for how in ("blocks", "whole"):
        run = subprocess.run(
            [sys.executable, "-c", _PEAK, str(data), str(tmp_path / how), how],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, (how, run.returncode, run.stderr[-2000:])
        peaks[how] = float(run.stdout.split()[-1])
    assert peaks["whole"] > 100 and peaks["blocks"] < 0.6 * peaks["whole"], peaks


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(model_config("hubert_small", **TINY)).eval()


class _Spy(torch.nn.Module):
    """The model, recording the longest input it was given."""

    def __init__(self, model):
        super().__init__()
        self.model, self.longest = model, 0

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)

    def forward(self, wavs, lengths=None, **kw):
        self.longest = max(self.longest, wavs.shape[1])
        return self.model(wavs, lengths, **kw)


def test_windows_sit_on_the_whole_utterance_frame_grid(tiny_model):
    torch.manual_seed(1)
    wav = torch.randn(16000 * 9 + 123) * 0.1
    with torch.inference_mode():
        whole = tiny_model(wav[None], num_layers=2).hidden_states
    assert receptive_field(tiny_model) == 60 and tiny_model.downsample_rate == 40  # TINY's CNN
    # context longer than the utterance: every window sees all of it, so its frames are the whole forward's
    full = windowed_states(tiny_model, wav, [0, 2], Windowing(2.0, 10.0), torch.device("cpu"))
    for layer in (0, 2):
        assert full[layer].shape == tuple(whole[layer][0].shape)
        np.testing.assert_allclose(full[layer], whole[layer][0].numpy(), atol=2e-4)
    spy = _Spy(tiny_model)
    local = windowed_states(spy, wav, [2], Windowing(2.0, 0.5), torch.device("cpu"))
    assert local[2].shape == tuple(whole[2][0].shape)
    assert spy.longest <= 16000 * 3 + 60  # a window of 2 s and 0.5 s on each side, never the 9 s
    # the CNN's frames do not depend on attention: layer 0 (before the Transformer) matches everywhere
    local0 = windowed_states(tiny_model, wav, [0], Windowing(2.0, 0.5), torch.device("cpu"))[0]
    assert np.abs(local0 - whole[0][0].numpy()).max() < 0.05 * np.abs(whole[0][0].numpy()).max()


def test_extract_windows_long_utterances_and_says_so(tiny_model, tmp_path, caplog):
    data = _recording_dir(tmp_path, 8.0)
    spy = _Spy(tiny_model)
    with caplog.at_level(logging.WARNING):
        summary = extract_features(
            spy, data, tmp_path / "win", [2], progress=False, windowing=Windowing(max_seconds=3.0, context_seconds=1.0)
        )
    assert summary["windowed"] == 1 and summary["extracted"] == 1
    assert spy.longest <= 16000 * 5 + 60
    assert "utterance long is 8 s, longer than --max-seconds 3" in caplog.text
    ((utt, states),) = read_features(tmp_path / "win", 2)
    assert utt == "long" and states.shape == (3199, 32)  # the whole utterance's: 1 + (128000 - 60) // 40
    whole = extract_features(tiny_model, data, tmp_path / "whole", [2], progress=False, windowing=Windowing(0))
    assert whole["windowed"] == 0
    spec = json.loads((tmp_path / "whole" / "spec.json").read_text())
    assert spec["windowing"] is None  # a folder made before windowing existed (no such key) is still this one:
    del spec["windowing"]
    (tmp_path / "whole" / "spec.json").write_text(json.dumps(spec))
    again = extract_features(tiny_model, data, tmp_path / "whole", [2], progress=False, windowing=Windowing(0))
    assert again["done_before"] == 1 and again["extracted"] == 0
    with pytest.raises(ValueError, match="holds an extraction made with other settings.*windowing"):
        extract_features(tiny_model, data, tmp_path / "win", [2], progress=False, windowing=Windowing(0))
    with pytest.raises(ValueError, match="must not be negative"):
        Windowing(-1)
