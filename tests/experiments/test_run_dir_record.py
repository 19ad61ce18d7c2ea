"""``encoders.json`` read back by its owner (:class:`neurohw.experiments.run_dir.RunDir`): the
chip-map crossbars at the tiles the run recorded (checked against the map's own cells, indexed
by hand), and a record of another format, a newer or unknown version or an inconsistent device
refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurohw.devices.chip_map import map_sha256
from neurohw.devices.model import load_device
from neurohw.errors import DeviceError, UserError
from neurohw.experiments.run_dir import RunDir
from neurohw.reservoir.lsm import LSMConfig

#: 64 x 64 arrays: 64 inputs and 32 differential outputs per tile
DEVICE = load_device("taox_rram_40nm", {"array.rows": 64, "array.cols": 64})


def _record(map_path, first_tiles):
    """A record of two modalities on a chip map: a (100 inputs, 40 neurons), b (20, 10)."""
    cm = {"path": str(map_path), "sha256": map_sha256(map_path)}
    seeds = {"7": [{"modality": m, "lsm": LSMConfig(n_inputs=n_in, n_neurons=n, scale=0.07, seed=s).model_dump(mode="json"),
                    "conductance_map": {**cm, "placement": first_tiles[m]}}
                   for m, n_in, n, s in (("a", 100, 40, 7000), ("b", 20, 10, 7001))]}
    return {"format": "neurohw-encoders", "format_version": 1, "neurohw_version": "x",
            "device": DEVICE.model_dump(mode="json"), "seeds": seeds}


def test_chip_map_crossbars_sit_where_the_run_recorded(tmp_path):
    rng = np.random.default_rng(0)
    g = rng.uniform(5.0, 150.0, (8, 64, 64))
    np.save(tmp_path / "chip.npy", g)
    # by hand: a/input 100 x 40 -> ceil(100/64) x ceil(40/32) = 2 x 2 tiles (0-3), a/recurrent
    # 40 x 40 -> 1 x 2 (4-5), b/input 20 x 10 -> 1 tile (6), b/recurrent 10 x 10 -> 1 tile (7)
    first = {"a": {"input": 0, "recurrent": 4}, "b": {"input": 6, "recurrent": 7}}
    rec = RunDir.from_record(json.loads(json.dumps(_record(tmp_path / "chip.npy", first))), tmp_path / "encoders.json")
    (a, b) = rec.encoders(7)
    assert [p.first_tile for e in (a, b) for p in e.source.placements] == [0, 4, 6, 7]
    assert [(p.row_tiles, p.col_tiles) for e in (a, b) for p in e.source.placements] == [(2, 2), (1, 2), (1, 1), (1, 1)]
    # b's input crossbar: tile 6, G+ of output j on bit line 2j, G- on 2j + 1
    cells = b.source.chip.cells(b.source.placements[0])
    np.testing.assert_array_equal(cells.g_pos, g[6, :20, 0:20:2])
    np.testing.assert_array_equal(cells.g_neg, g[6, :20, 1:20:2])
    # a's input crossbar, input 70 (second row tile), output 35 (second column tile, pair 3): tile 0 + 1 * 2 + 1
    cells = a.source.chip.cells(a.source.placements[0])
    assert cells.g_pos[70, 35] == g[3, 6, 6] and cells.g_neg[70, 35] == g[3, 6, 7]
    assert rec.device.model_dump() == DEVICE.model_dump()


@pytest.mark.parametrize("key, value, error, words", [
    ("format_version", 2, UserError, ("format_version 2", "newer neurohw", "upgrade")),
    ("format_version", 0, UserError, ("format_version 0", "unknown")),
    ("format_version", True, UserError, ("format_version True", "unknown")),
    ("format", "neurohw-heads", UserError, ("not an encoders record",)),
    ("seeds", [], UserError, ("seeds",)),
])
def test_a_record_of_another_format_or_version_is_refused(tmp_path, key, value, error, words):
    np.save(tmp_path / "chip.npy", np.ones((8, 64, 64)))
    rec = _record(tmp_path / "chip.npy", {"a": {"input": 0, "recurrent": 4}, "b": {"input": 6, "recurrent": 7}})
    rec[key] = value
    with pytest.raises(error) as info:
        RunDir.from_record(rec, tmp_path / "encoders.json")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and "encoders.json" in msg and all(w in msg for w in words), msg


def test_the_recorded_device_is_checked_as_a_device_yaml_is(tmp_path):
    np.save(tmp_path / "chip.npy", np.ones((8, 64, 64)))
    rec = _record(tmp_path / "chip.npy", {"a": {"input": 0, "recurrent": 4}, "b": {"input": 6, "recurrent": 7}})
    rec["device"]["programming"]["g_min_us"] = rec["device"]["programming"]["g_max_us"]  # each valid alone
    with pytest.raises(DeviceError, match="encoders.json: device: key 'programming.g_min_us'.*must be <"):
        RunDir.from_record(rec, tmp_path / "encoders.json")
