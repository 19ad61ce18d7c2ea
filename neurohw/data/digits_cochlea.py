"""digits-cochlea: spoken digits 0-9 by espeak-ng, heard through a 64-channel cochlea model.

Each utterance says one digit word ("zero" .. "nine"; digit ``i % 10`` for utterance ``i``, so
the classes are balanced) with a voice drawn from 8 English voices x 15 variants
(:mod:`neurohw.data.speech`), a rate of 120-260 words per minute and a pitch of 20-80. The
waveform then gets, per utterance: a speed change of +-15 % (resampling, which also scales the
formants like a different vocal tract), a level of -20 dBFS RMS +-6 dB, a random leading silence
of 0-250 ms and 50 ms of trailing silence, and white noise at 15-40 dB SNR (against the speech
RMS) over the whole clip. :mod:`neurohw.data.cochlea` turns it into t,x,p events like
N-TIDIGITS's (64 channels, 100 Hz - 8 kHz).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from neurohw.data.cochlea import CochleaModel, cochlea_events, filterbank_sos
from neurohw.data.embedded import PackedEvents, pack_channel_events
from neurohw.data.speech import VARIANTS, VOICES, Utterance, synthesize

#: tonic order (channels, 1, 1)
SENSOR_SIZE = (64, 1, 1)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: utterances per digit when the caller does not ask for fewer (3,000 in all)
DEFAULT_PER_CLASS = 300
#: ranges of the draws (uniform), see the module docstring
RATE_WPM = (120, 260)
PITCH = (20, 80)
SPEED = (0.85, 1.15)
LEVEL_DBFS = -20.0
GAIN_DB = (-6.0, 6.0)
SNR_DB = (15.0, 40.0)
LEAD_S = (0.0, 0.25)
TAIL_S = 0.05
#: random streams derived from the seed (numpy SeedSequence entropy [seed, stream, ...])
_VOICE_STREAM, _AUGMENT_STREAM = 0, 1


def utterances(seed: int, per_class: int) -> tuple[list[Utterance], np.ndarray]:
    """The utterances to synthesise (digit ``i % 10`` for the ``i``-th) and their labels."""
    n = 10 * per_class
    rng = np.random.default_rng([seed, _VOICE_STREAM])
    voice = rng.integers(0, len(VOICES), n)
    variant = rng.integers(0, len(VARIANTS), n)
    rate = rng.integers(RATE_WPM[0], RATE_WPM[1] + 1, n)
    pitch = rng.integers(PITCH[0], PITCH[1] + 1, n)
    espeak_seed = rng.integers(0, 2**31, n)
    labels = np.arange(n, dtype=np.int64) % 10
    utts = [
        Utterance(DIGIT_WORDS[labels[i]], f"{VOICES[voice[i]]}+{VARIANTS[variant[i]]}", int(rate[i]), int(pitch[i]), int(espeak_seed[i]))
        for i in range(n)
    ]
    return utts, labels


def augment(wave: np.ndarray, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Speed, level, silences and noise of one utterance (int16 or float input), float64 output."""
    x = np.asarray(wave, dtype=np.float64) / 32768.0 if wave.dtype == np.int16 else np.asarray(wave, dtype=np.float64)
    speed = rng.uniform(*SPEED)
    n_out = max(1, int(round(len(x) / speed)))
    x = np.interp(np.arange(n_out) * speed, np.arange(len(x)), x)  # linear resampling: duration / speed
    rms = np.sqrt(np.mean(x**2)) if len(x) else 0.0
    level = 10.0 ** ((LEVEL_DBFS + rng.uniform(*GAIN_DB)) / 20.0)
    x = x * (level / rms) if rms > 0 else x
    lead = np.zeros(int(round(rng.uniform(*LEAD_S) * fs)))
    tail = np.zeros(int(round(TAIL_S * fs)))
    x = np.concatenate([lead, x, tail])
    noise_rms = level / 10.0 ** (rng.uniform(*SNR_DB) / 20.0)
    return x + rng.normal(0.0, noise_rms, len(x))


def generate(
    seed: int,
    samples_per_class: int | None = None,
    on_progress: Callable[..., None] | None = None,
    model: CochleaModel = CochleaModel(),
) -> PackedEvents:
    """Generate the digits-cochlea events (``DEFAULT_PER_CLASS`` utterances per digit unless told)."""
    per_class = DEFAULT_PER_CLASS if samples_per_class is None else int(samples_per_class)
    utts, labels = utterances(seed, per_class)
    if on_progress is not None:
        on_progress(0, len(utts), "synthesising speech")
    fs, waves = synthesize(utts)
    sos = filterbank_sos(model, fs)

    def heard() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i, wave in enumerate(waves):
            ev = cochlea_events(augment(wave, fs, np.random.default_rng([seed, _AUGMENT_STREAM, i])), fs, model, sos)
            yield ev["t"], ev["x"]

    meta = {
        "source": "espeak-ng (espeakng-loader), digit words",
        "sample_rate": fs,
        "model": repr(model),
        "voices": [u.voice for u in utts],
    }
    return pack_channel_events(labels, heard(), np.uint8, meta, on_progress, every=50, stage="cochlea")
