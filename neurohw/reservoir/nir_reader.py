"""NIR graphs read as a reservoir (Neuromorphic Intermediate Representation, PyPI ``nir``):
neurohw's own export (:mod:`neurohw.export.nir_graph`) or another tool's graph of one LIF
population, e.g. snnTorch's ``RLeaky``; then its crossbars on a device.

NIR's LIF is continuous-time, ``tau dv/dt = (v_leak - v) + r I``. neurohw's reservoir is the
discrete-time LIF of Lin et al. (2025), ``mem[t] = decay mem[t-1] (1 - s[t-1]) + W_in x[t] +
W_rec s[t-1]``, ``s[t] = mem[t] > v_th``. One time step is ``dt``; the forward-Euler step of
NIR's equation is ``v[t] = (1 - dt/tau) v[t-1] + (dt r / tau) I[t]``, so ``decay = 1 - dt/tau``
and the input gain ``dt r / tau``, folded into the weights here (exact in the equations), for
any ``r``. ``dt`` defaults to 0.1 ms (:data:`DEFAULT_DT_S`) because snnTorch's NIR importer and
exporter assume ``dt = 1e-4`` s.

NIR's ``Linear`` weight is ``(out, in)``, the transpose of neurohw's ``(in, out)`` crossbar
weights. neurohw's export adds to each Linear node's ``metadata`` the differential conductances
``g_pos_us`` / ``g_neg_us`` (uS, ``(in, out)``) and ``scale_per_us``; a file that holds them is
read back cell for cell (:attr:`ReservoirGraph.has_conductances`), others are programmed by
write-verify (:func:`programmed_crossbars`). docs/export.md states the mapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurohw.crossbar import Crossbar
from neurohw.devices.model import DeviceModel
from neurohw.errors import DataError

#: time step of one reservoir bin in the graph, seconds; snnTorch's NIR import/export use 1e-4
DEFAULT_DT_S = 1e-4
#: why a recurrent snnTorch export does not say its reset (docs/export.md)
SNNTORCH_RESET = ("field 'reset' is not in the file: snnTorch exports RLeaky / RSynaptic as this subgraph (input, lif, w_rec, "
                  "output) with NIR's reset-to-v_reset whatever its reset_mechanism (default 'subtract' with "
                  "reset_delay=True); set reservoir.<modality>.reset: subtract (snnTorch's default, the same step) or hard "
                  "(reset_mechanism='zero', reset_delay=False); other combinations have no neurohw form")
#: what :func:`read_reservoir` accepts, for its error messages
SUPPORTED = ("Input, Output, Linear, Affine (zero bias), LIF, CubaLIF (tau_syn = dt), nested NIRGraphs of these; "
             "an I / LI / Linear / Affine readout after the LIF is ignored")


@dataclass(frozen=True)
class ReservoirGraph:
    """What a NIR file says about a reservoir, in neurohw's own terms (weights ``(in, out)``,
    the LIF's input gain folded in)."""

    w_in: np.ndarray
    w_rec: np.ndarray
    decay: float
    v_th: float
    dt_s: float
    #: "hard" or "subtract"; None when the file cannot say (snnTorch's recurrent export,
    #: :data:`SNNTORCH_RESET`): the config must then name it
    reset: str | None
    g_pos_in_us: np.ndarray | None = None
    g_neg_in_us: np.ndarray | None = None
    g_pos_rec_us: np.ndarray | None = None
    g_neg_rec_us: np.ndarray | None = None
    #: weight per uS of each crossbar, from neurohw's metadata (``scale_per_us``)
    scale_in: float | None = None
    scale_rec: float | None = None
    #: the LIF node's name (flattened) and why its reset is unknown
    lif_name: str = "lif"
    reset_unknown: str = ""

    @property
    def has_conductances(self) -> bool:
        """Whether the file holds the conductances and scales behind both weight matrices
        (neurohw's own export): then they are used as they are, not programmed again."""
        return all(v is not None for v in (self.g_pos_in_us, self.g_neg_in_us, self.g_pos_rec_us, self.g_neg_rec_us,
                                           self.scale_in, self.scale_rec))

    @property
    def rec_scale(self) -> float:
        """The recurrent crossbar's scale relative to the input one (1 without conductances)."""
        return float(self.scale_rec / self.scale_in) if self.has_conductances else 1.0

    @property
    def n_inputs(self) -> int:
        return int(self.w_in.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.w_in.shape[1])



# ----------------------------------------------------------------------------- reading


def _flatten(graph, prefix: str = "") -> tuple[dict, list[tuple[str, str]]]:
    """Nodes and edges with nested NIRGraphs inlined (names ``outer.inner``); an edge into or
    out of a subgraph goes to its Input / from its Output nodes."""
    import nir  # heavy (h5py, its node classes): imported where a graph is read

    nodes, edges, ins, outs = {}, [], {}, {}
    for key, node in graph.nodes.items():
        name = prefix + key
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, name + ".")
            nodes.update(sub_nodes)
            edges += sub_edges
            ins[key] = [name + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs[key] = [name + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
        else:
            nodes[name] = node
    for a, b in graph.edges:
        edges += [(s, d) for s in outs.get(a, [prefix + a]) for d in ins.get(b, [prefix + b])]
    return nodes, edges


def _inline(graph) -> tuple[dict, set[tuple[str, str]]]:
    """:func:`_flatten`, then the Input / Output nodes of the subgraphs bypassed."""
    import nir

    nodes, edges = _flatten(graph)
    edges = set(edges)
    top = set(graph.nodes)
    for name in [k for k, v in nodes.items() if isinstance(v, (nir.Input, nir.Output)) and k not in top]:
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = {e for e in edges if name not in e} | {(a, b) for a in preds for b in succs}
        del nodes[name]
    return nodes, edges


def _vector(value, n: int, what: str, where: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64).ravel()
    if a.size == 1:
        a = np.full(n, a[0])
    if a.shape != (n,):
        raise DataError(f"{where}: {what} has {a.size} values for {n} neurons; shapes do not match")
    return a


def _weight(node, name: str, shape: tuple[int, int] | None, where: str) -> np.ndarray:
    """A Linear / Affine node's weight (out, in), float64; a non-zero bias is an error."""
    import nir

    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise DataError(f"{where}: node '{name}' has a {w.ndim}-D weight; a reservoir needs 2-D (out, in) weights")
    if shape is not None and w.shape != shape:
        raise DataError(f"{where}: node '{name}' weight has shape {w.shape}, expected {shape}; shapes do not match")
    if not np.all(np.isfinite(w)):
        raise DataError(f"{where}: node '{name}' has non-finite weights")
    if isinstance(node, nir.Affine) and node.bias is not None and np.any(np.asarray(node.bias) != 0):
        raise DataError(f"{where}: node '{name}' is an Affine with a non-zero bias; neurohw's crossbars have no bias "
                        "(export the network with bias=False, or zero the bias)")
    return w


def _time_step(graph, lif, dt_s: float | None) -> float:
    if dt_s is not None:
        return float(dt_s)
    for meta, key in ((lif.metadata, "dt_s"), (graph.metadata, "time_step_s"), (graph.metadata, "dt")):
        if key in (meta or {}):
            return float(meta[key])
    return DEFAULT_DT_S


def _lif_step(lif, n: int, dt: float, where: str) -> tuple[np.ndarray, float, float, str]:
    """``(gain (n,), decay, v_th, reset)`` of the discrete step of a LIF or CubaLIF node."""
    import nir

    meta = lif.metadata or {}
    if isinstance(lif, nir.CubaLIF):
        tau_syn = _vector(lif.tau_syn, n, "tau_syn", where)
        alpha = 1.0 - dt / tau_syn
        if not np.allclose(alpha, 0.0, atol=1e-9):
            raise DataError(f"{where}: CubaLIF with tau_syn = {tau_syn[0]:g} s has a synaptic current that decays by "
                            f"alpha = 1 - dt/tau_syn = {alpha[0]:g} per step (dt = {dt:g} s); neurohw's reservoir has no "
                            "synaptic current: use tau_syn = dt (alpha = 0) or a LIF")
        syn_gain = _vector(lif.w_in, n, "w_in", where) * dt / tau_syn
        tau = _vector(lif.tau_mem, n, "tau_mem", where)
    else:
        syn_gain = np.ones(n)
        tau = _vector(lif.tau, n, "tau", where)
    r = _vector(lif.r, n, "r", where)
    v_leak = _vector(lif.v_leak, n, "v_leak", where)
    v_reset = _vector(lif.v_reset, n, "v_reset", where)
    v_th = _vector(lif.v_threshold, n, "v_threshold", where)
    if np.any(v_leak != 0):
        raise DataError(f"{where}: v_leak = {v_leak[v_leak != 0][0]:g}; neurohw's neurons rest at 0 (v_leak must be 0)")
    if np.any(v_reset != 0):
        raise DataError(f"{where}: v_reset = {v_reset[v_reset != 0][0]:g}; neurohw resets to 0 (v_reset must be 0)")
    if not np.all(v_th == v_th[0]) or not v_th[0] > 0:
        raise DataError(f"{where}: thresholds {np.unique(v_th)[:4]}; neurohw's neurons share one threshold > 0")
    if np.any(~(tau > 0)):
        raise DataError(f"{where}: time constants must be > 0, got {tau.min():g}")
    # in the precision the file stores tau in (snnTorch writes float32): its decay is then the
    # tool's beta exactly, and a gain within a few ulps of 1 is 1 (the file cannot say more)
    raw = np.asarray(lif.tau_mem if isinstance(lif, nir.CubaLIF) else lif.tau)
    dtype = np.result_type(raw.dtype, np.float32) if np.issubdtype(raw.dtype, np.floating) else np.float64
    inf = np.isinf(tau)
    safe = np.where(inf, 1.0, tau).astype(dtype)
    gain = (syn_gain * np.where(inf, 1.0, (dt * r.astype(dtype) / safe).astype(np.float64))).astype(np.float64)
    gain = np.where(np.abs(gain - 1.0) <= 8 * np.finfo(dtype).eps, 1.0, gain)
    decay_all = np.where(inf, 1.0, (1.0 - dt / safe).astype(np.float64))
    if not np.allclose(decay_all, decay_all[0], rtol=0, atol=1e-12):
        raise DataError(f"{where}: neurons have different time constants; neurohw reservoirs share one decay")
    decay = float(meta["decay"]) if "decay" in meta else float(decay_all[0])
    reset = str(meta.get("reset", "hard"))
    if reset not in ("hard", "subtract"):
        raise DataError(f"{where}: metadata field 'reset' = {reset!r}; neurohw's LSM runs 'hard' or 'subtract' resets only")
    for key in ("reset_delay", "refractory", "refractory_period"):
        if meta.get(key) not in (None, 0, False, True) or (key == "reset_delay" and meta.get(key) is False and reset == "subtract"):
            raise DataError(f"{where}: metadata field '{key}' = {meta[key]!r}; neurohw's LSM applies a reset at the step "
                            "after the spike (snnTorch's reset_delay=True) and has no refractory period")
    if not 0 < decay <= 1:
        raise DataError(f"{where}: tau = {tau[0]:g} s with dt = {dt:g} s gives decay = 1 - dt/tau = {decay:g}, outside (0, 1]; "
                        "the graph's time step does not fit its time constants")
    if not np.all(np.isfinite(gain)) or np.any(gain == 0):
        raise DataError(f"{where}: input gain dt*r/tau = {gain[0]:g} is not usable")
    return gain, decay, float(v_th[0]), reset


def read_reservoir(path_or_graph, dt_s: float | None = None) -> ReservoirGraph:
    """A reservoir from a NIR file or graph: neurohw's own export, or another tool's graph of one
    LIF (or CubaLIF) population with Linear / Affine weights, e.g. snnTorch's ``RLeaky``.

    Structure: ``Input -> [Linear|Affine] -> LIF``, optionally ``LIF -> Linear|Affine -> LIF``
    (the recurrence; none means zero recurrent weights); nested subgraphs are inlined; nodes
    after the LIF that do not feed back (a readout) are ignored. Continuous to discrete time:
    ``decay = 1 - dt/tau``, input gain ``dt r / tau`` folded into the weights; ``dt`` from
    ``dt_s``, else the graph's metadata (``time_step_s`` or the LIF's ``dt_s``), else
    :data:`DEFAULT_DT_S`. Anything else is a one-line :class:`DataError`.
    """
    import nir

    graph, where = _load_graph(path_or_graph)
    nodes, edges = _inline(graph)
    lif_name = _the_population(nodes, where)
    lif = nodes[lif_name]
    reach_from_lif = _reachable(edges, lif_name, downstream=True)
    _check_node_kinds(nodes, reach_from_lif - _reachable(edges, lif_name, downstream=False), where)
    n = int(np.asarray(lif.v_threshold).size)
    into_lif = _preds(edges, lif_name)
    recurrent = [k for k in into_lif if k in reach_from_lif]
    feed = [k for k in into_lif if k not in reach_from_lif]
    if len(recurrent) > 1 or any(_preds(edges, k) != [lif_name] or not isinstance(nodes[k], (nir.Linear, nir.Affine)) for k in recurrent):
        raise DataError(f"{where}: the recurrence into '{lif_name}' must be one Linear/Affine node fed by the LIF alone, got {recurrent}")
    if len(feed) != 1:
        raise DataError(f"{where}: '{lif_name}' needs exactly one input path (a Linear/Affine from the Input), got {feed or 'none'}")
    w_in, m_in = _input_weights(nodes, edges, feed[0], lif_name, n, where)
    if recurrent:
        w_rec = _weight(nodes[recurrent[0]], recurrent[0], (n, n), where)
        m_rec = nodes[recurrent[0]].metadata or {}
    else:
        w_rec, m_rec = np.zeros((n, n)), {}
    dt = _time_step(graph, lif, dt_s)
    if not (np.isfinite(dt) and dt > 0):
        raise DataError(f"{where}: time step {dt} s must be finite and > 0")
    gain, decay, v_th, reset = _lif_step(lif, n, dt, f"{where}: node '{lif_name}'")
    unknown = ""
    if "reset" not in (lif.metadata or {}) and _snntorch_recurrent(lif_name, recurrent):
        reset, unknown = None, f"{where}: node '{lif_name}': {SNNTORCH_RESET}"
    exact = np.all(gain == 1.0)
    w_in_t = (w_in if exact else w_in * gain[:, None]).T.copy()
    w_rec_t = (w_rec if exact else w_rec * gain[:, None]).T.copy()
    cells = {}
    if exact and recurrent:
        cells = _conductances(m_in, m_rec, w_in_t, w_rec_t, (feed[0], recurrent[0]), where)
    return ReservoirGraph(w_in=w_in_t, w_rec=w_rec_t, decay=decay, v_th=v_th, dt_s=dt, reset=reset, lif_name=lif_name,
                          reset_unknown=unknown, **cells)


def _load_graph(path_or_graph) -> tuple:
    """The NIRGraph of a file (every read failure one DataError line) or the graph given, and
    its name for messages."""
    import nir

    if isinstance(path_or_graph, (str, Path)):
        try:
            graph = nir.read(str(path_or_graph))
        except Exception as exc:  # h5py / nir raise many kinds on a damaged or foreign file
            text = " ".join(str(exc).split())
            if "type mismatch" in text:  # nir checks the shapes along the edges when it reads
                raise DataError(f"{path_or_graph}: shapes do not match along an edge ({text})") from None
            raise DataError(f"{path_or_graph}: not a readable NIR file ({type(exc).__name__}: {text})") from None
        where = str(path_or_graph)
    else:
        graph, where = path_or_graph, "NIR graph"
    if not isinstance(graph, nir.NIRGraph):
        raise DataError(f"{where}: holds a single {type(graph).__name__} node, not a graph with a reservoir")
    return graph, where


def _the_population(nodes: dict, where: str) -> str:
    """The name of the graph's one LIF / CubaLIF node."""
    import nir

    lifs = [k for k, v in nodes.items() if isinstance(v, (nir.LIF, nir.CubaLIF))]
    if len(lifs) != 1:
        if not lifs:
            raise DataError(f"{where}: not a reservoir graph (missing nodes: no LIF or CubaLIF node); neurohw reads {SUPPORTED}")
        raise DataError(f"{where}: {len(lifs)} LIF/CubaLIF nodes ({', '.join(lifs)}); a reservoir is one population")
    return lifs[0]


def _preds(edges, k: str) -> list[str]:
    """The nodes with an edge into ``k``, sorted."""
    return sorted(a for a, b in edges if b == k)


def _reachable(edges, start: str, downstream: bool) -> set[str]:
    """Every node reachable from ``start`` along the edges (``downstream``) or against them."""
    seen, todo = set(), [start]
    while todo:
        k = todo.pop()
        for nxt in ([b for a, b in edges if a == k] if downstream else _preds(edges, k)):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_node_kinds(nodes: dict, readout: set[str], where: str) -> None:
    """Every node a kind neurohw reads: the core's (Input, Output, Linear, Affine, LIF, CubaLIF),
    or in the readout (the nodes after the LIF that do not feed back) Output, Linear, Affine, I, LI."""
    import nir

    ok_core = (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF, nir.CubaLIF)
    ok_readout = (nir.Output, nir.Linear, nir.Affine, nir.I, nir.LI)
    for k in sorted(set(nodes)):
        node = nodes[k]
        if (k in readout and not isinstance(node, ok_readout)) or (k not in readout and not isinstance(node, ok_core)):
            raise DataError(f"{where}: node '{k}' is a {type(node).__name__}, which neurohw cannot import; it reads {SUPPORTED}")


def _input_weights(nodes: dict, edges, feed: str, lif_name: str, n: int, where: str) -> tuple[np.ndarray, dict]:
    """The (n, n_in) input weights into the population and their node's metadata: the identity
    when the Input feeds the LIF directly, else the Linear / Affine node ``feed`` fed by the Input."""
    import nir

    src = nodes[feed]
    if isinstance(src, nir.Input):
        n_in = int(np.prod(np.asarray(next(iter(src.input_type.values())))))
        if n_in != n:
            raise DataError(f"{where}: the Input ({n_in}) feeds '{lif_name}' ({n} neurons) directly; shapes do not match")
        return np.eye(n), {}
    up = _preds(edges, feed)
    if len(up) != 1 or not isinstance(nodes[up[0]], nir.Input):
        raise DataError(f"{where}: '{feed}' must be fed by the graph's Input alone, got {up}; neurohw reads one input layer")
    n_in = int(np.prod(np.asarray(next(iter(nodes[up[0]].input_type.values())))))
    return _weight(src, feed, (n, n_in), where), src.metadata or {}



def _snntorch_recurrent(lif_name: str, recurrent: list[str]) -> bool:
    """Whether the population has snnTorch's recurrent layout: its RLeaky / RSynaptic export is a
    subgraph (input, lif, w_rec, output), which a file holds as nodes ``<layer>.lif`` and
    ``<layer>.w_rec`` (nirtorch's flattening) or nested (inlined here to the same names)."""
    return lif_name.endswith(".lif") and recurrent == [lif_name[: -len("lif")] + "w_rec"]


def _conductances(m_in: dict, m_rec: dict, w_in: np.ndarray, w_rec: np.ndarray, names: tuple[str, str], where: str) -> dict:
    """The conductances and scales of neurohw's metadata, checked to give the nodes' weights
    (``W = scale_per_us (g_pos_us - g_neg_us)``, bit for bit); {} when a node has none."""
    out = {}
    for meta, w, name, part in ((m_in, w_in, names[0], "in"), (m_rec, w_rec, names[1], "rec")):
        if not all(k in meta for k in ("g_pos_us", "g_neg_us", "scale_per_us")):
            return {}
        gp, gn = np.asarray(meta["g_pos_us"], np.float64), np.asarray(meta["g_neg_us"], np.float64)
        scale = float(np.asarray(meta["scale_per_us"]))
        if gp.shape != w.shape or gn.shape != w.shape or not scale > 0:
            raise DataError(f"{where}: node '{name}' metadata g_pos_us / g_neg_us {gp.shape} do not fit its weights {w.shape}")
        if not np.array_equal(scale * (gp - gn), w):
            diff = float(np.abs(scale * (gp - gn) - w).max())
            raise DataError(f"{where}: node '{name}': its weights differ from scale_per_us * (g_pos_us - g_neg_us) of its "
                            f"metadata (by up to {diff:g}): the file was edited (or exported with IR drop on); remove g_pos_us / "
                            "g_neg_us to program the weights by write-verify, or export it again")
        out.update({f"g_pos_{part}_us": gp, f"g_neg_{part}_us": gn, f"scale_{part}": scale})
    return out


# ----------------------------------------------------------------------------- onto a device


def programming_scale(graph: ReservoirGraph, device: DeviceModel) -> float:
    """The weight per uS at which a graph's weights are programmed: the power of two at or above
    ``max|W| / (g_max - g_min)`` of the device's programming window (both crossbars share it, so
    the level unit is common). A power of two makes ``W -> G = W / scale -> scale G`` exact in
    floating point, so the ideal device keeps the graph's weights bit for bit."""
    prog = device.programming
    window = float(prog.g_max_us - prog.g_min_us)
    peak = max(float(np.abs(graph.w_in).max(initial=0.0)), float(np.abs(graph.w_rec).max(initial=0.0)))
    if not peak > 0:
        return 1.0
    return float(2.0 ** math.ceil(math.log2(peak / window)))


def programmed_crossbars(graph: ReservoirGraph, device: DeviceModel, seed_in: int, seed_rec: int) -> tuple[Crossbar, Crossbar]:
    """The graph's crossbars on ``device``: the conductances of neurohw's metadata as they are,
    at their scales (:attr:`ReservoirGraph.has_conductances`: the run that exported them, cell
    for cell); otherwise the weights written by write-verify programming
    (:meth:`neurohw.crossbar.Crossbar.from_weights`) at :func:`programming_scale`."""
    if graph.has_conductances:
        return (Crossbar(device, graph.g_pos_in_us, graph.g_neg_in_us, graph.scale_in, seed_in),
                Crossbar(device, graph.g_pos_rec_us, graph.g_neg_rec_us, graph.scale_rec, seed_rec))
    scale = programming_scale(graph, device)
    return (Crossbar.from_weights(device, graph.w_in, seed=seed_in, scale=scale),
            Crossbar.from_weights(device, graph.w_rec, seed=seed_rec, scale=scale))
