"""The LSM reservoir with its crossbars on a macro: LIF neurons on the host, every read on the chip.

Forming (:func:`form_crossbar`, :func:`form_encoder_crossbars`): a logical crossbar of
``n_in x n_out`` is cut like :class:`neurohw.crossbar.Crossbar` cuts it, into row tiles of
``array.rows`` inputs and column tiles of ``array.cols // 2`` outputs; each (row tile, column
tile) block gets a tile of its own (:class:`TileAllocator`) and is formed there (FORM), then
read back (READ), so the host knows the weights (a :class:`Crossbar` with the read-back
conductances, the crossbar's scale and seed: the same ADC steps, export and reports as a
local crossbar). A crossbar that fits one tile is formed with its own seed, and FORM takes
``Crossbar.from_forming``'s draws for that seed: it gets exactly the conductances of the local
run. A crossbar over several tiles forms block ``(k, c)`` with the child seed
:func:`block_seed` ``(seed, k, c)``, as a chip forms its arrays one by one: the same
statistics as ``from_forming`` but not its draws (``from_forming`` draws the whole matrix from
one stream; changing it to tile-wise draws would change every existing multi-tile result).

Running (:class:`MacroReservoir`): ``run_batch(synapses, rasters, sample_ids, count_bins,
noise, record_spikes) -> BatchResult``, the signature of the reservoir backends. The LIF step
is :mod:`neurohw.reservoir.lif`'s, vectorised over the batch in the same float operations;
each time step is one exchange with the macro (``mvm_many``: for every row tile of the input
and recurrent crossbars with an active row in some sample, one MVM frame carrying those samples'
binary rows, or bit planes for count inputs, on each of its column tiles). Codes become
weight units as the backends' ADC rule does: ``code * step_k`` with the synapses' per-tile
step (gain fixed; equal to ``scale * lsb_us``), or ``scale * tile_lsb_us`` of the chip's tile
(gain per_tile); bit planes are shifted and added as integers first. Tiles are summed in the
backends' order (input tiles, then recurrent), so with read noise off (the EXACT flag) and a
fixed-gain ADC the spikes, counts and membranes equal :mod:`neurohw.reservoir.backends.numpy_ref`
bit for bit. With read noise on, the chip draws its own noise (keyed by sample and step, so
the result does not depend on the batching) and the statistics agree with the local run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from neurohw.crossbar import Crossbar
from neurohw.devices.model import DeviceModel
from neurohw.hil.errors import HilError
from neurohw.hil.macro import Macro, MvmCall, bit_planes, combine_planes
from neurohw.hil.messages import Block, ChipInfo
from neurohw.reservoir.backends import BatchResult, bin_of_step
from neurohw.reservoir.lif import LIFParameters, LIFState, lif_step
from neurohw.reservoir.synapses import Synapses

#: time steps per sample the nonce layout allows (nonce = sample << 24 | step)
MAX_STEPS = 1 << 24
MAX_SAMPLE = 1 << 39


def block_seed(seed: int, k: int, c: int) -> int:
    """The forming seed of block (row tile ``k``, column tile ``c``) of a multi-tile crossbar."""
    return int(np.random.SeedSequence([int(seed), int(k), int(c)]).generate_state(1, np.uint64)[0] >> 1)


def vector_nonces(sample_ids: np.ndarray, step: int) -> np.ndarray:
    """Nonces of the reads of time step ``step`` of samples ``sample_ids``: ``sample << 24 | step``."""
    ids = np.asarray(sample_ids, dtype=np.uint64)
    return (ids << np.uint64(24)) | np.uint64(step)


class TileAllocator:
    """Hands out the macro's tiles in order (``first``, first + 1, ...)."""

    def __init__(self, info: ChipInfo, first: int = 0):
        self.n_tiles = info.tiles
        self.next = int(first)

    def take(self, what: str) -> int:
        if self.next >= self.n_tiles:
            raise HilError(f"the macro has {self.n_tiles} tiles, all in use; {what} needs one more (start the emulator with a larger --tiles)")
        t = self.next
        self.next += 1
        return t


@dataclass(frozen=True)
class PlacedBlock:
    """Block ``(k, c)`` of a logical crossbar: rows ``k*tile_rows..``, outputs ``c*tile_cols..``."""

    k: int
    c: int
    block: Block


@dataclass
class MacroCrossbar:
    """A logical crossbar formed on a macro: the host's :class:`Crossbar` (read-back
    conductances) and where each of its blocks sits."""

    crossbar: Crossbar
    blocks: list[PlacedBlock]
    tile_rows: int
    tile_cols: int

    @property
    def row_tiles(self) -> int:
        return 1 + max(b.k for b in self.blocks)

    @property
    def col_tiles(self) -> int:
        return 1 + max(b.c for b in self.blocks)

    def at(self, k: int, c: int) -> Block:
        for b in self.blocks:
            if b.k == k and b.c == c:
                return b.block
        raise KeyError((k, c))


def _check_geometry(info: ChipInfo, device: DeviceModel) -> None:
    if info.rows != device.tile_rows or info.pairs != device.tile_cols:
        raise HilError(
            f"the macro's tiles are {info.rows} x {info.cols} cells but device '{device.name}' has arrays of "
            f"{device.array.rows} x {device.array.cols}; use the device model of the chip (its INFO facts or a calibrated YAML)"
        )


def form_crossbar(
    macro: Macro,
    device: DeviceModel,
    n_in: int,
    n_out: int,
    scale: float,
    seed: int,
    tiles: TileAllocator,
    mask: np.ndarray | None = None,
    info: ChipInfo | None = None,
    what: str = "crossbar",
) -> MacroCrossbar:
    """Form an ``n_in x n_out`` crossbar on ``macro`` and read it back (see the module doc).

    ``mask`` (n_in, n_out) bool: pairs to form (others stay pristine: unconnected).
    """
    info = info or macro.info()
    _check_geometry(info, device)
    tr, tc = info.rows, info.pairs
    K, C = -(-n_in // tr), -(-n_out // tc)
    g = np.empty((n_in, 2 * n_out))
    formed = np.zeros((n_in, 2 * n_out), dtype=bool)
    placed = []
    pulses = 0
    for k in range(K):
        for c in range(C):
            r0, c0 = k * tr, c * tc
            nr, nc = min(tr, n_in - r0), min(tc, n_out - c0)
            block = Block(tiles.take(f"{what} block ({k}, {c})"), 0, nr, 0, nc)
            s = int(seed) if K * C == 1 else block_seed(seed, k, c)
            m = None if mask is None else np.asarray(mask, bool)[r0 : r0 + nr, c0 : c0 + nc]
            reply = macro.form(block, s, m)
            pulses += reply.pulses
            g[r0 : r0 + nr, 2 * c0 : 2 * (c0 + nc)] = macro.read(block)
            formed[r0 : r0 + nr, 2 * c0 : 2 * (c0 + nc)] = reply.formed
            placed.append(PlacedBlock(k, c, block))
    xb = Crossbar(device, g[:, 0::2], g[:, 1::2], scale, seed, programming_pulses=pulses)
    xb.formed = np.stack([formed[:, 0::2], formed[:, 1::2]])
    return MacroCrossbar(xb, placed, tr, tc)


def form_encoder_crossbars(
    macro: Macro, device: DeviceModel, n_inputs: int, n_neurons: int, seeds: dict, *, scale: float | None = None,
    rec_scale: float = 1.0, p_in: float = 1.0, p_rec: float = 1.0, first_tile: int = 0,
) -> tuple[MacroCrossbar, MacroCrossbar]:  # fmt: skip
    """The input and recurrent crossbars of an LSM encoder, formed on ``macro`` as
    :class:`neurohw.reservoir.lsm.LSMEncoder` builds them locally: ``seeds`` is the encoder's
    child seeds (``LSMEncoder.seeds``: "in", "rec", "mask"); ``scale`` None: 1.0 until
    calibrated (as the encoder); ``p_in``/``p_rec`` < 1: the encoder's connectivity masks
    (same generator, same order), unconnected pairs left unformed. Tiles from ``first_tile``."""
    info = macro.info()
    tiles = TileAllocator(info, first_tile)
    base = 1.0 if scale is None else float(scale)
    rng = np.random.default_rng(seeds["mask"])
    m_in = rng.random((n_inputs, n_neurons)) < p_in if p_in < 1 else None
    m_rec = rng.random((n_neurons, n_neurons)) < p_rec if p_rec < 1 else None
    xin = form_crossbar(macro, device, n_inputs, n_neurons, base, seeds["in"], tiles, m_in, info, "the input crossbar")
    xrec = form_crossbar(macro, device, n_neurons, n_neurons, base * rec_scale, seeds["rec"], tiles, m_rec, info, "the recurrent crossbar")
    return xin, xrec


def _scale_of(w: np.ndarray, unit: float | None, xb: Crossbar, step_us: float | None, what: str) -> float:
    """The weight per uS that ``w`` (the synapses' weights) has on crossbar ``xb``; checks
    that ``w`` is that crossbar's matrix."""
    if unit is not None:
        iw = xb.integer_weights()
        if iw is None or not np.array_equal(iw[0], w) or not step_us:
            raise ValueError(f"the synapses' {what} weights are not the levels of the crossbar on the macro")
        return float(unit) / float(step_us)
    dg = xb.g_pos - xb.g_neg
    i = int(np.argmax(np.abs(dg)))
    if dg.flat[i] == 0:
        return 1.0
    scale = float(w.flat[i]) / float(dg.flat[i])
    if not np.allclose(w, scale * dg, rtol=1e-9, atol=1e-12 * abs(scale) * float(np.abs(dg).max())):
        raise ValueError(f"the synapses' {what} weights are not scale * (G+ - G-) of the crossbar on the macro")
    return scale


class MacroReservoir:
    """A reservoir backend whose crossbar reads run on ``macro`` (see the module doc).

    ``xin``, ``xrec``: the encoder's crossbars on the macro (:func:`form_encoder_crossbars`).
    Drop-in for a backend module: ``NAME``, ``available()``, ``run_batch(...)``.
    """

    NAME = "hil"
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, macro: Macro, xin: MacroCrossbar, xrec: MacroCrossbar):
        self.macro = macro
        self.xin = xin
        self.xrec = xrec
        self._checked: tuple | None = None
        self._warned = False

    def available(self) -> bool:
        return True

    def why_unavailable(self) -> str:
        return ""

    def _scales(self, syn: Synapses, info: ChipInfo) -> tuple[float, float]:
        key = (id(syn), syn.w_in.shape)
        if self._checked is not None and self._checked[0] == key and self._checked[1] is syn:
            return self._checked[2]
        n_in, n = self.xin.crossbar.n_in, self.xrec.crossbar.n_in
        if syn.n_inputs != n_in or syn.n_neurons != n or self.xin.crossbar.n_out != n:
            raise ValueError(f"synapses ({syn.n_inputs} inputs, {syn.n_neurons} neurons) do not fit the crossbars on the macro ({n_in} x {n})")
        if (syn.adc is None) != (info.adc_bits == 0):
            raise ValueError("the synapses' ADC model and the macro disagree (one has an ADC, the other not)")
        step = info.level_step_us or None
        s_in = _scale_of(syn.w_in, syn.unit, self.xin.crossbar, step, "input")
        s_rec = _scale_of(syn.w_rec, syn.unit, self.xrec.crossbar, step, "recurrent")
        if syn.adc is not None and not info.per_tile_gain:
            for name, steps, s in (("input", syn.adc.step_in, s_in), ("recurrent", syn.adc.step_rec, s_rec)):
                if not np.allclose(steps, s * info.lsb_us, rtol=1e-9):
                    raise ValueError(f"the synapses' {name} ADC steps {steps} are not scale x the macro's LSB ({s} x {info.lsb_us} uS)")
        self._checked = (key, syn, (s_in, s_rec))
        return s_in, s_rec

    def _factors(self, syn: Synapses, info: ChipInfo, mx: MacroCrossbar, scale: float, steps) -> dict:
        """Weight units per code (or per uS without ADC) of every block ``(k, c)``."""
        out = {}
        for pb in mx.blocks:
            if info.adc_bits == 0:
                out[(pb.k, pb.c)] = scale
            elif info.per_tile_gain:
                out[(pb.k, pb.c)] = scale * info.tile_lsb_us[pb.block.tile]
            else:
                out[(pb.k, pb.c)] = float(steps[pb.k])
        return out

    def run_batch(self, syn: Synapses, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False) -> BatchResult:
        """The reservoir on a batch of SparseRasters, reads on the macro (see the module doc)."""
        info = self.macro.info()
        s_in, s_rec = self._scales(syn, info)
        exact = not noise
        self._warn_noisy_reads(syn, info, exact)
        n = syn.n_neurons
        B = len(rasters)
        lengths = np.array([r.n_bins for r in rasters], dtype=np.int64)
        ids = _checked_ids(sample_ids, B, int(lengths.max(initial=0)))
        dense = _dense(rasters, lengths, syn.n_inputs)
        adc = syn.adc
        f_in = self._factors(syn, info, self.xin, s_in, None if adc is None else adc.step_in)
        f_rec = self._factors(syn, info, self.xrec, s_rec, None if adc is None else adc.step_rec)
        tc = self.xin.tile_cols
        mem = np.zeros((B, n))
        s = np.zeros((B, n), dtype=bool)
        total = np.zeros((B, n), dtype=np.int64)
        counts = np.zeros((B, count_bins, n), dtype=np.int32)
        rec = np.zeros((B, dense.shape[1], n), dtype=bool) if record_spikes else None
        rows_b = np.arange(B)
        params = LIFParameters(syn.v_th, syn.decay, syn.reset)
        integer_exact = adc is None and syn.integer and exact and info.level_step_us > 0
        for t in range(dense.shape[1]):
            alive = lengths > t
            calls, meta = self._step_calls(t, alive, dense[:, t, :], s & alive[:, None], ids)
            results = self.macro.mvm_many(calls, exact=exact) if calls else []
            if adc is None:
                current = self._analog_current(results, meta, f_in, f_rec, B, n, tc, syn, info, integer_exact)
            else:
                current = _adc_current(results, meta, f_in, f_rec, B, n, tc)
            s_new, stepped = lif_step(current, LIFState(mem, s), params)
            mem[alive] = stepped.mem[alive]
            s[alive] = s_new[alive]
            fired = s_new & alive[:, None]
            total += fired
            live = rows_b[alive]
            counts[live, bin_of_step(t, lengths[alive], count_bins)] += fired[alive]
            if rec is not None:
                rec[:, t] = fired
        rate = np.zeros((B, n), dtype=np.float32)
        for b in range(B):
            rate[b] = total[b] / max(int(lengths[b]), 1)
        spikes = [rec[b, : lengths[b]] for b in range(B)] if rec is not None else None
        return BatchResult(rate, counts, mem.astype(np.float32), spikes)

    def _warn_noisy_reads(self, syn: Synapses, info: ChipInfo, exact: bool) -> None:
        """Warn once when a noise-free run reads a chip that cannot read without noise."""
        if exact and not info.exact_reads and syn.noisy and not self._warned:
            warnings.warn(f"{self.macro.where}: this chip cannot read without noise; noise-free runs (noise: false, calibration) read with its noise",
                          stacklevel=3)
            self._warned = True

    def _step_calls(self, t: int, alive: np.ndarray, inputs: np.ndarray, spikes: np.ndarray, ids: np.ndarray) -> tuple[list, list]:
        """The MVM calls of time step ``t`` and, per call, ``(crossbar name, row tile k, column
        tile c, samples)``: for every row tile of the input crossbar (``inputs``, bit planes) and
        the recurrent one (``spikes``) with an active row in some live sample, one call per
        column tile; the input crossbar's calls come first (the backends' order)."""
        tr = self.xin.tile_rows
        calls, meta = [], []
        for name, mx, drive in (("in", self.xin, inputs), ("rec", self.xrec, spikes)):
            for k in range(mx.row_tiles):
                part = drive[:, k * tr : (k + 1) * tr]
                sel = np.flatnonzero(alive & part.any(axis=1))
                if sel.size == 0:
                    continue
                planes = bit_planes(part[sel]) if name == "in" else part[sel][:, None, :].astype(np.uint8)
                nonces = vector_nonces(ids[sel], t)
                for c in range(mx.col_tiles):
                    calls.append(MvmCall(mx.at(k, c), planes, nonces))
                    meta.append((name, k, c, sel))
        return calls, meta

    def _analog_current(self, results, meta, f_in, f_rec, B, n, tc, syn, info, integer_exact) -> np.ndarray:
        """A chip without ADC: numpy_ref reads both crossbars as one sum per column. With levels
        and exact reads the sums are recovered as integer levels, then ``(p_in + p_rec) * unit``
        (bit for bit); otherwise ``sum_uS * scale`` per crossbar (equal up to rounding)."""
        if integer_exact:
            acc = np.zeros((B, n), dtype=np.int64)
            for (name, k, c, sel), v in zip(meta, results):
                p = np.rint(combine_planes(v) / info.level_step_us).astype(np.int64)
                acc[sel, c * tc : c * tc + v.shape[2]] += p
            return acc.astype(np.float64) * syn.unit_value
        current = np.zeros((B, n))
        for (name, k, c, sel), v in zip(meta, results):
            f = (f_in if name == "in" else f_rec)[(k, c)]
            current[sel, c * tc : c * tc + v.shape[2]] += combine_planes(v) * f
        return current


def _checked_ids(sample_ids, B: int, T: int) -> np.ndarray:
    """The sample ids as int64, one per raster, within the nonce layout's range."""
    ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
    if len(ids) != B:
        raise ValueError(f"need one sample id per raster ({B}), got {len(ids)}")
    if T >= MAX_STEPS or (B and (ids.min() < 0 or ids.max() >= MAX_SAMPLE)):
        raise ValueError(f"the HIL nonces allow < {MAX_STEPS} steps and sample ids in [0, {MAX_SAMPLE})")
    return ids


def _dense(rasters, lengths: np.ndarray, n_in: int) -> np.ndarray:
    """The batch's inputs as one (B, T, n_in) uint8 array, zero after each sample's end."""
    dense = np.zeros((len(rasters), int(lengths.max(initial=0)), n_in), dtype=np.uint8)
    for b, r in enumerate(rasters):
        dense[b, : r.n_bins] = r.to_dense()
    return dense


def _adc_current(results, meta, f_in: dict, f_rec: dict, B: int, n: int, tc: int) -> np.ndarray:
    """The (B, n) current of one step from ADC codes: per row tile of a crossbar (one stream of
    calls, all its column tiles), bit planes combined as integers, then ``code * factor``; the
    row tiles are summed in the order of the calls (input tiles, then recurrent)."""
    current = np.zeros((B, n))
    i = 0
    while i < len(results):  # one stream = one row tile of one crossbar, all its column tiles
        name, k, _, sel = meta[i]
        value = np.empty((len(sel), n))
        while i < len(results) and meta[i][0] == name and meta[i][1] == k:
            c = meta[i][2]
            f = (f_in if name == "in" else f_rec)[(k, c)]
            codes = results[i]
            combined = codes[:, 0, :] if codes.shape[1] == 1 else combine_planes(codes)
            value[:, c * tc : c * tc + codes.shape[2]] = combined.astype(np.float64) * f
            i += 1
        current[sel] = current[sel] + value
    return current
