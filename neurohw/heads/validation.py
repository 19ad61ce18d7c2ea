"""Splits of the training data for model selection: a stratified validation split and
stratified k folds. Every draw takes the caller's generator, so the split is fixed by the seed.
The test split is never an input here: selection looks at training data only."""

from __future__ import annotations

import numpy as np


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

