"""Whole-chip conductance maps: placement on tiles, HDF5 and per-tile CSV files that round-trip
bit for bit into crossbars with the same weights, and one-line errors for maps that do not fit."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import yaml

from neurohw.cli import main
from neurohw.crossbar import Crossbar
from neurohw.devices.model import load_device
from neurohw.errors import ConfigError, DeviceError
from neurohw.experiments.schema import load_config
from neurohw.devices.chip_map import CSV_COLUMNS, place, read_chip_map
from neurohw.export.chip_map import PROGRAM_COLUMNS, write_csv_tiles, write_hdf5
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder


@pytest.fixture(scope="module")
def device():
    # small tiles (64 x 32 cells: 16 pairs) so that crossbars span several tiles; stuck cells and
    # drift on, so that the stuck codes must travel too
    return load_device("taox_rram_40nm", {"array": {"rows": 64, "cols": 32}, "stuck": {"p_on": 0.02, "p_off": 0.02},
                                          "drift": {"enabled": True}})


@pytest.fixture(scope="module")
def encoders(device):
    a = LSMEncoder(LSMConfig(n_inputs=100, n_neurons=20, scale=0.05, seed=8, p_in=0.7), device)
    b = LSMEncoder(LSMConfig(n_inputs=30, n_neurons=40, scale=0.03, seed=9), device)
    return {"a": a, "b": b}


def _records(encoders, device):
    xbs, shapes = [], []
    for m, enc in encoders.items():
        xin, xrec = enc.crossbars()
        xbs += [xin, xrec]
        shapes += [(f"{m}/input", xin.n_in, xin.n_out), (f"{m}/recurrent", xrec.n_in, xrec.n_out)]
    return list(zip(place(shapes, device), xbs))


def test_placement_by_hand(device):
    """100 x 20 on 64-row, 16-pair tiles: 2 row tiles x 2 column tiles; the next crossbar starts
    on tile 4; cell (70, 17) is row tile 1, column tile 1 -> tile 3, row 6, pair 1."""
    p_in, p_rec = place([("a/input", 100, 20), ("a/recurrent", 20, 20)], device)
    assert (p_in.first_tile, p_in.row_tiles, p_in.col_tiles, p_rec.first_tile, p_rec.n_tiles) == (0, 2, 2, 4, 2)
    tile, row, col = p_in.cells(64, 16)
    assert (tile[70, 17], row[70, 17], col[70, 17]) == (3, 6, 1)
    assert (tile[5, 3], row[5, 3], col[5, 3]) == (0, 5, 3)


@pytest.mark.parametrize("kind", ["hdf5", "csv"])
def test_maps_round_trip_bit_exactly_into_crossbars(kind, encoders, device, tmp_path):
    records = _records(encoders, device)
    if kind == "hdf5":
        path = write_hdf5(tmp_path / "chip.h5", records, device, {"run_seed": 1})
    else:
        path = tmp_path / "tiles"
        path.mkdir()
        files = write_csv_tiles(path, records, device, {"run_seed": 1})
        assert len(files) == sum(p.n_tiles for p, _ in records)
        first = files[0].read_text().splitlines()
        assert any("device: taox_rram_40nm" in line for line in first[:12]) and any("scale_per_us" in line for line in first[:14])
        assert ",".join(CSV_COLUMNS + PROGRAM_COLUMNS) in first
        assert any("col = differential pair index" in line for line in first[:12])
    chip = read_chip_map(path, device)
    for p, xb in records:
        cells = chip.cells(p)
        np.testing.assert_array_equal(cells.g_pos, xb.g_pos)  # bit for bit
        np.testing.assert_array_equal(cells.g_neg, xb.g_neg)
        np.testing.assert_array_equal(cells.stuck_code, xb.stuck_code)
        back = Crossbar(device, cells.g_pos, cells.g_neg, xb.scale, xb.seed, stuck_code=cells.stuck_code)
        np.testing.assert_array_equal(back.weights(), xb.weights())
        np.testing.assert_array_equal(back.weights(t_s=3600.0), xb.weights(t_s=3600.0))  # drift: same stuck cells, same nu
        if xb.formed is not None:
            np.testing.assert_array_equal(cells.formed, xb.formed)


def test_hdf5_holds_cells_positions_and_device(encoders, device, tmp_path):
    records = _records(encoders, device)
    path = write_hdf5(tmp_path / "chip.h5", records, device, {"run_seed": 1})
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "neurohw-conductance-map" and f.attrs["format_version"] == 2
        assert f.attrs["units"] == "uS" and "taox_rram_40nm" in f.attrs["device_model"]
        assert f["conductance_us"].shape == (sum(p.n_tiles for p, _ in records), 64, 32)
        g = f["crossbars/a/input"]
        p, xb = records[0]
        assert g.attrs["scale_per_us"] == xb.scale and g.attrs["first_tile"] == 0
        t, r, c = g["tile"][()], g["row"][()], g["col"][()]
        np.testing.assert_array_equal(f["conductance_us"][()][t, r, 2 * c], xb.g_pos)
        np.testing.assert_array_equal(f["conductance_us"][()][t, r, 2 * c + 1], xb.g_neg)


def test_whole_chip_npy_is_placed_in_order(device, tmp_path):
    """A calibration's map (tiles only): the crossbars take their cells by the placement rule."""
    rng = np.random.default_rng(0)
    chip = rng.uniform(0, 30, size=(6, 64, 32))
    np.save(tmp_path / "chip.npy", chip)
    m = read_chip_map(tmp_path / "chip.npy", device)
    p_in, p_rec = place([("x/input", 40, 20), ("x/recurrent", 20, 20)], device)
    cells = m.cells(p_rec)
    # recurrent 20 x 20 after the input's 2 tiles: tiles 2 (pairs 0-15) and 3 (pairs 16-19)
    np.testing.assert_array_equal(cells.g_pos[:, :16], chip[2, :20, 0:32:2])
    np.testing.assert_array_equal(cells.g_neg[:, 16:], chip[3, :20, 1:8:2])


@pytest.mark.parametrize("make, message", [
    (lambda d: np.full((2, 64, 32), -1.0), "< 0"),
    (lambda d: np.where(np.eye(64, 32, dtype=bool)[None], np.nan, 1.0) * np.ones((2, 64, 32)), "non-finite"),
    (lambda d: np.full((2, 64, 32), np.inf), "non-finite"),
    (lambda d: np.ones((2, 65, 32)), "does not fit"),
    (lambda d: np.ones((2, 64, 34)), "does not fit"),
    (lambda d: np.ones((4,)), "does not fit"),
])
def test_bad_maps_are_one_line_errors(make, message, device, tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, make(device))
    with pytest.raises(DeviceError, match=message) as err:
        read_chip_map(path, device)
    assert "\n" not in str(err.value)


def test_too_small_a_map_and_bad_csvs(device, tmp_path):
    np.save(tmp_path / "one.npy", np.ones((64, 32)))
    m = read_chip_map(tmp_path / "one.npy", device)
    p_in, p_rec = place([("x/input", 40, 20), ("x/recurrent", 20, 20)], device)
    with pytest.raises(DeviceError, match="has 1 tile"):
        m.cells(p_in)
    bad = tmp_path / "bad.csv"
    bad.write_text("tile,row,col,g_pos_us,g_neg_us\n0,0,0,1.0,-2.0\n")
    with pytest.raises(DeviceError, match="< 0"):
        read_chip_map(bad, device)
    bad.write_text("tile,row,col,g_pos_us,g_neg_us\n0,0,99,1.0,2.0\n")
    with pytest.raises(DeviceError, match="outside"):
        read_chip_map(bad, device)
    bad.write_text("tile,row,col,g_pos_us,g_neg_us\n0,0,0,1.0,2.0\n")
    (small,) = place([("y/input", 10, 5)], device)
    with pytest.raises(DeviceError, match=r"cell \(0, 1\) = tile 0 row 0 pair 1 is not in the map"):
        read_chip_map(bad, device).cells(small)
    with pytest.raises(DeviceError, match="no such"):
        read_chip_map(tmp_path / "absent.h5", device)


def test_config_checks_the_map_at_load_time(tmp_path, capsys):
    raw = {"task": "classify", "data": {"img": {"dataset": "digits-dvs", "binning": {"n_bins": 8}}},
           "reservoir": {"img": {"n_neurons": 8, "scale": 0.07}},
           "device": {"model": "taox_rram_40nm", "conductance_map": str(tmp_path / "m.npy")}}
    np.save(tmp_path / "m.npy", -np.ones((2, 512, 512)))
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="device.*< 0"):
        load_config(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "m.npy" in err


def test_a_calibrations_folder_is_a_chip(device, tmp_path):
    """``neurohw hil calibrate`` writes conductance_map_tile<t>.h5 per measured tile (the
    single-crossbar map format): the folder reads as a chip, tile t at t; unmeasured tiles are
    missing."""
    from neurohw.devices.conductance_map import save_conductance_map

    rng = np.random.default_rng(1)
    maps = {t: rng.uniform(0, 30, size=(64, 32)) for t in (0, 1, 3)}
    for t, m in maps.items():
        save_conductance_map(tmp_path / f"conductance_map_tile{t}.h5", m[:, 0::2], m[:, 1::2])
    chip = read_chip_map(tmp_path, device)
    assert chip.n_tiles == 4 and np.isnan(chip.g_us[2]).all()
    np.testing.assert_array_equal(chip.g_us[3], maps[3])
    p_in, p_rec = place([("x/input", 64, 16), ("x/recurrent", 16, 16)], device)
    np.testing.assert_array_equal(chip.cells(p_rec).g_neg, maps[1][:16, 1::2])
    (late,) = place([("y/input", 64, 64)], device)  # 4 column tiles: 0..3, tile 2 was not measured
    with pytest.raises(DeviceError, match="tile 2 .* not in the map"):
        chip.cells(late)


def test_validate_checks_the_map_against_the_reservoirs(tmp_path, capsys):
    """A one-tile map for a reservoir that needs two tiles: `neurohw validate` says so, before
    any compute."""
    np.save(tmp_path / "one.npy", np.ones((512, 512)))
    raw = {"task": "classify", "data": {"img": {"dataset": "digits-dvs", "binning": {"n_bins": 8, "crop": [8, 8]}}},
           "reservoir": {"img": {"n_neurons": 8, "scale": 0.07}},
           "device": {"model": "taox_rram_40nm", "conductance_map": str(tmp_path / "one.npy")}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has 1 tile" in err and "img/recurrent" in err


def test_programming_sheet_of_write_verify_crossbars(device, tmp_path):
    """Programmed weights: the sheet's targets are the weights at the programming scale
    (computed here from W), the pulses and convergence the simulation's, and a converged cell
    sits within the verify tolerance of its (clipped) target; the CSV holds the same sheet."""
    import csv

    rng = np.random.default_rng(4)
    W = rng.normal(0, 1, (40, 20))
    scale = 0.1
    xin = Crossbar.from_weights(device, W, seed=3, scale=scale)
    xrec = Crossbar.from_weights(device, rng.normal(0, 1, (20, 20)), seed=4, scale=scale)
    records = list(zip(place([("m/input", 40, 20), ("m/recurrent", 20, 20)], device), [xin, xrec]))
    path = write_hdf5(tmp_path / "chip.h5", records, device, {})
    prog = device.programming
    with h5py.File(path, "r") as f:
        sheet = f["crossbars/m/input/programming"]
        assert sheet.attrs["source"] == "write-verify"
        target = sheet["target_us"][()]
        np.testing.assert_array_equal(target[0], prog.g_min_us + np.maximum(W, 0) / scale)
        np.testing.assert_array_equal(target[1], prog.g_min_us + np.maximum(-W, 0) / scale)
        np.testing.assert_array_equal(sheet["programmed_us"][0], xin.g_pos)
        np.testing.assert_array_equal(sheet["pulses"][()], xin.pulses)
        conv = sheet["converged"][()].astype(bool)
        np.testing.assert_array_equal(conv, xin.converged)
        assert conv.mean() > 0.5 and sheet["pulses"][()].max() > 1
        reached = np.abs(sheet["programmed_us"][()] - np.clip(target, prog.g_min_us, prog.g_max_us))
        assert reached[conv].max() <= prog.tolerance_us + device.levels.step_us / 2
        np.testing.assert_array_equal(sheet["tolerance_us"][()], np.full(target.shape, prog.tolerance_us))
        tile, row, col = f["crossbars/m/input/tile"][()], f["crossbars/m/input/row"][()], f["crossbars/m/input/col"][()]
    folder = tmp_path / "tiles"
    folder.mkdir()
    write_csv_tiles(folder, records, device, {})
    rows = [r for p in sorted(folder.glob("*.csv")) for r in csv.DictReader(line for line in p.open() if not line.startswith("#"))]
    where = {(int(r["tile"]), int(r["row"]), int(r["col"])): r for r in rows}
    for i, j in [(0, 0), (39, 19), (17, 5)]:
        r = where[(tile[i, j], row[i, j], col[i, j])]
        assert float(r["target_pos_us"]) == target[0, i, j] and float(r["target_neg_us"]) == target[1, i, j]
        assert int(r["pulses_pos"]) == xin.pulses[0, i, j] and int(r["converged_neg"]) == int(xin.converged[1, i, j])
    assert read_chip_map(folder, device).cells(records[0][0]).g_pos.tolist() == xin.g_pos.tolist()  # still a map
