"""Measured conductance maps: NPY, CSV and HDF5 round trips and shape checks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurohw.crossbar import Crossbar
from neurohw.devices.conductance_map import read_conductance_map
from neurohw.devices.model import load_device
from neurohw.errors import DeviceError


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".h5"])
def test_round_trip(tmp_path, suffix):
    xb = Crossbar.from_forming("taox_rram_40nm", 30, 12, scale=0.07, seed=4)
    path = xb.save_conductance_map(tmp_path / f"map{suffix}")
    back = Crossbar.from_conductance_map("taox_rram_40nm", path, scale=0.07, seed=4)
    np.testing.assert_array_equal(back.g_pos, xb.g_pos)
    np.testing.assert_array_equal(back.g_neg, xb.g_neg)
    np.testing.assert_array_equal(back.weights(), xb.weights())
    assert back.integer_weights() is not None  # a measured map on the grid keeps its levels
    x = (np.random.default_rng(0).random((4, 30)) < 0.5).astype(float)
    np.testing.assert_array_equal(back.mvm(x), xb.mvm(x))  # same seed, same reads


def test_layout_is_interleaved_pairs():
    g_map = np.arange(12, dtype=float).reshape(2, 6)
    xb = Crossbar.from_conductance_map("ideal", g_map, scale=1.0)
    np.testing.assert_array_equal(xb.g_pos, [[0, 2, 4], [6, 8, 10]])
    np.testing.assert_array_equal(xb.weights(), -np.ones((2, 3)))
    assert xb.integer_weights() is None  # ideal: continuous


def test_h5_units_in_siemens_and_dataset_name(tmp_path):
    g = np.full((4, 8), 10.0)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("chip0/g", data=g * 1e-6).attrs["units"] = "S"
    np.testing.assert_allclose(read_conductance_map(tmp_path / "s.h5"), g)
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("g", data=g).attrs["units"] = "mS"
    with pytest.raises(DeviceError, match="units = 'mS'; allowed 'uS' or 'S'"):
        read_conductance_map(tmp_path / "bad.h5")


@pytest.mark.parametrize(
    "shape, value",
    [((600, 8), 1.0), ((8, 514), 1.0), ((8, 7), 1.0), ((8,), 1.0), ((4, 4), -1.0)],
)
def test_bad_maps_one_line(tmp_path, shape, value):
    path = tmp_path / "m.npy"
    np.save(path, np.full(shape, value))
    with pytest.raises(DeviceError) as exc:
        Crossbar.from_conductance_map(load_device("taox_rram_40nm"), path, scale=1.0)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    assert ("does not fit device 'taox_rram_40nm'" in msg and "1..512 rows" in msg) or "[0, inf)" in msg


def test_unreadable_files(tmp_path):
    (tmp_path / "a.csv").write_text("g0,g1\n1,2\n3,x\n")
    with pytest.raises(DeviceError, match="a.csv:3: not a number"):
        read_conductance_map(tmp_path / "a.csv")
    (tmp_path / "a.txt").write_text("1")
    with pytest.raises(DeviceError, match="unknown conductance map format"):
        read_conductance_map(tmp_path / "a.txt")
    with pytest.raises(DeviceError, match="no such conductance map"):
        read_conductance_map(tmp_path / "none.npy")
