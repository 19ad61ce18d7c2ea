"""The column ADC of each tile: partial sums -> signed integer codes -> digital values.

A tile's partial sum ``p`` (weight units: ``scale * uS`` at unit input) is converted as
    code = clip(rint(g_t * p / step_t), -max_code, max_code),    out = code * step_t
with ``max_code = 2^(bits-1) - 1`` (a signed ``bits``-bit converter, symmetric), ``step_t`` the
tile's LSB and ``g_t`` its analog gain (1 + a mismatch the digital side does not know; 1 by
default). Within range and with ``g_t = 1``, ``|out - p| <= step_t / 2``.

Full scale: ``gain: fixed`` gives every tile ``step = scale * range_us / 2^(bits-1)``;
``gain: per_tile`` calibrates each tile so its largest possible binary-input partial sum
(``max_j sum_i |W_ij|`` over the tile's rows) is the top code: ``step_t = that / max_code``.
Gains are per row tile (one per group of ``tile_rows`` inputs), shared by all columns.
"""

from __future__ import annotations

import numpy as np

from neurohw.devices.model import AdcSpec


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

    def quantize(self, partial_sums: np.ndarray, tile: int | None = None) -> np.ndarray:
        """Convert partial sums of row tile ``tile`` (shape ``(..., n_out)``), or of all tiles
        at once when ``tile`` is None (shape ``(..., n_tiles, n_out)``)."""
        p = np.asarray(partial_sums, dtype=np.float64)
        if tile is None:
            if p.ndim < 2 or p.shape[-2] != self.n_tiles:
                raise ValueError(f"partial sums need shape (..., {self.n_tiles}, n_out) when tile is None, got {p.shape}")
            step = self.step[:, None]
            gain = self.gain[:, None]
        else:
            step = self.step[tile]
            gain = self.gain[tile]
        codes = np.clip(np.rint(p * (gain / step)), -self.max_code, self.max_code)
        return codes * step

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
