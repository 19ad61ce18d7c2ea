"""The LSM encoder as a NIR graph (Neuromorphic Intermediate Representation, PyPI ``nir``), and
the graphs other tools' importers load. Reading a graph back as a reservoir is
:mod:`neurohw.reservoir.nir_reader`.

NIR is the exchange format that neuromorphic simulators and chips read (snnTorch, Norse,
Lava/Loihi, SpiNNaker2, Xylo, ...). The reservoir becomes::

    input --> w_in (Linear) --> lif (LIF) --> output            (spikes)
                                 ^   |   \\
                                 |   v    rate (I) --> readout (Affine) --> logits
                               w_rec (Linear)

(the readout branch only when the trained head is a linear map of the firing rates, see
:func:`readout_affine`).

NIR's LIF is continuous-time, ``tau dv/dt = (v_leak - v) + r I``. neurohw's reservoir is the
discrete-time LIF of Lin et al. (2025), ``mem[t] = decay mem[t-1] (1 - s[t-1]) + W_in x[t] +
W_rec s[t-1]``, ``s[t] = mem[t] > v_th``. One time step is ``dt``; the forward-Euler step of
NIR's equation is ``v[t] = (1 - dt/tau) v[t-1] + (dt r / tau) I[t]``, so ``decay = 1 - dt/tau``
and the input gain ``dt r / tau``. The export follows snnTorch's NIR convention:
``tau = dt / (1 - decay)``, ``r = tau / dt`` (gain exactly 1: the Linear weights are the device
weights), ``v_leak = 0``, ``v_reset = 0`` (hard reset). ``dt`` defaults to 0.1 ms
(:data:`~neurohw.reservoir.nir_reader.DEFAULT_DT_S`) because snnTorch's NIR importer and
exporter assume ``dt = 1e-4`` s. The reader inverts this for any ``r``: the gain ``dt r / tau``
is folded into the weights (exact in the equations).

NIR's ``Linear`` weight is ``(out, in)``, the transpose of neurohw's ``(in, out)`` crossbar
weights. Each Linear node's ``metadata`` carries the device facts behind its weights: the
differential conductance maps ``g_pos_us`` / ``g_neg_us`` (microsiemens, neurohw's ``(in, out)``
layout), the scale (weight per uS), the device model name, the level step and the read-noise
figures. A chip's programming tool can take the conductances from there; a simulator takes the
weights. docs/export.md states the mapping, the readout branch and what snnTorch's and Norse's
importers make of these graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurohw import __version__
from neurohw.errors import DataError
from neurohw.paths import atomic_path
from neurohw.reservoir.nir_reader import DEFAULT_DT_S


@dataclass(frozen=True)
class ReadoutAffine:
    """A trained head that is one affine map of the firing rates, ready for the graph.

    ``weight`` (C, n) and ``bias`` (C,) act on ``rate = count / n_steps`` (the standardisation
    already folded in); ``output`` names the Output node (``logits`` or ``projection``)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    n_steps: int
    output: str = "logits"
    metadata: dict = field(default_factory=dict)


def readout_affine(norm_mean: np.ndarray, norm_std: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``y = W ((x - mean) / std) + b`` into one affine map ``y = W' x + b'``:
    ``W' = W / std`` (per column), ``b' = b - W (mean / std)``. float64."""
    mean, std = np.asarray(norm_mean, np.float64), np.asarray(norm_std, np.float64)
    w, b = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
    return w / std[None, :], b - w @ (mean / std)


def _crossbar_metadata(xb, scale: float) -> dict:
    dev = xb.device
    g_pos, g_neg = xb.conductances()
    step = getattr(getattr(dev, "levels", None), "step_us", None)
    return {
        "g_pos_us": np.asarray(g_pos, dtype=np.float64),
        "g_neg_us": np.asarray(g_neg, dtype=np.float64),
        "scale_per_us": float(scale),
        "weight_equation": "W = scale_per_us * (g_pos_us - g_neg_us); NIR weight = W.T",
        "device": str(dev.name),
        "level_step_us": float(step) if step is not None else 0.0,
        "read_noise_relative": float(xb.read_noise_relative),
        "tile_rows": int(xb.tile_rows),
    }


def encoder_to_nir(encoder, dt_s: float = DEFAULT_DT_S, readout: ReadoutAffine | None = None, readout_note: str | None = None):
    """The NIR graph of an :class:`~neurohw.reservoir.lsm.LSMEncoder` (scale resolved), with the
    trained head as ``rate`` (I) -> ``readout`` (Affine) -> Output when ``readout`` is given.

    Weights are the device's noise-free effective weights, ``W = scale (G+ - G-)``; conductance
    maps and device facts travel in the Linear nodes' metadata. ``readout_note`` (graph
    metadata ``readout``) says why a head is absent.
    """
    import nir

    if encoder.scale is None:
        raise DataError("the encoder has no weight scale yet (target_rate needs calibrate() first); calibrate or give 'scale'")
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    cfg = encoder.config
    scale = float(encoder.scale)
    xin, xrec = encoder.crossbars()
    rec_scale = xrec.scale
    n = cfg.n_neurons
    w_in = np.asarray(xin.weights(), dtype=np.float64)
    w_rec = np.asarray(xrec.weights(), dtype=np.float64)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([cfg.n_inputs])}),
        "w_in": nir.Linear(weight=w_in.T.copy(), metadata=_crossbar_metadata(xin, scale)),
        "lif": _lif_node(cfg, dt_s),
        "w_rec": nir.Linear(weight=w_rec.T.copy(), metadata=_crossbar_metadata(xrec, rec_scale)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    meta = {
        "producer": f"neurohw {__version__}",
        "model": "liquid state machine (Lin et al., Nat. Comput. Sci. 5:37-47, 2025)",
        "equation": "mem[t] = decay*mem[t-1]*(1-s[t-1]) + W_in x[t] + W_rec s[t-1]; s[t] = mem[t] > v_th",
        "time_step_s": float(dt_s),
        "seed": int(cfg.seed),
    }
    if readout is not None:
        _add_readout(nodes, edges, readout, n, dt_s)
        meta["readout"] = f"{readout.name}: affine map of the firing rate, read after n_steps = {readout.n_steps} steps"
    else:
        meta["readout"] = readout_note or "not included"
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _lif_node(cfg, dt_s: float):
    """The population as NIR's LIF: ``tau = dt / (1 - decay)``, ``r = tau / dt`` (the forward-Euler
    step of ``tau dv/dt = -v + r I`` is then neurohw's); ``decay >= 1``: no leak (tau inf, r 1).
    The reset in metadata (NIR's LIF knows only reset to ``v_reset``)."""
    import nir

    n = cfg.n_neurons
    decay = float(cfg.decay)
    if decay >= 1.0:
        tau = np.full(n, np.inf)  # no leak: an integrate-and-fire neuron
        r = np.ones(n)
    else:
        tau = np.full(n, dt_s / (1.0 - decay))
        r = tau / dt_s
    if cfg.reset != "hard":
        # NIR's LIF resets to v_reset; reset-by-subtraction has no NIR form, so say so in metadata
        reset_note = "subtract: mem -= v_th after a spike (not expressible by NIR LIF's v_reset)"
    else:
        reset_note = "hard: mem -> v_reset = 0 after a spike"
    return nir.LIF(
        tau=tau,
        r=r,
        v_leak=np.zeros(n),
        v_threshold=np.full(n, float(cfg.v_th)),
        v_reset=np.zeros(n),
        metadata={"decay": decay, "dt_s": float(dt_s), "reset": cfg.reset, "reset_semantics": reset_note},
    )


def _add_readout(nodes: dict, edges: list, readout: ReadoutAffine, n: int, dt_s: float) -> None:
    """The trained head after the population: ``lif -> rate`` (I, the firing rate after
    ``n_steps``) ``-> readout`` (Affine) ``-> output``, added to ``nodes`` and ``edges``."""
    import nir

    w = np.asarray(readout.weight, np.float64)
    b = np.asarray(readout.bias, np.float64)
    if w.ndim != 2 or w.shape[1] != n or b.shape != (w.shape[0],):
        raise ValueError(f"readout weight {w.shape} / bias {b.shape} do not fit {n} neurons")
    if readout.n_steps < 1:
        raise ValueError(f"readout n_steps must be >= 1, got {readout.n_steps}")
    # forward Euler of dv/dt = r s with r = 1 / (T dt): after T steps v = count / T, the rate
    nodes["rate"] = nir.I(r=np.full(n, 1.0 / (readout.n_steps * dt_s)),
                          metadata={"feature": "rate", "n_steps": int(readout.n_steps),
                                    "meaning": "v = spike count / n_steps after the sample's n_steps steps"})
    nodes[readout.name] = nir.Affine(weight=w.copy(), bias=b.copy(), metadata={
        **readout.metadata, "input": "rate", "read_at": "the last of the sample's n_steps steps",
        "standardisation": "folded in: weight = W / std, bias = b - W (mean / std)"})
    nodes[readout.output] = nir.Output(output_type={"output": np.array([w.shape[0]])})
    edges += [("lif", "rate"), ("rate", readout.name), (readout.name, readout.output)]


def write_nir(encoder, path: str | Path, dt_s: float = DEFAULT_DT_S, readout: ReadoutAffine | None = None,
              readout_note: str | None = None) -> Path:
    """Write :func:`encoder_to_nir` to ``path`` (HDF5, written to a temporary name first)."""
    import nir

    path = Path(path)
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(tmp, encoder_to_nir(encoder, dt_s, readout, readout_note))
    return path


# ----------------------------------------------------------------------------- other tools' importers


def reservoir_subgraph(graph):
    """The graph without its readout branch (``rate`` / ``readout`` / its Output): what
    snnTorch's and Norse's NIR importers can load (neither maps NIR's integrator ``I``)."""
    import nir

    keep = {"input", "w_in", "lif", "w_rec", "output"}
    if not keep <= set(graph.nodes):
        raise DataError(f"not a neurohw reservoir graph (missing nodes {sorted(keep - set(graph.nodes))})")
    return nir.NIRGraph(nodes={k: v for k, v in graph.nodes.items() if k in keep}, edges=[e for e in graph.edges if set(e) <= keep],
                        metadata=dict(graph.metadata))


def for_snntorch(graph):
    """The reservoir graph nested in one subgraph node, the form in which snnTorch 1.0's
    ``import_from_nir`` wires it as neurohw runs it (docs/export.md: its importer rewires a
    top-level LIF <-> Linear cycle as ``lif(W_rec(W_in x + s))``)."""
    import nir

    g = reservoir_subgraph(graph)
    n_in = int(np.asarray(g.nodes["input"].input_type["input"]).ravel()[0])
    n = int(np.asarray(g.nodes["output"].output_type["output"]).ravel()[0])
    return nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([n_in])}), "reservoir": g,
                               "output": nir.Output({"output": np.array([n])})},
                        edges=[("input", "reservoir"), ("reservoir", "output")], metadata=dict(graph.metadata))


def for_norse(graph):
    """The reservoir graph with each LIF's ``r`` moved into the weights feeding it (``r = 1``,
    weights x r), the form Norse 1.1's ``from_nir`` simulates correctly (it ignores ``r``)."""
    import nir

    g = reservoir_subgraph(graph)
    lif = g.nodes["lif"]
    r = np.asarray(lif.r, dtype=np.float64)
    nodes = dict(g.nodes)
    for k in ("w_in", "w_rec"):
        nodes[k] = nir.Linear(weight=np.asarray(g.nodes[k].weight) * r[:, None], metadata=dict(g.nodes[k].metadata))
    nodes["lif"] = nir.LIF(tau=lif.tau, r=np.ones_like(r), v_leak=lif.v_leak, v_threshold=lif.v_threshold,
                           v_reset=lif.v_reset, metadata=dict(lif.metadata))
    return nir.NIRGraph(nodes=nodes, edges=list(g.edges), metadata=dict(g.metadata))
