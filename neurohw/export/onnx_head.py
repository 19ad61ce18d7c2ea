"""Trained heads as ONNX models: standardise -> [Gemm -> Relu]* -> Gemm [-> L2 normalise].

The heads of neurohw (:class:`~neurohw.heads.readout.Readout`,
:class:`~neurohw.heads.ridge.RidgeReadout`, :class:`~neurohw.heads.projection.ProjectionHead`)
are a few standard operators, so the graph is written with ``onnx.helper`` operator by operator
(opset :data:`OPSET`, float32, a dynamic batch dimension ``N``) rather than traced: the same
equations as the torch module, no exporter in between. :func:`check_onnx` runs
``onnx.checker`` and compares onnxruntime's output with the torch head's.

Input ``features`` ``(N, d)`` float32 (the encoder features the head reads, side by side as in
the run); output ``logits`` ``(N, classes)`` or ``projection`` ``(N, dim)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neurohw import __version__
from neurohw.heads.projection import ProjectionHead
from neurohw.heads.readout import Readout
from neurohw.heads.ridge import RidgeReadout

#: the ONNX operator set the heads are written in (onnxruntime >= 1.12 runs it)
OPSET = 17
#: the largest |onnxruntime - torch| accepted by :func:`check_onnx`
TOLERANCE = 1e-5


def _layers(module: nn.Module) -> tuple[nn.Module, list[nn.Module], bool]:
    """``(standardise, [Linear | ReLU ...], l2_normalise)`` of a neurohw head."""
    if isinstance(module, RidgeReadout):
        return module.norm, [module.linear], False
    if isinstance(module, (Readout, ProjectionHead)):
        layers = [m for m in module.net if isinstance(m, (nn.Linear, nn.ReLU))]  # Dropout is the identity at inference
        return module.norm, layers, bool(getattr(module, "normalize", False))
    raise TypeError(f"no ONNX form for a {type(module).__name__}")


def head_to_onnx(module: nn.Module, output: str = "logits", metadata: dict | None = None):
    """The ONNX model (``onnx.ModelProto``) of a trained head (see the module doc)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    norm, layers, l2 = _layers(module)
    init, nodes = [], []

    def const(name: str, value) -> str:
        init.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    x = "features"
    nodes.append(helper.make_node("Sub", [x, const("norm_mean", norm.mean.detach().numpy())], ["centred"]))
    nodes.append(helper.make_node("Div", ["centred", const("norm_std", norm.std.detach().numpy())], ["standardised"]))
    x, k = "standardised", 0
    for layer in layers:
        k += 1
        out = f"h{k}"
        if isinstance(layer, nn.Linear):
            w = const(f"linear{k}_weight", layer.weight.detach().numpy())
            b = const(f"linear{k}_bias", layer.bias.detach().numpy() if layer.bias is not None else np.zeros(layer.out_features))
            nodes.append(helper.make_node("Gemm", [x, w, b], [out], transB=1))
        else:
            nodes.append(helper.make_node("Relu", [x], [out]))
        x = out
    if l2:  # F.normalize: z / max(||z||_2, 1e-12)
        nodes.append(helper.make_node("ReduceL2", [x], ["norm2"], axes=[-1], keepdims=1))
        nodes.append(helper.make_node("Max", ["norm2", const("eps", np.array([1e-12]))], ["norm2_clamped"]))
        nodes.append(helper.make_node("Div", [x, "norm2_clamped"], ["l2"]))
        x = "l2"
    nodes.append(helper.make_node("Identity", [x], [output]))
    d_in = int(norm.mean.numel())
    d_out = next(m.out_features for m in reversed(layers) if isinstance(m, nn.Linear))
    graph = helper.make_graph(
        nodes, "neurohw_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", d_in])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", d_out])],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="neurohw",
                              producer_version=__version__)
    model.ir_version = min(model.ir_version, 8)  # IR 8 goes with opset 17: readable by older runtimes too
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=str(key), value=str(value))
    onnx.checker.check_model(model, full_check=True)
    return model


def run_onnx(model, features: np.ndarray) -> np.ndarray:
    """onnxruntime's output of ``model`` on ``features`` (N, d) (CPU)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"features": np.ascontiguousarray(features, dtype=np.float32)})[0]


def check_onnx(model, module: nn.Module, features: np.ndarray) -> float:
    """``onnx.checker``, then onnxruntime against the torch head on ``features``; returns the
    largest absolute difference and raises when it exceeds :data:`TOLERANCE`."""
    import onnx

    onnx.checker.check_model(model, full_check=True)
    with torch.no_grad():
        ref = module.eval()(torch.as_tensor(np.asarray(features, dtype=np.float32))).numpy()
    got = run_onnx(model, features)
    diff = float(np.abs(got - ref).max(initial=0.0))
    if not diff <= TOLERANCE:
        raise RuntimeError(f"the ONNX head differs from the torch head by {diff:g} (> {TOLERANCE:g})")
    return diff
