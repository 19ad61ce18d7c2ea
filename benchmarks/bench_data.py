"""Data layer throughput: reading N-MNIST files and binning them, against tonic in the same run.

Baselines (measured here, same files, same machine):
- reading: ``tonic.io.read_mnist_file`` on every file of ../shared/data/nmnist-small;
- binning: tonic's ``CenterCrop(16)`` + ``ToFrame(n_time_bins=50)`` then polarity 0 and
  binarisation, against ``to_raster`` with the paper's N-MNIST setting (256 channels, T = 50).

Run: ``python benchmarks/bench_data.py [ROOT]`` (ROOT defaults to ../shared/data/nmnist-small).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import tonic
from tonic.transforms import CenterCrop, ToFrame

from neurohw.data.binning import Binning, to_raster
from neurohw.data.nmnist import read_nmnist_file, read_nmnist_folder


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(root: Path) -> None:
    datasets = [read_nmnist_folder(root, s) for s in ("train", "test")]
    files = [src for ds in datasets for src in ds.sources]
    n_events = 0

    def ours_read():
        nonlocal n_events
        n_events = sum(len(read_nmnist_file(f)) for f in files)

    def tonic_read():
        for f in files:
            tonic.io.read_mnist_file(f, dtype=tonic.datasets.NMNIST.dtype)

    t_ours, t_tonic = best_of(ours_read), best_of(tonic_read)
    print(f"read {len(files)} files, {n_events:,} events: neurohw {t_ours:.3f} s, tonic {t_tonic:.3f} s, "
          f"speed-up x{t_tonic / t_ours:.2f}")

    samples = [read_nmnist_file(f) for f in files[:300]]
    binning = Binning(n_bins=50, crop=(16, 16), polarity=0, mode="binary")
    crop = CenterCrop(sensor_size=(34, 34, 2), size=16)
    frame = ToFrame(sensor_size=(16, 16, 2), n_time_bins=50)

    def ours_bin():
        for ev in samples:
            to_raster(ev, (34, 34, 2), binning)

    def tonic_bin():
        for ev in samples:
            f = frame(crop(ev.copy()))
            (f[:, 0].reshape(50, 256) > 0).astype(np.uint8)

    b_ours, b_tonic = best_of(ours_bin), best_of(tonic_bin)
    print(f"bin {len(samples)} samples to 50 x 256: neurohw {b_ours:.3f} s, tonic {b_tonic:.3f} s, "
          f"speed-up x{b_tonic / b_ours:.2f}")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist-small"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
