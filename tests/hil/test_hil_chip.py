"""The emulated chip against neurohw's crossbar and device models, computed independently:
FORM = Crossbar.from_forming's draws, PROGRAM = from_weights' write-verify, noise-free MVM =
Crossbar.mvm, read-noise variance = the noise-equivalent formula, drift = the power law, IR
drop = the crossbar's; and every out-of-range request refused without a change."""

from __future__ import annotations

import numpy as np
import pytest
from _hil import device, device_from_yaml

from neurohw.crossbar import Crossbar
from neurohw.devices.drift import drifted
from neurohw.hil.chip import ChipEmulator, interleave
from neurohw.hil.errors import ChipRangeError, HilStatusError
from neurohw.hil.macro import LocalMacro, bit_planes, combine_planes
from neurohw.hil.messages import Block
from neurohw.hil.protocol import Status


def _stuck_pcm():
    def edit(raw):
        raw["stuck"].update(p_on=0.01, p_off=0.02)

    return device_from_yaml("pcm_like", edit)


@pytest.mark.parametrize("which", ["taox", "pcm_stuck"])
def test_form_takes_from_formings_draws(which):
    dev = device() if which == "taox" else _stuck_pcm()
    n_in, n_out = dev.tile_rows - 3, dev.tile_cols - 1
    chip = ChipEmulator(dev, tiles=2, seed=11)
    b = Block(1, 2, n_in, 1, n_out)
    rep = chip.form(b, 4242)
    xb = Crossbar.from_forming(dev, n_in, n_out, 0.07, 4242)
    assert np.array_equal(chip.read(b), interleave(xb.g_pos, xb.g_neg))
    assert np.array_equal(rep.formed, interleave(xb.formed[0], xb.formed[1]))
    assert rep.formed_cells == int(xb.formed.sum())
    assert rep.stuck_cells == int((xb.stuck_code != 0).sum())
    assert rep.pulses == dev.forming.pulses_per_cell * 2 * n_in * n_out
    if dev.drift.enabled:  # the drift exponents are from_forming's too
        t = 5000.0
        chip.advance(t)
        want = interleave(drifted(xb.g_pos, xb.nu[0], t, dev.drift.t0_s), drifted(xb.g_neg, xb.nu[1], t, dev.drift.t0_s))
        np.testing.assert_allclose(chip.read(b), want, rtol=1e-14, atol=0)


def test_form_mask_touches_only_the_masked_pairs():
    dev = device()
    chip = ChipEmulator(dev, tiles=1, seed=0)
    b = Block(0, 0, 40, 0, 30)
    mask = np.random.default_rng(3).random((40, 30)) < 0.6
    rep = chip.form(b, 7, mask)
    xb = Crossbar.from_forming(dev, 40, 30, 1.0, 7)
    m2 = np.repeat(mask, 2, axis=1)
    g = chip.read(b)
    full = interleave(xb.g_pos, xb.g_neg)
    assert np.array_equal(g[m2], full[m2]) and np.all(g[~m2] == 0.0)
    assert rep.formed_cells == int(np.repeat(mask, 2, axis=1)[interleave(xb.formed[0], xb.formed[1])].sum())


def test_program_is_from_weights_write_verify():
    dev = device(**{"forming.probability": 1.0})  # every cell forms: every cell can be written
    rng = np.random.default_rng(5)
    W = rng.normal(size=(50, 20))
    xb = Crossbar.from_weights(dev, W, seed=99)
    prog = dev.programming
    targets = prog.g_min_us + np.stack([np.maximum(W, 0), np.maximum(-W, 0)]) / xb.scale
    chip = ChipEmulator(dev, tiles=1, seed=0)
    b = Block(0, 0, 50, 0, 20)
    assert chip.form(b, 1).formed_cells == 2000
    rep = chip.program(b, interleave(targets[0], targets[1]), 99)
    assert np.array_equal(chip.read(b), interleave(xb.g_pos, xb.g_neg))
    assert np.array_equal(rep.pulses, interleave(xb.pulses[0], xb.pulses[1]))
    assert np.array_equal(rep.converged, interleave(xb.converged[0], xb.converged[1]))
    assert rep.total_pulses == int(xb.pulses.sum()) and rep.programmed == 2000


def test_program_nan_leaves_cells_and_stuck_cells_keep_their_value():
    dev = device()
    chip = ChipEmulator(dev, tiles=1, seed=2, extra_stuck=0.05, extra_stuck_kind="on")
    b = Block(0, 0, 64, 0, 64)
    formed = chip.form(b, 1).formed
    before = chip.read(b)
    t = np.full((64, 128), 20.0)
    t[:10] = np.nan
    rep = chip.program(b, t, 3)
    after = chip.read(b)
    assert np.array_equal(after[:10], before[:10])
    stuck_on = before == 40.0  # injected stuck-on cells sit at g_on_us
    assert stuck_on.mean() == pytest.approx(0.05, abs=0.01)
    assert np.all(after[stuck_on] == 40.0)
    free = ~stuck_on[10:] & formed[10:]
    assert np.all(np.abs(after[10:][free] - 20.0) <= dev.programming.tolerance_us + 1e-12)
    stuck = stuck_on[10:] & formed[10:]
    assert not rep.converged[10:][stuck].any() and np.all(rep.pulses[10:][stuck] == dev.programming.max_pulses)
    # cells that did not form are not written: value unchanged, 0 pulses, not converged
    unformed = ~formed[10:]
    assert unformed.sum() > 50
    assert np.array_equal(after[10:][unformed], before[10:][unformed])
    assert np.all(rep.pulses[10:][unformed] == 0) and not rep.converged[10:][unformed].any()
    assert rep.programmed == int(formed[10:].sum())


def test_form_on_formed_cells_is_refused_and_changes_nothing():
    chip = ChipEmulator(device(), tiles=1, seed=0)
    b = Block(0, 0, 16, 0, 8)
    mask = np.zeros((16, 8), bool)
    mask[:, :4] = True
    first = chip.form(b, 1, mask)
    assert first.formed_cells > 0
    g = chip.read(b)
    with pytest.raises(ChipRangeError, match="already formed") as exc:
        chip.form(b, 2)
    assert exc.value.status == Status.BAD_REQUEST
    assert np.array_equal(chip.read(b), g)
    chip.form(b, 2, ~mask)  # the other pairs (never formed) may still be formed
    chip.reset()
    chip.form(b, 3)  # after RESET the whole block is pristine again


def test_mvm_vectors_count_only_planes_with_an_active_row():
    chip = ChipEmulator(device(), tiles=1, seed=0)
    b = Block(0, 0, 16, 0, 8)
    chip.form(b, 1)
    planes = np.zeros((5, 2, 16), np.uint8)
    planes[0, 0, 3] = planes[2, 1, 0] = planes[2, 0, 5] = 1
    codes = chip.mvm(b, planes, np.arange(5))
    assert np.all(codes[1] == 0) and np.all(codes[0, 1] == 0)
    assert chip.counters()["ops"]["MVM_VECTORS"] == 3


def test_mvm_noise_free_equals_crossbar_mvm_binary_and_bit_serial():
    dev = device()
    n_in, n_out = 300, 200
    chip = ChipEmulator(dev, tiles=1, seed=0)
    b = Block(0, 0, n_in, 0, n_out)
    chip.form(b, 31)
    xb = Crossbar.from_forming(dev, n_in, n_out, 0.05, 31)
    info = chip.info()
    rng = np.random.default_rng(0)
    x = (rng.random((16, n_in)) < 0.2).astype(np.uint8)
    codes = chip.mvm(b, x[:, None, :], np.arange(16), exact=True)
    assert codes.dtype == np.int32
    step = xb.adc.step[0]
    assert step == 0.05 * info.lsb_us  # the host's conversion: scale x LSB
    assert np.array_equal(codes[:, 0, :] * step, xb.mvm(x.astype(float), noise=False))
    xc = rng.integers(0, 64, (8, n_in)) * (rng.random((8, n_in)) < 0.1)
    planes = bit_planes(xc)
    assert planes.shape == (8, 6, n_in)
    got = combine_planes(chip.mvm(b, planes, np.arange(8), exact=True)) * step
    np.testing.assert_allclose(got, xb.mvm(xc.astype(float), noise=False), rtol=1e-12, atol=1e-12)
    # the chip counts what the crossbar's ledger counts
    xb.ledger.reset()
    chip.ledger.reset()
    xb.mvm(x.astype(float), noise=False)
    chip.mvm(b, x[:, None, :], np.arange(16), exact=True)
    assert chip.ledger.counts() == xb.ledger.counts()


def test_mvm_per_tile_gain_matches_the_crossbars_adc():
    dev = device("pcm_like")
    n_in, n_out = dev.tile_rows, dev.tile_cols  # the crossbar is the whole tile
    chip = ChipEmulator(dev, tiles=1, seed=0)
    b = Block(0, 0, n_in, 0, n_out)
    chip.form(b, 8)
    xb = Crossbar.from_forming(dev, n_in, n_out, 0.1, 8)
    info = chip.info()
    assert info.per_tile_gain
    np.testing.assert_allclose(0.1 * info.tile_lsb_us[0], xb.adc.step[0], rtol=1e-12)
    x = (np.random.default_rng(1).random((32, n_in)) < 0.2).astype(np.uint8)
    codes = chip.mvm(b, x[:, None, :], np.arange(32), exact=True)[:, 0, :]
    local = xb.mvm(x.astype(float), noise=False) / xb.adc.step[0]
    assert np.mean(codes == np.rint(local)) > 0.999
    assert np.max(np.abs(codes - local)) <= 1


def test_read_noise_variance_is_the_noise_equivalent_formula():
    dev = device("taox_rram_40nm", **{"adc.bits": None, "read_noise.additive_us": 0.3})
    chip = ChipEmulator(dev, tiles=1, seed=5)
    b = Block(0, 0, 128, 0, 64)
    chip.form(b, 2)
    g = chip.read(b)
    dg = g[:, 0::2] - g[:, 1::2]
    x = np.zeros(128, np.uint8)
    x[np.random.default_rng(2).choice(128, 20, replace=False)] = 1
    n = 4000
    out = chip.mvm(b, np.repeat(x[None, None, :], n, axis=0), np.arange(n))[:, 0, :]
    assert out.dtype == np.float64
    mean = x @ dg
    var = 0.02**2 * (x @ dg**2) + 0.3**2 * x.sum()
    # per column: the sample mean within 4 standard errors, the variance within 4 of its SEs
    assert np.all(np.abs(out.mean(0) - mean) < 4 * np.sqrt(var / n))
    assert np.all(np.abs(out.var(0, ddof=1) / var - 1) < 4 * np.sqrt(2 / (n - 1)))
    z = (out - mean) / np.sqrt(var)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_noise_is_keyed_by_nonce_not_by_order():
    dev = device()
    chip = ChipEmulator(dev, tiles=2, seed=9)
    b = Block(1, 0, 64, 3, 40)
    chip.form(b, 1)
    x = (np.random.default_rng(0).random((6, 1, 64)) < 0.3).astype(np.uint8)
    a = chip.mvm(b, x, np.arange(100, 106))
    again = chip.mvm(b, x, np.arange(100, 106))
    perm = np.array([5, 3, 1, 0, 2, 4])
    shuffled = chip.mvm(b, x[perm], np.arange(100, 106)[perm])
    assert np.array_equal(a, again) and np.array_equal(a[perm], shuffled)
    other = chip.mvm(b, x, np.arange(200, 206))
    assert not np.array_equal(a, other)
    assert not np.array_equal(a, chip.mvm(b, x, np.arange(100, 106), exact=True))
    # another chip seed draws other noise
    chip2 = ChipEmulator(dev, tiles=2, seed=10)
    chip2.form(b, 1)
    assert not np.array_equal(a, chip2.mvm(b, x, np.arange(100, 106)))


def test_ir_drop_reads_like_the_crossbar():
    # the chip's IR drop runs over its whole physical tile; a crossbar that fills the tile has
    # the same wires, so both must read the same
    dev = device("taox_rram_40nm", **{"ir_drop.enabled": True, "ir_drop.wire_resistance_ohm": 0.01, "adc.bits": None})
    n_in, n_out = dev.tile_rows, dev.tile_cols
    chip = ChipEmulator(dev, tiles=1, seed=0)
    b = Block(0, 0, n_in, 0, n_out)
    chip.form(b, 3)
    xb = Crossbar.from_forming(dev, n_in, n_out, 1.0, 3)
    x = (np.random.default_rng(4).random((5, n_in)) < 0.3).astype(np.uint8)
    got = chip.mvm(b, x[:, None, :], np.arange(5), exact=True)[:, 0, :]
    np.testing.assert_allclose(got, xb.mvm(x.astype(float), noise=False), rtol=1e-12, atol=1e-9)
    ideal = x @ (xb.g_pos - xb.g_neg)
    assert 1e-3 < np.abs(got - ideal).max() / np.abs(ideal).max() < 0.5  # a visible, first-order drop


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda c: c.read(Block(2, 0, 1, 0, 1)), "tile 2 does not exist"),
        (lambda c: c.read(Block(0, 500, 13, 0, 1)), "exceed the tile's 512 rows"),
        (lambda c: c.read(Block(0, 0, 1, 250, 7)), "exceed the tile's 256 pairs"),
        (lambda c: c.read(Block(0, 0, 0, 0, 1)), "empty block"),
        (lambda c: c.form(Block(0, 0, 4, 0, 4), 1, np.ones((3, 4), bool)), "mask"),
        (lambda c: c.program(Block(0, 0, 2, 0, 2), np.full((2, 4), 41.0), 1), "outside the programming window"),
        (lambda c: c.program(Block(0, 0, 2, 0, 2), np.full((2, 4), -1.0), 1), "outside the programming window"),
        (lambda c: c.program(Block(0, 0, 2, 0, 2), np.full((2, 4), np.inf), 1), "outside the programming window"),
        (lambda c: c.program(Block(0, 0, 2, 0, 2), np.zeros((2, 3)), 1), "shape"),
        (lambda c: c.mvm(Block(0, 0, 8, 0, 2), np.ones((1, 7, 8), np.uint8), np.zeros(1)), "1..6"),
        (lambda c: c.mvm(Block(0, 0, 8, 0, 2), np.full((1, 1, 8), 2), np.zeros(1)), "0 or 1"),
        (lambda c: c.mvm(Block(0, 0, 8, 0, 2), np.ones((1, 1, 9), np.uint8), np.zeros(1)), "planes have shape"),
        (lambda c: c.mvm(Block(0, 0, 8, 0, 2), np.ones((2, 1, 8), np.uint8), np.zeros(1)), "one nonce per vector"),
        (lambda c: c.advance(-1.0), "TIME"),
        (lambda c: c.advance(float("nan")), "TIME"),
        (lambda c: c.advance(1e13), "TIME"),
    ],
)
def test_out_of_range_requests_change_nothing(call, words):
    chip = ChipEmulator(device(), tiles=2, seed=0)
    b = Block(0, 0, 8, 0, 2)
    chip.form(b, 1)
    before = chip.read(b).copy()
    clock = chip.clock
    with pytest.raises(ChipRangeError, match=words):
        call(chip)
    assert np.array_equal(chip.read(b), before) and chip.clock == clock


def test_local_macro_refusals_are_one_line_with_the_status():
    m = LocalMacro(device(), tiles=1)
    with pytest.raises(HilStatusError) as e:
        m.read(Block(3, 0, 1, 0, 1))
    assert e.value.status == Status.OUT_OF_RANGE and "\n" not in str(e.value) and "READ refused (out of range)" in str(e.value)
    b = Block(0, 0, 8, 0, 8)
    with pytest.raises(HilStatusError) as e:  # a progress callback that returns False aborts
        m.form(b, 1, progress=lambda done, total: False)
    assert e.value.status == Status.ABORTED
    assert m.stats()["executed"].get("FORM", 0) == 0 and np.all(m.read(b) == 0)


def test_reset_returns_to_pristine_and_clock_zero():
    chip = ChipEmulator(device("pcm_like"), tiles=1, seed=0)
    b = Block(0, 0, 16, 0, 16)
    chip.form(b, 5)
    chip.advance(100.0)
    chip.reset()
    assert chip.clock == 0.0 and np.all(chip.read(b) == 0.0)
