"""The LSM encoder as a NIR graph (Neuromorphic Intermediate Representation, PyPI ``nir``).

NIR is the exchange format that neuromorphic simulators and chips read (snnTorch, Norse,
Lava/Loihi, SpiNNaker2, Xylo, ...). The reservoir becomes::

    input --> w_in (Linear) --> lif (LIF) --> output
                                 ^   |
                                 |   v
                               w_rec (Linear)

NIR's LIF is continuous-time, ``tau dv/dt = (v_leak - v) + r I``. neurohw's reservoir is the
discrete-time LIF of Lin et al. (2025), ``mem[t] = decay mem[t-1] (1 - s[t-1]) + W_in x[t] +
W_rec s[t-1]``, ``s[t] = mem[t] > v_th``. The mapping follows snnTorch's NIR exporter (one
time step = ``dt``): ``tau = dt / (1 - decay)``, ``r = tau / dt`` (so the forward-Euler step
gives back exactly ``decay`` and a unit input gain), ``v_leak = 0``, ``v_reset = 0`` (hard
reset). ``dt`` defaults to 0.1 ms because snnTorch's NIR importer and exporter assume
``dt = 1e-4`` s: with the same ``dt`` a consumer gets back exactly ``decay``.

NIR's ``Linear`` weight is ``(out, in)``, the transpose of neurohw's ``(in, out)`` crossbar
weights. Each Linear node's ``metadata`` carries the device facts behind its weights: the
differential conductance maps ``g_pos_us`` / ``g_neg_us`` (microsiemens, neurohw's ``(in, out)``
layout, the format :meth:`neurohw.crossbar.Crossbar.from_conductance_map` reads), the scale
(weight per uS), the device model name, the level step and the read-noise figures. A chip's
programming tool can take the conductances from there; a simulator takes the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurohw import __version__
from neurohw.errors import DataError

#: time step of one reservoir bin in the graph, seconds; snnTorch's NIR import/export use 1e-4
DEFAULT_DT_S = 1e-4


@dataclass(frozen=True)
class ReservoirGraph:
    """What a NIR file says about a reservoir, in neurohw's own terms (weights ``(in, out)``)."""

    w_in: np.ndarray
    w_rec: np.ndarray
    decay: float
    v_th: float
    dt_s: float
    reset: str
    g_pos_in_us: np.ndarray | None = None
    g_neg_in_us: np.ndarray | None = None
    g_pos_rec_us: np.ndarray | None = None
    g_neg_rec_us: np.ndarray | None = None


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


def encoder_to_nir(encoder, dt_s: float = DEFAULT_DT_S):
    """The NIR graph of an :class:`~neurohw.reservoir.lsm.LSMEncoder` (scale resolved).

    Weights are the device's noise-free effective weights, ``W = scale (G+ - G-)``; conductance
    maps and device facts travel in the Linear nodes' metadata.
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
    nodes = {
        "input": nir.Input(input_type={"input": np.array([cfg.n_inputs])}),
        "w_in": nir.Linear(weight=w_in.T.copy(), metadata=_crossbar_metadata(xin, scale)),
        "lif": nir.LIF(
            tau=tau,
            r=r,
            v_leak=np.zeros(n),
            v_threshold=np.full(n, float(cfg.v_th)),
            v_reset=np.zeros(n),
            metadata={"decay": decay, "dt_s": float(dt_s), "reset": cfg.reset, "reset_semantics": reset_note},
        ),
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
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(encoder, path: str | Path, dt_s: float = DEFAULT_DT_S) -> Path:
    """Write :func:`encoder_to_nir` to ``path`` (HDF5, written to a temporary name first)."""
    import nir

    from neurohw.paths import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(tmp, encoder_to_nir(encoder, dt_s))
    return path


def read_reservoir(path_or_graph) -> ReservoirGraph:
    """Read a reservoir back from a NIR file or graph written by :func:`write_nir`.

    Checks the structure (one Linear into a LIF, one recurrent Linear) and turns NIR's
    continuous LIF back into the discrete step: ``decay = 1 - dt r / tau`` (forward Euler with
    ``r = tau / dt`` gives ``decay``, the input gain ``dt r / tau`` must be 1).
    """
    import nir

    if isinstance(path_or_graph, (str, Path)):
        try:
            graph = nir.read(str(path_or_graph))
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path_or_graph}: not a readable NIR file ({exc})") from exc
        where = str(path_or_graph)
    else:
        graph, where = path_or_graph, "NIR graph"
    nodes = graph.nodes
    missing = [k for k in ("w_in", "lif", "w_rec") if k not in nodes]
    if missing:
        raise DataError(f"{where}: not a neurohw reservoir graph (missing nodes {missing})")
    edges = {tuple(e) for e in graph.edges}
    for e in (("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif")):
        if e not in edges:
            raise DataError(f"{where}: edge {e[0]} -> {e[1]} missing; not a recurrent reservoir")
    lif = nodes["lif"]
    dt = float(lif.metadata.get("dt_s", graph.metadata.get("time_step_s", DEFAULT_DT_S)))
    tau = np.asarray(lif.tau, dtype=np.float64)
    r = np.asarray(lif.r, dtype=np.float64)
    gain = np.where(np.isinf(tau), 1.0, dt * r / np.where(np.isinf(tau), 1.0, tau))
    if not np.allclose(gain, 1.0, rtol=1e-9):
        raise DataError(f"{where}: LIF input gain dt*r/tau = {gain.ravel()[0]:g} != 1; scale the weights first")
    decay_all = np.where(np.isinf(tau), 1.0, 1.0 - dt / np.where(np.isinf(tau), 1.0, tau))
    if not np.allclose(decay_all, decay_all.ravel()[0]):
        raise DataError(f"{where}: neurons have different time constants; neurohw reservoirs share one decay")
    vth = np.asarray(lif.v_threshold, dtype=np.float64)
    decay = float(lif.metadata["decay"]) if "decay" in lif.metadata else float(decay_all.ravel()[0])
    m_in, m_rec = nodes["w_in"].metadata, nodes["w_rec"].metadata
    return ReservoirGraph(
        w_in=np.asarray(nodes["w_in"].weight, dtype=np.float64).T.copy(),
        w_rec=np.asarray(nodes["w_rec"].weight, dtype=np.float64).T.copy(),
        decay=decay,
        v_th=float(vth.ravel()[0]),
        dt_s=dt,
        reset=str(lif.metadata.get("reset", "hard")),
        g_pos_in_us=m_in.get("g_pos_us"),
        g_neg_in_us=m_in.get("g_neg_us"),
        g_pos_rec_us=m_rec.get("g_pos_us"),
        g_neg_rec_us=m_rec.get("g_neg_us"),
    )
