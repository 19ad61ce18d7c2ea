"""The crossbar: a logical weight matrix on tiles of resistive cells, and its reads.

Weights are differential pairs of cells, ``W = scale * (G+ - G-)`` (``scale``: weight per
microsiemens). A crossbar of ``n_in`` inputs and ``n_out`` outputs is cut into tiles of the
device's array: ``tile_rows = array.rows`` inputs by ``array.cols // 2`` pairs.

An MVM ``y = x @ W`` (``x``: (B, n_in)) runs as the macro would:
1. inputs become planes (:mod:`neurohw.devices.input_encoding`): one analog plane, one
   amplitude plane, or one binary plane per bit (bit-serial), each read separately;
2. each plane is read tile by tile; a tile's partial sum gets fresh read noise by
   noise-equivalent sampling, ``N(P @ W_t, r^2 P^2 @ W_t^2 + a^2 sum P^2)``
   (:mod:`neurohw.devices.read_noise`), then the tile's ADC (:mod:`neurohw.devices.adc`);
3. the digital side sums the tiles and shifts-and-adds the planes.
Every read is counted in :attr:`Crossbar.ledger` (:mod:`neurohw.devices.energy`).

Random streams: one seed pins everything. ``SeedSequence(seed).spawn(6)`` gives, in this
order, the streams for forming, programming, stuck cells, drift exponents, ADC gains and read
noise; so the same seed gives the same conductances and the same sequence of noise draws.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from neurohw.devices import drift as drift_mod
from neurohw.devices import drift_compensation
from neurohw.devices.adc import TileADC
from neurohw.devices.conductance_map import interleave, load_conductance_map, save_conductance_map
from neurohw.devices.energy import EnergyLedger
from neurohw.devices.forming import form_cells
from neurohw.devices.input_encoding import encode
from neurohw.devices.ir_drop import effective_conductances
from neurohw.devices.levels import level_indices
from neurohw.devices.model import DeviceModel, load_device
from neurohw.devices.programming import program
from neurohw.devices.read_noise import read_variance, sample_read
from neurohw.devices.stuck import FREE, apply_stuck, sample_stuck

_STREAMS = ("forming", "programming", "stuck", "drift", "adc", "read")


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}


def _as_device(device: DeviceModel | str | Path) -> DeviceModel:
    return device if isinstance(device, DeviceModel) else load_device(device)


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale (weight per uS) must be finite and > 0, got {scale}")
    return scale


class Crossbar:
    """A weight matrix held as conductances on a device's tiles (see the module doc).

    Build with :meth:`from_forming`, :meth:`from_weights` or :meth:`from_conductance_map`.

    Attributes: ``n_in``, ``n_out``; ``g_pos``, ``g_neg`` (float64 uS, (n_in, n_out), stuck
    cells applied, no drift, no IR drop); ``scale`` (weight per uS); ``device``; ``tile_rows``
    (inputs per tile); ``tile_cols`` (outputs per tile); ``adc`` (:class:`TileADC` in weight
    units, or None without an ADC); ``read_noise_relative``; ``read_noise_additive`` (weight
    units per active row); ``ledger`` (:class:`EnergyLedger`); ``seed``.
    """

    def __init__(
        self,
        device: DeviceModel,
        g_pos: np.ndarray,
        g_neg: np.ndarray,
        scale: float,
        seed: int = 0,
        *,
        stuck_code: np.ndarray | None = None,
        nu: np.ndarray | None = None,
        programming_pulses: int = 0,
    ):
        self.device = _as_device(device)
        self.g_pos = np.ascontiguousarray(g_pos, dtype=np.float64)
        self.g_neg = np.ascontiguousarray(g_neg, dtype=np.float64)
        if self.g_pos.ndim != 2 or self.g_pos.shape != self.g_neg.shape:
            raise ValueError(f"g_pos {self.g_pos.shape} and g_neg {self.g_neg.shape} must be equal 2-D shapes")
        self.g_pos.flags.writeable = False
        self.g_neg.flags.writeable = False
        self.n_in, self.n_out = (int(n) for n in self.g_pos.shape)
        self.scale = _check_scale(scale)
        self.seed = int(seed)
        self.tile_rows = self.device.tile_rows
        self.tile_cols = self.device.tile_cols
        streams = _streams(self.seed)
        shape2 = (2, self.n_in, self.n_out)
        self.stuck_code = np.zeros(shape2, dtype=np.uint8) if stuck_code is None else np.asarray(stuck_code, dtype=np.uint8)
        if nu is None:
            nu = drift_mod.sample_nu(self.device.drift, shape2, streams["drift"])
            nu = np.where(self.stuck_code == FREE, nu, 0.0)
        self.nu = np.asarray(nu, dtype=np.float64)
        self._w0: np.ndarray | None = None
        self._tiled_cache: tuple[np.ndarray, np.ndarray | None] | None = None
        self._w0 = self.weights()
        self.adc = TileADC.build(self.device.adc, self._w0, self.tile_rows, self.scale, streams["adc"])
        self.read_noise_relative = float(self.device.read_noise.relative)
        self.read_noise_additive = float(self.scale * self.device.read_noise.additive_us)
        self._read_rng = streams["read"]
        self.ledger = EnergyLedger.for_device(self.device)
        self.ledger.add(programming_pulses=programming_pulses)
        self.formed: np.ndarray | None = None  # (2, n_in, n_out) bool, from_forming only
        self.pulses: np.ndarray | None = None  # (2, n_in, n_out) int32, from_weights only
        self.converged: np.ndarray | None = None  # (2, n_in, n_out) bool, from_weights only
        #: (2, n_in, n_out) float64 uS, from_weights only: what the weights ask for at the
        #: programming scale, ``g_min + max(+-W, 0) / scale`` (before clipping to the window and
        #: snapping to levels, which write-verify does)
        self.targets: np.ndarray | None = None
        #: the weight per uS the targets were computed at (from_weights only)
        self.target_scale: float | None = None

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_forming(cls, device: DeviceModel | str, n_in: int, n_out: int, scale: float, seed: int = 0) -> "Crossbar":
        """A random weight matrix by stochastic forming of both cells of every pair.

        Draws (stream "forming"): G+ cells, then G- cells (:func:`neurohw.devices.forming.form_cells`);
        then stuck cells (stream "stuck"). Forming pulses are counted in the ledger.
        """
        device = _as_device(device)
        n_in, n_out = int(n_in), int(n_out)
        if n_in < 1 or n_out < 1:
            raise ValueError(f"n_in and n_out must be >= 1, got {n_in}, {n_out}")
        streams = _streams(seed)
        step = device.levels.step_us
        g_pos, formed_pos = form_cells(device.forming, (n_in, n_out), streams["forming"], step)
        g_neg, formed_neg = form_cells(device.forming, (n_in, n_out), streams["forming"], step)
        code = sample_stuck(device.stuck, (2, n_in, n_out), streams["stuck"])
        g_pos = apply_stuck(g_pos, code[0], device.stuck, step)
        g_neg = apply_stuck(g_neg, code[1], device.stuck, step)
        xb = cls(device, g_pos, g_neg, scale, seed, stuck_code=code, programming_pulses=device.forming.pulses_per_cell * 2 * n_in * n_out)
        xb.formed = np.stack([formed_pos, formed_neg])
        return xb

    @classmethod
    def from_weights(cls, device: DeviceModel | str, W: np.ndarray, seed: int = 0, scale: float | None = None) -> "Crossbar":
        """Program a logical matrix ``W`` (n_in, n_out) with write-verify.

        Mapping: ``scale = max|W| / (g_max - g_min)`` of the programming window unless given;
        targets ``G+ = g_min + max(W, 0) / scale``, ``G- = g_min + max(-W, 0) / scale``.
        Stuck cells keep their stuck value and, under write-verify, use all ``max_pulses``.
        Per-cell pulse counts: ``pulses`` (2, n_in, n_out); ``converged`` likewise.
        """
        device = _as_device(device)
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2 or W.size == 0 or not np.all(np.isfinite(W)):
            raise ValueError(f"W must be a finite, non-empty 2-D matrix, got shape {W.shape}")
        prog = device.programming
        window = prog.g_max_us - prog.g_min_us
        if scale is None:
            peak = float(np.abs(W).max())
            scale = peak / window if peak > 0 else 1.0 / window
        scale = _check_scale(scale)
        streams = _streams(seed)
        step = device.levels.step_us
        targets = prog.g_min_us + np.stack([np.maximum(W, 0.0), np.maximum(-W, 0.0)]) / scale
        res = program(targets, prog, streams["programming"], step)
        code = sample_stuck(device.stuck, targets.shape, streams["stuck"])
        g = np.stack([apply_stuck(res.g_us[k], code[k], device.stuck, step) for k in range(2)])
        pulses = res.pulses.copy()
        stuck = code != FREE
        if prog.write_verify:
            missed = stuck & (np.abs(g - np.clip(targets, prog.g_min_us, prog.g_max_us)) > prog.tolerance_us)
            pulses[missed] = prog.max_pulses
        converged = res.converged & ~(stuck & (pulses == prog.max_pulses) & prog.write_verify)
        xb = cls(device, g[0], g[1], scale, seed, stuck_code=code, programming_pulses=int(pulses.sum()))
        xb.pulses = pulses
        xb.converged = converged
        xb.targets, xb.target_scale = targets, scale
        return xb

    @classmethod
    def from_conductance_map(cls, device: DeviceModel | str, path_or_array, scale: float, seed: int = 0) -> "Crossbar":
        """A measured map (NPY/CSV/HDF5 path or array, ``(n_in, 2 n_out)`` uS, pairs interleaved;
        :mod:`neurohw.devices.conductance_map`) in place of sampled forming. No stuck cells are
        added (a measurement already shows them); ``seed`` keys drift, ADC gains and read noise."""
        device = _as_device(device)
        g_pos, g_neg = load_conductance_map(path_or_array, device)
        return cls(device, g_pos, g_neg, scale, seed)

    def rescaled(self, scale: float) -> "Crossbar":
        """The same conductances with another ``scale`` (fresh ledger and read-noise stream);
        what is known of the cells (``formed``, ``pulses``, ``converged``, ``targets``) is kept."""
        xb = Crossbar(self.device, self.g_pos, self.g_neg, scale, self.seed, stuck_code=self.stuck_code, nu=self.nu)
        xb.formed, xb.pulses, xb.converged = self.formed, self.pulses, self.converged
        xb.targets, xb.target_scale = self.targets, self.target_scale
        return xb

    # ------------------------------------------------------------------ weights

    def conductances(self, t_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(G+, G-)`` as read at time ``t_s`` after programming: drift (if enabled and
        ``t_s`` given), then IR drop (if enabled)."""
        gp, gn = self.g_pos, self.g_neg
        if t_s is not None and self.device.drift.enabled:
            t0 = self.device.drift.t0_s
            gp = drift_mod.drifted(gp, self.nu[0], t_s, t0)
            gn = drift_mod.drifted(gn, self.nu[1], t_s, t0)
        if self.device.ir_drop.enabled:
            gp, gn = effective_conductances(gp, gn, self.tile_rows, self.tile_cols, self.device.ir_drop.wire_resistance_ohm)
        return gp, gn

    def weights(self, t_s: float | None = None) -> np.ndarray:
        """``W = scale * (G+ - G-)``, float64 (n_in, n_out), with drift at ``t_s`` seconds after
        programming (None: no drift). Read-only when ``t_s`` is None (cached)."""
        if t_s is None and self._w0 is not None:
            return self._w0
        if t_s is None or not self.device.drift.enabled:
            iw = self.integer_weights()
            if iw is not None:
                w = iw[1] * iw[0].astype(np.float64)
            else:
                gp, gn = self.conductances(None)
                w = self.scale * (gp - gn)
            if t_s is None:
                w.flags.writeable = False
            return w
        gp, gn = self.conductances(t_s)
        return self.scale * (gp - gn)

    def drift_gains(self, t_s: float | None, mode: str = "global") -> np.ndarray:
        """Digital gains (n_out,) that undo the mean drift of a read ``t_s`` seconds after
        programming, estimated from reference reads at programming and at ``t_s``
        (:mod:`neurohw.devices.drift_compensation`; ``mode``: ``global`` one gain for the
        crossbar, ``column`` one per output column, ``none`` ones). Ones when nothing drifts."""
        if mode not in drift_compensation.MODES:
            raise ValueError(f"drift compensation mode must be one of {drift_compensation.MODES}, got {mode!r}")
        if mode == "none" or not drift_mod.drifts(self.device.drift, t_s):
            return np.ones(self.n_out)
        return drift_compensation.gains(self.weights(None), self.weights(t_s), mode)

    def integer_weights(self) -> tuple[np.ndarray, float] | None:
        """``(Wq int32, unit)`` with ``weights() == unit * Wq`` exactly, when every cell sits on
        the device's conductance levels (``unit = scale * levels.step_us``); None for continuous
        conductances, off-grid maps, or IR drop (which moves cells off the levels)."""
        step = self.device.levels.step_us
        if step is None or self.device.ir_drop.enabled:
            return None
        kp = level_indices(self.g_pos, step)
        kn = level_indices(self.g_neg, step)
        if kp is None or kn is None:
            return None
        dq = kp - kn
        if np.abs(dq).max(initial=0) > 2**31 - 1:
            return None
        return dq.astype(np.int32), float(self.scale * step)

    def conductance_map(self) -> np.ndarray:
        """The interleaved ``(n_in, 2 n_out)`` map in uS (see :mod:`neurohw.devices.conductance_map`)."""
        return interleave(self.g_pos, self.g_neg)

    def save_conductance_map(self, path: str | Path) -> Path:
        """Write :meth:`conductance_map` to NPY, CSV or HDF5 (by suffix)."""
        return save_conductance_map(path, self.g_pos, self.g_neg)

    @property
    def n_tiles(self) -> int:
        """Row tiles (groups of ``tile_rows`` inputs)."""
        return -(-self.n_in // self.tile_rows)

    @property
    def n_col_tiles(self) -> int:
        """Column tiles (groups of ``tile_cols`` outputs)."""
        return -(-self.n_out // self.tile_cols)

    # ------------------------------------------------------------------ reads

    def mvm(self, x: np.ndarray, rng: np.random.Generator | None = None, noise: bool = True, t_s: float | None = None) -> np.ndarray:
        """``y = x @ W`` as the macro computes it: input planes, tiled reads with fresh read
        noise (noise-equivalent sampling), per-tile ADC, digital accumulation.

        ``x``: (B, n_in) or (n_in,); ``rng``: the noise generator (None: the crossbar's own
        stream, keyed by its seed); ``noise=False`` reads exactly; ``t_s``: time since
        programming for drift. Returns float64 (B, n_out) (or (n_out,)). Counts in ``ledger``.
        """
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x2 = x[None, :] if single else x
        if x2.ndim != 2 or x2.shape[1] != self.n_in:
            raise ValueError(f"x must have shape (B, {self.n_in}) or ({self.n_in},), got {x.shape}")
        rng = self._read_rng if rng is None else rng
        W = self.weights(t_s)
        levels = None if self.adc is None or drift_mod.drifts(self.device.drift, t_s) else self._level_tiles
        sr, sa = self.read_noise_relative, self.read_noise_additive
        noisy = noise and (sr > 0 or sa > 0)
        B = x2.shape[0]
        out = np.zeros((B, self.n_out))
        Wt, Wt2 = self._tiled(W, t_s, noisy)
        for coef, P, Pt in self._planes(x2):
            self._count_plane(Pt, self.ledger)
            if self.adc is None:
                part = P @ W
                if noisy:
                    part = sample_read(part, read_variance(P, Wt2, sr, sa), rng)
                out += coef * part
            else:
                # (T, B, tr), contiguous so that the stacked matmul runs on BLAS
                Pt = np.ascontiguousarray(Pt.transpose(1, 0, 2))
                # (T, B, n_out): one partial sum per tile, in levels when the cells sit on them
                # (exact integers: the ADC's rule converts from these, as the reservoir does)
                part, unit = (Pt @ Wt, 1.0) if levels is None else (Pt @ levels[0], levels[1])
                if noisy:
                    part = sample_read(part, read_variance(Pt, Wt2, sr, sa) / (unit * unit), rng)
                out += coef * self.adc.quantize(part.transpose(1, 0, 2), tile=None, unit=unit).sum(axis=1)
        self.ledger.add(macs=B * self.n_in * self.n_out)
        return out[0] if single else out

    def count_reads(self, x: np.ndarray) -> EnergyLedger:
        """A fresh ledger holding what :meth:`mvm` counts for ``x`` (B, n_in), without reading:
        the same input planes (one per bit on a bit-serial device), one read per (row of ``x``,
        plane, row tile, column tile) with an active row, and ``B * n_in * n_out`` MACs for the
        digital baseline. The energy of an encoding is counted by this, the crossbar's own rule."""
        x2 = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x2.ndim != 2 or x2.shape[1] != self.n_in:
            raise ValueError(f"x must have shape (B, {self.n_in}), got {np.shape(x)}")
        ledger = EnergyLedger.for_device(self.device)
        for _, _, Pt in self._planes(x2):
            self._count_plane(Pt, ledger)
        ledger.add(macs=x2.shape[0] * self.n_in * self.n_out)
        return ledger

    def _planes(self, x2: np.ndarray):
        """The input planes of ``x2`` (B, n_in) as ``(coefficient, P (B, n_in), P by row tile
        (B, n_tiles, tile_rows), zero-padded)`` (:func:`neurohw.devices.input_encoding.encode`)."""
        B, T, tr = x2.shape[0], self.n_tiles, self.tile_rows
        pad = T * tr - self.n_in
        for coef, P in encode(x2, self.device.input):
            yield coef, P, (np.concatenate([P, np.zeros((B, pad))], axis=1) if pad else P).reshape(B, T, tr)

    def _tiled(self, W: np.ndarray, t_s: float | None, noisy: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(W as (T, tile_rows, n_out) tiles when there is an ADC, else W; its square if noisy),
        cached for ``t_s=None``."""
        key = (t_s is None, noisy)
        if key == (True, True) and getattr(self, "_tiled_cache", None) is not None:
            return self._tiled_cache
        if self.adc is not None:
            T, tr = self.n_tiles, self.tile_rows
            pad = T * tr - self.n_in
            Wt = np.concatenate([W, np.zeros((pad, self.n_out))]) if pad else W
            Wt = np.ascontiguousarray(Wt.reshape(T, tr, self.n_out))
        else:
            Wt = W
        result = (Wt, np.square(Wt) if noisy else None)
        if key == (True, True):
            self._tiled_cache = result
        return result

    @cached_property
    def _level_tiles(self) -> tuple[np.ndarray, float] | None:
        """The integer levels ``Wq`` (float64, tiled as :meth:`_tiled` tiles ``W``) and ``unit``
        of :meth:`integer_weights`; None off the levels."""
        iw = self.integer_weights()
        if iw is None:
            return None
        T, tr = self.n_tiles, self.tile_rows
        q = np.zeros((T * tr, self.n_out))
        q[: self.n_in] = iw[0]
        return np.ascontiguousarray(q.reshape(T, tr, self.n_out)), iw[1]

    def _count_plane(self, Pt: np.ndarray, ledger: EnergyLedger) -> None:
        """Count one plane's reads into ``ledger``: ``Pt`` (B, T, tile_rows)."""
        active = np.count_nonzero(Pt, axis=-1)  # (B, T) active rows per tile read
        reads = int(np.count_nonzero(active))
        rows = int(active.sum())
        ledger.add(
            read_cycles=reads * self.n_col_tiles,
            active_rows=rows * self.n_col_tiles,
            cell_reads=rows * 2 * self.n_out,
            adc_conversions=reads * self.n_out,
        )

    def __repr__(self) -> str:
        return f"Crossbar({self.device.name!r}, n_in={self.n_in}, n_out={self.n_out}, scale={self.scale:g}, tiles={self.n_tiles}x{self.n_col_tiles})"
