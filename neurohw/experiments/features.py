"""Feature sets handed from the encoder to the tasks: one modality, one split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neurohw.heads.training import TrainHistory


@dataclass
class FeatureSet:
    """Features ``x`` (N, d) float32 of one split, with dataset label indices and class names."""

    x: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __post_init__(self):
        self.x = np.ascontiguousarray(self.x, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.x) != len(self.labels):
            raise ValueError(f"{len(self.x)} feature rows but {len(self.labels)} labels")

    @property
    def names(self) -> np.ndarray:
        """Class name of every sample."""
        return np.asarray(self.classes, dtype=object)[self.labels]

    def take(self, idx: np.ndarray) -> "FeatureSet":
        return FeatureSet(self.x[idx], self.labels[idx], self.classes)


def assemble(features: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """Concatenate the chosen encoder features per sample into one (N, d) float32 matrix."""
    parts = []
    for name in names:
        if name not in features:
            raise KeyError(f"the encoder produced no {name!r} features (got {sorted(features)})")
        v = np.asarray(features[name], dtype=np.float32)
        parts.append(v.reshape(len(v), -1))
    return np.concatenate(parts, axis=1)


def event_count_features(ds, indices: np.ndarray, binning) -> np.ndarray:
    """The raw-input baseline's features: each sample's events binned by ``binning`` (a
    :class:`neurohw.data.binning.Binning`, usually ``mode="count"``) and flattened, (N, T*C)
    float32. With ``Binning(n_bins=3, polarity="both", mode="count")`` on N-MNIST these are the
    per-pixel event counts (3 time bins x 2 polarities x 34 x 34) of the dataset README's
    logistic-regression reference."""
    from neurohw.data.binning import to_raster

    rows = [to_raster(ds.events(int(i)), ds.sensor_size, binning).reshape(-1) for i in indices]
    sizes = {len(r) for r in rows}
    if len(sizes) > 1:
        raise ValueError(f"samples bin to different sizes {sorted(sizes)}; give n_bins or max_bins so every raster has T bins")
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: ``round(fraction * n_c)`` of each class (at least 1 when n_c >= 2) to validation."""
    labels = np.asarray(labels)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_folds(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index in ``[0, k)`` of every sample, stratified: each class's samples, in a random
    order drawn with ``rng``, are dealt to the folds in turn (continuing where the previous class
    stopped), so every fold holds ``floor`` or ``ceil`` of ``n_c / k`` of each class and fold
    sizes differ by at most one. ``k`` must be in ``[2, len(labels)]``."""
    labels = np.asarray(labels)
    if not 2 <= k <= len(labels):
        raise ValueError(f"k-fold cross-validation needs 2 <= k <= {len(labels)} samples, got k={k}")
    folds = np.empty(len(labels), dtype=np.int64)
    start = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        folds[idx] = (start + np.arange(len(idx))) % k
        start = (start + len(idx)) % k
    return folds


@dataclass
class TaskOutput:
    """What a task hands to the run directory."""

    metrics: dict
    curves: dict[str, TrainHistory] = field(default_factory=dict)
    heads: dict[str, nn.Module] = field(default_factory=dict)
    matrices: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    train_s: float = 0.0
    head_macs: int = 0


def head_state(heads: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Flat ``name.param -> tensor`` of every head (for safetensors)."""
    return {f"{h}.{k}": v.detach().contiguous().clone() for h, m in heads.items() for k, v in m.state_dict().items()}
