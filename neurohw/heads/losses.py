"""The symmetric CLIP-style InfoNCE loss (Radford et al. 2021, "Learning Transferable Visual
Models From Natural Language Supervision", eq. in their Fig. 3 pseudo-code).

For a batch of B pairs with embeddings ``za`` (B, d) and ``zb`` (B, d)::

    L[i, j] = za_i . zb_j / tau                           (logits, tau = temperature)
    loss    = ( CE(L, targets) + CE(L^T, targets^T) ) / 2

with ``targets`` the identity (pair i matches pair i) or, when ``labels`` are given, the
uniform distribution over all same-class entries of the row (pairs are formed by class, so a
same-class sample in the batch is a positive too, not a negative).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def contrastive_targets(labels: torch.Tensor | None, batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Row-stochastic target matrix (B, B): identity, or uniform over same-class columns."""
    if labels is None:
        return torch.eye(batch, device=device, dtype=dtype)
    same = (labels[:, None] == labels[None, :]).to(dtype)
    return same / same.sum(1, keepdim=True)


def symmetric_info_nce(
    za: torch.Tensor, zb: torch.Tensor, temperature: float | torch.Tensor = 1.0, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE of paired embeddings (mean over the batch, both directions averaged);
    ``temperature`` may be a learned scalar tensor (its gradient flows)."""
    if za.shape != zb.shape or za.ndim != 2:
        raise ValueError(f"za and zb must both be (B, d), got {tuple(za.shape)} and {tuple(zb.shape)}")
    if not bool(torch.as_tensor(temperature) > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = za @ zb.T / temperature
    targets = contrastive_targets(labels, za.shape[0], za.device, za.dtype)
    loss_a = -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_b = -(targets.T * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_a + loss_b) / 2


class Temperature(nn.Module):
    """The InfoNCE temperature tau: fixed, or with ``bounds = (lo, hi)`` learned as CLIP learns it
    (Radford et al. 2021): a parameter ``log tau`` trained with the heads, ``tau`` clamped to
    ``[lo, hi]`` (CLIP clamps 1/tau at 100, i.e. tau >= 0.01)."""

    def __init__(self, tau: float = 1.0, bounds: tuple[float, float] | None = None):
        super().__init__()
        if not tau > 0:
            raise ValueError(f"temperature must be > 0, got {tau}")
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        if self.bounds is not None and not 0 < self.bounds[0] <= tau <= self.bounds[1]:
            raise ValueError(f"temperature {tau} must lie in its bounds {self.bounds}")
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)), requires_grad=self.bounds is not None)

    def forward(self) -> torch.Tensor:
        tau = self.log_tau.exp()
        return tau if self.bounds is None else tau.clamp(*self.bounds)
