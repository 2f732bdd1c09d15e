"""espeak-ng through ctypes (the library and its data come from ``espeakng-loader``).

Synchronous synthesis with a callback that collects int16 samples and phoneme events, so a
sentence comes back as audio plus exact phone boundaries.

espeak-ng is not repeatable within a process: the same call twice gives different samples
(static state in its wave generator, such as the pitch-flutter counter, carries over and
survives re-initialisation and ``espeak_ng_SetRandSeed``), a voice selection leaves attributes
behind, and some variants (``+f3``) add breath noise from libc's ``rand()``. So every synthesis
runs in a forked child of a process whose own library has never synthesized, selects its voice
there and seeds ``rand()`` first: the same text, voice and seed always give the same samples.
"""

from __future__ import annotations

import ctypes
import os
import pickle
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..errors import SpeechSSLError

# espeak_EVENT_TYPE values (speak_lib.h)
_EV_LIST_TERMINATED, _EV_WORD, _EV_SENTENCE, _EV_END, _EV_MSG_TERMINATED, _EV_PHONEME = 0, 1, 2, 5, 6, 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
# espeak_PARAMETER values
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakError(SpeechSSLError, RuntimeError):
    pass


@dataclass
class Synthesis:
    """One synthesized text: int16-range float audio at ``sample_rate`` and phoneme events
    ``(mnemonic, start_sample)`` in order (espeak mnemonics, with stress marks)."""

    audio: np.ndarray
    sample_rate: int
    phonemes: List[Tuple[str, int]]


class Espeak:
    """A handle on the espeak-ng library in this process."""

    _instance: Optional[Espeak] = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._init()
        return cls._instance

    def _init(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover
            raise EspeakError("espeakng-loader is not installed (pip install 'speechssl[tts]')") from e
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}); data path {path!r}")
        self.lib, self.sample_rate = lib, rate
        self._chunks: List[np.ndarray] = []
        self._events: List[Tuple[str, int]] = []
        self._voice = ("en-us", 175, 50, 50)
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                # Word events share positions with phonemes: only phonemes make segments.
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("ascii", "replace")
                self._events.append((name, int(ev.sample)))
            i += 1
        return 0

    def set_voice(self, name: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> None:
        """Select a voice such as ``en-us+f3``; rate in words per minute, pitch/range 0-100.

        Only remembered here (selecting a voice changes library state that outlives it, e.g. a
        variant's attributes); it is applied in the synthesis child. Checked at once."""
        self._voice = (name, int(rate), int(pitch), int(pitch_range))
        self._in_child(self._apply_voice)

    def _apply_voice(self) -> None:
        name, rate, pitch, pitch_range = self._voice
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {name!r}")
        for param, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, value, 0)

    def synthesize(self, text: str, seed: int = 0) -> Synthesis:
        """Synthesize ``text`` with the chosen voice in a forked child (see module doc).
        ``seed`` seeds libc's ``rand()``, which some variants use for breath noise."""

        def work():
            ctypes.CDLL(None).srand(ctypes.c_uint(seed & 0xFFFFFFFF))
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed & 0x7FFFFFFF))
            self._apply_voice()
            return self._synthesize_here(text)

        return self._in_child(work, f"on {text!r}")

    def _in_child(self, fn, context: str = ""):
        """Run ``fn`` in a forked child of this process and return its (pickled) result."""
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: run, send the result, exit without cleanup handlers
            try:
                os.close(read_fd)
                try:
                    payload = pickle.dumps(("ok", fn()))
                except BaseException as e:  # report every failure to the parent
                    payload = pickle.dumps(("error", f"{e}"))
                with os.fdopen(write_fd, "wb") as f:
                    f.write(payload)
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            raise EspeakError(f"espeak child process died (status {status}) {context}")
        kind, value = pickle.loads(data)
        if kind != "ok":
            raise EspeakError(value)
        return value

    def _synthesize_here(self, text: str) -> Synthesis:
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise EspeakError(f"espeak_Synth failed with code {err} for text {text!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Synthesis(audio.astype(np.float32) / 32768.0, self.sample_rate, list(self._events))
