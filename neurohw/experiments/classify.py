"""Tasks ``classify`` (linear, MLP or ridge readout) and ``linear_probe`` (linear classifier on
frozen features), one test accuracy on the untouched test split.

- linear / MLP: cross-entropy with Adam; the epoch is selected on a stratified validation split
  (``head.val_fraction``) of the training data.
- ridge: the closed-form ridge readout (:mod:`neurohw.heads.ridge`); ``alpha`` is chosen from
  ``head.alphas`` by stratified ``head.cv_folds``-fold cross-validation on the training data,
  then the readout is refitted on all of it.

The test split is used once, for the reported accuracy, never for any choice.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from neurohw.errors import ConfigError
from neurohw.experiments.features import FeatureSet, TaskOutput, stratified_folds, stratified_split
from neurohw.experiments.schema import HeadSpec
from neurohw.heads.readout import Readout
from neurohw.heads.ridge import RidgeReadout, choose_alpha, ridge_cv_accuracy
from neurohw.heads.training import TrainSettings, train


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts C[i, j] of true class i predicted as j."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def run_classify(
    train_set: FeatureSet, test_set: FeatureSet, head: HeadSpec, hidden: list[int], seed: int, progress: bool = False
) -> TaskOutput:
    """Train a readout (``hidden=[]``: linear; ``head.kind == "ridge"``: ridge, ``hidden``
    ignored) on ``train_set``; report test accuracy."""
    if head.kind == "ridge":
        return run_ridge(train_set, test_set, head, seed)
    rng = np.random.default_rng([seed, 11])
    torch.manual_seed(seed)
    n_classes = len(train_set.classes)
    tr, va = stratified_split(train_set.labels, head.val_fraction, rng)
    xtr, ytr = torch.tensor(train_set.x[tr]), torch.tensor(train_set.labels[tr])
    xva, yva = torch.tensor(train_set.x[va]), train_set.labels[va]
    model = Readout(train_set.x.shape[1], n_classes, hidden)
    model.norm.fit(xtr)

    def loss(idx):
        return F.cross_entropy(model(xtr[idx]), ytr[idx])

    def val():
        return float((model(xva).argmax(1).numpy() == yva).mean()) if len(va) else float("nan")

    settings = TrainSettings(head.epochs, head.lr, head.batch_size, head.weight_decay, head.patience)
    hist = train(model, loss, len(tr), val if len(va) else None, settings, rng, progress, "training readout")
    with torch.no_grad():
        pred = model(torch.tensor(test_set.x)).argmax(1).numpy()
    acc = float((pred == test_set.labels).mean())
    counts = np.bincount(train_set.labels, minlength=n_classes)
    return TaskOutput(
        metrics={
            "test_accuracy": acc,
            "val_accuracy": hist.best_score if len(va) else None,
            "chance": float(counts.max() / counts.sum()),
            "n_train": int(len(tr)),
            "n_val": int(len(va)),
            "n_test": int(len(test_set.labels)),
            "readout": "mlp" if hidden else "linear",
            "readout_features": list(head.features),
        },
        curves={"readout": hist},
        heads={"readout": model},
        matrices={"confusion": (confusion_matrix(test_set.labels, pred, n_classes), list(train_set.classes))},
        train_s=hist.train_s,
        head_macs=model.macs_per_sample(),
    )


def cv_folds_for(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The stratified folds of the ridge's cross-validation for run seed ``seed``; a class with
    fewer than ``k`` training samples is a ConfigError (it would be missing from some folds)."""
    counts = np.bincount(np.asarray(labels))
    present = counts[counts > 0]
    if present.min() < k:
        c = int(np.flatnonzero(counts == present.min())[0])
        raise ConfigError(f"head.cv_folds={k} but class {c} has only {present.min()} training samples; lower head.cv_folds")
    return stratified_folds(labels, k, np.random.default_rng([seed, 13]))


def run_ridge(train_set: FeatureSet, test_set: FeatureSet, head: HeadSpec, seed: int) -> TaskOutput:
    """The ridge readout: alpha by k-fold CV on ``train_set`` only, refit on all of it, test once."""
    t0 = time.perf_counter()
    n_classes = len(train_set.classes)
    folds = cv_folds_for(train_set.labels, head.cv_folds, seed)
    scores = ridge_cv_accuracy(train_set.x, train_set.labels, folds, head.alphas, n_classes)
    alpha = choose_alpha(head.alphas, scores)
    model = RidgeReadout(train_set.x.shape[1], n_classes).fit(train_set.x, train_set.labels, alpha)
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        pred = model(torch.tensor(test_set.x)).argmax(1).numpy()
    counts = np.bincount(train_set.labels, minlength=n_classes)
    return TaskOutput(
        metrics={
            "test_accuracy": float((pred == test_set.labels).mean()),
            "val_accuracy": None,
            "cv_accuracy": float(scores[list(head.alphas).index(alpha)]),
            "cv_folds": int(head.cv_folds),
            "alpha": alpha,
            "cv_scores": [{"alpha": float(a), "accuracy": float(v)} for a, v in zip(head.alphas, scores)],
            "chance": float(counts.max() / counts.sum()),
            "n_train": int(len(train_set.labels)),
            "n_val": 0,
            "n_test": int(len(test_set.labels)),
            "readout": "ridge",
            "readout_features": list(head.features),
        },
        heads={"readout": model},
        matrices={"confusion": (confusion_matrix(test_set.labels, pred, n_classes), list(train_set.classes))},
        train_s=train_s,
        head_macs=model.macs_per_sample(),
    )
