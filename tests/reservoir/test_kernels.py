"""GPU code verified without a GPU: every kernels/*.cu compiles with nvcc --ptx, and the same
source built for the CPU through kernels/host_shim.h, driven by the cupy backend's own host
loop, reproduces the numpy reference bit for bit (noise off and on). Real-GPU tests carry the
``gpu`` marker and skip here."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from neurohw.data.binning import Binning, to_raster, to_sparse
from neurohw.reservoir.backends import cupy_backend, host_shim, numpy_ref
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder
from neurohw.reservoir.synapses import Adc, Synapses

KERNELS = sorted(host_shim.KERNELS_DIR.glob("*.cu"))
needs_gxx = pytest.mark.skipif(not host_shim.gxx_available(), reason="g++ not installed")


def test_there_are_kernels():
    assert [k.name for k in KERNELS] == ["lsm.cu"]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("cu", KERNELS, ids=lambda p: p.name)
@pytest.mark.parametrize("types", [{}, {"WT": "short"}, {"WT": "double", "AT": "double", "QT": "double"}], ids=["int8", "int16", "float"])
def test_nvcc_compiles_to_ptx(cu, types, tmp_path):
    defines = [f"-D{k}={v}" for k, v in types.items()]
    out = tmp_path / (cu.stem + ".ptx")
    proc = subprocess.run(["nvcc", "--ptx", "--fmad=false", *defines, str(cu), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert ".entry lsm_step" in out.read_text()


@needs_gxx
@pytest.mark.parametrize("construct", ["__syncthreads();", "__shared__ int buf[32]; buf[0] = 1;"], ids=["syncthreads", "shared"])
def test_shim_refuses_kernels_that_need_block_synchronisation(construct, tmp_path):
    cu = tmp_path / "bad.cu"
    cu.write_text('extern "C" __global__ void bad(int* out) {\n    ' + construct + "\n    out[threadIdx.x] = 1;\n}\n")
    with pytest.raises(RuntimeError, match="g\\+\\+ failed"):
        host_shim.build(cu, out_dir=tmp_path)


@needs_gxx
def test_shim_launch_covers_the_grid(tmp_path):
    cu = tmp_path / "iota.cu"
    cu.write_text('extern "C" __global__ void iota(int* out, int n) {\n'
                  "    int i = (blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;\n"
                  "    if (i < n) out[i] = i + 1;\n}\n")  # fmt: skip
    mod = host_shim.build(cu, out_dir=tmp_path)
    out = np.zeros(50, np.int32)
    mod.get_function("iota")((3, 2), (8,), (out, np.int32(45)))
    np.testing.assert_array_equal(out, np.r_[np.arange(1, 46), np.zeros(5)])


def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    n_in, n = 150, 70
    w_in = rng.integers(-20, 21, (n_in, n)).astype(dtype)
    w_rec = rng.integers(-20, 21, (n, n)).astype(dtype)
    rasters = [to_sparse((rng.random((25 - 4 * b, n_in)) < 0.07).astype(np.uint8)) for b in range(4)]
    rasters[2] = to_sparse(np.minimum(rasters[2].to_dense() * 2, 255))
    counts = (rng.random((18, n_in)) < 0.07) * rng.integers(1, 13, (18, n_in))  # counts 1..12: up to 4 bit planes
    rasters.append(to_sparse(counts.astype(np.uint8)))
    return w_in, w_rec, rasters


INPUTS = {"amplitude": {}, "bit-serial": {"input_bits": 6, "input_bit_serial": True}}


def _shim_run(syn, rasters, ids, noise, K=3):
    mod = host_shim.build(cupy_backend.KERNEL_FILE, cupy_backend.kernel_defines(syn))
    return cupy_backend.run_batch(syn, rasters, ids, K, noise, True, xp=np, module=mod)


@needs_gxx
@pytest.mark.parametrize("dtype", [np.int8, np.int16], ids=["int8", "int16"])
@pytest.mark.parametrize("adc", [None, Adc(64, np.full(3, 0.03), np.full(2, 0.025), 250, gain_rec=np.array([1.01, 0.99]))], ids=["no-adc", "adc"])
@pytest.mark.parametrize("noise", [False, True], ids=["exact", "noisy"])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("inputs", INPUTS)
def test_shim_kernel_equals_numpy_reference(dtype, adc, noise, reset, inputs):
    w_in, w_rec, rasters = _problem(dtype)
    syn = Synapses(w_in, w_rec, 0.04, 1.0, 0.9, reset, noise_relative=0.05, noise_additive=0.01, adc=adc, seed=5, **INPUTS[inputs])
    ids = np.arange(20, 25)
    a = numpy_ref.run_batch(syn, rasters, ids, 3, noise, True)
    b = _shim_run(syn, rasters, ids, noise)
    assert 0.02 < a.rate.mean() < 0.6
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.membrane, b.membrane)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.rate, b.rate)


@needs_gxx
def test_shim_kernel_float_weights_agree_closely():
    """Continuous weights (no exact ties with the threshold): float sums in another order can
    still flip a spike now and then; the agreement is measured."""
    _, _, rasters = _problem(np.int8, seed=1)
    rng = np.random.default_rng(1)
    syn = Synapses(rng.normal(0, 0.45, (150, 70)), rng.normal(0, 0.45, (70, 70)), None, 1.0, 0.9)
    a = numpy_ref.run_batch(syn, rasters, np.arange(5), 3, False, True)
    b = _shim_run(syn, rasters, np.arange(5), False)
    agree = np.mean(np.concatenate([(x == y).ravel() for x, y in zip(a.spikes, b.spikes)]))
    assert agree > 0.999
    np.testing.assert_allclose(a.membrane, b.membrane, rtol=1e-5, atol=1e-5)


@needs_gxx
def test_shim_kernel_on_nmnist_small_reference_macro(nmnist_small):
    """Real N-MNIST, reference hyperparameters, taox macro: identical spikes, noise off and on,
    and the noisy membranes' mean and variance match the reference's."""
    from neurohw.data.nmnist import read_nmnist_folder

    ds = read_nmnist_folder(nmnist_small, "train")
    binning = Binning(n_bins=50, crop=(16, 16), polarity=0, mode="binary")
    rasters = [to_sparse(to_raster(ds[i][0], ds.sensor_size, binning)) for i in range(4)]
    enc = LSMEncoder(LSMConfig(n_inputs=256, n_neurons=200, v_th=5.0, decay=0.9, scale=0.07, backend="numpy"), "taox_rram_40nm")
    syn = enc.synapses()
    ids = np.arange(4)
    for noise in (False, True):
        a = numpy_ref.run_batch(syn, rasters, ids, 2, noise, True)
        b = _shim_run(syn, rasters, ids, noise, K=2)
        for sa, sb in zip(a.spikes, b.spikes):
            np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(a.membrane, b.membrane)
        np.testing.assert_array_equal(a.rate, b.rate)
        assert np.isclose(a.membrane.mean(), b.membrane.mean()) and np.isclose(a.membrane.var(), b.membrane.var())


def _nmnist_cases(root):
    """Four real N-MNIST samples, binary (16 x 16 crop, one polarity) and counts (34 x 34 / 2, both
    polarities), each with the reference macro's synapses (bit-serial 6-bit inputs)."""
    from neurohw.data.nmnist import read_nmnist_folder

    ds = read_nmnist_folder(root, "train")
    binnings = {"binary": Binning(n_bins=40, crop=(16, 16), polarity=0, mode="binary"),
                "count": Binning(n_bins=40, downsample=2, polarity="both", mode="count")}  # fmt: skip
    for kind, binning in binnings.items():
        rasters = [to_sparse(to_raster(ds[i][0], ds.sensor_size, binning)) for i in range(4)]
        cfg = LSMConfig(n_inputs=rasters[0].n_channels, n_neurons=200, v_th=5.0, decay=0.9, scale=0.07, backend="numpy")
        syn = LSMEncoder(cfg, "taox_rram_40nm").synapses()
        assert syn.bit_serial and syn.adc is not None and syn.integer
        top = max(int(r.values[: r.nnz].max()) for r in rasters)
        assert (top == 1) if kind == "binary" else (syn.n_planes(top) >= 3)
        yield kind, syn, rasters


def _assert_same_run(a, b):
    for sa, sb in zip(a.spikes, b.spikes):
        np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.membrane, b.membrane)
    np.testing.assert_array_equal(a.counts, b.counts)


@needs_gxx
def test_every_backend_identical_on_nmnist_small_binary_and_count_inputs(nmnist_small):
    """Real N-MNIST on the reference macro with read noise on: numpy, cpu and the CUDA kernel
    (host shim) give identical spikes, counts and membranes, for binary rasters and for count
    rasters read bit-serially (several bit planes per step)."""
    from neurohw.reservoir.backends import cpu

    for kind, syn, rasters in _nmnist_cases(nmnist_small):
        ids = np.arange(100, 104)
        a = numpy_ref.run_batch(syn, rasters, ids, 2, True, True)
        assert 0.01 < a.rate.mean() < 0.5, kind
        _assert_same_run(a, cpu.run_batch(syn, rasters, ids, 2, True, True))
        _assert_same_run(a, _shim_run(syn, rasters, ids, True, K=2))
        quiet = numpy_ref.run_batch(syn, rasters, ids, 2, False, False)
        assert not np.array_equal(quiet.membrane, a.membrane)  # the noise acts


@pytest.mark.gpu
def test_cupy_on_a_real_gpu_equals_numpy_on_nmnist_small(nmnist_small):
    """The same real samples on the GPU itself (benchmarks/gpu_check.sh runs this)."""
    for _, syn, rasters in _nmnist_cases(nmnist_small):
        for noise in (False, True):
            ids = np.arange(100, 104)
            _assert_same_run(numpy_ref.run_batch(syn, rasters, ids, 2, noise, True), cupy_backend.run_batch(syn, rasters, ids, 2, noise, True))


def test_kernel_rng_constants_are_the_modules_float32_values():
    """kernels/lsm.cu spells rng.py's float32 constants as decimal literals; each must parse to
    exactly the module's value (else the GPU draws would differ from numpy's)."""
    import re

    from neurohw.reservoir import rng

    src = cupy_backend.KERNEL_FILE.read_text()
    lit = {k: np.float32(float(v)) for k, v in re.findall(r"#define RNG_(\w+) (-?[0-9.e+-]+)f", src)}
    expected = {"LN2": rng.LN2, "SQRT_HALF": rng.SQRT_HALF, "ANGLE_STEP": rng.ANGLE_STEP, "ANGLE_MID": rng.ANGLE_MID}
    expected.update({f"ATANH{k}": c for k, c in zip((3, 5, 7, 9), rng.ATANH_C)})
    expected.update({f"SIN{k}": c for k, c in zip((3, 5, 7, 9), rng.SIN_C)})
    expected.update({f"COS{k}": c for k, c in zip((2, 4, 6, 8), rng.COS_C)})
    assert set(lit) == set(expected)
    for k, v in expected.items():
        assert lit[k] == v and lit[k].tobytes() == np.float32(v).tobytes(), k


@pytest.mark.gpu
@pytest.mark.parametrize("inputs", INPUTS)
def test_cupy_backend_on_a_real_gpu_equals_numpy(inputs):
    w_in, w_rec, rasters = _problem(np.int16)
    adc = Adc(64, np.full(3, 0.03), np.full(2, 0.025), 250)
    for noise in (False, True):
        syn = Synapses(w_in, w_rec, 0.04, 1.0, 0.9, noise_relative=0.05, adc=adc, seed=5, **INPUTS[inputs])
        a = numpy_ref.run_batch(syn, rasters, np.arange(5), 3, noise, True)
        b = cupy_backend.run_batch(syn, rasters, np.arange(5), 3, noise, True)
        np.testing.assert_array_equal(a.membrane, b.membrane)
        for sa, sb in zip(a.spikes, b.spikes):
            np.testing.assert_array_equal(sa, sb)
