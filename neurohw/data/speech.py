"""Speech synthesised offline by espeak-ng (the library bundled by the pip package espeakng-loader).

espeak-ng is a formant synthesiser: the same text, voice, rate and pitch give the same waveform,
except for two things. Some voice variants draw from the library's random generator, which it
seeds from the clock: each :class:`Utterance` carries a seed for it (``espeak_ng_SetRandSeed``).
And the library carries state from one utterance to the next (its pitch "flutter" cycles on):
:func:`synthesize` therefore runs each list of utterances in a fresh process, so that the
waveforms depend only on the list and never on what the calling process said before.

The C API is used through ctypes (``speak_lib.h`` of espeak-ng 1.5x):
``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS=2, buflength=0, data_dir, options=0)`` returns the
sample rate (22050 Hz); a synth callback receives 16-bit mono samples; ``espeak_Synth`` then
``espeak_Synchronize`` speak one text.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import neurohw
from neurohw.errors import DataError

#: English voices (language variants) of espeak-ng's data
VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
#: voice variants (espeak-ng-data/voices/!v): male, female, Klatt synthesiser, whisper, croak
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "whisper", "croak")
#: espeak_PARAMETER values (speak_lib.h)
_RATE, _PITCH = 1, 3
#: espeak_AUDIO_OUTPUT: synchronous, samples delivered to the callback
_AUDIO_OUTPUT_SYNCHRONOUS = 2


@dataclass(frozen=True)
class Utterance:
    """What to say and how: ``voice`` is an espeak-ng voice name, optionally ``+variant``."""

    text: str
    voice: str = "en-us"
    #: speaking rate, words per minute (espeak-ng accepts 80-450)
    rate: int = 175
    #: base pitch, 0-100 (espeak-ng's scale; 50 is the voice's normal pitch)
    pitch: int = 50
    #: seed of espeak-ng's own random generator (some variants, e.g. +f2, draw from it; without a
    #: seed the library seeds it from the clock)
    seed: int = 0

    def __post_init__(self):
        if not 80 <= self.rate <= 450:
            raise ValueError(f"espeak-ng rate must be 80-450 words per minute, got {self.rate}")
        if not 0 <= self.pitch <= 100:
            raise ValueError(f"espeak-ng pitch must be 0-100, got {self.pitch}")


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    """The espeak-ng library loaded in this process (one per process: the library is global)."""

    _instance: "Espeak | None" = None

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as exc:  # a declared dependency; only a broken install lacks it
            raise DataError("digits-cochlea needs espeak-ng: pip install espeakng-loader") from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise DataError(f"espeak-ng failed to initialise from {espeakng_loader.get_data_path()}; reinstall espeakng-loader")
        self._chunks: list[np.ndarray] = []
        # the library keeps only a C pointer: this reference keeps the callback alive
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib

    @classmethod
    def get(cls) -> "Espeak":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0: go on synthesising

    def say(self, utt: Utterance) -> np.ndarray:
        """The int16 waveform of one utterance at :attr:`sample_rate`."""
        if self._lib.espeak_SetVoiceByName(utt.voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice '{utt.voice}'")
        self._lib.espeak_SetParameter(_RATE, int(utt.rate), 0)
        self._lib.espeak_SetParameter(_PITCH, int(utt.pitch), 0)
        self._lib.espeak_ng_SetRandSeed(int(utt.seed))
        text = utt.text.encode() + b"\0"
        self._chunks = []
        status = self._lib.espeak_Synth(text, len(text), 0, 0, 0, 0, None, None)
        self._lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} on {utt}")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


def _synthesize_here(utterances: Sequence[Utterance]) -> tuple[int, list[np.ndarray]]:
    espeak = Espeak.get()
    return espeak.sample_rate, [espeak.say(u) for u in utterances]


def synthesize(utterances: Sequence[Utterance]) -> tuple[int, list[np.ndarray]]:
    """``(sample_rate, waveforms)``: the int16 waveform of each utterance, said in order by a
    fresh espeak-ng in a child process (so the result depends on the list alone).

    The child is ``python -m neurohw.data.speech IN OUT`` (not multiprocessing, which would
    re-import the caller's main script); it reads the utterances from the JSON file IN and writes
    the waveforms to the ``.npz`` file OUT.
    """
    utterances = list(utterances)
    with tempfile.TemporaryDirectory(prefix="neurohw-speech-") as tmp:
        src, dst = Path(tmp) / "utterances.json", Path(tmp) / "waves.npz"
        src.write_text(json.dumps([asdict(u) for u in utterances]))
        env = dict(os.environ)
        root = str(Path(neurohw.__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.run([sys.executable, "-m", "neurohw.data.speech", str(src), str(dst)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the espeak-ng child process failed ({proc.returncode}): {tail}")
        with np.load(dst) as npz:
            fs, lengths, samples = int(npz["sample_rate"]), npz["lengths"], npz["samples"]
    if len(lengths) != len(utterances):
        raise RuntimeError(f"espeak-ng child returned {len(lengths)} waveforms for {len(utterances)} utterances")
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return fs, [samples[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _main(argv: list[str]) -> int:
    src, dst = argv
    utts = [Utterance(**u) for u in json.loads(Path(src).read_text())]
    fs, waves = _synthesize_here(utts)
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    samples = np.concatenate(waves) if waves else np.zeros(0, dtype=np.int16)
    with open(dst, "wb") as fh:
        np.savez(fh, sample_rate=fs, lengths=lengths, samples=samples)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
