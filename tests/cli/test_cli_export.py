"""``neurohw export``: an experiment's encoders as NIR graphs and conductance maps."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from neurohw.cli import main
from neurohw.crossbar import Crossbar
from neurohw.devices.model import load_device
from neurohw.export.nir_graph import read_reservoir
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder

CONFIG = {
    "task": "classify",
    "seeds": [3, 4],
    "data": {"img": {"dataset": "digits-dvs", "max_train_per_class": 5, "max_test_per_class": 2,
                     "binning": {"n_bins": 10, "crop": [16, 16], "polarity": 0}}},
    "device": {"model": "taox_rram_40nm"},
    "reservoir": {"img": {"n_neurons": 24, "scale": 0.07}},
}


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_export_writes_graph_and_maps_that_agree(config, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(config), "--out", str(out), "--seed", "4"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["img.nir", "img_input_conductances.h5", "img_recurrent_conductances.h5"]
    graph = read_reservoir(out / "img.nir")
    dev = load_device("taox_rram_40nm")
    w_in = Crossbar.from_conductance_map(dev, out / "img_input_conductances.h5", 0.07).weights()
    w_rec = Crossbar.from_conductance_map(dev, out / "img_recurrent_conductances.h5", 0.07).weights()
    np.testing.assert_array_equal(graph.w_in, w_in)
    np.testing.assert_array_equal(graph.w_rec, w_rec)
    # the run's reservoir for seed 4, modality 0: seed 1000 * 4 + 0 (docs/experiments.md)
    ref = LSMEncoder(LSMConfig(n_inputs=256, n_neurons=24, scale=0.07, seed=4000), dev)
    np.testing.assert_array_equal(graph.w_in, ref.crossbar_in.weights())
    assert graph.decay == pytest.approx(0.9) and graph.v_th == 5.0


def test_export_refuses_bad_arguments(config, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    assert main(["export", str(config), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(config), "--out", str(tmp_path / "new"), "--seed", "9"]) == 2
    assert "seeds [3, 4]" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
