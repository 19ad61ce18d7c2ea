"""Features of a 70,000-sample dataset are computed streaming.

The encoder must hold one batch of rasters at a time: the peak of traced allocations while
encoding 70,000 rasters from a generator stays far below what the rasters occupy together.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from neurohw.reservoir.lsm import LSMConfig, LSMEncoder

N_SAMPLES = 70_000
T, C = 50, 256  # the paper's N-MNIST input: 50 bins x 256 channels (16x16 crop, polarity 0)


def _rasters(n: int, seed: int = 0):
    """A generator of distinct (T, C) binary rasters at ~2 % density, made one at a time."""
    rng = np.random.default_rng(seed)
    pool = (rng.random((16, T, C)) < 0.02).astype(np.uint8)
    for i in range(n):
        yield np.roll(pool[i % 16], i // 16, axis=1)  # a fresh array per sample


@pytest.mark.slow
def test_70k_samples_are_encoded_streaming():
    cfg = LSMConfig(n_inputs=C, n_neurons=16, scale=0.07, features=("rate",), backend="cpu", noise=False, seed=3)
    enc = LSMEncoder(cfg, "taox_rram_40nm")
    all_rasters_bytes = N_SAMPLES * T * C  # what holding every raster would take
    tracemalloc.start()
    try:
        feats = enc.encode(_rasters(N_SAMPLES), batch_size=512, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert feats["rate"].shape == (N_SAMPLES, 16)
    assert np.isfinite(feats["rate"]).all() and feats["rate"].max() > 0
    # one batch of dense rasters is 512 * 12.8 kB = 6.6 MB; all of them would be 896 MB
    assert peak < all_rasters_bytes / 20, f"peak {peak / 1e6:.1f} MB: the encoder is holding rasters"


def test_streamed_features_equal_one_list():
    """A generator and a list give the same features (streaming changes nothing)."""
    cfg = LSMConfig(n_inputs=C, n_neurons=16, scale=0.07, features=("rate", "counts"), backend="cpu", noise=True, seed=3)
    enc = LSMEncoder(cfg, "taox_rram_40nm")
    as_list = list(_rasters(300))
    a = enc.encode(iter(as_list), batch_size=7, progress=False)
    b = enc.encode(as_list, batch_size=300, progress=False)
    np.testing.assert_array_equal(a["rate"], b["rate"])
    np.testing.assert_array_equal(a["counts"], b["counts"])
