"""Embedded datasets: generation and cached-load time against their budgets, the cochlea's
filterbank against scipy, and event statistics against real N-MNIST, all measured in this run.

Budgets: generation of each full dataset under 60 s on 2 cores, cached load under 2 s.
Baselines (same machine, same run):
- cochlea: ``scipy.signal.sosfilt`` per channel + ``lfilter`` for the envelope, on the same
  waveforms, against the fused numba filterbank of ``channel_envelopes`` (same numbers);
- events per sample: the real N-MNIST subset ../shared/data/nmnist-small, when present.

Run: ``python benchmarks/bench_embedded.py`` (uses a temporary cache; nothing is kept).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _stats(counts) -> str:
    p5, p50, p95 = np.percentile(counts, [5, 50, 95])
    return f"mean {np.mean(counts):,.0f}, p5 {p5:,.0f}, median {p50:,.0f}, p95 {p95:,.0f}"


def bench_generation() -> None:
    from neurohw.data.embedded import EMBEDDED_NAMES, generate_embedded, load_embedded

    for name in EMBEDDED_NAMES:
        start = time.perf_counter()
        generate_embedded(name, progress=False)
        gen = time.perf_counter() - start
        start = time.perf_counter()
        splits = [load_embedded(name, s, progress=False) for s in ("train", "test")]
        load = time.perf_counter() - start
        counts = [len(ds.events(i)) for ds in splits for i in range(len(ds))]
        print(f"{name}: {len(counts)} samples generated in {gen:.1f} s ({gen / 60:.2f} of the 60 s budget), "
              f"cached load {load:.2f} s ({load / 2:.2f} of 2 s); events/sample {_stats(counts)}")


def bench_cochlea_filterbank(n_utterances: int = 40) -> None:
    from scipy.signal import lfilter, sosfilt

    from neurohw.data.cochlea import CochleaModel, channel_envelopes, filterbank_sos
    from neurohw.data.digits_cochlea import augment, utterances
    from neurohw.data.speech import synthesize

    model = CochleaModel()
    fs, waves = synthesize(utterances(0, max(1, n_utterances // 10))[0])
    audio = [augment(w, fs, np.random.default_rng(i)) for i, w in enumerate(waves)]
    sos = filterbank_sos(model, fs)
    channel_envelopes(audio[0][:1000], fs, model, sos)  # compile outside the timing
    alpha = 1 - np.exp(-1 / (fs * model.envelope_tau_ms * 1e-3))

    start = time.perf_counter()
    ours = [channel_envelopes(a, fs, model, sos) for a in audio]
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    ref = []
    for a in audio:
        n = len(a) // model.hop
        env = np.stack([lfilter([alpha], [1, alpha - 1], np.pi * np.maximum(sosfilt(s, a), 0)) for s in sos], axis=1)
        ref.append(env[model.hop - 1 : n * model.hop : model.hop])
    t_ref = time.perf_counter() - start
    err = max(float(np.max(np.abs(o - r))) for o, r in zip(ours, ref))
    seconds = sum(len(a) for a in audio) / fs
    print(f"cochlea filterbank, {len(audio)} utterances ({seconds:.1f} s of audio): numba {t_ours:.3f} s, "
          f"scipy {t_ref:.3f} s, speed-up x{t_ref / t_ours:.1f}, max difference {err:.1e}")


def bench_nmnist_reference() -> None:
    root = Path(os.environ.get("NEUROHW_NMNIST_SMALL", Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist-small"))
    if not (root / "labels.csv").is_file():
        print(f"real N-MNIST subset not found at {root}: no reference statistics")
        return
    from neurohw.data.nmnist import read_nmnist_folder

    ds = read_nmnist_folder(root, "train")
    print(f"real N-MNIST (nmnist-small, train): events/sample {_stats([len(ds.events(i)) for i in range(len(ds))])}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="neurohw-bench-") as tmp:
        os.environ["NEUROHW_CACHE"] = tmp
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        bench_generation()
        bench_cochlea_filterbank()
        bench_nmnist_reference()


if __name__ == "__main__":
    sys.exit(main())
