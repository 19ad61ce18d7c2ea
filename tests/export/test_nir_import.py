"""NIR graphs of other tools in: snnTorch's RLeaky export becomes a neurohw reservoir with the
same spikes (ideal device), programmed onto the RRAM model by write-verify otherwise; bad graphs
are one-line errors, in Python, in a config and on the command line."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

from neurohw.cli import main  # noqa: E402
from neurohw.devices.model import load_device  # noqa: E402
from neurohw.errors import ConfigError, DataError  # noqa: E402
from neurohw.experiments.encoding import EncoderSource, build_encoder  # noqa: E402
from neurohw.experiments.schema import load_config  # noqa: E402
from neurohw.reservoir.lsm import LSMConfig  # noqa: E402
from neurohw.reservoir.nir_reader import programming_scale, read_reservoir  # noqa: E402

N_IN, N, T, BETA, THRESHOLD = 16, 23, 47, 0.875, 1.0


class RLeakyNet(torch.nn.Module):
    """An snnTorch recurrent layer as its users write one: Linear -> RLeaky (all-to-all), reset
    to zero without delay (NIR's LIF reset)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(N_IN, N, bias=False)
        self.lif = snn.RLeaky(beta=BETA, threshold=THRESHOLD, linear_features=N, reset_mechanism="zero", reset_delay=False)

    def forward(self, x):
        return self.lif(self.fc(x))


@pytest.fixture(scope="module")
def snntorch_file(tmp_path_factory):
    """An RLeaky network with random weights, exported by snnTorch's own NIR exporter."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(3)
    net = RLeakyNet()
    with torch.no_grad():
        net.fc.weight.mul_(2.5)
        net.lif.recurrent.weight.mul_(1.5)
        net.lif.recurrent.bias.zero_()  # neurohw's crossbars have no bias (a bias is refused)
    path = tmp_path_factory.mktemp("snn") / "rleaky.nir"
    nir.write(str(path), export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0]))
    return net, path


def _snntorch_spikes(net, x: np.ndarray) -> np.ndarray:
    """snnTorch's own simulation of the network (float32, its native precision: its spike
    function returns float32), state from zero."""
    spk, mem = torch.zeros(1, N), torch.zeros(1, N)
    out = []
    with torch.no_grad():
        for t in range(len(x)):
            spk, mem = net.lif(net.fc(torch.tensor(x[t : t + 1], dtype=torch.float32)), spk, mem)
            out.append(spk[0].numpy() > 0)
    return np.array(out)


def _rasters(k: int, seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((T, N_IN)) < 0.2).astype(np.uint8) for _ in range(k)]


def test_snntorch_rleaky_imports_with_the_same_spikes_on_the_ideal_device(snntorch_file):
    net, path = snntorch_file
    graph = read_reservoir(path)
    # snnTorch's recurrent export does not carry its reset: the file cannot say (the config must)
    assert (graph.n_inputs, graph.n_neurons, graph.v_th, graph.reset) == (N_IN, N, THRESHOLD, None)
    assert "node 'lif.lif': field 'reset' is not in the file" in graph.reset_unknown
    assert graph.decay == BETA  # snnTorch writes tau in float32; decay is read in that precision
    np.testing.assert_array_equal(graph.w_in, net.fc.weight.detach().numpy().T.astype(np.float64))
    device = load_device("ideal")
    lsm = LSMConfig(n_inputs=N_IN, n_neurons=N, v_th=graph.v_th, decay=graph.decay, scale=programming_scale(graph, device),
                    seed=0, backend="numpy", noise=False)
    enc = build_encoder(lsm, device, EncoderSource(graph=graph))
    xin, xrec = enc.crossbars()
    np.testing.assert_array_equal(xin.weights(), graph.w_in)  # kept exact on the ideal device
    np.testing.assert_array_equal(xrec.weights(), graph.w_rec)
    xs = _rasters(6)
    res = enc.run_batch(xs, np.arange(6), record_spikes=True)
    total = 0
    for x, mine in zip(xs, res.spikes):
        ref = _snntorch_spikes(net, x)
        np.testing.assert_array_equal(np.asarray(mine), ref)
        total += int(ref.sum())
    assert total > 50


def test_rram_device_programs_the_graph_by_write_verify(snntorch_file):
    _, path = snntorch_file
    graph = read_reservoir(path)
    device = load_device("taox_rram_40nm")
    scale = programming_scale(graph, device)
    lsm = LSMConfig(n_inputs=N_IN, n_neurons=N, v_th=graph.v_th, decay=graph.decay, scale=scale, seed=4, noise=False)
    xin, xrec = build_encoder(lsm, device, EncoderSource(graph=graph)).crossbars()
    assert xin.pulses is not None and xin.pulses.sum() > 0  # write-verify pulses were spent
    window = device.programming.g_max_us - device.programming.g_min_us
    assert np.abs(graph.w_in).max() / window <= scale < 2 * np.abs(graph.w_in).max() / window + 1e-12
    # on the levels, within the verify tolerance (+ half a level) except unconverged / stuck cells
    ok = xin.converged.all(axis=0) & (xin.stuck_code == 0).all(axis=0)
    err = np.abs(xin.weights() - graph.w_in)[ok]
    assert ok.mean() > 0.9
    assert err.max() <= 2 * scale * (device.programming.tolerance_us + device.levels.step_us / 2) + 1e-12


def _graph_with(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _lif(n, **kw):
    p = {"tau": np.full(n, 8e-4), "r": np.full(n, 8.0), "v_leak": np.zeros(n), "v_threshold": np.ones(n), "v_reset": np.zeros(n)}
    p.update(kw)
    return nir.LIF(**p)


def _base(n_in=3, n=4, w_in=None, w_rec=None, lif=None):
    return {"input": nir.Input({"input": np.array([n_in])}),
            "w_in": w_in if w_in is not None else nir.Linear(weight=np.ones((n, n_in))),
            "lif": lif if lif is not None else _lif(n),
            "w_rec": w_rec if w_rec is not None else nir.Linear(weight=np.zeros((n, n))),
            "output": nir.Output({"output": np.array([n])})}


EDGES = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]


@pytest.mark.parametrize("nodes, edges, message", [
    ({**_base(), "th": nir.Threshold(threshold=np.ones(4))},
     EDGES[:1] + [("w_in", "th"), ("th", "lif")] + EDGES[2:], "is a Threshold"),
    (_base(w_in=nir.Linear(weight=np.ones((5, 3)))), EDGES, "shapes do not match"),
    (_base(w_rec=nir.Linear(weight=np.ones((4, 3)))), EDGES, "shapes do not match"),
    (_base(w_rec=nir.Affine(weight=np.ones((4, 4)), bias=np.ones(4))), EDGES, "non-zero bias"),
    (_base(lif=_lif(4, v_leak=np.ones(4))), EDGES, "v_leak"),
    (_base(lif=_lif(4, v_threshold=np.arange(1.0, 5.0))), EDGES, "one threshold"),
    (_base(lif=nir.CubaLIF(tau_syn=np.full(4, 5e-3), tau_mem=np.full(4, 8e-4), r=np.full(4, 8.0), v_leak=np.zeros(4),
                           v_threshold=np.ones(4), v_reset=np.zeros(4), w_in=np.ones(4))), EDGES, "synaptic current"),
    ({k: v for k, v in _base().items() if k != "lif"}, [("input", "w_in"), ("w_in", "output")], "missing nodes"),
])
def test_unsupported_graphs_are_one_line_errors(nodes, edges, message, tmp_path):
    path = tmp_path / "bad.nir"
    nir.write(str(path), _graph_with(nodes, edges))
    with pytest.raises(DataError, match=message) as err:
        read_reservoir(path)
    assert "\n" not in str(err.value)


def test_cubalif_without_synaptic_decay_is_a_lif():
    """tau_syn = dt: the synaptic current is the input of the same step (alpha = 0)."""
    n = 4
    cuba = nir.CubaLIF(tau_syn=np.full(n, 1e-4), tau_mem=np.full(n, 8e-4), r=np.full(n, 8.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.ones(n))
    a = read_reservoir(_graph_with(_base(lif=cuba), EDGES))
    b = read_reservoir(_graph_with(_base(), EDGES))
    np.testing.assert_array_equal(a.w_in, b.w_in)
    assert a.decay == b.decay == pytest.approx(0.875)


def test_input_gain_is_folded_into_the_weights():
    """r = 1 (Norse's convention): gain dt r / tau = 1 - decay multiplies the weights."""
    g = read_reservoir(_graph_with(_base(lif=_lif(4, r=np.ones(4))), EDGES))
    np.testing.assert_allclose(g.w_in, np.full((3, 4), 0.125))


def _config(tmp_path, nir_path, **reservoir) -> object:
    """A classify config on the graph; the reset of snnTorch's export (which the file lacks) is
    its reset_mechanism='zero', reset_delay=False: hard, unless ``reset`` says otherwise."""
    reservoir = {"reset": "hard", **reservoir}
    if reservoir["reset"] is None:
        del reservoir["reset"]
    raw = {"task": "classify", "seed": 0,
           "data": {"img": {"dataset": "digits-dvs", "max_train_per_class": 3, "max_test_per_class": 2,
                            "binning": {"n_bins": 8, "crop": [4, 4], "polarity": 0}}},
           "device": {"model": "ideal"},
           "reservoir": {"img": {"from_nir": str(nir_path), **reservoir}}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_from_nir_in_a_config_takes_the_graph_and_checks_it(snntorch_file, tmp_path, capsys):
    _, nir_path = snntorch_file
    cfg = load_config(_config(tmp_path, nir_path))
    spec = cfg.reservoir["img"]
    assert (spec.n_neurons, spec.decay, spec.v_th, spec.scale) == (N, BETA, THRESHOLD, None)
    lsm = spec.lsm_config(16, 0, 0, "numpy", cfg.device.resolved)
    assert lsm.scale == programming_scale(spec.nir_graph, cfg.device.resolved)
    with pytest.raises(ConfigError, match="n_neurons = 50 but the graph"):
        load_config(_config(tmp_path, nir_path, n_neurons=50))
    with pytest.raises(ConfigError, match="scale"):
        load_config(_config(tmp_path, nir_path, scale=0.1, target_rate=0.05))
    bad = tmp_path / "junk.nir"
    bad.write_bytes(b"not hdf5")
    assert main(["validate", str(_config(tmp_path, bad))]) == 2
    err = capsys.readouterr().err.strip()
    assert "junk.nir" in err and "reservoir.img.from_nir" in err and len(err.splitlines()) == 1
    missing = tmp_path / "missing.nir"
    with pytest.raises(ConfigError, match="no such NIR file"):
        load_config(_config(tmp_path, missing))


def test_a_run_on_an_imported_graph(snntorch_file, tmp_path):
    """A classify run on the graph (16 inputs = a 4 x 4 crop): its features are the imported
    reservoir's spikes, and the cache key names the graph's content."""
    from neurohw.experiments.encoding import ModalityReservoir
    from neurohw.experiments.extraction import cache_spec, extract
    from neurohw.experiments.modalities import resolve_modalities

    net, nir_path = snntorch_file
    cfg = load_config(_config(tmp_path, nir_path, noise=False, features=["rate"]))
    mods = resolve_modalities(cfg, progress=False)
    res = ModalityReservoir.for_seed(cfg, mods, 0)[0]
    spec = cache_spec(res, "test")
    assert spec["source"]["from_nir_sha256"]
    feats = extract(res, "test", 8, False).features["rate"]
    rasters = res.rasters("test", res.indices("test"))
    expect = np.array([_snntorch_spikes(net, r).mean(0) for r in rasters], dtype=np.float32)
    np.testing.assert_array_equal(feats, expect)


class DefaultRLeakyNet(torch.nn.Module):
    """snnTorch's RLeaky with its defaults: reset_mechanism='subtract', reset_delay=True."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(N_IN, N, bias=False)
        self.lif = snn.RLeaky(beta=BETA, threshold=THRESHOLD, linear_features=N)

    def forward(self, x):
        return self.lif(self.fc(x))


def test_snntorch_default_rleaky_is_refused_without_a_reset_and_runs_with_subtract(tmp_path, capsys):
    """The default RLeaky's export says nothing of its subtract reset: ``validate`` refuses it in
    one line naming the node and the field; with ``reset: subtract`` it runs with snnTorch's
    own spikes (ideal device)."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(7)
    net = DefaultRLeakyNet()
    assert (net.lif.reset_mechanism, net.lif.reset_delay) == ("subtract", True)
    with torch.no_grad():
        net.fc.weight.mul_(2.5)
        net.lif.recurrent.weight.mul_(1.5)
        net.lif.recurrent.bias.zero_()
    path = tmp_path / "default.nir"
    nir.write(str(path), export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0]))
    assert main(["validate", str(_config(tmp_path, path, reset=None))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "node 'lif.lif': field 'reset' is not in the file" in err[0] and "reservoir.img" in err[0]
    cfg = load_config(_config(tmp_path, path, reset="subtract"))
    spec = cfg.reservoir["img"]
    assert spec.reset == "subtract"
    lsm = spec.lsm_config(N_IN, 0, 0, "numpy", cfg.device.resolved).model_copy(update={"noise": False})
    enc = build_encoder(lsm, cfg.device.resolved, EncoderSource(graph=spec.nir_graph))
    xs = _rasters(6, seed=9)
    res = enc.run_batch(xs, np.arange(6), record_spikes=True)
    total = 0
    for x, mine in zip(xs, res.spikes):
        ref = _snntorch_spikes(net, x)
        np.testing.assert_array_equal(np.asarray(mine), ref)
        total += int(ref.sum())
    assert total > 50
    # the same network read as a hard reset (what the import did before) gives other spikes
    hard = build_encoder(lsm.model_copy(update={"reset": "hard"}), cfg.device.resolved, EncoderSource(graph=spec.nir_graph))
    assert any(not np.array_equal(a, b) for a, b in zip(hard.run_batch(xs, np.arange(6), record_spikes=True).spikes, res.spikes))


def test_unknown_reset_metadata_is_refused(tmp_path):
    lif = _lif(4)
    lif.metadata = {"reset": "to_minus_one"}
    with pytest.raises(DataError, match="node 'lif': metadata field 'reset' = 'to_minus_one'"):
        read_reservoir(_graph_with(_base(lif=lif), EDGES))
