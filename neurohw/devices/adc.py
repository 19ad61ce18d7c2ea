"""The column ADC of each tile: partial sums -> signed integer codes -> digital values.

The one rule, for every read (:meth:`neurohw.crossbar.Crossbar.mvm` and the reservoir's
backends alike). A tile's partial sum is accumulated as ``a`` in units of ``unit`` weight units
(a crossbar on conductance levels: the integer sum of its levels, ``unit = scale *
level_step_us``; otherwise the weight-unit sum, ``unit = 1``), taken to code units and rounded:
    x = a * codes_per_unit,   codes_per_unit = (unit / step_t) * g_t        (in this order)
    code = clip(rint(x), -max_code, max_code),    out = code * step_t
with ``max_code = 2^(bits-1) - 1`` (a signed ``bits``-bit converter, symmetric), ``step_t`` the
tile's LSB (weight units per code) and ``g_t`` its analog gain (1 + a mismatch the digital side
does not know; 1 by default). Within range and with ``g_t = 1``, ``|out - a unit| <= step_t / 2``.

Ties: ``rint`` rounds half to even (IEEE 754 round-to-nearest-even, numpy's ``rint``), in code
units: ``x = 51.5`` gives 52 and ``x = 50.5`` gives 50. Converting in code units from the exact
level sum keeps a tie a tie; a weight-unit sum ``p = sum W`` is rounded in float64 first and
can land on either side of it (``rint(p * g_t / step_t)`` gave 51 for a 51.5-code read).

Full scale: ``gain: fixed`` gives every tile ``step = scale * range_us / 2^(bits-1)``;
``gain: per_tile`` calibrates each tile so its largest possible binary-input partial sum
(``max_j sum_i |W_ij|`` over the tile's rows) is the top code: ``step_t = that / max_code``.
Gains are per row tile (one per group of ``tile_rows`` inputs), shared by all columns.
"""

from __future__ import annotations

import numpy as np

from neurohw.devices.model import AdcSpec


def adc_codes(x: np.ndarray, max_code: float) -> np.ndarray:
    """The ADC's codes of reads ``x`` given in code units: ``clip(rint(x), -max_code, max_code)``,
    float64, ties to even (see the module doc)."""
    return np.clip(np.rint(x), -max_code, max_code)


def codes_per_unit(unit: float, step: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """ADC codes per accumulated unit of each tile: ``(unit / step) * gain`` (exactly 1.0 when the
    ADC has one code per level: ``step == unit``, gain 1)."""
    return (unit / np.asarray(step, dtype=np.float64)) * np.asarray(gain, dtype=np.float64)


class TileADC:
    """Per-tile quantiser for partial sums (see the module doc)."""

    def __init__(self, bits: int, step: np.ndarray, gain: np.ndarray | None = None):
        if bits < 1:
            raise ValueError(f"ADC bits must be >= 1, got {bits}")
        self.bits = int(bits)
        self.max_code = max(2 ** (self.bits - 1) - 1, 1)
        self.step = np.asarray(step, dtype=np.float64).reshape(-1)
        if np.any(self.step <= 0) or not np.all(np.isfinite(self.step)):
            raise ValueError("ADC steps must be finite and > 0")
        self.gain = np.ones_like(self.step) if gain is None else np.asarray(gain, dtype=np.float64).reshape(-1)
        if self.gain.shape != self.step.shape:
            raise ValueError("ADC gain needs one value per tile")

    @property
    def n_tiles(self) -> int:
        return len(self.step)

    @property
    def full_scale(self) -> np.ndarray:
        """The largest representable |output| of each tile, weight units."""
        return self.max_code * self.step

    def codes_per_unit(self, unit: float = 1.0) -> np.ndarray:
        """Codes per accumulated unit of each tile (:func:`codes_per_unit`)."""
        return codes_per_unit(unit, self.step, self.gain)

    def quantize(self, partial_sums: np.ndarray, tile: int | None = None, unit: float = 1.0) -> np.ndarray:
        """Convert partial sums of row tile ``tile`` (shape ``(..., n_out)``), or of all tiles
        at once when ``tile`` is None (shape ``(..., n_tiles, n_out)``), given in units of
        ``unit`` weight units (the module doc's ``a``; 1: weight units). Returns weight units."""
        p = np.asarray(partial_sums, dtype=np.float64)
        cpu = self.codes_per_unit(unit)
        if tile is None:
            if p.ndim < 2 or p.shape[-2] != self.n_tiles:
                raise ValueError(f"partial sums need shape (..., {self.n_tiles}, n_out) when tile is None, got {p.shape}")
            step, cpu = self.step[:, None], cpu[:, None]
        else:
            step, cpu = self.step[tile], cpu[tile]
        return adc_codes(p * cpu, self.max_code) * step

    @classmethod
    def build(cls, spec: AdcSpec, weights: np.ndarray, tile_rows: int, scale: float, rng: np.random.Generator) -> "TileADC | None":
        """The ADC of a crossbar with ``weights`` (n_in, n_out); None when ``spec.bits`` is null."""
        if spec.bits is None:
            return None
        n_in = weights.shape[0]
        n_tiles = -(-n_in // tile_rows)
        max_code = max(2 ** (spec.bits - 1) - 1, 1)
        fixed = scale * spec.range_us / 2 ** (spec.bits - 1)
        if spec.gain == "fixed":
            step = np.full(n_tiles, fixed)
        else:
            step = np.empty(n_tiles)
            for t in range(n_tiles):
                worst = np.abs(weights[t * tile_rows : (t + 1) * tile_rows]).sum(axis=0).max(initial=0.0)
                step[t] = worst / max_code if worst > 0 else fixed
        gain = 1.0 + spec.gain_error_std * rng.standard_normal(n_tiles) if spec.gain_error_std > 0 else np.ones(n_tiles)
        return cls(spec.bits, step, gain)
