"""Tasks ``classify`` (linear, MLP or ridge readout) and ``linear_probe`` (linear classifier on
frozen features), one test accuracy on the untouched test split.

The readouts are :mod:`neurohw.heads.classifiers`' (the ones the Python API offers):
- linear / MLP (:class:`~neurohw.heads.classifiers.NeuralClassifier`): cross-entropy with Adam;
  the epoch is selected on a stratified validation split (``head.val_fraction``) of the
  training data.
- ridge (:class:`~neurohw.heads.classifiers.RidgeClassifier`): closed form; ``alpha`` is chosen
  from ``head.alphas`` by stratified ``head.cv_folds``-fold cross-validation on the training
  data, then the readout is refitted on all of it.

The test split is used once, for the reported accuracy, never for any choice.
"""

from __future__ import annotations

import time

import numpy as np

from neurohw.errors import ConfigError
from neurohw.experiments.features import FeatureSet
from neurohw.experiments.results import TaskOutput
from neurohw.experiments.schema import HeadSpec
from neurohw.heads.classifiers import NeuralClassifier, RidgeClassifier


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts C[i, j] of true class i predicted as j."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def _common_metrics(train_set: FeatureSet, test_set: FeatureSet, pred: np.ndarray, head: HeadSpec) -> dict:
    counts = np.bincount(train_set.labels, minlength=len(train_set.classes))
    return {
        "test_accuracy": float((pred == test_set.labels).mean()),
        "chance": float(counts.max() / counts.sum()),
        "n_test": int(len(test_set.labels)),
        "readout_features": list(head.features),
    }


def _confusion(train_set: FeatureSet, test_set: FeatureSet, pred: np.ndarray) -> dict:
    n = len(train_set.classes)
    return {"confusion": (confusion_matrix(test_set.labels, pred, n), list(train_set.classes))}


def run_classify(train_set: FeatureSet, test_set: FeatureSet, head: HeadSpec, hidden: list[int], seed: int,
                 progress: bool = False) -> TaskOutput:
    """Train a readout (``hidden=[]``: linear; ``head.kind == "ridge"``: ridge, ``hidden``
    ignored) on ``train_set``; report test accuracy."""
    if head.kind == "ridge":
        return run_ridge(train_set, test_set, head, seed)
    clf = NeuralClassifier(hidden, head.epochs, head.lr, head.batch_size, head.weight_decay, head.patience,
                           head.val_fraction, seed, progress).fit(train_set.x, train_set.labels)
    pred = clf.predict(test_set.x)
    metrics = _common_metrics(train_set, test_set, pred, head)
    metrics.update(val_accuracy=clf.history_.best_score if clf.n_val_ else None, n_train=clf.n_train_, n_val=clf.n_val_,
                   readout="mlp" if hidden else "linear")
    return TaskOutput(metrics=_ordered(metrics), curves={"readout": clf.history_}, heads={"readout": clf.module_},
                      matrices=_confusion(train_set, test_set, pred), train_s=clf.history_.train_s,
                      head_macs=clf.module_.macs_per_sample())


def ridge_classifier(head: HeadSpec, seed: int) -> RidgeClassifier:
    """The ridge readout of run seed ``seed`` configured by ``head``."""
    return RidgeClassifier(head.alphas, head.cv_folds, seed)


def cv_folds_for(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The stratified folds of the ridge's cross-validation for run seed ``seed``."""
    try:
        return RidgeClassifier(cv_folds=k, seed=seed).folds(labels)
    except ConfigError as exc:
        raise ConfigError(f"head.{exc}") from None


def run_ridge(train_set: FeatureSet, test_set: FeatureSet, head: HeadSpec, seed: int) -> TaskOutput:
    """The ridge readout: alpha by k-fold CV on ``train_set`` only, refit on all of it, test once."""
    t0 = time.perf_counter()
    try:
        clf = ridge_classifier(head, seed).fit(train_set.x, train_set.labels)
    except ConfigError as exc:
        raise ConfigError(f"head.{exc}") from None
    train_s = time.perf_counter() - t0
    pred = clf.predict(test_set.x)
    metrics = _common_metrics(train_set, test_set, pred, head)
    metrics.update(val_accuracy=None, cv_accuracy=clf.cv_accuracy_, cv_folds=int(head.cv_folds), alpha=clf.alpha_,
                   cv_scores=[{"alpha": float(a), "accuracy": float(v)} for a, v in zip(head.alphas, clf.cv_scores_)],
                   n_train=int(len(train_set.labels)), n_val=0, readout="ridge")
    return TaskOutput(metrics=_ordered(metrics), heads={"readout": clf.module_}, matrices=_confusion(train_set, test_set, pred),
                      train_s=train_s, head_macs=clf.module_.macs_per_sample())


#: metrics.json's key order for a classification seed (as written before the readouts moved)
_KEY_ORDER = ("test_accuracy", "val_accuracy", "cv_accuracy", "cv_folds", "alpha", "cv_scores", "chance", "n_train",
              "n_val", "n_test", "readout", "readout_features")


def _ordered(metrics: dict) -> dict:
    return {k: metrics[k] for k in _KEY_ORDER if k in metrics}
