"""``neurohw export RUN_DIR --format F``: a finished run out as conductance maps, NIR graphs,
ONNX / safetensors heads and bundles; its bad inputs are one line, exit code 2, nothing written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from neurohw.cli import main
from neurohw.crossbar import Crossbar
from neurohw.devices.model import load_device
from neurohw.devices.chip_map import place, read_chip_map
from neurohw.experiments.run_dir import write_manifest
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder
from neurohw.reservoir.nir_reader import read_reservoir

CONFIG = {
    "task": "classify",
    "seeds": [3, 4],
    "plots": False,
    "data": {"img": {"dataset": "digits-dvs", "max_train_per_class": 5, "max_test_per_class": 2,
                     "binning": {"n_bins": 10, "crop": [16, 16], "polarity": 0}}},
    "device": {"model": "taox_rram_40nm"},
    "reservoir": {"img": {"n_neurons": 24, "scale": 0.07}},
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "exp.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture(scope="module")
def run_dir(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", str(config), "--quiet", "--out", str(out)]) == 0
    (run,) = list(out.iterdir())
    return run


def _features(config_path, seed, overrides=()):
    """The run's features of ``seed`` as the pipeline computes them (from the feature cache)."""
    from neurohw.experiments.encoding import ModalityReservoir
    from neurohw.experiments.extraction import extract
    from neurohw.experiments.modalities import resolve_modalities
    from neurohw.experiments.schema import load_config

    cfg = load_config(config_path, list(overrides))
    (res,) = ModalityReservoir.for_seed(cfg, resolve_modalities(cfg, progress=False), seed)
    return {s: extract(res, s, 64, False).features["rate"] for s in ("train", "test")}


def test_export_writes_graph_and_maps_that_agree(run_dir, tmp_path, capsys):
    out = tmp_path / "nir"
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(out), "--seed", "4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img.nir"]
    assert main(["export", str(run_dir), "--format", "conductance-hdf5", "--out", str(tmp_path / "maps.h5"), "--seed", "4"]) == 0
    graph = read_reservoir(out / "img.nir")
    dev = load_device("taox_rram_40nm")
    chip = read_chip_map(tmp_path / "maps.h5", dev)
    cells = [chip.cells(p) for p in place([("img/input", 256, 24), ("img/recurrent", 24, 24)], dev)]
    w_in = Crossbar(dev, cells[0].g_pos, cells[0].g_neg, 0.07).weights()
    w_rec = Crossbar(dev, cells[1].g_pos, cells[1].g_neg, 0.07).weights()
    np.testing.assert_array_equal(graph.w_in, w_in)
    np.testing.assert_array_equal(graph.w_rec, w_rec)
    # the run's reservoir for seed 4, modality 0: seed 1000 * 4 + 0 (docs/experiments.md)
    ref = LSMEncoder(LSMConfig(n_inputs=256, n_neurons=24, scale=0.07, seed=4000), dev)
    np.testing.assert_array_equal(graph.w_in, ref.crossbar_in.weights())
    assert graph.decay == pytest.approx(0.9) and graph.v_th == 5.0


def test_export_refuses_bad_arguments(run_dir, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(tmp_path / "new"), "--seed", "9"]) == 2
    assert "seeds [3, 4]" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_bundle_holds_every_format_with_hashes_and_versions(run_dir, tmp_path, capsys):
    import hashlib

    out = tmp_path / "bundle"
    assert main(["export", str(run_dir), "--format", "bundle", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "neurohw-export-bundle" and manifest["run"]["run_seed"] == 3
    for key in ("neurohw", "nir", "onnx", "onnxruntime", "torch", "conductance_map_format", "onnx_opset"):
        assert manifest["versions"][key]
    formats = {f["format"] for f in manifest["files"]}
    assert formats == {"conductance-hdf5", "conductance-csv", "nir", "head-onnx", "head-safetensors"}
    for f in manifest["files"]:
        data = (out / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
    listed = {f["path"] for f in manifest["files"]} | {"manifest.json"}
    assert listed == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_onnx_head_matches_the_torch_head_on_the_runs_test_features(run_dir, config, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    from neurohw.export.run_export import RunArtifacts

    out = tmp_path / "onnx"
    assert main(["export", str(run_dir), "--format", "head-onnx", "--out", str(out), "--seed", "4"]) == 0
    model = onnx.load(str(out / "readout_img.onnx"))
    onnx.checker.check_model(model, full_check=True)
    x = _features(config, 4)["test"]
    got = ort.InferenceSession(str(out / "readout_img.onnx"), providers=["CPUExecutionProvider"]).run(None, {"features": x})[0]
    (head,) = RunArtifacts.load(run_dir, 4).heads
    import torch

    with torch.no_grad():
        ref = head.module(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() <= 1e-5
    assert ref.shape == (len(x), 10)


def test_safetensors_head_reloads_into_the_same_module(run_dir, tmp_path, capsys):
    from safetensors import safe_open

    out = tmp_path / "head.safetensors"
    assert main(["export", str(run_dir), "--format", "head-safetensors", "--out", str(out)]) == 0
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        assert json.loads(meta["features"]) == ["rate"] and meta["head_kind"] == "linear"
        assert json.loads(meta["classes"])["img"] == [str(c) for c in range(10)]
        from safetensors.torch import load_file

        original = load_file(str(run_dir / "heads" / "seed3.safetensors"))
        assert sorted(f.keys()) == sorted(original)
        for k in original:
            assert (f.get_tensor(k) == original[k]).all()


def test_nir_readout_is_the_head_on_the_rates(run_dir, config, tmp_path, capsys):
    """The graph's readout by NIR's own equations (integrator: v += dt r s per step; Affine at
    the last step) on spike trains with the run's test rates gives the torch head's logits."""
    import nir
    import torch

    from neurohw.export.run_export import RunArtifacts

    out = tmp_path / "nir"
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(out)]) == 0
    g = nir.read(str(out / "img.nir"))
    assert {("lif", "rate"), ("rate", "readout"), ("readout", "logits")} <= {tuple(e) for e in g.edges}
    rates = _features(config, 3)["test"]
    T, dt = 10, g.metadata["time_step_s"]
    r = np.asarray(g.nodes["rate"].r)
    counts = np.rint(rates * T).astype(int)
    v = np.zeros_like(rates, dtype=np.float64)
    for t in range(T):
        v += dt * r * (counts > t)  # any spike train with these counts
    logits = v @ np.asarray(g.nodes["readout"].weight).T + np.asarray(g.nodes["readout"].bias)
    (head,) = RunArtifacts.load(run_dir, 3).heads
    with torch.no_grad():
        ref = head.module(torch.from_numpy(rates)).numpy()
    np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-4)
    assert (logits.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("fmt, name", [("conductance-hdf5", "map.h5"), ("conductance-csv", "tiles")])
def test_a_run_on_the_exported_map_gives_the_exported_runs_features(fmt, name, run_dir, config, tmp_path, capsys):
    out = tmp_path / name
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out), "--seed", "4"]) == 0
    exported = _features(config, 4)
    mapped = _features(config, 4, [f"device.conductance_map={out}", "seeds=[4]"])
    for split in ("train", "test"):
        np.testing.assert_array_equal(mapped[split], exported[split])


def test_run_directory_without_encoders_json_rebuilds_the_same_encoders(run_dir, tmp_path, capsys):
    import h5py

    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old)
    (old / "encoders.json").unlink()
    (old / "manifest.json").unlink()  # as written before run manifests existed
    assert main(["export", str(old), "--format", "conductance-hdf5", "--out", str(tmp_path / "a.h5")]) == 0
    assert main(["export", str(run_dir), "--format", "conductance-hdf5", "--out", str(tmp_path / "b.h5")]) == 0
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a["conductance_us"][()], b["conductance_us"][()])


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err


def test_bad_run_directories_formats_and_paths(run_dir, config, tmp_path, capsys):
    new = tmp_path / "new"
    # not a run directory
    assert main(["export", str(tmp_path), "--format", "nir", "--out", str(new)]) == 2
    _one_line_error(capsys, "no config.yaml")
    # the old form: a config, with a pointer to the new one
    assert main(["export", str(config), "--out", str(new)]) == 2
    _one_line_error(capsys, "run directory", "neurohw run")
    # no format, unknown format
    assert main(["export", str(run_dir), "--out", str(new)]) == 2
    _one_line_error(capsys, "--format")
    with pytest.raises(SystemExit) as exc:
        main(["export", str(run_dir), "--format", "tflite", "--out", str(new)])
    assert exc.value.code == 2
    _one_line_error(capsys, "invalid choice")
    # a parent that is a file
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(blocker / "out")]) == 2
    _one_line_error(capsys, "is a file")
    # missing head weights: refused by the manifest for every format (the run directory is incomplete)
    broken = tmp_path / "no-heads"
    shutil.copytree(run_dir, broken)
    (broken / "heads" / "seed3.safetensors").unlink()
    for fmt in ("head-onnx", "conductance-csv"):
        assert main(["export", str(broken), "--format", fmt, "--out", str(new)]) == 2
        _one_line_error(capsys, "seed3.safetensors", "missing")
    # with the manifest rewritten to match (as if the run never had them): the head formats
    # refuse, the maps do not need them
    write_manifest(broken)
    assert main(["export", str(broken), "--format", "head-onnx", "--out", str(new)]) == 2
    _one_line_error(capsys, "seed3.safetensors", "missing")
    assert main(["export", str(broken), "--format", "conductance-csv", "--out", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    # a damaged encoders.json: refused by the manifest; then (manifest rewritten) by its reader
    (broken / "encoders.json").write_text("{not json")
    assert main(["export", str(broken), "--format", "conductance-hdf5", "--out", str(new)]) == 2
    _one_line_error(capsys, "encoders.json", "edited or damaged")
    write_manifest(broken)
    assert main(["export", str(broken), "--format", "conductance-hdf5", "--out", str(new)]) == 2
    _one_line_error(capsys, "encoders.json", "unreadable")
    # a map the run read that changed since
    rec = json.loads((run_dir / "encoders.json").read_text())
    stale = tmp_path / "stale.npy"
    np.save(stale, np.ones((2, 512, 512)))
    rec["seeds"]["3"][0]["conductance_map"] = {"path": str(stale), "sha256": "0" * 64, "placement": {"input": 0, "recurrent": 1}}
    (broken / "encoders.json").write_text(json.dumps(rec))
    write_manifest(broken)
    assert main(["export", str(broken), "--format", "conductance-csv", "--out", str(new)]) == 2
    _one_line_error(capsys, "stale.npy", "changed")
    # a run whose crossbars were read back from a chip over a link: not in the run directory
    rec = json.loads((run_dir / "encoders.json").read_text())
    rec["seeds"]["3"][0]["lsm"]["backend"] = "hil://127.0.0.1:9"
    (broken / "encoders.json").write_text(json.dumps(rec))
    write_manifest(broken)
    assert main(["export", str(broken), "--format", "conductance-csv", "--out", str(new)]) == 2
    _one_line_error(capsys, "ran on a chip", "hil://127.0.0.1:9")
    assert not new.exists()


def _newer(rec):
    rec["format_version"] = 2


def _unknown(rec):
    rec["format_version"] = "1"


def _not_a_record(rec):
    rec["format"] = "neurohw-something-else"


def _inconsistent_device(rec):  # each field valid alone; the device YAML check refuses the pair
    rec["device"]["forming"]["g_min_us"] = rec["device"]["forming"]["g_max_us"] + 1.0


@pytest.mark.parametrize("edit, words", [(_newer, ("format_version 2", "newer neurohw", "upgrade")),
                                         (_unknown, ("format_version '1'", "unknown")),
                                         (_not_a_record, ("not an encoders record",)),
                                         (_inconsistent_device, ("device", "forming.g_min_us", "exceeds"))])
def test_an_encoders_record_of_another_format_or_an_inconsistent_device_is_refused(run_dir, tmp_path, capsys, edit, words):
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken)
    rec = json.loads((run_dir / "encoders.json").read_text())
    edit(rec)
    (broken / "encoders.json").write_text(json.dumps(rec))
    write_manifest(broken)  # as if the run had written it: the record's own reader must refuse it
    out = tmp_path / "maps.h5"
    assert main(["export", str(broken), "--format", "conductance-hdf5", "--out", str(out)]) == 2
    _one_line_error(capsys, "encoders.json", *words)
    assert not out.exists()


@pytest.mark.parametrize("rel", ["heads/seed3.safetensors", "encoders.json", "config.yaml", "metrics.json"])
def test_an_edited_run_file_is_refused_naming_it(rel, run_dir, tmp_path, capsys):
    """One changed byte in any file of the run (head tensors, encoders.json, ...): export
    refuses with one line naming the file, for every format, and writes nothing."""
    edited = tmp_path / "edited"
    shutil.copytree(run_dir, edited)
    raw = bytearray((edited / rel).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (edited / rel).write_bytes(bytes(raw))
    for fmt in ("head-safetensors", "conductance-hdf5"):
        out = tmp_path / f"out-{fmt}"
        assert main(["export", str(edited), "--format", fmt, "--out", str(out)]) == 2
        _one_line_error(capsys, rel, "edited or damaged")
        assert not out.exists()
    edited_manifest = tmp_path / "edited-manifest"
    shutil.copytree(run_dir, edited_manifest)
    (edited_manifest / "manifest.json").write_text((run_dir / "manifest.json").read_text().replace('"files"', '"filez"'))
    assert main(["export", str(edited_manifest), "--format", "nir", "--out", str(tmp_path / "n")]) == 2
    _one_line_error(capsys, "manifest.json", "damaged")


def test_the_exported_nir_file_runs_in_snntorch_and_norse_like_the_run(run_dir, tmp_path, capsys):
    """The file `neurohw export --format nir` wrote (reservoir and readout branch), through the
    documented workarounds, on rasters of 19 steps: the run's encoder's spikes, noise off."""
    import copy
    import logging

    import nir
    import norse.torch as norse
    import torch
    from snntorch.import_nir import import_from_nir

    from neurohw.export.nir_graph import for_norse, for_snntorch
    from neurohw.export.run_export import RunArtifacts

    out = tmp_path / "nir"
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(out)]) == 0
    graph = nir.read(str(out / "img.nir"))
    enc = RunArtifacts.load(run_dir, 3, need_heads=False).encoders[0].encoder
    rng = np.random.default_rng(19)
    xs = [(rng.random((19, 256)) < 0.1).astype(np.uint8) for _ in range(3)]
    ref = enc.run_batch(xs, np.arange(3), noise=False, record_spikes=True).spikes
    logging.getLogger().setLevel(logging.ERROR)
    tools = {"snntorch": import_from_nir(copy.deepcopy(for_snntorch(graph))),
             "norse": norse.from_nir(for_norse(graph), dt=graph.metadata["time_step_s"])}
    for name, module in tools.items():
        for x, r in zip(xs, ref):
            for m in module.modules():
                if hasattr(m, "reset_mem"):
                    m.reset_mem()
            state, got = None, []
            with torch.no_grad():
                for t in range(len(x)):
                    s, state = module(torch.tensor(x[t : t + 1], dtype=torch.float32), state)
                    got.append(s[0].numpy() > 0)
            np.testing.assert_array_equal(np.array(got), np.asarray(r), err_msg=name)
    assert sum(int(np.asarray(r).sum()) for r in ref) > 10
