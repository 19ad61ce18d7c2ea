"""Every CPU-side backend against the reference semantics: hand case, an independent dense
loop, integer-level weights with ADC and noise, real N-MNIST samples, and the encoder glue."""

from __future__ import annotations

import numpy as np
import pytest

from neurohw.data.binning import Binning, to_raster, to_sparse
from neurohw.errors import ConfigError, DataError
from neurohw.reservoir.backends import cpu, load_backend, numpy_ref, select_backend
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder
from neurohw.reservoir.synapses import Adc, Synapses
from tests.reservoir.test_lif import HAND_MEM, HAND_MEM_SUB, HAND_SPIKES, HAND_SPIKES_SUB, W_IN, W_REC, X

BACKENDS = [numpy_ref, cpu]


def _hand_synapses(reset: str, integer: bool) -> Synapses:
    if integer:  # unit 0.25: W == 0.25 * Wq exactly
        return Synapses((W_IN * 4).astype(np.int8), (W_REC * 4).astype(np.int8), 0.25, 1.0, 0.5, reset)
    return Synapses(W_IN.copy(), W_REC.copy(), None, 1.0, 0.5, reset)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda m: m.NAME)
@pytest.mark.parametrize("integer", [True, False], ids=["levels", "float"])
@pytest.mark.parametrize("reset, spikes, mem", [("hard", HAND_SPIKES, HAND_MEM), ("subtract", HAND_SPIKES_SUB, HAND_MEM_SUB)])
def test_hand_case_on_every_backend(backend, integer, reset, spikes, mem):
    res = backend.run_batch(_hand_synapses(reset, integer), [to_sparse(X)], [0], count_bins=2, record_spikes=True)
    np.testing.assert_array_equal(res.spikes[0], spikes)
    np.testing.assert_array_equal(res.membrane[0], mem.astype(np.float32))
    np.testing.assert_array_equal(res.rate[0], spikes.mean(axis=0).astype(np.float32))
    np.testing.assert_array_equal(res.counts[0], np.stack([spikes[:2].sum(0), spikes[2:].sum(0)]))


def _dense_reference(w_in, w_rec, v_th, decay, x):
    """The paper's equations as five lines of dense numpy (independent of the backends)."""
    mem = np.zeros(w_rec.shape[0])
    s = np.zeros(w_rec.shape[0])
    out = []
    for t in range(x.shape[0]):
        mem = mem * decay * (1 - s) + x[t] @ w_in + s @ w_rec
        s = (mem > v_th).astype(float)
        out.append(s.astype(bool))
    return np.array(out), mem


def _random_problem(rng, n_in=200, n=90, wmax=24):
    w_in = rng.integers(-wmax, wmax + 1, (n_in, n)).astype(np.int16)
    w_rec = rng.integers(-wmax, wmax + 1, (n, n)).astype(np.int16)
    rasters = [to_sparse((rng.random((30 - 3 * b, n_in)) < 0.06).astype(np.uint8)) for b in range(5)]
    return w_in, w_rec, rasters


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda m: m.NAME)
def test_backends_equal_an_independent_dense_loop(backend):
    rng = np.random.default_rng(3)
    w_in, w_rec, rasters = _random_problem(rng)
    unit = 2.0**-5  # dyadic unit, small integers: every float sum is exact in any order
    syn = Synapses(w_in, w_rec, unit, 1.0, 0.875)
    res = backend.run_batch(syn, rasters, np.arange(5), record_spikes=True)
    assert 0.02 < res.rate.mean() < 0.5
    for b, r in enumerate(rasters):
        spikes, mem = _dense_reference(w_in * unit, w_rec * unit, 1.0, 0.875, r.to_dense().astype(float))
        np.testing.assert_array_equal(res.spikes[b], spikes)
        np.testing.assert_array_equal(res.membrane[b], mem.astype(np.float32))


ADC = Adc(64, np.full(4, 0.03), np.full(2, 0.025), 300, gain_in=np.array([1.0, 1.02, 0.97, 1.0]))
# input encodings: raster values as analog amplitudes, 6-bit codes read bit-serially (the
# reference macro), 3-bit codes read as one amplitude (counts above 7 clip), 4-bit codes of
# full scale 30 (code value 2) read bit-serially
INPUTS = {"amplitude": {}, "bit-serial": {"input_bits": 6, "input_bit_serial": True},
          "3-bit-amplitude": {"input_bits": 3}, "full-scale": {"input_bits": 4, "input_full_scale": 30.0, "input_bit_serial": True}}  # fmt: skip


@pytest.mark.parametrize("adc", [None, ADC], ids=["no-adc", "adc"])
@pytest.mark.parametrize("noise", [False, True], ids=["exact", "noisy"])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("inputs", INPUTS)
def test_cpu_equals_numpy_bit_for_bit(adc, noise, reset, inputs):
    rng = np.random.default_rng(4)
    w_in, w_rec, rasters = _random_problem(rng)
    rasters[1] = to_sparse(np.minimum(rasters[1].to_dense() * 3, 255))  # one sample with counts
    counts = (rng.random((20, 200)) < 0.06) * rng.integers(1, 14, (20, 200))  # counts 1..13: up to 4 bit planes
    rasters.append(to_sparse(counts.astype(np.uint8)))
    syn = Synapses(w_in, w_rec, 0.04, 1.0, 0.9, reset, noise_relative=0.05, noise_additive=0.01, adc=adc, seed=11, **INPUTS[inputs])
    a = numpy_ref.run_batch(syn, rasters, np.arange(10, 16), 3, noise, True)
    b = cpu.run_batch(syn, rasters, np.arange(10, 16), 3, noise, True)
    assert 0.02 < a.rate.mean() < 0.6
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.membrane, b.membrane)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.rate, b.rate)


def test_noise_is_keyed_by_sample_not_batch():
    rng = np.random.default_rng(5)
    w_in, w_rec, rasters = _random_problem(rng)
    syn = Synapses(w_in, w_rec, 0.04, 1.0, 0.9, noise_relative=0.05, seed=2)
    whole = cpu.run_batch(syn, rasters, np.arange(5), noise=True)
    alone = cpu.run_batch(syn, rasters[3:4], [3], noise=True)
    np.testing.assert_array_equal(whole.membrane[3], alone.membrane[0])
    other = cpu.run_batch(syn, rasters[3:4], [4], noise=True)
    assert not np.array_equal(other.membrane[0], alone.membrane[0])


def test_noisy_read_statistics_match_noise_equivalent_sampling():
    """One step, no recurrence: mem = read of the active rows; mean and variance per column
    must be sum w and sigma^2 sum w^2 (+ a^2 rows), over many samples (each its own draws)."""
    rng = np.random.default_rng(6)
    n_in, n = 50, 40
    w_in = rng.integers(-30, 31, (n_in, n)).astype(np.int16)
    x = np.zeros((1, n_in), np.uint8)
    x[0, rng.choice(n_in, 12, replace=False)] = 1
    unit, sr, sa = 0.05, 0.1, 0.02
    syn = Synapses(w_in, np.zeros((n, n), np.int16), unit, 1e9, 0.9, noise_relative=sr, noise_additive=sa, seed=9)
    N = 4000
    res = cpu.run_batch(syn, [to_sparse(x)] * N, np.arange(N), noise=True)
    w = w_in[x[0] == 1].astype(float) * unit
    mean, var = w.sum(0), sr**2 * (w**2).sum(0) + sa**2 * 12
    m = res.membrane.astype(np.float64)
    z = (m.mean(0) - mean) / np.sqrt(var / N)
    assert np.max(np.abs(z)) < 4.5
    ratio = m.var(0, ddof=1) / var
    assert np.max(np.abs(ratio - 1)) < 5 * np.sqrt(2 / N)


def _nmnist_rasters(root, n: int, n_bins: int = 50):
    from neurohw.data.nmnist import read_nmnist_folder

    ds = read_nmnist_folder(root, "train")
    binning = Binning(n_bins=n_bins, crop=(16, 16), polarity=0, mode="binary")
    return [to_raster(ds[i][0], ds.sensor_size, binning) for i in range(n)]


def test_nmnist_small_quantised_device_identical_spikes(nmnist_small):
    """Reference hyperparameters on real N-MNIST, the reference macro (levels, 14-bit ADC):
    numpy and cpu give identical spikes with noise off, and with noise on (same Philox draws)."""
    rasters = _nmnist_rasters(nmnist_small, 6)
    cfg = dict(n_inputs=256, n_neurons=200, v_th=5.0, decay=0.9, scale=0.07, features=("rate", "counts", "membrane"))
    out = {}
    for backend in ("numpy", "cpu"):
        for noise in (False, True):
            enc = LSMEncoder(LSMConfig(backend=backend, noise=noise, **cfg), "taox_rram_40nm")
            assert enc.synapses().integer and enc.synapses().adc is not None
            out[backend, noise] = enc.encode(rasters, batch_size=4, progress=False, record_spikes=True)
    for noise in (False, True):
        a, b = out["numpy", noise], out["cpu", noise]
        for sa, sb in zip(a["spikes"], b["spikes"]):
            np.testing.assert_array_equal(sa, sb)
        for k in ("rate", "counts", "membrane"):
            np.testing.assert_array_equal(a[k], b[k])
    assert 0.01 < out["cpu", False]["rate"].mean() < 0.5
    assert not np.array_equal(out["cpu", False]["membrane"], out["cpu", True]["membrane"])  # noise acts


def test_ideal_device_float_weights_agreement_is_measured(nmnist_small):
    """Float weights (ideal device): sums in another order may flip a spike now and then;
    the agreement is measured and must stay near 100 %."""
    rasters = _nmnist_rasters(nmnist_small, 6)
    encs = [LSMEncoder(LSMConfig(scale=0.07, backend=b, noise=False), "ideal") for b in ("numpy", "cpu")]
    a, b = (e.encode(rasters, progress=False, record_spikes=True)["spikes"] for e in encs)
    assert not encs[0].synapses().integer  # n_inputs is inferred from the rasters on first use
    agree = np.mean(np.concatenate([(x == y).ravel() for x, y in zip(a, b)]))
    assert agree > 0.999, f"float-weight spike agreement numpy vs cpu: {agree:.6f}"


def test_encode_streams_any_iterable_and_batch_size_does_not_matter():
    rng = np.random.default_rng(7)
    rasters = [(rng.random((20 + b, 64)) < 0.1).astype(np.uint8) for b in range(7)]
    enc = LSMEncoder(LSMConfig(n_inputs=64, n_neurons=30, scale=0.07, backend="cpu", features=("rate", "membrane")), "taox_rram_40nm")
    a = enc.encode(iter(rasters), batch_size=3, progress=False)
    b = enc.encode([to_sparse(r) for r in rasters], batch_size=64, progress=False)
    assert a["rate"].shape == (7, 30) and a["rate"].dtype == np.float32
    np.testing.assert_array_equal(a["rate"], b["rate"])
    np.testing.assert_array_equal(a["membrane"], b["membrane"])


def test_target_rate_calibration_reaches_the_target():
    rng = np.random.default_rng(8)
    rasters = [(rng.random((40, 128)) < 0.05).astype(np.uint8) for _ in range(12)]
    enc = LSMEncoder(LSMConfig(n_inputs=128, n_neurons=60, target_rate=0.06, calibration_samples=12, backend="cpu", noise=False), "taox_rram_40nm")
    feats = enc.encode(rasters, progress=False)
    assert abs(feats["rate"].mean() - 0.06) <= 0.02 * 0.06 + 1e-9
    assert enc.scale > 0


def test_config_and_input_errors_are_user_errors():
    with pytest.raises(ValueError, match="exactly one"):
        LSMConfig(scale=0.07, target_rate=0.06)
    with pytest.raises(ValueError):
        LSMConfig(scale=0.07, backend="gpu")
    with pytest.raises(ConfigError, match="unknown"):
        load_backend("cupyy")
    enc = LSMEncoder(LSMConfig(n_inputs=64, n_neurons=10, scale=0.07, backend="numpy"), "ideal")
    with pytest.raises(DataError, match="n_inputs=64"):
        enc.encode([np.zeros((5, 63), np.uint8)], progress=False)
    with pytest.raises(DataError, match="shape"):
        enc.encode([np.zeros(5, np.uint8)], progress=False)


def test_auto_backend_falls_back_to_cpu_without_gpu():
    from neurohw.reservoir.backends import cupy_backend

    expected = "cupy" if cupy_backend.available() else "cpu"
    assert select_backend("auto").NAME == expected


@pytest.mark.parametrize("wmax, narrow", [(2047, 16), (2048, 8), (4095, 8), (4096, 0)])
def test_cpu_row_sums_in_int16_lanes_are_exact_at_the_limit(wmax, narrow):
    """16 (8) int16 rows are summed in 16-bit lanes only when 16 (8) max|w| <= 32767; at each
    limit (rows of +-wmax only, all-positive columns at the extreme) cpu still equals numpy."""
    rng = np.random.default_rng(12)
    n_in, n = 64, 40
    w_in = (rng.choice([-1, 1], (n_in, n)) * wmax).astype(np.int16)
    w_in[:, :20] = wmax  # all-positive columns: every partial sum is at +16 (+8) wmax
    w_rec = (rng.choice([-1, 1], (n, n)) * wmax).astype(np.int16)
    x = np.zeros((6, n_in), np.uint8)
    x[:, :25] = 1  # 25 active rows in one tile: a full group of 16 and a group of 9
    syn = Synapses(w_in, w_rec, 1e-3, 1e9, 0.5, noise_relative=0.01, seed=3)
    assert cpu.narrow_sums(syn) == narrow
    for noise in (False, True):
        a = numpy_ref.run_batch(syn, [to_sparse(x)], [0], 1, noise)
        b = cpu.run_batch(syn, [to_sparse(x)], [0], 1, noise)
        np.testing.assert_array_equal(a.membrane, b.membrane)
    assert a.membrane[0, :20].min() > 0.9 * 25 * wmax * 1e-3  # the all-positive columns add up


def test_cpu_every_row_group_size_equals_numpy():
    """1..34 active rows in one tile (groups of 16 and a remainder taking the 4-, 8-, 12- or
    16-row pass, zero rows padding the rest), weights at the int16-lane limit: cpu equals numpy,
    noise off and on."""
    rng = np.random.default_rng(14)
    n_in, n = 40, 33
    w_in = rng.integers(-2047, 2048, (n_in, n)).astype(np.int16)
    w_in[:, :5] = 2047  # all-positive columns: the int16 lanes at their limit
    w_rec = rng.integers(-2047, 2048, (n, n)).astype(np.int16)
    rasters = []
    for k in range(1, 35):
        x = np.zeros((2, n_in), np.uint8)
        x[0, rng.choice(n_in, min(k, n_in), replace=False)] = 1
        x[1, : min(k, n_in)] = 1
        rasters.append(to_sparse(x))
    syn = Synapses(w_in, w_rec, 1e-3, 1e9, 0.5, noise_relative=0.01, seed=3)
    assert cpu.narrow_sums(syn) == 16
    for noise in (False, True):
        a = numpy_ref.run_batch(syn, rasters, np.arange(len(rasters)), 1, noise)
        b = cpu.run_batch(syn, rasters, np.arange(len(rasters)), 1, noise)
        np.testing.assert_array_equal(a.membrane, b.membrane)


def test_cpu_identity_adc_shortcut_equals_numpy_with_clipping():
    """ADC tiles with one level per code (step == unit, gain 1) take cpu's integer clip; a tile
    with gain != 1 or another step does not. Small max_code: many partial sums clip."""
    rng = np.random.default_rng(13)
    w_in, w_rec, rasters = _random_problem(rng)
    unit = 0.04
    adc = Adc(64, np.array([unit, unit, unit, 0.03]), np.full(2, unit), 60, gain_in=np.array([1.0, 1.02, 1.0, 1.0]))
    syn = Synapses(w_in, w_rec, unit, 1.0, 0.9, adc=adc)
    np.testing.assert_array_equal(cpu.identity_adc_tiles(syn), [True, False, True, False, True, True])
    a = numpy_ref.run_batch(syn, rasters, np.arange(5), 2, False, True)
    b = cpu.run_batch(syn, rasters, np.arange(5), 2, False, True)
    assert 0.02 < a.rate.mean() < 0.6
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.membrane, b.membrane)
    # the clip is exercised: some partial sums exceed max_code
    x = rasters[0].to_dense()[0].astype(np.int64)
    assert np.abs(x[:64] @ w_in[:64].astype(np.int64)).max() > 60
    # every tile an identity, dense and sparse inputs (some tiles unread at some steps)
    sparse = [to_sparse((rng.random((30, 200)) < 0.01).astype(np.uint8)) for _ in range(4)]
    syn = Synapses(w_in, w_rec, unit, 1.0, 0.9, adc=Adc(64, np.full(4, unit), np.full(2, unit), 60))
    assert cpu.identity_adc_tiles(syn).all()
    for rs in (rasters, sparse):
        a = numpy_ref.run_batch(syn, rs, np.arange(len(rs)), 2, False, True)
        b = cpu.run_batch(syn, rs, np.arange(len(rs)), 2, False, True)
        for sa, sb in zip(a.spikes, b.spikes):
            np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(a.membrane, b.membrane)
        assert a.rate.mean() > 0.01


def test_synapses_wmax_is_the_largest_magnitude_without_wrapping():
    s = Synapses(np.array([[-128, 5]], np.int8), np.array([[1, 2], [3, -4]], np.int8), 0.1, 1.0, 0.9)
    assert s.wmax == 128 and isinstance(s.wmax, int)  # -(-128) in int8 would wrap to -128
    f = Synapses(np.array([[-1.5, 0.5]]), np.array([[0.1, 0.2], [0.3, -0.4]]), None, 1.0, 0.9)
    assert f.wmax == 1.5


@pytest.mark.parametrize("device", ["ideal", "pcm_like", "taox_rram_40nm"])
def test_compile_kernels_covers_the_weights_of_every_shipped_device(device):
    """setup.sh compiles the cpu kernel once per machine for KERNEL_KINDS; the crossbars of every
    shipped device (as the quickstart's encoders build them) come in one of those weight kinds,
    so no run on a shipped device compiles the kernel again."""
    kinds = {np.dtype(d) for d, _ in cpu.KERNEL_KINDS}
    syn = LSMEncoder(LSMConfig(n_inputs=64, n_neurons=32, scale=0.07, seed=1), device).synapses()
    assert syn.w_in.dtype in kinds and syn.w_rec.dtype == syn.w_in.dtype
