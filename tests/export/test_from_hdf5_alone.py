"""The proof that a chip can be programmed and run from the exported files: the tiny quickstart's
reservoirs rebuilt from ``conductance.h5`` alone by a plain numpy script (tests/export/_hdf5_runner.py,
run in a subprocess where importing neurohw fails) give the run's spikes bit for bit on the raw
events of test samples, and the exported ONNX heads on its features give the run's projections
and retrieval predictions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurohw.cli import main

RUNNER = Path(__file__).with_name("_hdf5_runner.py")
SAMPLES = 4

BLOCK = """import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "neurohw" or name.startswith("neurohw."):
            raise ImportError("neurohw may not be imported by the runner")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    """The session's tiny noise-off quickstart run (tests/conftest.py) and its export bundle."""
    bundle = tmp_path_factory.mktemp("export") / "bundle"
    assert main(["export", str(tiny_run), "--format", "bundle", "--out", str(bundle)]) == 0
    return tiny_run, bundle


def _reservoirs(run_dir):
    from neurohw.experiments.encoding import ModalityReservoir
    from neurohw.experiments.modalities import resolve_modalities
    from neurohw.experiments.schema import load_config

    cfg = load_config(run_dir / "config.yaml")
    return ModalityReservoir.for_seed(cfg, resolve_modalities(cfg, progress=False), cfg.run_seeds[0])


@pytest.mark.slow
def test_hdf5_alone_gives_the_runs_spikes_and_predictions(run, tmp_path):
    import torch

    from neurohw.experiments.extraction import extract
    from neurohw.export.run_export import RunArtifacts
    from neurohw.reservoir.lsm import feature_matrix

    run_dir, bundle = run
    reservoirs = _reservoirs(run_dir)
    events, picked = {}, {}
    for res in reservoirs:
        m = res.mod.name
        picked[m] = np.arange(SAMPLES)  # positions in the run's test selection
        for k, i in enumerate(res.indices("test")[:SAMPLES]):
            ev = res.mod.test.events(int(i))
            for name in ev.dtype.names:
                events[f"{m}/{k}/{name}"] = np.asarray(ev[name])
    np.savez(tmp_path / "events.npz", **events)
    onnx = sorted(str(p) for p in (bundle / "onnx").glob("*.onnx"))
    proc = subprocess.run([sys.executable, "-c", BLOCK, str(RUNNER), str(bundle / "conductance.h5"), str(tmp_path / "events.npz"),
                           str(tmp_path / "out.npz"), *onnx], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    assert not bool(got["neurohw_imported"])

    art = RunArtifacts.load(run_dir)
    heads = {h.modality: h for h in art.heads}
    proj = {}
    for res in reservoirs:
        m = res.mod.name
        # spikes: the run's encoder (noise off, as the run) on the same samples
        for k, i in enumerate(res.indices("test")[:SAMPLES]):
            ref = res.spike_sample("test", int(i)).spikes
            assert ref.any(), "a silent sample proves nothing"
            np.testing.assert_array_equal(got[f"{m}/{k}/spikes"], ref)
        # features: the run's own, from its feature cache
        feats = extract(res, "test", 64, False).features
        x_run = feature_matrix({f: feats[f][:SAMPLES] for f in res.lsm.features}, res.lsm.features)
        np.testing.assert_array_equal(got[f"{m}/features"], x_run)
        # the head: ONNX on the runner's features against the run's torch head on its features
        h = heads[m]
        with torch.no_grad():
            want = h.module(torch.from_numpy(x_run)).numpy()
        out = got[f"{h.file_stem}.onnx/output"]
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
        proj[m] = (out, want)
    # predictions: top-1 retrieval audio -> image among the picked samples, as the run scores them
    (a_got, a_want), (b_got, b_want) = proj["audio"], proj["image"]
    np.testing.assert_array_equal((a_got @ b_got.T).argmax(axis=1), (a_want @ b_want.T).argmax(axis=1))


@pytest.mark.slow
def test_hdf5_holds_the_programming_sheet_and_operating_point(run):
    run_dir, bundle = run
    with h5py.File(bundle / "conductance.h5", "r") as f:
        assert f.attrs["format_version"] == 2 and "G+ on bit line 2p" in f.attrs["mapping"]
        for m in ("audio", "image"):
            for part in ("input", "recurrent"):
                g = f[f"crossbars/{m}/{part}"]
                sheet = g["programming"]
                assert sheet.attrs["source"] == "sampled forming"
                np.testing.assert_array_equal(sheet["target_us"][0], g["g_pos_us"][()])
                np.testing.assert_array_equal(sheet["programmed_us"][1], g["g_neg_us"][()])
                assert np.all(sheet["tolerance_us"][()] == 0.5) and np.all(sheet["converged"][()] == 1)
            op = f[f"operating_point/{m}"]
            v_th, step = op["neuron"].attrs["v_th"], op["adc_input"]["step"][()]
            np.testing.assert_array_equal(op["adc_input"]["v_th_codes"][()], v_th / step)
        # the image word lines: 28 x 28 crop of 34 x 34 (offset 3), downsample 2, two polarities
        w = f["operating_point/image/wiring"]
        table = w["sensor_to_word_line"][()]
        assert table.shape == (2, 34, 34) and table.max() == 2 * 14 * 14 - 1
        assert table[1, 3, 3] == 14 * 14 and table[0, 2, 3] == -1 and table[0, 30, 30] == 13 * 14 + 13
        assert (w["word_line_x_lo"][0], w["word_line_x_hi"][0], w["word_line_polarity"][14 * 14]) == (3, 4, 1)
        a = f["operating_point/audio/wiring/sensor_to_word_line"][()]
        np.testing.assert_array_equal(a[0, 0], np.arange(a.shape[2]))  # cochlea channel c -> word line c
