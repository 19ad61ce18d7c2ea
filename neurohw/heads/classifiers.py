"""Readouts with the scikit-learn interface: ``fit(X, y)``, ``predict(X)``, ``score(X, y)`` on
numpy arrays (torch stays inside). The experiments' classify task uses these same classes.

- :class:`RidgeClassifier`: the closed-form ridge readout of reservoir computing
  (:mod:`neurohw.heads.ridge`), its ``alpha`` chosen from a grid by stratified k-fold
  cross-validation on the training data only, then refitted on all of it.
- :class:`NeuralClassifier`: a linear (``hidden=()``) or MLP readout trained with cross-entropy
  and Adam; the epoch kept is the one with the best accuracy on a stratified validation part of
  the training data (:mod:`neurohw.heads.training`).

Labels may be any values (ints, strings); ``classes_`` holds them sorted, as scikit-learn does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from neurohw.errors import ConfigError, DataError
from neurohw.heads.readout import Readout
from neurohw.heads.ridge import RidgeReadout, choose_alpha, ridge_cv_accuracy
from neurohw.heads.training import TrainHistory, TrainSettings, train
from neurohw.heads.validation import stratified_folds, stratified_split

#: the ridge's default alpha grid (reservoirpy and scikit-learn users sweep the same decades)
DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


class _Classifier:
    """Shared plumbing: label encoding, checks, predict and score from ``decision_function``."""

    module_ = None
    classes_: np.ndarray

    def _encode(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise DataError(f"fit needs X of shape (N, d) and N labels, got X {np.shape(X)} and {len(y)} labels")
        if not np.all(np.isfinite(X)):
            raise DataError("X holds NaN or infinite values")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError(f"fit needs at least 2 classes, got {self.classes_.tolist()}")
        return X, codes.astype(np.int64)

    def _check(self, X) -> torch.Tensor:
        if self.module_ is None:
            raise ConfigError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.module_.in_dim:
            raise DataError(f"X must have shape (N, {self.module_.in_dim}), got {X.shape}")
        return torch.from_numpy(X)

    def decision_function(self, X) -> np.ndarray:
        """Class scores (N, n_classes), columns in the order of ``classes_``."""
        with torch.no_grad():
            return self.module_(self._check(X)).numpy()

    def predict(self, X) -> np.ndarray:
        """The class (a value of ``classes_``) with the highest score, per row of ``X``."""
        scores = self.decision_function(X)
        return self.classes_[scores.argmax(1)]

    def score(self, X, y) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


class RidgeClassifier(_Classifier):
    """Ridge readout, alpha by stratified ``cv_folds``-fold cross-validation (see the module doc).

    After ``fit``: ``alpha_``, ``cv_scores_`` (mean CV accuracy per alpha), ``classes_``,
    ``module_`` (a :class:`~neurohw.heads.ridge.RidgeReadout`, torch).
    """

    def __init__(self, alphas: Sequence[float] = DEFAULT_ALPHAS, cv_folds: int = 5, seed: int = 0):
        if not alphas or any(not (0 < a < float("inf")) for a in alphas):
            raise ConfigError(f"alphas must be positive and finite, got {list(alphas)}")
        self.alphas, self.cv_folds, self.seed = [float(a) for a in alphas], int(cv_folds), int(seed)

    def fit(self, X, y) -> RidgeClassifier:
        X, codes = self._encode(X, y)
        folds = self.folds(codes)
        n = len(self.classes_)
        self.cv_scores_ = ridge_cv_accuracy(X, codes, folds, self.alphas, n)
        self.alpha_ = choose_alpha(self.alphas, self.cv_scores_)
        self.module_ = RidgeReadout(X.shape[1], n).fit(X, codes, self.alpha_)
        return self

    def folds(self, y) -> np.ndarray:
        """The fold (``0..cv_folds-1``) of every training sample that :meth:`fit` uses for labels
        ``y``: stratified, drawn from ``seed``. A class with fewer samples than folds is an error
        (it would be missing from some folds)."""
        _, codes, counts = np.unique(np.asarray(y), return_inverse=True, return_counts=True)
        if counts.min() < self.cv_folds:
            c = np.unique(np.asarray(y))[int(counts.argmin())]
            raise ConfigError(f"cv_folds={self.cv_folds} but class {c} has only {counts.min()} training samples; lower cv_folds")
        return stratified_folds(codes, self.cv_folds, np.random.default_rng([self.seed, 13]))

    @property
    def cv_accuracy_(self) -> float:
        """The cross-validated accuracy of the chosen alpha."""
        return float(self.cv_scores_[self.alphas.index(self.alpha_)])


class NeuralClassifier(_Classifier):
    """Linear (``hidden=()``) or MLP readout, cross-entropy with Adam, epoch selection on a
    stratified validation split of ``val_fraction`` of the training data (see the module doc).

    After ``fit``: ``history_`` (:class:`~neurohw.heads.training.TrainHistory`), ``n_train_``,
    ``n_val_``, ``classes_``, ``module_`` (a :class:`~neurohw.heads.readout.Readout`, torch).
    """

    def __init__(self, hidden: Sequence[int] = (), epochs: int = 100, lr: float = 1e-3, batch_size: int = 64,
                 weight_decay: float = 0.0, patience: int | None = None, val_fraction: float = 0.15, seed: int = 0,
                 progress: bool = False):
        self.hidden, self.val_fraction, self.seed, self.progress = list(hidden), float(val_fraction), int(seed), progress
        self.settings = TrainSettings(epochs, lr, batch_size, weight_decay, patience)

    def fit(self, X, y) -> NeuralClassifier:
        X, codes = self._encode(X, y)
        rng = np.random.default_rng([self.seed, 11])
        torch.manual_seed(self.seed)
        tr, va = stratified_split(codes, self.val_fraction, rng)
        xtr, ytr = torch.from_numpy(X[tr]), torch.from_numpy(codes[tr])
        xva, yva = torch.from_numpy(X[va]), codes[va]
        model = Readout(X.shape[1], len(self.classes_), self.hidden)
        model.norm.fit(xtr)

        def loss(idx):
            return F.cross_entropy(model(xtr[idx]), ytr[idx])

        def val():
            return float((model(xva).argmax(1).numpy() == yva).mean())

        self.history_: TrainHistory = train(model, loss, len(tr), val if len(va) else None, self.settings, rng,
                                            self.progress, "training readout")
        self.n_train_, self.n_val_ = int(len(tr)), int(len(va))
        self.module_ = model
        return self
