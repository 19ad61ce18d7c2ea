"""Tasks ``classify`` (linear or MLP readout) and ``linear_probe`` (linear classifier on frozen
features): cross-entropy, model selection on a validation split of the training data, one
test accuracy on the untouched test split."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurohw.experiments.features import FeatureSet, TaskOutput, stratified_split
from neurohw.experiments.schema import HeadSpec
from neurohw.heads.readout import Readout
from neurohw.heads.training import TrainSettings, train


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts C[i, j] of true class i predicted as j."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def run_classify(
    train_set: FeatureSet, test_set: FeatureSet, head: HeadSpec, hidden: list[int], seed: int, progress: bool = False
) -> TaskOutput:
    """Train a readout (``hidden=[]``: linear) on ``train_set``; report test accuracy."""
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
        },
        curves={"readout": hist},
        heads={"readout": model},
        matrices={"confusion": (confusion_matrix(test_set.labels, pred, n_classes), list(train_set.classes))},
        train_s=hist.train_s,
        head_macs=model.macs_per_sample(),
    )
