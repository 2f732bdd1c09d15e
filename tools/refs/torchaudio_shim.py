"""Restore what s3prl 0.4 calls and torchaudio 2.11 (Python parts only) no longer has.

Loaded at start-up of the reference venv only (a .pth file). ``torchaudio.load`` and
``torchaudio.sox_effects.apply_effects_file`` read with soundfile (``apply_effects_tensor`` takes a tensor);
the effects s3prl asks for on 16 kHz mono input (``channels 1``, ``rate 16000``, ``gain``) are applied, any
other is an error, so a cross-check never runs on silently different audio.
"""

import sys
import types


def _install() -> None:
    try:
        import numpy as np
        import soundfile as sf
        import torch
        import torchaudio
    except Exception:  # the venv is being built
        return

    def load(path, *args, **kwargs):
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(np.ascontiguousarray(data.T)), rate

    def apply_effects_file(path, effects, *args, **kwargs):
        wav, rate = load(path)
        return apply_effects_tensor(wav, rate, effects, where=path)

    def apply_effects_tensor(wav, rate, effects, *args, where="a tensor", **kwargs):
        path = where
        for name, *values in effects:
            if name == "channels" and values == ["1"]:
                wav = wav.mean(0, keepdim=True)
            elif name == "rate":
                if int(values[0]) != rate:
                    raise ValueError(f"{path}: the shim does not resample ({rate} Hz -> {values[0]} Hz)")
            elif name == "gain":
                wav = wav * 10 ** (float(values[-1]) / 20)
            else:
                raise ValueError(f"{path}: the shim does not apply sox effect {name!r}")
        return wav, rate

    torchaudio.load = load
    torchaudio.set_audio_backend = lambda *_a, **_k: None
    torchaudio.get_audio_backend = lambda: "soundfile"
    effects = types.ModuleType("torchaudio.sox_effects")
    effects.apply_effects_file = apply_effects_file
    effects.apply_effects_tensor = apply_effects_tensor  # imported by s3prl's hub (mos_prediction)
    torchaudio.sox_effects = effects
    sys.modules["torchaudio.sox_effects"] = effects


def _collections_aliases() -> None:
    """catalyst 21.5 (s3prl's KS expert imports its sampler wrapper) subclasses ``collections.MutableMapping``,
    which Python 3.10 moved to ``collections.abc`` only."""
    import collections
    import collections.abc

    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


_install()
_collections_aliases()
