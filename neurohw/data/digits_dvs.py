"""digits-dvs: scikit-learn's handwritten digits seen by an emulated DVS during N-MNIST saccades.

The 1,797 real 8x8 digit images of ``sklearn.datasets.load_digits`` (UCI optical recognition of
handwritten digits, 4-bit grey levels 0-16) get a 1-pixel zero border (their ink touches the
edge, which would otherwise make a false edge), are upsampled to 28x28 (MNIST's size) on a
34x34 canvas (N-MNIST's sensor), shown as white ink on black (intensity = grey / 16), moved in
three 100 ms saccades (:mod:`neurohw.data.saccades`) and seen by the pixel array of
:mod:`neurohw.data.dvs_emulator`, sampled every millisecond. The sensor (its per-pixel
thresholds) is drawn once per seed and shared by all samples, as one camera recorded N-MNIST.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neurohw.data.dvs_emulator import DVSPixelModel, emulate_packed, log_intensity, pixel_thresholds
from neurohw.data.embedded import PackedEvents
from neurohw.data.saccades import SaccadePath, render_saccades

#: N-MNIST's sensor: 34 x 34 pixels, 2 polarities (tonic order W, H, P)
SENSOR_SIZE = (34, 34, 2)
#: MNIST's digit size, pixels
DIGIT_SIZE = 28
#: zero border added around the 8x8 images before upsampling, pixels
BORDER = 1
#: frame interval of the rendered video, microseconds (motion per frame < 0.07 pixel)
FRAME_US = 1000
#: samples rendered and emulated together (fixes the noise streams, so keep it constant)
CHUNK = 64
#: random streams derived from the seed (numpy SeedSequence entropy [seed, stream, ...])
_SENSOR_STREAM, _NOISE_STREAM = 0, 1


def source_images(samples_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The digit images ``(N, 10, 10)`` in [0, 1] (zero border included) and their labels.

    ``samples_per_class``: keep the first that many of each digit (in the dataset's order).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    if samples_per_class is not None:
        keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:samples_per_class] for c in range(10)]))
        images, labels = images[keep], labels[keep]
    padded = np.pad(images / 16.0, ((0, 0), (BORDER, BORDER), (BORDER, BORDER)))
    return padded.astype(np.float32), labels


def generate(
    seed: int,
    samples_per_class: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    model: DVSPixelModel = DVSPixelModel(),
    path: SaccadePath = SaccadePath(),
) -> PackedEvents:
    """Generate the digits-dvs events (all 1,797 images unless ``samples_per_class``)."""
    images, labels = source_images(samples_per_class)
    width, height, _ = SENSOR_SIZE
    times = np.arange(0.0, path.duration_us + FRAME_US / 2, FRAME_US)
    thresholds = pixel_thresholds(height, width, model, np.random.default_rng([seed, _SENSOR_STREAM]))
    counts, cols = [], {k: [] for k in ("x", "y", "t", "p")}
    for k, start in enumerate(range(0, len(images), CHUNK)):
        video = render_saccades(images[start : start + CHUNK], width, DIGIT_SIZE, path, times)
        rng = np.random.default_rng([seed, _NOISE_STREAM, k])
        c, x, y, t, p = emulate_packed(log_intensity(video, model.eps), times, thresholds, model, rng)
        counts.append(c)
        for key, arr, dt in (("x", x, np.uint8), ("y", y, np.uint8), ("t", t, np.uint32), ("p", p, np.uint8)):
            cols[key].append(arr.astype(dt))
        if on_progress is not None:
            on_progress(min(start + CHUNK, len(images)), len(images))
    return PackedEvents(
        labels=labels,
        counts=np.concatenate(counts).astype(np.int64),
        columns={k: np.concatenate(v) for k, v in cols.items()},
        meta={
            "source": "sklearn.datasets.load_digits (1,797 8x8 images)",
            "model": repr(model),
            "path": repr(path),
            "frame_us": FRAME_US,
        },
    )
