"""Binning: events -> T x C rasters, and the sparse form (active channels per bin).

(The dense binning functions are added beside :class:`SparseRaster`; see docs/internals.md.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseRaster:
    """The active channels of each time bin, CSR-like.

    Bin ``t`` holds channels ``indices[indptr[t]:indptr[t+1]]`` with values
    ``values[indptr[t]:indptr[t+1]]`` (1 for binary rasters, counts otherwise).
    """

    indptr: np.ndarray  # int64, (T + 1,)
    indices: np.ndarray  # int32, (nnz,)
    values: np.ndarray  # uint8, (nnz,)
    n_channels: int

    @property
    def n_bins(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def to_dense(self) -> np.ndarray:
        out = np.zeros((self.n_bins, self.n_channels), dtype=np.uint8)
        rows = np.repeat(np.arange(self.n_bins), np.diff(self.indptr))
        out[rows, self.indices] = self.values
        return out


def to_sparse(raster: np.ndarray) -> SparseRaster:
    """The sparse form of a dense ``(T, C)`` raster (row-major order of the non-zeros)."""
    raster = np.asarray(raster)
    if raster.ndim != 2:
        raise ValueError(f"raster must be 2-D (T, C), got shape {raster.shape}")
    rows, cols = np.nonzero(raster)
    indptr = np.zeros(raster.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=raster.shape[0]), out=indptr[1:])
    return SparseRaster(
        indptr=indptr,
        indices=cols.astype(np.int32),
        values=raster[rows, cols].astype(np.uint8),
        n_channels=int(raster.shape[1]),
    )
