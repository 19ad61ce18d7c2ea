"""Projection heads: one per modality, mapping frozen features into a shared embedding space.

As in the reference zero-shot LSM (Lin et al., Nat. Comput. Sci. 5:37-47, 2025): projection dim 64, trained with a paired
contrastive loss; retrieval is by dot product of the projections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurohw.heads.readout import Standardize


class ProjectionHead(nn.Module):
    """standardise -> [Linear -> ReLU]* -> Linear(dim) -> optional L2 normalisation."""

    def __init__(self, in_dim: int, dim: int = 64, hidden: list[int] | None = None, normalize: bool = True):
        super().__init__()
        if in_dim < 1 or dim < 1:
            raise ValueError(f"a projection head needs in_dim >= 1 and dim >= 1, got {in_dim}, {dim}")
        self.in_dim, self.dim, self.hidden, self.normalize = int(in_dim), int(dim), list(hidden or []), bool(normalize)
        self.norm = Standardize(in_dim)
        layers: list[nn.Module] = []
        width = in_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(self.norm(x))
        return F.normalize(z, dim=-1) if self.normalize else z

    def macs_per_sample(self) -> int:
        """Multiply-accumulates of one forward pass."""
        return sum(m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))


class ProjectionPair(nn.Module):
    """The two modalities' projection heads, ``a`` and ``b``."""

    def __init__(self, in_a: int, in_b: int, dim: int = 64, hidden: list[int] | None = None, normalize: bool = True):
        super().__init__()
        self.a = ProjectionHead(in_a, dim, hidden, normalize)
        self.b = ProjectionHead(in_b, dim, hidden, normalize)

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(xa), self.b(xb)
