"""The ridge-regression readout: the standard readout of reservoir computing (Jaeger 2001,
"The echo state approach ...", GMD Report 148; reservoirpy's ``Ridge`` node), fitted in closed
form, with its regularisation chosen by k-fold cross-validation on the training data only.

Features ``x`` are standardised with the training statistics (:class:`Standardize`); targets are
one-hot ``Y`` (N, C). The readout minimises ``||Y - X W - 1 b^T||^2 + alpha ||W||^2`` (the
intercept ``b`` is not penalised). With ``Xc = X - mean(X)`` and ``Yc = Y - mean(Y)``::

    W = (Xc^T Xc + alpha I)^-1 Xc^T Yc = Xc^T (Xc Xc^T + alpha I)^-1 Yc   (push-through identity)
    b = mean(Y) - mean(X) W
    predicted class = argmax_c (x_std W + b)_c

The smaller Gram matrix (``Xc Xc^T`` when N <= d, else ``Xc^T Xc``) is formed once per training
set; every ``alpha`` of a grid then costs one Cholesky solve.
The targets {0, 1} give the same argmax as scikit-learn's ``RidgeClassifier`` ({-1, 1} targets:
twice the centred one-hot) on the same standardised features.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
from torch import nn

from neurohw.heads.readout import Standardize


def _one_blas_thread(fn):
    """Run ``fn`` with one BLAS thread: on shared cores the threaded Cholesky and products of
    these sizes ran 5-7x slower than one thread (threadpoolctl comes with scikit-learn)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return fn(*args, **kwargs)

    return wrapper


class RidgeReadout(nn.Module):
    """standardise -> Linear(in_dim, n_classes), the weights set by :meth:`fit` (closed form)."""

    def __init__(self, in_dim: int, n_classes: int):
        super().__init__()
        if in_dim < 1 or n_classes < 2:
            raise ValueError(f"a readout needs in_dim >= 1 and n_classes >= 2, got {in_dim}, {n_classes}")
        self.in_dim, self.n_classes = int(in_dim), int(n_classes)
        self.norm = Standardize(in_dim)
        self.linear = nn.Linear(in_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(x))

    @_one_blas_thread
    def fit(self, x: np.ndarray, labels: np.ndarray, alpha: float) -> "RidgeReadout":
        """Standardise on ``x`` (N, in_dim), then solve the ridge problem for ``alpha`` > 0."""
        self.norm.fit(x)
        xs = standardized(x, self.norm)
        y = one_hot(labels, self.n_classes)
        (w, b), = RidgePath(xs, y).weights([alpha])
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(w.T, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        return self

    def macs_per_sample(self) -> int:
        """Multiply-accumulates of one forward pass (the linear layer)."""
        return self.in_dim * self.n_classes


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, n_classes) float64 one-hot rows of integer ``labels`` in [0, n_classes)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    return np.eye(n_classes)[labels]


def standardized(x: np.ndarray, norm: Standardize) -> np.ndarray:
    """``(x - mean) / std`` with ``norm``'s buffers, in float64."""
    mean = norm.mean.detach().double().numpy()
    std = norm.std.detach().double().numpy()
    return (np.asarray(x, dtype=np.float64) - mean) / std


class RidgePath:
    """The ridge solutions of one (standardised) training set for any number of ``alpha`` values.

    ``x``: (N, d) features, ``y``: (N, C) targets; the intercept is fitted, not penalised. The
    Gram matrix (the smaller of ``Xc Xc^T`` and ``Xc^T Xc``) is formed once; each ``alpha`` is
    one Cholesky solve of ``Gram + alpha I`` (positive definite for ``alpha > 0``).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x (N, d) and y (N, C) with N >= 1 expected, got {x.shape} and {y.shape}")
        self.x_mean, self.y_mean = x.mean(0), y.mean(0)
        self.x = x - self.x_mean
        self.yc = y - self.y_mean
        self.dual = len(x) <= x.shape[1]
        # dual: (N, N) Gram and right-hand side Yc; primal: (d, d) and Xc^T Yc
        self.gram = self.x @ self.x.T if self.dual else self.x.T @ self.x
        self.rhs = self.yc if self.dual else self.x.T @ self.yc

    def _coef(self, alpha: float) -> np.ndarray:
        if not alpha > 0:
            raise ValueError(f"ridge alpha must be > 0, got {alpha}")
        a = self.gram.copy()
        a[np.diag_indices_from(a)] += alpha
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(a, overwrite_a=True, check_finite=False), self.rhs, check_finite=False)

    def weights(self, alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W (d, C), b (C,)), ...]``, one per ``alpha`` (each > 0)."""
        out = []
        for a in alphas:
            coef = self._coef(a)
            w = self.x.T @ coef if self.dual else coef
            out.append((w, self.y_mean - self.x_mean @ w))
        return out

    def predict(self, x_eval: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
        """Scores (n_alphas, M, C) of standardised features ``x_eval`` (M, d) for every ``alpha``."""
        x_eval = np.asarray(x_eval, dtype=np.float64) - self.x_mean
        if self.dual:  # (x_eval - mean) W = ((x_eval - mean) Xc^T) coef: never forms W (d may be large)
            k = x_eval @ self.x.T
            return np.stack([k @ self._coef(a) + self.y_mean for a in alphas])
        return np.stack([x_eval @ w + self.y_mean for w, _ in self.weights(alphas)])


@_one_blas_thread
def ridge_cv_accuracy(x: np.ndarray, labels: np.ndarray, folds: np.ndarray, alphas: Sequence[float], n_classes: int) -> np.ndarray:
    """Mean k-fold accuracy (n_alphas,) of the ridge readout: fold ``j`` (``folds == j``) is
    scored by a readout standardised and fitted on the other folds; folds weigh equally."""
    x = np.asarray(x, dtype=np.float64)
    labels, folds = np.asarray(labels), np.asarray(folds)
    ks = np.unique(folds)
    if len(ks) < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    acc = np.zeros(len(alphas))
    for j in ks:
        tr, va = folds != j, folds == j
        norm = Standardize(x.shape[1]).fit(x[tr])
        path = RidgePath(standardized(x[tr], norm), one_hot(labels[tr], n_classes))
        scores = path.predict(standardized(x[va], norm), alphas)
        acc += (scores.argmax(-1) == labels[va]).mean(-1) / len(ks)
    return acc


def choose_alpha(alphas: Sequence[float], scores: np.ndarray) -> float:
    """The alpha with the best score; ties go to the largest alpha (the most regularised)."""
    scores = np.asarray(scores, dtype=np.float64)
    best = scores.max()
    return float(max(a for a, s in zip(alphas, scores) if s >= best - 1e-12))
