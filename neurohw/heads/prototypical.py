"""Prototypical networks (Snell, Swersky & Zemel 2017, "Prototypical Networks for Few-shot
Learning"), the paper's second baseline, here cross-modal.

A class prototype is the mean embedding of that class's support samples::

    p_c = mean_{i : y_i = c} f(x_i)
    P(y = c | q) = softmax_c( -||g(q) - p_c||^2 )      (squared Euclidean distance, eq. 2)

In the cross-modal variant the support comes from one modality and the queries from the other;
the loss is averaged over both directions, so the same projection pair can be evaluated with the
same cross-modal retrieval as the contrastive heads.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_prototypes(z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classes, prototypes)``: the sorted classes present and the mean embedding of each."""
    classes, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    sums = torch.zeros(len(classes), z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, inverse, z)
    counts = torch.bincount(inverse, minlength=len(classes)).to(z.dtype)
    return classes, sums / counts[:, None]


def prototypical_logits(queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """``-||q - p_c||^2`` for every query and prototype, shape (Q, C)."""
    return -torch.cdist(queries, prototypes).pow(2)


def prototypical_loss(z_query: torch.Tensor, y_query: torch.Tensor, z_support: torch.Tensor, y_support: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the queries against the support prototypes (queries' classes must be in the support)."""
    classes, protos = class_prototypes(z_support, y_support)
    target = torch.searchsorted(classes, y_query)
    if not torch.equal(classes[target.clamp(max=len(classes) - 1)], y_query):
        raise ValueError("every query class must appear in the support set")
    return F.cross_entropy(prototypical_logits(z_query, protos), target)


def cross_modal_prototypical_loss(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of the prototypical loss with A as queries / B as support and the reverse."""
    return (prototypical_loss(za, labels, zb, labels) + prototypical_loss(zb, labels, za, labels)) / 2


def prototype_classify(z_query: np.ndarray, z_support: np.ndarray, y_support: np.ndarray) -> np.ndarray:
    """Predicted class of each query: the nearest support prototype (squared Euclidean)."""
    zq = torch.as_tensor(np.asarray(z_query, dtype=np.float32))
    classes, protos = class_prototypes(torch.as_tensor(np.asarray(z_support, dtype=np.float32)), torch.as_tensor(np.asarray(y_support)))
    return classes[prototypical_logits(zq, protos).argmax(1)].numpy()
