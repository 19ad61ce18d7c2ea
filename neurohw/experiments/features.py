"""Feature sets handed from the encoder to the tasks (one modality, one split), and the raw
event-count features of the no-reservoir baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurohw.data.binning import to_raster


@dataclass
class FeatureSet:
    """Features ``x`` (N, d) float32 of one split, with dataset label indices and class names;
    ``ids``: each row's source sample (:func:`neurohw.data.registry.instance_ids`), for datasets
    paired by instance (None otherwise)."""

    x: np.ndarray
    labels: np.ndarray
    classes: list[str]
    ids: np.ndarray | None = None

    def __post_init__(self):
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.x) != len(self.labels):
            raise ValueError(f"{len(self.x)} feature rows but {len(self.labels)} labels")
        if self.ids is not None:
            self.ids = np.asarray(self.ids, dtype=np.int64)
            if len(self.ids) != len(self.labels):
                raise ValueError(f"{len(self.ids)} instance ids but {len(self.labels)} labels")

    @property
    def names(self) -> np.ndarray:
        """Class name of every sample."""
        return np.asarray(self.classes, dtype=object)[self.labels]

    def take(self, idx: np.ndarray) -> "FeatureSet":
        return FeatureSet(self.x[idx], self.labels[idx], self.classes, None if self.ids is None else self.ids[idx])


def event_count_features(ds, indices: np.ndarray, binning) -> np.ndarray:
    """The raw-input baseline's features: each sample's events binned by ``binning`` (a
    :class:`neurohw.data.binning.Binning`, usually ``mode="count"``) and flattened, (N, T*C)
    float32. With ``Binning(n_bins=3, polarity="both", mode="count")`` on N-MNIST these are the
    per-pixel event counts (3 time bins x 2 polarities x 34 x 34) of the dataset README's
    logistic-regression reference."""
    rows = [to_raster(ds.events(int(i)), ds.sensor_size, binning).reshape(-1) for i in indices]
    sizes = {len(r) for r in rows}
    if len(sizes) > 1:
        raise ValueError(f"samples bin to different sizes {sorted(sizes)}; give n_bins or max_bins so every raster has T bins")
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
