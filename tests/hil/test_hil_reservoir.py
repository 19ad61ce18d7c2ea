"""The reservoir with its reads on a macro against the numpy reference backend on the same
Synapses: noise off, identical spikes (one and several tiles, binary and count inputs, over
LocalMacro and RemoteMacro); noise on, the same firing statistics; and the encoders' crossbars
formed on the macro equal to LSMEncoder's own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _hil import device, live_server

from neurohw.data.binning import to_sparse
from neurohw.hil.macro import LocalMacro
from neurohw.hil.remote import RemoteMacro
from neurohw.hil.reservoir import MacroReservoir, block_seed, form_encoder_crossbars
from neurohw.reservoir.backends import numpy_ref
from neurohw.reservoir.lsm import LSMConfig, LSMEncoder, derived_seeds


def _rasters(n_in: int, count: int, seed: int, density: float = 0.08, counts: bool = False) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        T = int(rng.integers(12, 30))
        x = (rng.random((T, n_in)) < density).astype(np.uint8)
        if counts:
            x = x * rng.integers(1, 6, (T, n_in)).astype(np.uint8)
        out.append(to_sparse(x))
    return out


def _setup(dev, n_in: int, n: int, macro, seed: int = 3, scale: float = 0.08, decay: float = 0.9):
    cfg = LSMConfig(n_inputs=n_in, n_neurons=n, scale=scale, v_th=5.0, decay=decay, seed=seed, backend="numpy")
    enc = LSMEncoder(cfg, dev)
    xin, xrec = form_encoder_crossbars(macro, dev, n_in, n, enc.seeds, scale=scale)
    return enc, xin, xrec


def _equal(a, b) -> None:
    assert np.array_equal(a.rate, b.rate) and np.array_equal(a.counts, b.counts) and np.array_equal(a.membrane, b.membrane)
    if a.spikes is not None:
        assert all(np.array_equal(x, y) for x, y in zip(a.spikes, b.spikes))


@pytest.mark.parametrize("name", ["taox_rram_40nm", "pcm_like", "ideal"])
def test_single_tile_crossbars_are_from_formings(name):
    dev = device(name)
    enc, xin, xrec = _setup(dev, 100, 60, LocalMacro(dev, tiles=2, chip_seed=0))
    for mine, theirs in ((xin.crossbar, enc.crossbar_in), (xrec.crossbar, enc.crossbar_rec)):
        assert np.array_equal(mine.g_pos, theirs.g_pos) and np.array_equal(mine.g_neg, theirs.g_neg)
        assert np.array_equal(mine.formed, theirs.formed) and mine.scale == theirs.scale and mine.seed == theirs.seed
        assert mine.ledger.programming_pulses == theirs.ledger.programming_pulses
    assert [b.block.tile for b in xin.blocks + xrec.blocks] == [0, 1]


def test_quickstart_sized_encoders_are_the_local_ones():
    """The quickstart's image (392 inputs) and audio (64) encoders of 256 neurons each fit one
    tile per crossbar: forming on the macro gives the local encoders' conductances exactly."""
    dev = device()
    for n_in, seed in ((392, 1), (64, 0)):
        macro = LocalMacro(dev, tiles=2, chip_seed=7)
        enc, xin, xrec = _setup(dev, n_in, 256, macro, seed=seed)
        assert np.array_equal(xin.crossbar.conductance_map(), enc.crossbar_in.conductance_map())
        assert np.array_equal(xrec.crossbar.conductance_map(), enc.crossbar_rec.conductance_map())
        # the backend accepts the local encoder's synapses: they are the macro's weights
        syn = enc.synapses(0.07)
        MacroReservoir(macro, xin, xrec).run_batch(syn, _rasters(n_in, 1, 0), [0], 1, False)


def test_connectivity_masks_leave_pairs_unformed_like_the_encoder():
    dev = device()
    cfg = LSMConfig(n_inputs=50, n_neurons=40, scale=0.08, p_in=0.5, p_rec=0.3, seed=5, backend="numpy")
    enc = LSMEncoder(cfg, dev)
    xin, xrec = form_encoder_crossbars(LocalMacro(dev, tiles=2), dev, 50, 40, enc.seeds, scale=0.08, p_in=0.5, p_rec=0.3)
    assert np.array_equal(xin.crossbar.g_pos, enc.crossbar_in.g_pos) and np.array_equal(xrec.crossbar.g_neg, enc.crossbar_rec.g_neg)


@pytest.mark.parametrize("counts", [False, True])
def test_noise_off_equals_numpy_reference_single_tile(counts):
    dev = device()
    macro = LocalMacro(dev, tiles=2, chip_seed=1)
    enc, xin, xrec = _setup(dev, 120, 80, macro)
    syn = enc.synapses(0.08)
    rasters = _rasters(120, 6, 0, counts=counts)
    ids = np.arange(10, 16)
    ref = numpy_ref.run_batch(syn, rasters, ids, 4, False, True)
    got = MacroReservoir(macro, xin, xrec).run_batch(syn, rasters, ids, 4, False, True)
    _equal(ref, got)
    assert 0.01 < ref.rate.mean() < 0.5


def test_noise_off_equals_numpy_reference_over_several_tiles():
    # a small array (32 rows x 16 pairs) makes 70 x 40 crossbars span 3 x 3 tiles
    dev = device("taox_rram_40nm", **{"array.rows": 32, "array.cols": 32})
    macro = LocalMacro(dev, tiles=18, chip_seed=2)
    cfg = LSMConfig(n_inputs=70, n_neurons=40, scale=0.25, v_th=5.0, decay=0.9, seed=4, backend="numpy")
    enc = LSMEncoder(cfg, dev)
    xin, xrec = form_encoder_crossbars(macro, dev, 70, 40, enc.seeds, scale=0.25)
    assert (xin.row_tiles, xin.col_tiles, xrec.row_tiles, xrec.col_tiles) == (3, 3, 2, 3)
    # each block is formed with its own child seed: the block equals from_forming of that seed
    from neurohw.crossbar import Crossbar

    b = xin.at(1, 2)
    part = Crossbar.from_forming(dev, b.nrows, b.ncols, 0.25, block_seed(enc.seeds["in"], 1, 2))
    assert np.array_equal(xin.crossbar.g_pos[32:64, 32:40], part.g_pos)
    syn = LSMEncoder.from_crossbars(xin.crossbar, xrec.crossbar, cfg).synapses(0.25)
    assert syn.adc is not None and len(syn.adc.step_in) == 3
    rasters = _rasters(70, 5, 1, density=0.1)
    ref = numpy_ref.run_batch(syn, rasters, np.arange(5), 3, False, True)
    got = MacroReservoir(macro, xin, xrec).run_batch(syn, rasters, np.arange(5), 3, False, True)
    _equal(ref, got)
    assert ref.rate.mean() > 0.01


def test_remote_macro_gives_the_local_macros_spikes_noise_on_and_off():
    dev = device()
    rasters = _rasters(90, 5, 2)
    results = {}
    with live_server(dev, tiles=2) as srv:
        for kind in ("local", "remote"):
            macro = LocalMacro(dev, tiles=2, chip_seed=11) if kind == "local" else RemoteMacro(srv.url, chip_seed=11)
            enc, xin, xrec = _setup(dev, 90, 64, macro)
            be = MacroReservoir(macro, xin, xrec)
            syn = enc.synapses(0.08)
            results[kind] = (be.run_batch(syn, rasters, np.arange(5), 2, True, True), be.run_batch(syn, rasters, np.arange(5), 2, False, True))
            ref = numpy_ref.run_batch(syn, rasters, np.arange(5), 2, False, True)
            _equal(ref, results[kind][1])
            macro.close()
    _equal(results["local"][0], results["remote"][0])
    assert not np.array_equal(results["local"][0].membrane, results["local"][1].membrane)  # the noise did something


def test_noisy_reads_do_not_depend_on_batching():
    dev = device()
    macro = LocalMacro(dev, tiles=2, chip_seed=5)
    enc, xin, xrec = _setup(dev, 80, 50, macro)
    be = MacroReservoir(macro, xin, xrec)
    syn = enc.synapses(0.08)
    rasters = _rasters(80, 6, 3)
    whole = be.run_batch(syn, rasters, np.arange(6), 2, True)
    parts = [be.run_batch(syn, rasters[i : i + 2], np.arange(i, i + 2), 2, True) for i in (0, 2, 4)]
    assert np.array_equal(whole.membrane, np.concatenate([p.membrane for p in parts]))
    assert np.array_equal(whole.counts, np.concatenate([p.counts for p in parts]))


def test_noise_on_matches_the_reference_statistics():
    """Chip noise and the reference's Philox noise are different draws of the same model: the
    mean firing rates over 48 samples agree within the reference's own seed-to-seed spread."""
    dev = device("taox_rram_40nm", **{"read_noise.relative": 0.1})  # strong noise, a visible effect
    macro = LocalMacro(dev, tiles=2, chip_seed=9)
    enc, xin, xrec = _setup(dev, 100, 64, macro, scale=0.07)
    syn = enc.synapses(0.07)
    rasters = _rasters(100, 48, 4, density=0.1)
    ids = np.arange(48)
    quiet = numpy_ref.run_batch(syn, rasters, ids, 1, False).rate
    ref_rates = [numpy_ref.run_batch(replace_seed(syn, s), rasters, ids, 1, True).rate.mean() for s in range(4)]
    be = MacroReservoir(macro, xin, xrec)
    hil = be.run_batch(syn, rasters, ids, 1, True).rate
    spread = np.std(ref_rates, ddof=1)
    assert abs(hil.mean() - np.mean(ref_rates)) < 4 * spread + 1e-3
    assert abs(hil.mean() - quiet.mean()) > 0 and np.mean(hil != quiet) > 0.05
    # per neuron, rates of the noisy runs correlate as two reference seeds do
    ref_a = numpy_ref.run_batch(replace_seed(syn, 0), rasters, ids, 1, True).rate.mean(0)
    ref_b = numpy_ref.run_batch(replace_seed(syn, 1), rasters, ids, 1, True).rate.mean(0)
    c_ref = np.corrcoef(ref_a, ref_b)[0, 1]
    c_hil = np.corrcoef(ref_a, hil.mean(0))[0, 1]
    assert c_hil > c_ref - 0.05


def replace_seed(syn, seed: int):
    return dataclasses.replace(syn, seed=seed)


def test_no_adc_device_reads_as_the_reference():
    dev = device("taox_rram_40nm", **{"adc.bits": None})  # levels, no ADC: integer sums recovered
    macro = LocalMacro(dev, tiles=2, chip_seed=1)
    enc, xin, xrec = _setup(dev, 60, 40, macro, scale=0.1)
    syn = enc.synapses(0.1)
    rasters = _rasters(60, 4, 5, density=0.15)
    _equal(
        numpy_ref.run_batch(syn, rasters, np.arange(4), 2, False, True), MacroReservoir(macro, xin, xrec).run_batch(syn, rasters, np.arange(4), 2, False, True)
    )
    ideal = device("ideal")  # continuous conductances: equal up to rounding
    macro = LocalMacro(ideal, tiles=2)
    enc, xin, xrec = _setup(ideal, 60, 40, macro, scale=0.1)
    syn = enc.synapses(0.1)
    ref = numpy_ref.run_batch(syn, rasters, np.arange(4), 2, False)
    got = MacroReservoir(macro, xin, xrec).run_batch(syn, rasters, np.arange(4), 2, False)
    assert np.mean(ref.counts == got.counts) > 0.999
    np.testing.assert_allclose(ref.membrane, got.membrane, rtol=1e-4, atol=1e-4)


def test_synapses_of_other_crossbars_are_refused():
    dev = device()
    macro = LocalMacro(dev, tiles=4)
    enc, xin, xrec = _setup(dev, 40, 30, macro, seed=1)
    other = LSMEncoder(LSMConfig(n_inputs=40, n_neurons=30, scale=0.08, seed=2, backend="numpy"), dev)
    with pytest.raises(ValueError, match="not the levels"):
        MacroReservoir(macro, xin, xrec).run_batch(other.synapses(0.08), _rasters(40, 1, 0), [0], 1, False)
    # the same crossbars at another scale are fine (calibration changes the scale)
    res = MacroReservoir(macro, xin, xrec).run_batch(enc.synapses(0.2), _rasters(40, 2, 0), [0, 1], 1, False)
    assert np.array_equal(res.rate, numpy_ref.run_batch(enc.synapses(0.2), _rasters(40, 2, 0), [0, 1], 1, False).rate)


def test_an_encoder_with_the_macro_as_its_backend_calibrates_and_encodes_like_the_local_one():
    """The wiring for single-tile crossbars: form them on the macro with the encoder's seeds and
    make an encoder on them (LSMEncoder.from_crossbars) whose backend is the macro reservoir; target-rate calibration (noise-free reads)
    and encoding give the local encoder's scale and features exactly."""
    dev = device()
    rasters = _rasters(100, 24, 6)
    cfg = LSMConfig(n_inputs=100, n_neurons=64, target_rate=0.08, calibration_samples=16, noise=False, seed=12, features=("rate", "counts"), backend="numpy")
    local = LSMEncoder(cfg, dev)
    with live_server(dev, tiles=2) as srv, RemoteMacro(srv.url, chip_seed=local.seeds["noise"]) as macro:
        xin, xrec = form_encoder_crossbars(macro, dev, 100, 64, derived_seeds(cfg.seed))
        hil = LSMEncoder.from_crossbars(xin.crossbar, xrec.crossbar, cfg)
        hil.backend = MacroReservoir(macro, xin, xrec)
        want = local.encode(rasters, batch_size=8, progress=False)
        got = hil.encode(rasters, batch_size=8, progress=False)
    assert hil.scale == local.scale
    assert np.array_equal(want["rate"], got["rate"]) and np.array_equal(want["counts"], got["counts"])


def test_the_python_example_of_the_protocol_doc_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "hil-protocol.md").read_text()
    block = text.split("In Python:", 1)[1].split("Equality with the local run:", 1)[0]
    code = "\n".join(line[4:] for line in block.strip("\n").splitlines())
    with live_server(device(), tiles=2) as srv:
        ns: dict = {}
        exec(code.replace("hil://127.0.0.1:7341", srv.url), ns)
        rasters = list((np.random.default_rng(0).random((70, 20, 392)) < 0.05).astype(np.uint8))
        rate = ns["encoder"].encode(rasters, progress=False)["rate"]
        ns["macro"].close()
    assert rate.shape == (70, 256) and abs(rate[:64].mean() - 0.06) < 0.06 * 0.05
