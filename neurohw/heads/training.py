"""The training loop of every head: Adam on mini-batches, model selection on validation data.

Selection looks only at a validation score computed by the caller (for zero-shot: retrieval on
a held-out part of the SEEN classes' training data); the module's state at the best validation
epoch is restored at the end. Early stopping after ``patience`` epochs without improvement.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neurohw.progress import Progress


@dataclass
class TrainSettings:
    """Adam settings: epochs, learning rate, batch size, weight decay, patience (None: no early stop)."""

    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    patience: int | None = None


@dataclass
class TrainHistory:
    """Per-epoch training loss and validation score, the selected epoch and the wall time."""

    train_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("-inf")
    train_s: float = 0.0

    def as_dict(self) -> dict:
        return {
            "train_loss": self.train_loss,
            "val_score": self.val_score,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "train_s": self.train_s,
        }


def train(
    module: nn.Module,
    batch_loss: Callable[[np.ndarray], torch.Tensor],
    n_train: int,
    val_score: Callable[[], float] | None,
    settings: TrainSettings,
    rng: np.random.Generator,
    progress: bool = False,
    description: str = "training",
) -> TrainHistory:
    """Train ``module`` with Adam; return the history; leave the best-validation state loaded.

    ``batch_loss(indices)`` returns the loss of the training samples ``indices`` (a shuffled
    mini-batch drawn with ``rng``); ``val_score()`` returns a higher-is-better score computed in
    eval mode (None: keep the last epoch). Seed torch yourself for the initial weights.
    """
    if n_train < 1:
        raise ValueError("no training samples")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # heads are tiny: extra threads cost far more in sync than they give
    try:
        return _train(module, batch_loss, n_train, val_score, settings, rng, progress, description)
    finally:
        torch.set_num_threads(threads)


def _train(module, batch_loss, n_train, val_score, settings, rng, progress, description) -> TrainHistory:
    opt = torch.optim.Adam(module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    hist = TrainHistory()
    best_state = None
    since_best = 0
    t0 = time.perf_counter()
    with Progress(description, total=settings.epochs, enabled=progress) as bar:
        for epoch in range(settings.epochs):
            module.train()
            order = rng.permutation(n_train)
            total, count = 0.0, 0
            for start in range(0, n_train, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                if len(idx) < 2 and n_train >= 2:  # a 1-sample batch breaks contrastive losses
                    continue
                loss = batch_loss(idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            hist.train_loss.append(total / max(count, 1))
            if val_score is not None:
                module.eval()
                with torch.no_grad():
                    score = float(val_score())
                hist.val_score.append(score)
                if score > hist.best_score:
                    hist.best_score, hist.best_epoch, since_best = score, epoch, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    since_best += 1
            else:
                hist.best_epoch = epoch
            info = f"loss {hist.train_loss[-1]:.4f}" + (f"  val {hist.val_score[-1]:.3f}" if hist.val_score else "")
            bar.update(advance=1, info=info)
            if settings.patience is not None and since_best > settings.patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    hist.train_s = time.perf_counter() - t0
    return hist
