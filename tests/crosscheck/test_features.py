"""Kaldi fbank / MFCC against ``torchaudio.compliance.kaldi`` on the real recordings of ../shared/testdata (8, 16
and 22.05 kHz), dither 0, Kaldi's options spelled out (torchaudio's own MFCC default drops the energy).

torchaudio computes in float32 like Kaldi; the bounds are those of the kaldi-native-fbank parity test
(tests/test_features.py): 1e-3 where the reference has precision left (fbank bins within 80 dB of the frame's
peak, MFCC frames whose 23 mel bins lie within 60 dB), 2e-2 everywhere (measured: fbank 7.3e-4 near the peak,
1.0e-2 in bins over 80 dB down, where both float32 FFTs are rounding noise; MFCC 4.3e-4 and 2.6e-3)."""

import numpy as np
import soundfile as sf
import torch

from .conftest import reference


def test_fbank_and_mfcc_equal_torchaudio_compliance_kaldi(testdata):
    reference("torchaudio")
    from torchaudio.compliance import kaldi

    from speechssl.audio import features as F
    from speechssl.audio.io import load

    files = sorted(p for p in testdata.glob("*/*/*") if p.suffix in (".wav", ".flac"))
    assert files
    worst = {"fbank": 0.0, "mfcc": 0.0, "fbank_all": 0.0, "mfcc_all": 0.0}
    for path in files:
        sr = sf.info(str(path)).samplerate
        x = torch.from_numpy(load(path, sample_rate=None)) * 32768  # Kaldi's tools see int16 values
        ours, n = F.fbank(x, sample_rate=sr)
        ref = kaldi.fbank(x[None], num_mel_bins=80, sample_frequency=sr, dither=0.0, energy_floor=0.0).numpy()
        assert ours.shape == ref.shape and int(n) == ref.shape[0], path
        diff = np.abs(ours.numpy() - ref)
        near_peak = ref > ref.max(1, keepdims=True) - np.log(1e8)
        worst["fbank"] = max(worst["fbank"], float(diff[near_peak].max()))
        worst["fbank_all"] = max(worst["fbank_all"], float(diff.max()))
        ours_m, _ = F.mfcc(x, sample_rate=sr)
        ref_m = kaldi.mfcc(x[None], sample_frequency=sr, dither=0.0, energy_floor=0.0, use_energy=True).numpy()
        diff_m = np.abs(ours_m.numpy() - ref_m)
        mel23 = F.fbank(x, sample_rate=sr, num_mel_bins=23)[0].numpy()
        ok = mel23.min(1) > mel23.max(1) - np.log(1e6)
        if ok.any():
            worst["mfcc"] = max(worst["mfcc"], float(diff_m[ok].max()))
        worst["mfcc_all"] = max(worst["mfcc_all"], float(diff_m.max()))
    print("worst absolute differences:", worst)
    assert worst["fbank"] <= 1e-3 and worst["mfcc"] <= 1e-3, worst
    assert worst["fbank_all"] <= 2e-2 and worst["mfcc_all"] <= 1e-2, worst
