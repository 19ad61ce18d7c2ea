"""Heads: the small digital networks trained on the encoder's frozen features.

- :mod:`neurohw.heads.readout`: linear or MLP classifier (cross-entropy).
- :mod:`neurohw.heads.projection`: one projection head per modality (contrastive).
- :mod:`neurohw.heads.losses`: the symmetric CLIP-style InfoNCE loss.
- :mod:`neurohw.heads.prototypical`: the prototypical-network loss and classifier (baseline).
- :mod:`neurohw.heads.retrieval`: top-1 cross-modal retrieval by dot product.
- :mod:`neurohw.heads.training`: the Adam loop with validation-based model selection.
"""
