"""The training loop of every head: Adam on mini-batches, model selection on validation data.

Selection looks only at a validation score computed by the caller (for zero-shot: retrieval on
a held-out part of the SEEN classes' training data); the module's state at the best validation
epoch is restored at the end. Early stopping after ``patience`` epochs without improvement.

Learning-rate schedule (per optimiser step ``s`` of ``S`` in all, ``W`` warmup steps):
``lr(s) = lr * (s + 1) / W`` for ``s < W`` (linear warmup, Goyal et al. 2017, "Accurate, Large
Minibatch SGD"), then ``constant``: ``lr``, or ``cosine``: ``lr * (1 + cos(pi * (s - W) / (S - W))) / 2``
(Loshchilov & Hutter 2017, "SGDR", without restarts). Weight decay is Adam's L2 term
(``weight_decay * w`` added to the gradient). ``clip_grad_norm``: the
gradient's global L2 norm is scaled down to at most this value before each step.
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


#: the learning-rate schedules after warmup
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainSettings:
    """Adam settings: epochs, learning rate, batch size, weight decay, patience (None: no early
    stop), warmup epochs (cut to ``epochs``), schedule after warmup (``constant`` or ``cosine``) and the gradient-norm
    clip (None: no clipping)."""

    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    patience: int | None = None
    warmup_epochs: int = 0
    schedule: str = "constant"
    clip_grad_norm: float | None = None

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0 or None, got {self.clip_grad_norm}")


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The multiplier of the base learning rate at optimiser step ``step`` (0-based) of ``total``
    with ``warmup`` warmup steps (the module docstring's formula)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    u = min(max((step - warmup) / (total - warmup), 0.0), 1.0)
    return 0.5 * (1.0 + float(np.cos(np.pi * u)))


@dataclass
class TrainHistory:
    """Per-epoch training loss and validation score, the selected epoch and the wall time."""

    train_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("-inf")
    train_s: float = 0.0
    temperature: float | None = None  # the contrastive temperature at the selected epoch (zero-shot heads)

    def as_dict(self) -> dict:
        return {
            "train_loss": self.train_loss,
            "val_score": self.val_score,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "train_s": self.train_s,
            "temperature": self.temperature,
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
    steps_per_epoch = sum(1 for start in range(0, n_train, settings.batch_size)
                          if min(settings.batch_size, n_train - start) >= 2 or n_train < 2)
    # a warmup longer than the run is cut to the run (the lr then rises until the last step)
    total_steps = settings.epochs * steps_per_epoch
    warmup_steps = min(settings.warmup_epochs, settings.epochs) * steps_per_epoch
    step = 0
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
                if settings.clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(module.parameters(), settings.clip_grad_norm)
                for group in opt.param_groups:
                    group["lr"] = settings.lr * lr_factor(step, total_steps, warmup_steps, settings.schedule)
                opt.step()
                step += 1
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
