"""Reservoir throughput: every neurohw backend against snntorch and plain torch, same run.

Reference workload (issue 4): 2,312 inputs (N-MNIST's 34 x 34 x 2), 1,000 neurons, 300 steps,
batch 64, 2 % of the inputs active per step (Bernoulli, seeded), the weight scale found by
bisection for ~7 % firing, 2 threads. neurohw runs on the reference macro (taox_rram_40nm:
conductance levels -> int16 weights, per-tile 14-bit ADC, 2 % read noise when noise is on);
``-noadc`` rows run the same macro with ``adc.bits: null`` (one read per column and step
instead of one per row tile: 1 normal draw per neuron and step instead of 7).

Baselines, measured here in the same run on the same weights (W = unit * Wq as float32) and
inputs: snntorch (``RLeaky`` with ``all_to_all`` recurrence, zero reset, behind a fixed
``Linear`` input layer) and plain torch (dense matmuls per step; with noise: the same
noise-equivalent read, one extra matmul with W**2 and a normal draw per column, no ADC).
Each backend runs in its own process (``--worker``) so its peak RSS is its own.

The GPU backend (``neurohw-cupy`` rows) runs only where a CUDA device works; elsewhere the
report says it was not measured (``not_measured`` in the JSON, a line under the table), and
benchmarks/gpu_check.sh is the script that measures it on a machine with an NVIDIA GPU.

Run: ``neurohw bench reservoir [--json] [--quick]`` or ``python benchmarks/bench_reservoir.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

WORKLOAD = {
    "n_inputs": 2312, "n_neurons": 1000, "steps": 300, "batch": 64, "density": 0.02, "target_rate": 0.07,
    "threads": 2, "device": "taox_rram_40nm", "v_th": 5.0, "decay": 0.9, "seed": 0,
}
QUICK = dict(WORKLOAD, n_inputs=96, n_neurons=40, steps=20, batch=4, target_rate=0.1)
NUMPY_SAMPLES = {"full": 2, "quick": 4}  # the reference backend is timed on fewer samples (quick: the whole batch)


def _rasters(w: dict):
    from neurohw.data.binning import to_sparse

    rng = np.random.default_rng(w["seed"])
    return [to_sparse((rng.random((w["steps"], w["n_inputs"])) < w["density"]).astype(np.uint8)) for _ in range(w["batch"])]


def _config(w: dict, scale: float, backend: str, noise: bool):
    from neurohw.reservoir.lsm import LSMConfig

    return LSMConfig(n_inputs=w["n_inputs"], n_neurons=w["n_neurons"], v_th=w["v_th"], decay=w["decay"], scale=scale,
                     backend=backend, noise=noise, seed=w["seed"], threads=w["threads"])  # fmt: skip


def calibrate(w: dict) -> float:
    """The input scale (weight per uS) that gives ``target_rate`` on the workload, noise off."""
    from neurohw.reservoir.lsm import LSMConfig, LSMEncoder

    cfg = LSMConfig(n_inputs=w["n_inputs"], n_neurons=w["n_neurons"], v_th=w["v_th"], decay=w["decay"],
                    target_rate=w["target_rate"], backend="cpu", noise=False, seed=w["seed"], threads=w["threads"])  # fmt: skip
    return LSMEncoder(cfg, w["device"]).calibrate(_rasters(w)[:8])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _time_neurohw(w, scale, backend, noise, quick):
    from neurohw.devices.model import load_device
    from neurohw.reservoir.lsm import LSMEncoder

    no_adc = backend.endswith("-noadc")
    backend = backend.removesuffix("-noadc")
    device = load_device(w["device"], {"adc": {"bits": None}} if no_adc else None)
    enc = LSMEncoder(_config(w, scale, backend, noise), device)
    rasters = _rasters(w)
    if backend == "numpy":
        rasters = rasters[: NUMPY_SAMPLES["quick" if quick else "full"]]
    enc.encode(rasters[:2], batch_size=len(rasters), progress=False)  # warm-up: JIT cache, kernels
    t0 = time.perf_counter()
    feats = enc.encode(rasters, batch_size=len(rasters), progress=False)
    dt = time.perf_counter() - t0
    syn = enc.synapses()
    return len(rasters) / dt, float(feats["rate"].mean()), {"weights": str(syn.w_in.dtype), "adc": syn.adc is not None}


def _torch_weights(w, scale):
    import torch

    from neurohw.reservoir.lsm import LSMEncoder

    syn = LSMEncoder(_config(w, scale, "numpy", False), w["device"]).synapses()
    unit = syn.unit_value
    w_in = torch.tensor(syn.w_in.astype(np.float64) * unit, dtype=torch.float32)
    w_rec = torch.tensor(syn.w_rec.astype(np.float64) * unit, dtype=torch.float32)
    x = torch.tensor(np.stack([r.to_dense() for r in _rasters(w)]), dtype=torch.float32)  # (B, T, C)
    return w_in, w_rec, x, syn.noise_relative


def _time_torch(w, scale, noise):
    import torch

    torch.set_num_threads(w["threads"])
    w_in, w_rec, x, sigma = _torch_weights(w, scale)
    w_in2, w_rec2 = w_in.square(), w_rec.square()
    gen = torch.Generator().manual_seed(w["seed"])

    def run():
        B, T, _ = x.shape
        mem = torch.zeros(B, w_rec.shape[0])
        s = torch.zeros_like(mem)
        total = torch.zeros_like(mem)
        with torch.no_grad():
            for t in range(T):
                cur = x[:, t] @ w_in + s @ w_rec
                if noise:
                    var = x[:, t] @ w_in2 + s @ w_rec2
                    cur = cur + sigma * var.sqrt() * torch.randn(cur.shape, generator=gen)
                mem = mem * w["decay"] * (1 - s) + cur
                s = (mem > w["v_th"]).float()
                total += s
        return total / T

    run()
    t0 = time.perf_counter()
    rate = run()
    return x.shape[0] / (time.perf_counter() - t0), float(rate.mean()), {}


def _time_snntorch(w, scale):
    import snntorch as snn
    import torch

    torch.set_num_threads(w["threads"])
    w_in, w_rec, x, _ = _torch_weights(w, scale)
    n = w_rec.shape[0]
    fc = torch.nn.Linear(w_in.shape[0], n, bias=False)
    lif = snn.RLeaky(beta=w["decay"], threshold=w["v_th"], linear_features=n, all_to_all=True, reset_mechanism="zero")
    with torch.no_grad():
        fc.weight.copy_(w_in.T)
        lif.recurrent.weight.copy_(w_rec.T)
        lif.recurrent.bias.zero_()

    def run():
        B, T, _ = x.shape
        with torch.no_grad():
            spk, mem = lif.init_rleaky()
            total = torch.zeros(B, n)
            for t in range(T):
                spk, mem = lif(fc(x[:, t]), spk, mem)
                total += spk
        return total / T

    run()
    t0 = time.perf_counter()
    rate = run()
    return x.shape[0] / (time.perf_counter() - t0), float(rate.mean()), {}


def measure(name: str, noise: bool, w: dict, scale: float, quick: bool) -> dict:
    """Time one contender; returns a result row."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(w["threads"]))
    if name == "snntorch":
        sps, rate, extra = _time_snntorch(w, scale)
    elif name == "torch-dense":
        sps, rate, extra = _time_torch(w, scale, noise)
    else:
        sps, rate, extra = _time_neurohw(w, scale, name.removeprefix("neurohw-"), noise, quick)
    return {"name": name, "samples_per_s": round(sps, 2), "peak_rss_mb": round(_peak_rss_mb(), 1), "noise": noise, "firing_rate": round(rate, 4), **extra}


def contenders() -> list[tuple[str, bool]]:
    from neurohw.reservoir.backends import available_backends

    out = [("snntorch", False), ("torch-dense", False), ("torch-dense", True)]
    for b in available_backends():
        out += [(f"neurohw-{b}", False), (f"neurohw-{b}", True)]
        if b != "numpy":  # the same macro without its per-tile ADC: one noisy read per column
            out += [(f"neurohw-{b}-noadc", False), (f"neurohw-{b}-noadc", True)]
    return out


def not_measured() -> list[dict]:
    """The backends that cannot run here, with the reason (the GPU row until a GPU runs it)."""
    from neurohw.reservoir.backends import BACKENDS, available_backends, why_unavailable

    here = set(available_backends())
    return [{"name": f"neurohw-{name}", "reason": why_unavailable(name)} for name in BACKENDS if name not in here]


def run(quick: bool = False, isolate: bool | None = None) -> dict:
    """The whole benchmark; ``isolate`` (default: not quick) runs each contender in its own
    process so that ``peak_rss_mb`` is its own."""
    w = dict(QUICK if quick else WORKLOAD)
    isolate = (not quick) if isolate is None else isolate
    scale = calibrate(w)
    results = []
    for name, noise in contenders():
        if isolate:
            cmd = [sys.executable, __file__, "--worker", name, str(int(noise)), repr(scale), str(int(quick))]
            env = dict(os.environ, NUMBA_NUM_THREADS=str(w["threads"]), OMP_NUM_THREADS=str(w["threads"]))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"benchmark worker {name} failed:\n{proc.stderr[-2000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            results.append(measure(name, noise, w, scale, quick))
    base = next((r["samples_per_s"] for r in results if r["name"] == "snntorch"), None)
    for r in results:
        r["ratio_to_snntorch"] = round(r["samples_per_s"] / base, 2) if base else None
    workload = dict(w, scale_per_us=scale, quick=quick, numpy_samples=NUMPY_SAMPLES["quick" if quick else "full"])
    return {"workload": workload, "results": results, "not_measured": not_measured()}


def format_table(report: dict) -> str:
    w = report["workload"]
    lines = [f"reservoir: {w['n_inputs']} inputs, {w['n_neurons']} neurons, {w['steps']} steps, batch {w['batch']}, "
             f"{w['density']:.0%} input density, target {w['target_rate']:.0%} firing, {w['threads']} threads, device {w['device']}",
             f"{'name':<16}{'noise':<7}{'samples/s':>11}{'x snntorch':>12}{'peak MB':>10}{'rate':>8}"]  # fmt: skip
    for r in report["results"]:
        ratio = "" if r["ratio_to_snntorch"] is None else f"{r['ratio_to_snntorch']:.2f}"
        lines.append(
            f"{r['name']:<16}{'on' if r['noise'] else 'off':<7}{r['samples_per_s']:>11.1f}{ratio:>12}"
            f"{r['peak_rss_mb']:>10.0f}{r['firing_rate']:>8.3f}"
        )
    for m in report.get("not_measured", []):
        lines.append(f"{m['name']}: not measured here ({m['reason']}); benchmarks/gpu_check.sh measures it on a machine with an NVIDIA GPU")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="reservoir throughput against snntorch and torch")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--worker", nargs=4, metavar=("NAME", "NOISE", "SCALE", "QUICK"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        name, noise, scale, quick = a.worker
        w = dict(QUICK if int(quick) else WORKLOAD)
        print(json.dumps(measure(name, bool(int(noise)), w, float(scale), bool(int(quick)))))
        return 0
    report = run(quick=a.quick)
    print(json.dumps(report) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
