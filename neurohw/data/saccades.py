"""Saccades: a static image moved across a sensor, the way N-MNIST was recorded.

N-MNIST (Orchard, Jayawant, Cohen & Thakor, Frontiers in Neuroscience 9:437, 2015) moved an ATIS
camera in three saccades of about 100 ms each, tracing a triangle, in front of a still MNIST
digit. Here the image moves instead of the camera (the same relative motion): its top-left
corner follows a closed triangle of offsets on the canvas, each leg with a smooth-step profile
``s(u) = 3u^2 - 2u^3`` (zero velocity at the corners, like a motor's start and stop).

The image is upsampled and translated by one linear ("tent") interpolation, separable in x and
y: ``frame[t] = Wy[t] @ image @ Wx[t].T``, with zero outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SaccadePath:
    """A closed polygon of image offsets (canvas pixels), one leg per saccade."""

    #: (x, y) offsets of the image's top-left corner at each corner of the path; the path
    #: returns to the first vertex. Defaults keep a 28-pixel image inside a 34-pixel canvas.
    vertices: tuple[tuple[float, float], ...] = ((1.0, 1.0), (3.0, 5.0), (5.0, 1.0))
    #: duration of one saccade, microseconds (N-MNIST: ~100 ms)
    leg_us: float = 100_000.0

    @property
    def duration_us(self) -> float:
        return self.leg_us * len(self.vertices)

    def offsets(self, times_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) offsets at ``times_us`` (clipped to the path's duration)."""
        t = np.clip(np.asarray(times_us, dtype=np.float64), 0.0, self.duration_us)
        verts = np.asarray(self.vertices + (self.vertices[0],), dtype=np.float64)
        leg = np.minimum((t // self.leg_us).astype(np.int64), len(self.vertices) - 1)
        u = (t - leg * self.leg_us) / self.leg_us
        s = 3.0 * u**2 - 2.0 * u**3  # smooth step: s(0) = 0, s(1) = 1, s'(0) = s'(1) = 0
        start, stop = verts[leg], verts[leg + 1]
        xy = start + s[:, None] * (stop - start)
        return xy[:, 0], xy[:, 1]


def tent_weights(n_canvas: int, n_source: int, size: float, offsets: np.ndarray) -> np.ndarray:
    """Interpolation weights ``(T, n_canvas, n_source)`` of a 1-D source scaled to ``size``
    canvas pixels and shifted by ``offsets[t]``.

    Canvas pixel ``v`` (centre ``v + 0.5``) lies at source coordinate
    ``s = (v + 0.5 - offset) * n_source / size - 0.5``; source pixel ``i`` gets weight
    ``max(0, 1 - |s - i|)`` (linear interpolation; zero beyond the source's edge).
    """
    v = np.arange(n_canvas, dtype=np.float64)
    s = (v[None, :] + 0.5 - np.asarray(offsets, dtype=np.float64)[:, None]) * (n_source / size) - 0.5
    i = np.arange(n_source, dtype=np.float64)
    return np.maximum(0.0, 1.0 - np.abs(s[:, :, None] - i[None, None, :]))


def render_saccades(
    images: np.ndarray,
    canvas: int,
    size: int,
    path: SaccadePath,
    times_us: np.ndarray,
) -> np.ndarray:
    """Intensity videos ``(B, canvas, canvas, T)`` (float32) of ``images`` ``(B, h, w)``
    upsampled to ``size x size`` pixels and moved along ``path``, sampled at ``times_us``."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"images must be (B, h, w), got shape {images.shape}")
    ox, oy = path.offsets(times_us)
    wy = tent_weights(canvas, images.shape[1], size, oy).astype(np.float32)  # (T, H, h)
    wx = tent_weights(canvas, images.shape[2], size, ox).astype(np.float32)  # (T, W, w)
    rows = np.matmul(wy[None], images[:, None])  # (B, T, H, w)
    frames = np.matmul(rows, wx.transpose(0, 2, 1)[None])  # (B, T, H, W)
    return np.ascontiguousarray(frames.transpose(0, 2, 3, 1))
