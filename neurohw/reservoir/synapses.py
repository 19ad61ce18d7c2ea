"""The reservoir's synapses as the backends take them: weights, inputs, read noise and ADC.

A :class:`Synapses` is plain arrays and numbers, built by :class:`neurohw.reservoir.lsm.LSMEncoder`
from the two crossbars (input and recurrent) and the device's input encoding. Every backend
(numpy, cpu, cupy) runs exactly the same arithmetic on it; docs/internals.md, section
Reservoir, states the semantics:

- Weights ``w_in`` (n_in, n) and ``w_rec`` (n, n), row ``i`` = what input/neuron ``i`` drives.
  Either float64 (continuous conductances), or integers in units of ``unit`` (conductances on
  levels): ``W == unit * Wq`` exactly. Integer sums are exact in any order, so every backend
  gets the same membrane bit for bit; the only float operations are per neuron and written in
  the same order everywhere.
- Inputs (:meth:`Synapses.input_codes`, the device's ``input`` section as
  :mod:`neurohw.devices.input_encoding` applies it): raster values become codes
  ``clip(rint(x / v), 0, 2^bits - 1)`` (``v = 1`` without ``full_scale``); bit-serial inputs
  are read one binary plane per code bit (coefficient ``v 2^b``), other quantised inputs as one
  amplitude plane ``code`` (coefficient ``v``); without ``bits`` the raster value itself is the
  amplitude. Spikes (the recurrent crossbar's inputs) are binary.
- Read noise (per read): multiplicative relative std ``noise_relative`` and additive std
  ``noise_additive`` (weight units) per active row. Noise-equivalent sampling: a column's read
  of plane ``P`` is ``N(sum_i P_i w_ij, sr^2 sum_i P_i^2 w_ij^2 + sa^2 sum_i P_i^2)``, exact
  for binary planes with independent Gaussian per-cell noise.
- ADC (optional): each crossbar is cut into tiles of ``tile_rows`` rows; a tile's read of a
  plane (noise included) is converted to a code ``clip(rint(a * (unit / step) * gain + n),
  -max_code, max_code)`` and back to ``code * step``, times the plane's coefficient; the reads
  are then summed digitally. A tile with no active row in a plane is not read. This is the
  device's one ADC rule (:mod:`neurohw.devices.adc`: code units, ties to even), the rule
  :meth:`neurohw.crossbar.Crossbar.mvm` applies too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from neurohw.devices.adc import codes_per_unit


@dataclass(frozen=True)
class Adc:
    """Per-tile ADC of the two crossbars (:class:`neurohw.devices.adc.TileADC`'s rule).

    ``code = clip(rint(p * (gain_k / step_k)), -max_code, max_code)``, ``out = code * step_k``;
    ``step_in[k]`` / ``step_rec[k]``: weight units per code of row tile ``k``; ``gain_*``: the
    tile's analog gain (1 + mismatch), default 1; a signed ``bits``-bit ADC has
    ``max_code = 2**(bits-1) - 1``.
    """

    tile_rows: int
    step_in: np.ndarray  # float64, (ceil(n_in / tile_rows),)
    step_rec: np.ndarray  # float64, (ceil(n / tile_rows),)
    max_code: int
    gain_in: np.ndarray | None = None  # float64, like step_in; None: 1
    gain_rec: np.ndarray | None = None

    def __post_init__(self):
        if self.tile_rows < 1 or self.max_code < 1:
            raise ValueError("Adc: tile_rows and max_code must be >= 1")
        if np.any(np.asarray(self.step_in) <= 0) or np.any(np.asarray(self.step_rec) <= 0):
            raise ValueError("Adc: every step must be > 0")


@dataclass(frozen=True)
class Synapses:
    """Weights, neuron constants and read physics of one reservoir (see the module doc)."""

    w_in: np.ndarray  # (n_in, n): float64, or int8/int16/int32 levels
    w_rec: np.ndarray  # (n, n), same kind as w_in
    unit: float | None  # weight per integer level; None: float weights
    v_th: float
    decay: float
    reset: str = "hard"  # "hard" | "subtract"
    noise_relative: float = 0.0
    noise_additive: float = 0.0
    adc: Adc | None = None
    seed: int = 0  # key of the read-noise draws (rng.seed_key)
    input_bits: int | None = None  # device input.bits; None: raster values are analog amplitudes
    input_full_scale: float | None = None  # device input.full_scale; None: raster values are the codes
    input_bit_serial: bool = False  # device input.bit_serial: one read per bit plane of the codes

    def __post_init__(self):
        n = self.w_rec.shape[0]
        if self.w_in.ndim != 2 or self.w_rec.shape != (n, n) or self.w_in.shape[1] != n:
            raise ValueError(f"Synapses: w_in {self.w_in.shape} and w_rec {self.w_rec.shape} do not fit")
        integer = np.issubdtype(self.w_in.dtype, np.integer)
        if integer != np.issubdtype(self.w_rec.dtype, np.integer) or integer != (self.unit is not None):
            raise ValueError("Synapses: give both weights as integers with a unit, or both as floats without")
        if self.reset not in ("hard", "subtract"):
            raise ValueError(f"Synapses: reset must be 'hard' or 'subtract', got {self.reset!r}")
        if self.input_bits is not None and not 1 <= self.input_bits <= 16:
            raise ValueError(f"Synapses: input_bits must be in 1..16 or None, got {self.input_bits}")
        if self.input_full_scale is not None and not self.input_full_scale > 0:
            raise ValueError(f"Synapses: input_full_scale must be > 0 or None, got {self.input_full_scale}")
        if self.adc is not None:
            if len(self.adc.step_in) != -(-self.n_inputs // self.adc.tile_rows):
                raise ValueError("Synapses: adc.step_in needs one step per input tile")
            if len(self.adc.step_rec) != -(-self.n_neurons // self.adc.tile_rows):
                raise ValueError("Synapses: adc.step_rec needs one step per recurrent tile")

    @property
    def n_inputs(self) -> int:
        return int(self.w_in.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.w_rec.shape[0])

    @property
    def integer(self) -> bool:
        return self.unit is not None

    @cached_property
    def wmax(self) -> int | float:
        """The largest ``|w|`` of both weight arrays (levels for integer weights); computed once
        per Synapses (the backends' overflow and lane-width checks read it every batch)."""
        num = int if self.integer else float  # python numbers: -(-128) does not wrap in int8

        def absmax(w):
            return max(-num(w.min(initial=0)), num(w.max(initial=0)))

        return max(absmax(self.w_in), absmax(self.w_rec))

    @property
    def unit_value(self) -> float:
        """The factor from accumulated sums to weight units (1.0 for float weights)."""
        return 1.0 if self.unit is None else float(self.unit)

    @property
    def rel2(self) -> float:
        """Variance per unit of ``sum x^2 w^2`` as accumulated (``(sigma_r * unit)^2``)."""
        return (self.noise_relative * self.unit_value) ** 2

    @property
    def add2(self) -> float:
        """Additive variance per unit of ``sum x^2`` (weight units squared)."""
        return self.noise_additive**2

    @property
    def noisy(self) -> bool:
        return self.noise_relative > 0 or self.noise_additive > 0

    def tiles(self) -> tuple[int, int, int]:
        """``(tile_rows, n_tiles_in, n_tiles_rec)``; one tile per crossbar without an ADC."""
        if self.adc is None:
            return max(self.n_inputs, self.n_neurons, 1), 1, 1
        tr = self.adc.tile_rows
        return tr, -(-self.n_inputs // tr), -(-self.n_neurons // tr)

    # ------------------------------------------------------------------ inputs

    @property
    def bit_serial(self) -> bool:
        """Whether input codes are read one binary plane per bit."""
        return self.input_bits is not None and self.input_bit_serial

    @property
    def input_value(self) -> float:
        """``v``, the input value of one code step: ``full_scale / (2^bits - 1)``, else 1."""
        if self.input_bits is None or self.input_full_scale is None:
            return 1.0
        return float(self.input_full_scale) / (2**self.input_bits - 1)

    def input_codes(self, max_value: int) -> np.ndarray:
        """The code of every raster value ``0..max_value`` (int32; index = raster value):
        ``clip(rint(x / v), 0, 2^bits - 1)``, or ``x`` itself without ``input_bits``."""
        x = np.arange(int(max_value) + 1)
        if self.input_bits is None:
            return x.astype(np.int32)
        return np.clip(np.rint(x / self.input_value), 0, 2**self.input_bits - 1).astype(np.int32)

    def n_planes(self, max_code: int) -> int:
        """Input planes read per step for codes up to ``max_code``: its bit length when
        bit-serial (at least 1), else one amplitude plane."""
        return max(1, int(max_code).bit_length()) if self.bit_serial else 1

    def plane_coefficients(self, n_planes: int) -> np.ndarray:
        """float64 coefficient of each input plane's read: ``v 2^b`` (bit-serial) or ``v``."""
        v = self.input_value
        if self.bit_serial:
            return np.array([v * 2.0**b for b in range(n_planes)], np.float64)
        return np.full(n_planes, v, np.float64)

    # ------------------------------------------------------------------ reads

    def adc_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(step, inv_step)`` per tile, input tiles first, float64; ``inv_step = gain / step``."""
        if self.adc is None:
            return np.ones(1), np.ones(1)
        a = self.adc
        step = np.concatenate([np.asarray(a.step_in, float), np.asarray(a.step_rec, float)])
        g_in = np.ones(len(a.step_in)) if a.gain_in is None else np.asarray(a.gain_in, float)
        g_rec = np.ones(len(a.step_rec)) if a.gain_rec is None else np.asarray(a.gain_rec, float)
        return step, np.concatenate([g_in, g_rec]) / step

    def read_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per read tile (input tiles, then recurrent; one entry without an ADC), what every
        backend's read rule takes:

        - ``step`` float64: the ADC's output per code (weight units); without an ADC ``unit``.
        - ``ua`` float64: ADC codes per accumulated unit, ``(unit / step) * gain`` (exactly 1.0
          when the ADC has one code per level: ``step == unit``, gain 1); without an ADC
          ``unit`` (weight units per accumulated unit).
        - ``rel2``, ``add2`` float32: the read-noise variance per unit of ``sum P^2 w^2`` and of
          ``sum P^2``, in the read's output units (ADC codes: times ``(gain / step)^2``).
        """
        u = self.unit_value
        if self.adc is None:
            return (np.array([u]), np.array([u]), np.array([self.rel2], np.float32), np.array([self.add2], np.float32))
        step, inv_step = self.adc_tables()
        a = self.adc
        g_in = np.ones(len(a.step_in)) if a.gain_in is None else np.asarray(a.gain_in, float)
        g_rec = np.ones(len(a.step_rec)) if a.gain_rec is None else np.asarray(a.gain_rec, float)
        ua = codes_per_unit(u, step, np.concatenate([g_in, g_rec]))
        return step, ua, (self.rel2 * inv_step**2).astype(np.float32), (self.add2 * inv_step**2).astype(np.float32)
