"""Every kind of trained head as ONNX: onnx.checker passes and onnxruntime matches the torch
head within 1e-5 (linear, MLP, ridge readouts; projection heads with and without L2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohw.export.onnx_head import TOLERANCE, check_onnx, head_to_onnx, run_onnx
from neurohw.heads.projection import ProjectionHead
from neurohw.heads.readout import Readout
from neurohw.heads.ridge import RidgeReadout


def _trained(module, d, seed):
    """Random weights and a fitted standardisation, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    rng = np.random.default_rng(seed)
    train = rng.gamma(2.0, 0.05, size=(200, d)).astype(np.float32)  # firing-rate-like features
    module.norm.fit(train)
    return module.eval(), rng.gamma(2.0, 0.05, size=(97, d)).astype(np.float32)


@pytest.mark.parametrize("make, output", [
    (lambda: Readout(60, 10), "logits"),
    (lambda: Readout(60, 10, hidden=[32, 16]), "logits"),
    (lambda: RidgeReadout(60, 7), "logits"),
    (lambda: ProjectionHead(60, 64, normalize=False), "projection"),
    (lambda: ProjectionHead(60, 64, hidden=[48], normalize=True), "projection"),
])
def test_onnx_heads_match_torch(make, output):
    module, x = _trained(make(), 60, 1)
    model = head_to_onnx(module, output, {"head": "test"})
    assert model.graph.output[0].name == output and model.opset_import[0].version == 17
    assert check_onnx(model, module, x) <= TOLERANCE
    # dynamic batch: one row at a time gives the same rows
    np.testing.assert_allclose(run_onnx(model, x[:1]), run_onnx(model, x)[:1], rtol=0, atol=1e-6)


def test_constant_feature_and_zero_projection_stay_finite():
    module, x = _trained(ProjectionHead(8, 4, normalize=True), 8, 2)
    with torch.no_grad():
        for p in module.net.parameters():
            p.zero_()
    model = head_to_onnx(module, "projection")
    out = run_onnx(model, x)
    assert np.all(out == 0)  # F.normalize's eps: 0 / max(0, 1e-12) = 0, not NaN
