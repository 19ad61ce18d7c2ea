"""Top-1 cross-modal retrieval by dot product (the zero-shot metric of the reference paper).

A query of modality A retrieves the gallery item of modality B with the largest dot product;
the retrieval is correct when the retrieved item's class equals the query's class. Both
directions are measured (A->B: A queries a B gallery; B->A: B queries an A gallery). Chance is
``sum_c p_query(c) * p_gallery(c)``, i.e. ``1 / n_classes`` for balanced sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def top1_indices(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Index of the gallery row with the largest dot product for each query (ties: lowest index)."""
    sims = np.asarray(queries, dtype=np.float64) @ np.asarray(gallery, dtype=np.float64).T
    return np.argmax(sims, axis=1)


def top1_accuracy(queries: np.ndarray, q_labels: np.ndarray, gallery: np.ndarray, g_labels: np.ndarray) -> float:
    """Fraction of queries whose top-1 gallery item has the query's class."""
    if len(queries) == 0:
        raise ValueError("no queries to retrieve with")
    idx = top1_indices(queries, gallery)
    return float(np.mean(np.asarray(g_labels)[idx] == np.asarray(q_labels)))


def retrieval_confusion(
    queries: np.ndarray, q_labels: np.ndarray, gallery: np.ndarray, g_labels: np.ndarray, classes: list[int]
) -> np.ndarray:
    """Row-normalised matrix M[i, j]: fraction of class-``classes[i]`` queries retrieving class ``classes[j]``."""
    idx = top1_indices(queries, gallery)
    got = np.asarray(g_labels)[idx]
    q = np.asarray(q_labels)
    pos = {c: k for k, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)))
    for a, b in zip(q, got):
        m[pos[int(a)], pos[int(b)]] += 1
    rows = m.sum(1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def chance_level(q_labels: np.ndarray, g_labels: np.ndarray) -> float:
    """Accuracy of a retrieval that picks a gallery item uniformly at random."""
    q, g = np.asarray(q_labels), np.asarray(g_labels)
    classes = np.union1d(q, g)
    pq = np.array([np.mean(q == c) for c in classes])
    pg = np.array([np.mean(g == c) for c in classes])
    return float(pq @ pg)


@dataclass
class CrossModalRetrieval:
    """Top-1 accuracies of both directions on one set of classes."""

    a_to_b: float
    b_to_a: float
    chance: float

    def as_dict(self) -> dict:
        return {"a_to_b": self.a_to_b, "b_to_a": self.b_to_a}


def cross_modal_retrieval(za: np.ndarray, la: np.ndarray, zb: np.ndarray, lb: np.ndarray) -> CrossModalRetrieval:
    """Top-1 retrieval A->B and B->A with class-match criterion, and the chance level."""
    return CrossModalRetrieval(
        a_to_b=top1_accuracy(za, la, zb, lb),
        b_to_a=top1_accuracy(zb, lb, za, la),
        chance=chance_level(la, lb),
    )


def relative_representation(x: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``x`` (N, d) to every anchor (K, d): (N, K).

    Moschella et al. 2023, "Relative representations enable zero-shot latent space
    communication" (ICLR): a sample is described by its angles to a set of anchors of its own
    space, so two spaces whose anchors correspond (here: the seen classes' prototypes in each
    modality) share one coordinate system without any training. The result is unchanged by any
    rotation or uniform scaling of the feature space (applied to ``x`` and ``anchors`` alike).
    """
    x, anchors = np.asarray(x, dtype=np.float64), np.asarray(anchors, dtype=np.float64)
    if x.ndim != 2 or anchors.ndim != 2 or x.shape[1] != anchors.shape[1]:
        raise ValueError(f"x (N, d) and anchors (K, d) must share d, got {x.shape} and {anchors.shape}")
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    an = anchors / np.maximum(np.linalg.norm(anchors, axis=1, keepdims=True), 1e-12)
    return xn @ an.T
