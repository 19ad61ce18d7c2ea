"""A run exported to NIR and imported with ``reservoir.<m>.from_nir`` is the same run: the file's
conductances are taken as they are (not programmed again by write-verify), at the exported
scale, with the run's reservoir seed (ADC gains, read noise), so features and metrics equal the
run's exactly, with read noise off and on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from neurohw.cli import main
from neurohw.reservoir.nir_reader import read_reservoir

CONFIG = {
    "task": "classify",
    "seeds": [3],
    "plots": False,
    "data": {"img": {"dataset": "digits-dvs", "max_train_per_class": 20, "max_test_per_class": 4,
                     "binning": {"n_bins": 10, "crop": [16, 16], "polarity": 0}}},
    "device": {"model": "taox_rram_40nm"},
    "reservoir": {"img": {"n_neurons": 48, "target_rate": 0.08, "calibration_samples": 16, "reset": "subtract"}},
}


def _run(tmp_path, name, reservoir) -> dict:
    cfg = {**CONFIG, "name": name, "reservoir": {"img": reservoir}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / f"runs_{name}"
    assert main(["run", str(path), "--quiet", "--out", str(out)]) == 0
    (run_dir,) = list(out.iterdir())
    return run_dir


def _metrics(run_dir) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("timing", "name"):
        m.pop(key, None)
    for s in m.get("per_seed", []):
        s.pop("timing", None)
    return m


@pytest.mark.slow
@pytest.mark.parametrize("noise", [False, True])
def test_nir_export_then_from_nir_reproduces_the_run(noise, tmp_path):
    res = dict(CONFIG["reservoir"]["img"], noise=noise)
    run_dir = _run(tmp_path, "orig", res)
    nir_dir = tmp_path / "nir"
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(nir_dir)]) == 0
    graph = read_reservoir(nir_dir / "img.nir")
    assert graph.has_conductances and graph.reset == "subtract"
    # the imported reservoir: no scale, no target_rate, no reset: the file gives them
    back = _run(tmp_path, "back", {"from_nir": str(nir_dir / "img.nir"), "noise": noise})
    enc_a = json.loads((run_dir / "encoders.json").read_text())["seeds"]["3"][0]["lsm"]
    enc_b = json.loads((back / "encoders.json").read_text())["seeds"]["3"][0]["lsm"]
    assert enc_b["scale"] == enc_a["scale"] and enc_b["reset"] == "subtract" and enc_b["rec_scale"] == 1.0
    a, b = _metrics(run_dir), _metrics(back)
    assert a["test_accuracy"] == b["test_accuracy"] > 0.2 and a == b  # above chance (0.1): the head learned
    # the features behind them: the same bits (both runs' caches hold them)
    from neurohw.export.run_export import RunArtifacts

    xa = RunArtifacts.load(run_dir).encoders[0].encoder
    xb = RunArtifacts.load(back).encoders[0].encoder
    for ca, cb in zip(xa.crossbars(), xb.crossbars()):
        np.testing.assert_array_equal(ca.g_pos, cb.g_pos)
        np.testing.assert_array_equal(ca.weights(), cb.weights())
        np.testing.assert_array_equal(ca.adc.step, cb.adc.step)
    rng = np.random.default_rng(0)
    rasters = [(rng.random((10, xa.n_inputs)) < 0.1).astype(np.uint8) for _ in range(4)]
    ra = xa.run_batch(rasters, np.arange(4), record_spikes=True)
    rb = xb.run_batch(rasters, np.arange(4), record_spikes=True)
    for sa, sb in zip(ra.spikes, rb.spikes):
        np.testing.assert_array_equal(sa, sb)


def test_a_foreign_graph_is_still_programmed_by_write_verify(tmp_path):
    """Without neurohw's conductances (weights only) the graph is programmed: pulses spent."""
    import nir

    from neurohw.devices.model import load_device
    from neurohw.reservoir.nir_reader import programmed_crossbars

    n_in, n = 6, 5
    rng = np.random.default_rng(2)
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([n_in])}),
                            "w_in": nir.Linear(weight=rng.normal(0, 1, (n, n_in))),
                            "lif": nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                                           v_threshold=np.ones(n), v_reset=np.zeros(n)),
                            "w_rec": nir.Linear(weight=rng.normal(0, 0.1, (n, n))),
                            "output": nir.Output({"output": np.array([n])})},
                     edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph = read_reservoir(g)
    assert not graph.has_conductances and graph.reset == "hard"
    device = load_device("taox_rram_40nm")
    xin, xrec = programmed_crossbars(graph, device, 1, 2)
    assert xin.pulses is not None and xin.pulses.sum() > 0 and xin.targets is not None
    # the file names both: the targets (the graph's weights at the programming scale, exactly)
    # and the programmed values (within the verify tolerance of them, not equal)
    from neurohw.devices.chip_map import place
    from neurohw.export.chip_map import write_hdf5

    import h5py

    path = write_hdf5(tmp_path / "c.h5", list(zip(place([("m/input", n_in, n), ("m/recurrent", n, n)], device), [xin, xrec])),
                      device, {})
    with h5py.File(path, "r") as f:
        sheet = f["crossbars/m/input/programming"]
        t, p = sheet["target_us"][()], sheet["programmed_us"][()]
        assert sheet.attrs["source"] == "write-verify" and repr(xin.target_scale) in sheet.attrs["target_meaning"]
    np.testing.assert_array_equal((t[0] - t[1]) * xin.target_scale, graph.w_in)
    assert not np.array_equal(t, p) and np.abs(t - p)[xin.converged].max() <= device.programming.tolerance_us + device.levels.step_us / 2  # verified
    # against the target snapped to the levels


def test_an_edited_neurohw_file_is_refused(tmp_path):
    """Weights that no longer match the metadata's conductances: one line naming the node."""
    import nir

    from neurohw.errors import DataError
    from neurohw.export.nir_graph import write_nir
    from neurohw.reservoir.lsm import LSMConfig, LSMEncoder

    enc = LSMEncoder(LSMConfig(n_inputs=8, n_neurons=6, scale=0.07, seed=1))
    path = write_nir(enc, tmp_path / "r.nir")
    g = nir.read(str(path))
    g.nodes["w_rec"].weight[0, 0] += 1.0
    with pytest.raises(DataError, match="node 'w_rec': its weights differ from scale_per_us"):
        read_reservoir(g)
