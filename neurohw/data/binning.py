"""Binning: events -> T x C rasters, and the sparse form (active channels per bin).

A raster is a ``(T, C)`` ``uint8`` array: ``T`` time bins, ``C`` input channels of the reservoir.

Time. With ``n_bins = N`` a sample is cut into N equal chunks of its own duration
``D = t_last - t_first`` (microseconds): event at time ``t`` goes to bin
``b = floor((t - t_first) * N / D)``, the last bin closed so that ``t_last`` lands in bin
``N - 1`` (``D = 0``: every event in bin 0). This is the paper's N-TIDIGITS setting ("each sample
cut into 129 equal chunks"); when ``D`` is a multiple of ``N`` it equals
``tonic.transforms.ToFrame(n_time_bins=N)`` except that tonic drops the events at ``t_last``.
With ``bin_width_us = w``: ``b = floor((t - t_first) / w)``, ``T = floor(D / w) + 1`` (tonic's
``ToFrame(time_window=w, include_incomplete=True)`` when ``D`` is not a multiple of ``w``);
``max_bins`` then pads with empty bins or cuts the tail to exactly ``max_bins``.

Space. Cameras (sensor ``(W, H, P)``): an optional centre crop to ``(h, w)`` with offsets
``((H - h) // 2, (W - w) // 2)`` (tonic's ``CenterCrop``), then integer downsampling
``x // f, y // f`` (``ceil(w / f)`` columns), then the channel
``c = (p_index * H' + y) * W' + x``. Cochleas (sensor ``(C, 1, P)``): ``c = p_index * C' + x // f``
(``c = x // f`` for the usual single polarity).

Polarity. ``0`` or ``1`` keep only that polarity (one channel set); ``"both"`` keeps both as
separate channel sets (``p_index = p``, channels doubled); ``"merge"`` sums them into one set.
A single-polarity sensor (``P = 1``, e.g. the cochleas, whose ``p`` is always 1) has one channel
set and every event counts, whatever ``polarity`` says.

Values. ``"binary"``: 1 where a bin/channel saw at least one event; ``"count"``: the number of
events, saturating at 255 (uint8).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from neurohw.config import Section
from neurohw.errors import ConfigError

#: largest value a count raster holds (uint8)
COUNT_MAX = 255


class Binning(Section):
    """How events become a ``(T, C)`` raster. Exactly one of ``n_bins`` and ``bin_width_us``."""

    model_config = ConfigDict(frozen=True)

    n_bins: int | None = Field(None, gt=0, description="number of equal chunks of the sample's duration")
    bin_width_us: int | None = Field(None, gt=0, description="bin width in microseconds")
    max_bins: int | None = Field(
        None, gt=0, description="with bin_width_us: pad with empty bins or cut to this many bins"
    )
    crop: tuple[int, int] | None = Field(None, description="centre crop (h, w) in pixels, cameras only")
    polarity: Literal[0, 1, "both", "merge"] = Field(
        "both", description="0 or 1: keep that polarity; both: separate channel sets; merge: sum them"
    )
    downsample: int = Field(1, gt=0, description="integer spatial pooling factor (x // f, y // f)")
    mode: Literal["binary", "count"] = Field("binary", description="binary spikes or counts (saturate at 255)")

    @model_validator(mode="after")
    def _one_time_rule(self) -> "Binning":
        if (self.n_bins is None) == (self.bin_width_us is None):
            raise ValueError("give exactly one of n_bins and bin_width_us")
        if self.max_bins is not None and self.bin_width_us is None:
            raise ValueError("max_bins goes with bin_width_us (n_bins already fixes the number of bins)")
        if self.crop is not None and min(self.crop) <= 0:
            raise ValueError(f"crop must be two positive sizes (h, w), got {self.crop}")
        return self


def _sensor(sensor_size) -> tuple[int, int, int]:
    try:
        w, h, p = (int(v) for v in sensor_size)
    except (TypeError, ValueError):
        raise ValueError(f"sensor_size must be (W, H, P), got {sensor_size!r}") from None
    if w <= 0 or h <= 0 or p not in (1, 2):
        raise ValueError(f"sensor_size must be (W, H, P) with W, H > 0 and P in (1, 2), got {sensor_size!r}")
    return w, h, p


def _geometry(sensor_size, binning: Binning, camera: bool):
    """(x0, y0, w, h) of the crop, (W', H') after downsampling, number of polarity sets."""
    W, H, P = _sensor(sensor_size)
    if camera:
        h, w = binning.crop if binning.crop is not None else (H, W)
        if h > H or w > W:
            raise ConfigError(f"binning.crop {binning.crop} is larger than the sensor (h={H}, w={W}); use a crop inside it")
        y0, x0 = (H - h) // 2, (W - w) // 2
    else:
        if binning.crop is not None:
            raise ConfigError("binning.crop applies to cameras only; remove it for a cochlea dataset")
        if H != 1:
            raise ValueError(f"a cochlea sensor is (channels, 1, P), got {sensor_size!r}")
        h, w, y0, x0 = 1, W, 0, 0
    f = binning.downsample
    w_out, h_out = -(-w // f), -(-h // f)
    n_pol = 2 if (P == 2 and binning.polarity == "both") else 1
    return x0, y0, w, h, w_out, h_out, n_pol


def n_channels(sensor_size, binning: Binning, camera: bool | None = None) -> int:
    """Number of raster channels ``C`` for events of ``sensor_size`` binned by ``binning``.

    ``camera`` defaults to ``H > 1`` (tonic's cochlea sensors are ``(C, 1, 1)``); pass it for a
    one-row camera.
    """
    if camera is None:
        camera = _sensor(sensor_size)[1] > 1
    *_, w_out, h_out, n_pol = _geometry(sensor_size, binning, camera)
    return n_pol * h_out * w_out


def dataset_channels(dataset, binning: Binning) -> int:
    """Raster channels ``C`` of the samples of ``dataset`` (an EventDataset) binned by ``binning``."""
    return n_channels(dataset.sensor_size, binning, camera=dataset.is_camera)


def dataset_rasters(dataset, binning: Binning, indices: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """The ``(T, C)`` rasters of ``dataset``'s samples ``indices`` (default: all), binned one at a
    time as they are consumed (only one sample's events are held)."""
    for i in range(len(dataset)) if indices is None else indices:
        yield to_raster(dataset.events(int(i)), dataset.sensor_size, binning)


def event_channels(events: np.ndarray, sensor_size, binning: Binning) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, channel)``: which events survive crop and polarity selection, and their channel.

    ``channel`` has one entry per kept event (``events[keep]``).
    """
    names = events.dtype.names or ()
    camera = "y" in names
    if not {"x", "t", "p"} <= set(names):
        raise ValueError(f"events need fields x, t, p (and y for cameras), got {names}")
    x0, y0, w, h, w_out, h_out, n_pol = _geometry(sensor_size, binning, camera)
    W, H, P = _sensor(sensor_size)
    x = events["x"].astype(np.int64)
    p = events["p"].astype(np.int64)
    if len(events):
        if x.min() < 0 or x.max() >= W:
            raise ValueError(f"event x outside the sensor: range [{x.min()}, {x.max()}] for width {W}")
        if P == 2 and not np.isin(p, (0, 1)).all():
            raise ValueError("camera polarity must be 0 or 1")
    keep = np.ones(len(events), dtype=bool)
    if P == 2 and binning.polarity in (0, 1):
        keep &= p == binning.polarity
    f = binning.downsample
    if camera:
        y = events["y"].astype(np.int64)
        if len(events) and (y.min() < 0 or y.max() >= H):
            raise ValueError(f"event y outside the sensor: range [{y.min()}, {y.max()}] for height {H}")
        keep &= (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)
        ys = (y[keep] - y0) // f
    else:
        ys = 0
    xs = (x[keep] - x0) // f
    p_index = p[keep] if n_pol == 2 else 0
    channel = (p_index * h_out + ys) * w_out + xs
    return keep, channel


def time_bins(t: np.ndarray, binning: Binning) -> tuple[np.ndarray, int]:
    """``(bin, T)``: the time bin of each timestamp (microseconds) and the number of bins.

    Bins past ``max_bins`` get index ``-1`` (cut); see the module doc for the rule.
    """
    t = np.asarray(t, dtype=np.int64)
    if binning.n_bins is not None:
        n = binning.n_bins
        if len(t) == 0:
            return np.zeros(0, dtype=np.int64), n
        t0, span = t.min(), int(t.max() - t.min())
        if span == 0:
            return np.zeros(len(t), dtype=np.int64), n
        # b = floor((t - t0) * N / D), exact in integers; t_last (b = N) joins the last bin
        rel = t - t0
        if span < (1 << 62) // n:
            b = rel * n // span
        else:  # pragma: no cover - durations beyond ~1e12 s / N
            b = np.floor(rel.astype(np.float64) * n / span).astype(np.int64)
        return np.minimum(b, n - 1), n
    width = binning.bin_width_us
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64), (binning.max_bins or 0)
    b = (t - t.min()) // width
    n = int(b.max()) + 1
    if binning.max_bins is not None:
        b = np.where(b < binning.max_bins, b, -1)
        n = binning.max_bins
    return b, n


def to_raster(events: np.ndarray, sensor_size, binning: Binning) -> np.ndarray:
    """Bin one sample's events into a ``(T, C)`` ``uint8`` raster (see the module doc)."""
    keep, channel = event_channels(events, sensor_size, binning)
    b, n_t = time_bins(events["t"], binning)
    b = b[keep]
    c_total = n_channels(sensor_size, binning, camera="y" in events.dtype.names)
    inside = b >= 0
    flat = b[inside] * c_total + channel[inside]
    counts = np.bincount(flat, minlength=n_t * c_total).reshape(n_t, c_total)
    if binning.mode == "binary":
        return (counts > 0).astype(np.uint8)
    return np.minimum(counts, COUNT_MAX).astype(np.uint8)


def to_sparse_raster(events: np.ndarray, sensor_size, binning: Binning) -> "SparseRaster":
    """``to_sparse(to_raster(events, sensor_size, binning))``."""
    return to_sparse(to_raster(events, sensor_size, binning))


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
