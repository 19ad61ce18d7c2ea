"""Readouts: a linear or MLP classifier on frozen encoder features.

The features are standardised inside the module (``(x - mean) / std`` with the training set's
statistics kept as buffers), so the saved weights are a complete, self-contained head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Standardize(nn.Module):
    """``y = (x - mean) / std``; mean and std are buffers set from training features."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: np.ndarray | torch.Tensor, eps: float = 1e-6) -> "Standardize":
        """Set mean and std from ``x`` (N, dim); constant features get std 1 (then they are 0)."""
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        self.mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False)
        self.std.copy_(torch.where(std > eps, std, torch.ones_like(std)))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Readout(nn.Module):
    """Linear (``hidden=None`` or ``[]``) or MLP classifier: standardise -> [Linear -> ReLU]* -> Linear.

    Output: logits (B, n_classes); trained with cross-entropy.
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: list[int] | None = None, dropout: float = 0.0):
        super().__init__()
        if in_dim < 1 or n_classes < 2:
            raise ValueError(f"a readout needs in_dim >= 1 and n_classes >= 2, got {in_dim}, {n_classes}")
        self.in_dim, self.n_classes, self.hidden = int(in_dim), int(n_classes), list(hidden or [])
        self.norm = Standardize(in_dim)
        layers: list[nn.Module] = []
        width = in_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))

    def macs_per_sample(self) -> int:
        """Multiply-accumulates of one forward pass (for the head's energy estimate)."""
        return sum(m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))
