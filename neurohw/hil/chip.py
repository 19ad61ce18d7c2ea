"""The emulated in-memory-computing chip: tiles of cells, a drift clock, an ADC per tile.

:class:`ChipEmulator` is what answers the protocol's commands, in the server (one per session)
and in :class:`neurohw.hil.macro.LocalMacro` (in process), so both give the same numbers. It
holds per tile (allocated on first use): the conductance of every cell (two per differential
pair), which cells formed, stuck codes (from forming and from injected defects), drift
exponents, the clock time each cell was last formed or programmed, and the ADC's LSB. Every
physical effect comes from neurohw's device models (``neurohw.devices.*``):

- FORM of a block of ``nrows x ncols`` pairs with seed ``s`` takes exactly the draws of
  ``Crossbar.from_forming(device, nrows, ncols, scale, s)`` (G+ cells, G- cells, stuck cells,
  drift exponents), so a block that holds a whole single-tile crossbar gets that crossbar's
  conductances. Pairs outside FORM's mask are not touched. Forming is one-time: a FORM whose
  selected cells include one already formed is refused (:class:`ChipStateError`, BAD_REQUEST),
  nothing changed; RESET returns the chip to pristine.
- PROGRAM: write-verify (:func:`neurohw.devices.programming.program`) of the block's targets
  with ``SeedSequence(s).spawn(6)``'s programming stream (as ``Crossbar.from_weights``); stuck
  cells keep their value; cells not formed are not programmed (0 pulses, not converged, value
  unchanged, not counted in ``programmed``). Drift exponents of programmed cells come from the drift stream.
- READ: the conductances at the current clock, ``G0 (max(t - t_prog, t0) / t0)^-nu``
  (:mod:`neurohw.devices.drift`); no read noise (the write-verify sense path's value).
- MVM: per input plane ``P`` (binary rows) the column sums ``I = P @ (G+ - G-)`` in uS at the
  clock (drift, then IR drop of the whole tile when enabled), read noise by noise-equivalent
  sampling ``N(I, r^2 P @ dG^2 + a^2 sum P)`` (:mod:`neurohw.devices.read_noise`), then the
  tile's ADC, ``code = clip(rint(I * gain_t / lsb_t), -max_code, max_code)`` (the rule of
  :class:`neurohw.devices.adc.TileADC`, in uS). ``lsb_t = adc.range_us / 2^(bits-1)``
  (gain fixed), or the tile's largest binary-input column sum ``/ max_code`` (gain per_tile,
  set again after each FORM and PROGRAM). ``gain_t = 1 + gain_error_std N(0,1)`` per tile,
  drawn from the chip seed: a mismatch the host does not know.
- The read-noise normals are counter-based: Philox4x32-10 (:mod:`neurohw.reservoir.rng`)
  with counter ``(column // 4, 64 tile + plane, nonce mod 2^32, nonce >> 32)``, key = the chip
  seed, word ``w`` = ``column % 4``, then ``z = ndtri((w + 0.5) / 2^32)`` (scipy's inverse
  normal CDF). A read is a pure function of (chip seed, tile, column, plane,
  the vector's nonce): reordered or retried requests give the same numbers.
Operations are counted in an :class:`neurohw.devices.energy.EnergyLedger` (as ``Crossbar``
counts them).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from neurohw.crossbar import Crossbar
from neurohw.devices import drift as drift_mod
from neurohw.devices.energy import EnergyLedger
from neurohw.devices.ir_drop import effective_conductances
from neurohw.devices.levels import snap
from neurohw.devices.model import DeviceModel
from neurohw.devices.programming import program
from neurohw.devices.stuck import FREE, OFF, ON
from neurohw.hil.errors import ChipRangeError, ChipStateError
from neurohw.hil.messages import (
    INFO_BIT_SERIAL,
    INFO_DRIFT,
    INFO_EXACT,
    INFO_PER_TILE_GAIN,
    INFO_TIME,
    Block,
    ChipInfo,
    FormReply,
    ProgramReply,
)
from neurohw.hil.protocol import DEFAULT_MAX_PAYLOAD
from neurohw.reservoir.rng import philox4x32, seed_key

#: the order of ``SeedSequence(seed).spawn(6)`` streams in :mod:`neurohw.crossbar`
STREAMS = ("forming", "programming", "stuck", "drift", "adc", "read")
#: the largest clock advance one TIME accepts, seconds (~32,000 years)
MAX_TIME_S = 1e12
#: input planes per MVM when the device's inputs are analog (bits: null)
ANALOG_PLANES = 8


class _OneBlasThread:
    """Context: BLAS on one thread while any chip reads (threadpoolctl; reference-counted so
    that concurrent sessions restore the caller's setting once, at the last exit). The chip's
    products are small (a tile by a batch); on a shared machine several BLAS threads made them
    ~10x slower."""

    _lock = threading.Lock()
    _count = 0
    _ctx = None
    _controller = None

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._count == 0:
                if cls._controller is None:
                    from threadpoolctl import ThreadpoolController

                    cls._controller = ThreadpoolController()
                cls._ctx = cls._controller.limit(limits=1)
            cls._count += 1
        return self

    def __exit__(self, *exc) -> None:
        cls = type(self)
        with cls._lock:
            cls._count -= 1
            if cls._count == 0 and cls._ctx is not None:
                cls._ctx.restore_original_limits()
                cls._ctx = None


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(STREAMS, children)}


def interleave(gp: np.ndarray, gn: np.ndarray) -> np.ndarray:
    """(nrows, 2 ncols) with G+ in even and G- in odd columns."""
    out = np.empty((gp.shape[0], 2 * gp.shape[1]), dtype=gp.dtype)
    out[:, 0::2], out[:, 1::2] = gp, gn
    return out


def split(cells: np.ndarray) -> np.ndarray:
    """(2, nrows, ncols) from an interleaved (nrows, 2 ncols) array."""
    return np.stack([cells[:, 0::2], cells[:, 1::2]])


class _Tile:
    """The state of one tile; arrays are (2, rows, pairs): [G+ cells, G- cells]."""

    def __init__(self, device: DeviceModel, defect: np.ndarray, lsb_us: float):
        rows, pairs = device.tile_rows, device.tile_cols
        f = device.forming
        pristine = float(snap(np.clip(np.float64(f.unformed_us), f.g_min_us, f.g_max_us), device.levels.step_us))
        shape = (2, rows, pairs)
        self.g = np.full(shape, pristine)
        self.formed = np.zeros(shape, dtype=bool)
        self.stuck = np.zeros(shape, dtype=np.uint8)  # from forming
        self.defect = defect  # injected, permanent
        # drift exponents and the clock at each cell's last FORM/PROGRAM: only when drift is on
        self.nu = np.zeros(shape) if device.drift.enabled else None
        self.t_prog = np.zeros(shape) if device.drift.enabled else None
        self.lsb_us = lsb_us
        self.version = 0  # bumped on every change (MVM conductance cache key)
        self._apply_defects(device, np.ones(shape, dtype=bool))

    def _apply_defects(self, device: DeviceModel, where: np.ndarray) -> None:
        step = device.levels.step_us
        on = where & (self.defect == ON)
        off = where & (self.defect == OFF)
        self.g[on] = snap(np.float64(device.stuck.g_on_us), step)
        self.g[off] = snap(np.float64(device.stuck.g_off_us), step)
        if self.nu is not None:
            self.nu[on | off] = 0.0

    def stuck_code(self) -> np.ndarray:
        return np.where(self.defect != FREE, self.defect, self.stuck)


@dataclass
class Plan:
    """A long operation computed but not yet applied: :meth:`ChipEmulator.commit` applies it
    whole (never half). ``reply``: its FormReply or ProgramReply; ``cells``: its size."""

    kind: str
    block: Block
    reply: FormReply | ProgramReply
    cells: int
    _g: np.ndarray
    _touched: np.ndarray
    _nu: np.ndarray | None
    _formed: np.ndarray | None = None
    _stuck: np.ndarray | None = None
    _tile_version: int = -1


class ChipEmulator:
    """An emulated macro of ``tiles`` tiles of ``device`` (see the module doc).

    ``seed``: the chip's own randomness (ADC gain mismatch, injected defects, read-noise key).
    ``extra_stuck``: a fraction of every tile's cells stuck from manufacture, on top of the
    device's stuck cells (fault injection); ``extra_stuck_kind``: "off", "on" or "both".
    """

    def __init__(
        self,
        device: DeviceModel,
        tiles: int = 8,
        seed: int = 0,
        *,
        extra_stuck: float = 0.0,
        extra_stuck_kind: str = "off",
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ):
        if not 1 <= int(tiles) <= 0xFFFF:
            raise ValueError(f"tiles must be in 1..65535, got {tiles}")
        if not 0.0 <= extra_stuck <= 1.0 or extra_stuck_kind not in ("off", "on", "both"):
            raise ValueError("extra_stuck must be in [0, 1] and extra_stuck_kind one of off, on, both")
        self.device = device
        self.n_tiles = int(tiles)
        self.rows = device.tile_rows
        self.pairs = device.tile_cols
        self.seed = int(seed) & (2**64 - 1)
        self.chip_id = int(np.random.SeedSequence([self.seed, 0x49445F]).generate_state(1, np.uint64)[0])
        self.max_payload = int(max_payload)
        self.extra_stuck = float(extra_stuck)
        self.extra_stuck_kind = extra_stuck_kind
        adc = device.adc
        self.adc_bits = adc.bits or 0
        self.max_code = max(2 ** (adc.bits - 1) - 1, 1) if adc.bits else 0
        self.lsb_us = adc.range_us / 2 ** (adc.bits - 1) if adc.bits else 0.0
        gain_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x4741494E]))
        std = adc.gain_error_std
        self.gain = 1.0 + std * gain_rng.standard_normal(self.n_tiles) if std > 0 and adc.bits else np.ones(self.n_tiles)
        self.max_planes = device.input.bits or ANALOG_PLANES
        self.clock = 0.0
        self._tiles: list[_Tile | None] = [None] * self.n_tiles
        self._g_cache: dict[int, tuple[tuple, np.ndarray]] = {}
        self.ledger = EnergyLedger.for_device(device)
        self.ops: Counter = Counter()
        self._key = seed_key(self.seed)

    # ------------------------------------------------------------------ state

    def _tile(self, t: int) -> _Tile:
        tile = self._tiles[t]
        if tile is None:
            shape = (2, self.rows, self.pairs)
            defect = np.zeros(shape, dtype=np.uint8)
            if self.extra_stuck > 0:
                rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x44454645, t]))
                hit = rng.random(shape) < self.extra_stuck
                if self.extra_stuck_kind == "both":
                    defect[hit] = np.where(rng.random(int(hit.sum())) < 0.5, ON, OFF)
                else:
                    defect[hit] = ON if self.extra_stuck_kind == "on" else OFF
            tile = _Tile(self.device, defect, self.lsb_us)
            self._tiles[t] = tile
            self._recalibrate(t)
        return tile

    def check_block(self, block: Block) -> None:
        """ChipRangeError unless the block lies inside one tile of this chip."""
        if block.tile >= self.n_tiles:
            raise ChipRangeError(f"tile {block.tile} does not exist; this chip has tiles 0..{self.n_tiles - 1}")
        if block.nrows < 1 or block.ncols < 1:
            raise ChipRangeError(f"empty block ({block.nrows} rows x {block.ncols} pairs); give at least one row and one pair")
        if block.row0 + block.nrows > self.rows:
            raise ChipRangeError(f"rows {block.row0}..{block.row0 + block.nrows - 1} exceed the tile's {self.rows} rows (0..{self.rows - 1})")
        if block.col0 + block.ncols > self.pairs:
            raise ChipRangeError(f"pairs {block.col0}..{block.col0 + block.ncols - 1} exceed the tile's {self.pairs} pairs (0..{self.pairs - 1})")

    def _recalibrate(self, t: int) -> None:
        """Per-tile gain: the tile's largest binary-input column sum is the top code."""
        if not self.adc_bits or self.device.adc.gain != "per_tile":
            return
        tile = self._tiles[t]
        worst = float(np.abs(tile.g[0] - tile.g[1]).sum(axis=0).max(initial=0.0))
        tile.lsb_us = worst / self.max_code if worst > 0 else self.lsb_us

    def tile_lsb_us(self) -> tuple[float, ...]:
        return tuple(self.lsb_us if t is None else t.lsb_us for t in self._tiles)

    def conductances(self, t: int) -> np.ndarray:
        """(2, rows, pairs) conductances of tile ``t`` at the current clock (drift), uS."""
        tile = self._tile(t)
        d = self.device.drift
        if not d.enabled:
            return tile.g
        age = np.maximum(self.clock - tile.t_prog, d.t0_s) / d.t0_s
        return tile.g * np.power(age, -tile.nu)

    def _read_conductances(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """What an MVM sees: ``dG`` (rows, pairs) and ``[dG | dG^2]`` (rows, 2 pairs), after
        drift and IR drop over the whole tile (cached per tile state and clock)."""
        tile = self._tile(t)
        key = (tile.version, self.clock)
        hit = self._g_cache.get(t)
        if hit is not None and hit[0] == key:
            return hit[1]
        g = self.conductances(t)
        if self.device.ir_drop.enabled:
            gp, gn = effective_conductances(g[0], g[1], self.rows, self.pairs, self.device.ir_drop.wire_resistance_ohm)
            g = np.stack([gp, gn])
        dg = g[0] - g[1]
        value = (dg, np.concatenate([dg, np.square(dg)], axis=1))
        self._g_cache[t] = (key, value)
        return value

    # ------------------------------------------------------------------ commands

    def info(self) -> ChipInfo:
        d = self.device
        flags = INFO_EXACT | INFO_TIME
        if d.input.bits is not None and d.input.bit_serial:
            flags |= INFO_BIT_SERIAL
        if d.adc.bits and d.adc.gain == "per_tile":
            flags |= INFO_PER_TILE_GAIN
        if d.drift.enabled:
            flags |= INFO_DRIFT
        return ChipInfo(
            tiles=self.n_tiles, rows=self.rows, cols=2 * self.pairs, adc_bits=self.adc_bits,
            input_bits=d.input.bits or 0, max_planes=self.max_planes, flags=flags, lsb_us=self.lsb_us,
            level_step_us=d.levels.step_us or 0.0, g_min_us=d.programming.g_min_us, g_max_us=d.programming.g_max_us,
            clock_s=self.clock, chip_id=self.chip_id, max_payload=self.max_payload, tile_lsb_us=self.tile_lsb_us(),
            name=d.name, facts=d.model_dump(mode="json"),
        )  # fmt: skip

    def plan_form(self, block: Block, seed: int, mask: np.ndarray | None = None) -> Plan:
        """FORM computed, not applied (see the module doc)."""
        self.check_block(block)
        if mask is not None and np.shape(mask) != (block.nrows, block.ncols):
            raise ChipRangeError(f"FORM mask has shape {np.shape(mask)}, the block {(block.nrows, block.ncols)}")
        tile = self._tile(block.tile)
        r, c = block.rows, block.cols
        sel = np.ones((block.nrows, block.ncols), dtype=bool) if mask is None else np.asarray(mask, bool)
        again = tile.formed[:, r, c] & sel
        if again.any():
            raise ChipStateError(
                f"FORM of {block}: {int(again.sum())} of its selected cells are already formed (forming is one-time); "
                "cells already formed; RESET the chip first or FORM other cells"
            )
        xb = Crossbar.from_forming(self.device, block.nrows, block.ncols, 1.0, int(seed))
        g = np.stack([xb.g_pos, xb.g_neg])
        nu = np.array(xb.nu) if tile.nu is not None else None
        formed = np.array(xb.formed)
        stuck = np.array(xb.stuck_code)
        touched = np.ones(g.shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), g.shape).copy()
        keep = ~touched
        g = np.where(keep, tile.g[:, r, c], g)
        if nu is not None:
            nu = np.where(keep, tile.nu[:, r, c], nu)
        formed = np.where(keep, tile.formed[:, r, c], formed)
        stuck = np.where(keep, tile.stuck[:, r, c], stuck)
        defect = tile.defect[:, r, c]
        g, nu = self._with_defects(g, nu, defect, touched)
        code = np.where(defect != FREE, defect, stuck)
        n_touched = int(touched.sum())
        reply = FormReply(
            formed_cells=int((formed & touched).sum()), stuck_cells=int(((code != FREE) & touched).sum()),
            pulses=self.device.forming.pulses_per_cell * n_touched, formed=interleave(formed[0], formed[1]),
        )  # fmt: skip
        return Plan("form", block, reply, n_touched, g, touched, nu, formed, stuck, tile.version)

    def plan_program(self, block: Block, targets: np.ndarray, seed: int) -> Plan:
        """PROGRAM computed, not applied (see the module doc). ``targets``: (nrows, 2 ncols)
        uS, NaN = leave the cell."""
        self.check_block(block)
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (block.nrows, 2 * block.ncols):
            raise ChipRangeError(f"PROGRAM targets have shape {targets.shape}, the block {(block.nrows, 2 * block.ncols)}")
        prog = self.device.programming
        sel = ~np.isnan(targets)
        bad = sel & ~((targets >= prog.g_min_us) & (targets <= prog.g_max_us))
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise ChipRangeError(
                f"PROGRAM target {float(targets[i, j])!r} uS at row {block.row0 + i}, cell {j} is outside the programming window "
                f"[{prog.g_min_us:g}, {prog.g_max_us:g}] uS ({int(bad.sum())} such cells); give targets in the window or NaN to skip a cell"
            )
        tile = self._tile(block.tile)
        r, c = block.rows, block.cols
        t2 = split(targets)
        sel2 = ~np.isnan(t2)
        streams = _streams(int(seed))
        step = self.device.levels.step_us
        res = program(t2[sel2], prog, streams["programming"], step)
        g = tile.g[:, r, c].copy()
        nu = None
        if tile.nu is not None:
            nu_new = drift_mod.sample_nu(self.device.drift, t2.shape, streams["drift"])
            nu = tile.nu[:, r, c].copy()
        pulses = np.zeros(t2.shape, dtype=np.int32)
        code = tile.stuck_code()[:, r, c]
        free = code == FREE
        # an unformed cell cannot be written: not programmed, 0 pulses, not converged, value
        # unchanged (what write-verify of an unformed cell reports); program() still draws for
        # every selected cell, so the formed cells get Crossbar.from_weights' values
        formed = tile.formed[:, r, c]
        upd = sel2 & free & formed
        g_sel = res.g_us
        g[upd] = g_sel[(free & formed)[sel2]]
        if nu is not None:
            nu[upd] = nu_new[upd]
        pulses[sel2] = res.pulses
        # converged as write-verify judges it: |g - target on the level grid| <= tolerance
        converged = np.zeros(t2.shape, dtype=bool)
        converged[sel2] = res.converged
        stuck_sel = sel2 & ~free & formed
        goal = snap(np.clip(t2[stuck_sel], prog.g_min_us, prog.g_max_us), step)
        ok = np.abs(g[stuck_sel] - goal) <= prog.tolerance_us
        converged[stuck_sel] = ok
        pulses[stuck_sel] = np.where(ok | (not prog.write_verify), 1, prog.max_pulses)
        unformed = sel2 & ~formed
        pulses[unformed] = 0
        converged[unformed] = False
        sel2 = sel2 & formed
        reply = ProgramReply(
            programmed=int(sel2.sum()), converged_cells=int(converged.sum()), total_pulses=int(pulses.sum()),
            pulses=interleave(pulses[0], pulses[1]), converged=interleave(converged[0], converged[1]),
        )  # fmt: skip
        return Plan("program", block, reply, int(sel2.sum()), g, sel2, nu, _tile_version=tile.version)

    def _with_defects(self, g: np.ndarray, nu: np.ndarray, defect: np.ndarray, touched: np.ndarray):
        step = self.device.levels.step_us
        on = touched & (defect == ON)
        off = touched & (defect == OFF)
        g = g.copy()
        g[on] = snap(np.float64(self.device.stuck.g_on_us), step)
        g[off] = snap(np.float64(self.device.stuck.g_off_us), step)
        if nu is not None:
            nu = nu.copy()
            nu[on | off] = 0.0
        return g, nu

    def commit(self, plan: Plan) -> FormReply | ProgramReply:
        """Apply a plan whole; returns its reply."""
        tile = self._tile(plan.block.tile)
        if tile.version != plan._tile_version:
            raise RuntimeError("the tile changed between planning and committing a long operation")
        r, c = plan.block.rows, plan.block.cols
        t = plan._touched
        tile.g[:, r, c] = plan._g
        if plan._formed is not None:
            tile.formed[:, r, c] = plan._formed
            tile.stuck[:, r, c] = plan._stuck
        if tile.nu is not None:
            tile.nu[:, r, c] = plan._nu
            view = tile.t_prog[:, r, c]  # a view: written in place
            view[t] = self.clock
        tile.version += 1
        self._recalibrate(plan.block.tile)
        self.ledger.add(programming_pulses=plan.reply.pulses if plan.kind == "form" else plan.reply.total_pulses)
        self.ops[plan.kind.upper()] += 1
        return plan.reply

    def form(self, block: Block, seed: int, mask: np.ndarray | None = None) -> FormReply:
        return self.commit(self.plan_form(block, seed, mask))

    def program(self, block: Block, targets: np.ndarray, seed: int) -> ProgramReply:
        return self.commit(self.plan_program(block, targets, seed))

    def read(self, block: Block) -> np.ndarray:
        """(nrows, 2 ncols) conductances at the clock, uS, G+/G- interleaved."""
        self.check_block(block)
        g = self.conductances(block.tile)[:, block.rows, block.cols]
        self.ops["READ"] += 1
        return interleave(g[0], g[1])

    def mvm(self, block: Block, planes: np.ndarray, nonces: np.ndarray, exact: bool = False) -> np.ndarray:
        """Read ``planes`` (B, P, nrows) of 0/1 on the block: (B, P, ncols) int32 ADC codes, or
        float64 uS sums without an ADC (see the module doc). ``exact``: no read noise."""
        self.check_block(block)
        planes = np.asarray(planes)
        if planes.ndim != 3 or planes.shape[2] != block.nrows:
            raise ChipRangeError(f"MVM planes have shape {planes.shape}; need (batch, planes, {block.nrows})")
        B, P, n = planes.shape
        if P < 1 or P > self.max_planes:
            raise ChipRangeError(f"MVM with {P} input planes; this chip takes 1..{self.max_planes} per vector")
        if planes.dtype != np.bool_ and np.any((planes != 0) & (planes != 1)):
            raise ChipRangeError("MVM planes must hold 0 or 1 (binary rows; multi-bit inputs as bit planes)")
        nonces = np.asarray(nonces, dtype=np.uint64).reshape(-1)
        if len(nonces) != B:
            raise ChipRangeError(f"MVM needs one nonce per vector ({B}), got {len(nonces)}")
        dg_tile, both = self._read_conductances(block.tile)
        X = planes.reshape(B * P, n).astype(np.float64)
        rn = self.device.read_noise
        noisy = not exact and (rn.relative > 0 or rn.additive_us > 0) and B * P > 0
        with _OneBlasThread():
            if not noisy:
                current = X @ dg_tile[block.rows, block.cols]
            else:
                # mean and variance in one product: X @ [dG | dG^2] (the rule of read_variance:
                # r^2 x^2 @ dG^2 + a^2 sum x^2, with x^2 = x for binary planes)
                if block.col0 == 0 and block.ncols == self.pairs:
                    prod = X @ both[block.rows]
                    current, q = prod[:, : block.ncols], prod[:, block.ncols :]
                else:
                    current = X @ dg_tile[block.rows, block.cols]
                    q = X @ both[block.rows, self.pairs + block.col0 : self.pairs + block.col0 + block.ncols]
                var = (rn.relative * rn.relative) * q
                if rn.additive_us > 0:
                    var = var + (rn.additive_us * rn.additive_us) * X.sum(axis=1, keepdims=True)
                current = current + np.sqrt(var) * self._normals(block, B, P, nonces).reshape(B * P, -1)
        active = X.sum(axis=1)
        reads = int(np.count_nonzero(active))
        rows = int(active.sum())
        self.ledger.add(read_cycles=reads, active_rows=rows, cell_reads=rows * 2 * block.ncols, adc_conversions=reads * block.ncols, macs=B * n * block.ncols)
        self.ops["MVM"] += 1
        self.ops["MVM_VECTORS"] += reads  # vector-planes with an active row (an empty one reads 0)
        if not self.adc_bits:
            return current.reshape(B, P, block.ncols)
        tile = self._tile(block.tile)
        codes = np.clip(np.rint(current * (self.gain[block.tile] / tile.lsb_us)), -self.max_code, self.max_code)
        return codes.astype(np.int32).reshape(B, P, block.ncols)

    def _normals(self, block: Block, B: int, P: int, nonces: np.ndarray) -> np.ndarray:
        """(B, P, ncols) standard normals keyed by (chip seed, tile, column, plane, nonce)."""
        from scipy.special import ndtri

        lo_blk = block.col0 // 4
        hi_blk = (block.col0 + block.ncols - 1) // 4
        blocks = np.arange(lo_blk, hi_blk + 1, dtype=np.uint64)
        c1 = (np.uint64(block.tile) * np.uint64(64) + np.arange(P, dtype=np.uint64))[None, :, None]
        lo = (nonces & np.uint64(0xFFFFFFFF))[:, None, None]
        hi = (nonces >> np.uint64(32))[:, None, None]
        words = philox4x32(blocks[None, None, :], c1, lo, hi, self._key[0], self._key[1])
        w = np.stack(words, axis=-1).reshape(B, P, -1)  # column 4 b + k = word k of block b
        start = block.col0 - 4 * lo_blk
        return ndtri((w[:, :, start : start + block.ncols].astype(np.float64) + 0.5) * 2.0**-32)

    def advance(self, seconds: float) -> float:
        """Advance the drift clock; returns the clock, seconds."""
        s = float(seconds)
        if not np.isfinite(s) or s < 0 or s > MAX_TIME_S:
            raise ChipRangeError(f"TIME {seconds!r} s; give a finite advance in [0, {MAX_TIME_S:g}] s")
        self.clock += s
        self.ops["TIME"] += 1
        return self.clock

    def reset(self) -> None:
        """Every tile back to pristine (injected defects stay), clock 0."""
        self._tiles = [None] * self.n_tiles
        self._g_cache.clear()
        self.clock = 0.0
        self.ops["RESET"] += 1

    def counters(self) -> dict:
        return {"ops": dict(self.ops), "ledger": self.ledger.counts(), "clock_s": self.clock}
