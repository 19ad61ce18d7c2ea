"""Which samples a run seed uses: the training and test selection of every modality and the
order in which ``target_rate`` calibration takes training samples.

Draws are fixed by the run seed: modality ``i`` of run seed ``s`` draws from
``numpy.random.default_rng([s, 7, i])``, in this order: the training selection, the test
selection, then a permutation of the training selection (the calibration order). Scripts that
need the run's samples (e.g. studies on the training split) call :func:`select` rather than
repeating these draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """Sorted dataset indices of the training and test samples, and the calibration order (a
    permutation of ``train``; calibration takes its first ``calibration_samples``)."""

    train: np.ndarray
    test: np.ndarray
    calibration: np.ndarray


def select_samples(labels: np.ndarray, per_class: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices: all samples, or at most ``per_class`` random ones of each class."""
    if per_class is None:
        return np.arange(len(labels))
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def select(modalities: Sequence, run_seed: int, shared: bool = False) -> list[Selection]:
    """The :class:`Selection` of every modality (a :class:`~.modalities.Modality`) for ``run_seed``.

    ``shared`` (instance pairing): every modality draws from modality 0's stream, so datasets
    with the same labels get the same samples (sample i of one stays paired with sample i of
    the other)."""
    out = []
    for i, mod in enumerate(modalities):
        rng = np.random.default_rng([run_seed, 7, 0 if shared else i])
        train = select_samples(mod.train.labels, mod.spec.max_train_per_class, rng)
        test = select_samples(mod.test.labels, mod.spec.max_test_per_class, rng)
        out.append(Selection(train, test, rng.permutation(train)))
    return out
