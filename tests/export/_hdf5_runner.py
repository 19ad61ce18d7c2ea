"""A chip's view of an exported run: the reservoir rebuilt from ``neurohw export --format
conductance-hdf5`` alone and run on raw sensor events, with numpy and h5py only.

Nothing of neurohw is imported here (the test runs this file in a subprocess whose path has no
neurohw, and checks that it never got imported): every number comes from the HDF5 file's
crossbars (``g_pos_us``, ``g_neg_us``, ``scale_per_us``) and its ``operating_point/<modality>``
groups (neuron, weight arithmetic, ADC, input encoding, time bins, input wiring), read as
docs/export.md describes them. The head runs from the exported ONNX file with onnxruntime.

Command line: ``python _hdf5_runner.py FILE.h5 EVENTS.npz OUT.npz [ONNX ...]``: EVENTS.npz holds,
per modality ``m`` and sample ``k``, the arrays ``m/k/t``, ``m/k/x``, ``m/k/p`` (and ``m/k/y``
for cameras); OUT.npz gets ``m/k/spikes`` and the features ``m/features``, and ``<onnx
name>/output`` per ONNX file given.
"""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np


def _attr(group, key):
    v = group.attrs[key]
    if isinstance(v, bytes):
        v = v.decode()
    return None if isinstance(v, str) and v == "none" else v


def load(path: str) -> dict:
    """Per modality: weights, neuron constants, ADC, input encoding, time rule and wiring."""
    out = {}
    with h5py.File(path, "r") as f:
        for m in f["operating_point"]:
            op = f["operating_point"][m]
            xin, xrec = f["crossbars"][m]["input"], f["crossbars"][m]["recurrent"]
            wt = op["weights"]
            integer = _attr(wt, "arithmetic") == "integer"
            if integer:
                step = float(_attr(wt, "level_step_us"))
                w_in = (np.rint(xin["g_pos_us"][()] / step) - np.rint(xin["g_neg_us"][()] / step)).astype(np.int64)
                w_rec = (np.rint(xrec["g_pos_us"][()] / step) - np.rint(xrec["g_neg_us"][()] / step)).astype(np.int64)
                unit = float(_attr(wt, "unit"))
            else:
                w_in = float(xin.attrs["scale_per_us"]) * (xin["g_pos_us"][()] - xin["g_neg_us"][()])
                w_rec = float(xrec.attrs["scale_per_us"]) * (xrec["g_pos_us"][()] - xrec["g_neg_us"][()])
                unit = 1.0
            neuron, inp, ts, wiring = op["neuron"], op["input"], op["time_step"], op["wiring"]
            adc = None
            if "adc_input" in op:
                a_in, a_rec = op["adc_input"], op["adc_recurrent"]
                adc = {"max_code": float(_attr(a_in, "max_code")),
                       "step": np.concatenate([a_in["step"][()], a_rec["step"][()]]),
                       "gain": np.concatenate([a_in["gain"][()], a_rec["gain"][()]])}
            bits = _attr(inp, "bits")
            out[m] = {
                "w_in": w_in, "w_rec": w_rec, "integer": integer, "unit": unit, "adc": adc,
                "tile_rows": int(_attr(op, "tile_rows")),
                "v_th": float(_attr(neuron, "v_th")), "decay": float(_attr(neuron, "decay")), "reset": _attr(neuron, "reset"),
                "bits": None if bits is None else int(bits), "bit_serial": bool(_attr(inp, "bit_serial")),
                "input_value": float(_attr(inp, "input_value")),
                "n_bins": _attr(ts, "n_bins"), "bin_width_us": _attr(ts, "bin_width_us"), "max_bins": _attr(ts, "max_bins"),
                "mode": _attr(op["raster"], "mode"),
                "table": wiring["sensor_to_word_line"][()], "camera": _attr(wiring, "sensor") == "camera",
                "features": json.loads(_attr(op, "features")), "count_bins": int(_attr(op, "count_bins")),
            }
    return out


def raster(model: dict, ev: dict) -> np.ndarray:
    """The ``(T, word lines)`` raster of one sample's events: wiring table, then time bins."""
    t = np.asarray(ev["t"], np.int64)
    y = np.asarray(ev["y"], np.int64) if model["camera"] else np.zeros(len(t), np.int64)
    p = np.asarray(ev["p"], np.int64)
    P = model["table"].shape[0]
    line = model["table"][np.where(P == 1, 0, p), y, np.asarray(ev["x"], np.int64)]
    n_lines = model["w_in"].shape[0]
    if model["n_bins"] is not None:
        T = int(model["n_bins"])
        span = int(t.max() - t.min()) if len(t) else 0
        b = np.zeros(len(t), np.int64) if span == 0 else np.minimum((t - t.min()) * T // span, T - 1)
    else:
        w = int(model["bin_width_us"])
        b = (t - t.min()) // w if len(t) else np.zeros(0, np.int64)
        T = int(b.max()) + 1 if len(t) else 0
        if model["max_bins"] is not None:
            T = int(model["max_bins"])
            b = np.where(b < T, b, -1)
    ok = (line >= 0) & (b >= 0)
    counts = np.bincount(b[ok] * n_lines + line[ok], minlength=T * n_lines).reshape(T, n_lines)
    return (counts > 0).astype(np.int64) if model["mode"] == "binary" else np.minimum(counts, 255)


def run(model: dict, r: np.ndarray) -> dict:
    """The reservoir on one raster, noise off: spikes (T, n), rate, counts (K, n), membrane."""
    w_in, w_rec, tr = model["w_in"], model["w_rec"], model["tile_rows"]
    n_in, n = w_in.shape
    v = model["input_value"]
    if model["bits"] is None:
        codes = r
    else:
        codes = np.clip(np.rint(r / v), 0, 2 ** model["bits"] - 1).astype(np.int64)
    n_planes = max(1, int(codes.max(initial=0)).bit_length()) if model["bits"] is not None and model["bit_serial"] else 1
    serial = model["bits"] is not None and model["bit_serial"]
    coefs = [v * 2.0**b for b in range(n_planes)] if serial else [v]
    dtype = np.int64 if model["integer"] else np.float64
    adc = model["adc"]
    n_tin = -(-n_in // tr)
    if adc is not None:
        step = adc["step"]
        ua = (model["unit"] / step) * adc["gain"]
    T = r.shape[0]
    K = model["count_bins"]
    mem, s = np.zeros(n), np.zeros(n, bool)
    spikes = np.zeros((T, n), bool)
    counts = np.zeros((K, n), np.int32)
    for t in range(T):
        idx = np.flatnonzero(codes[t])
        code = codes[t, idx]
        planes = [(code >> b) & 1 for b in range(n_planes)] if serial else [code]
        rec = np.flatnonzero(s)
        current = np.zeros(n)
        if adc is None:  # one merged read: a = f(a_rec) + sum_b c_b f(a_b), times unit
            a = (np.ones(len(rec), dtype) @ w_rec[rec].astype(dtype)).astype(np.float64)
            for c, pl in zip(coefs, planes):
                a = a + c * (pl.astype(dtype) @ w_in[idx].astype(dtype)).astype(np.float64)
            if len(rec) or any(np.any(pl) for pl in planes):
                current = current + a * model["unit"]
        else:
            acc = {}
            for k in range(n_tin):
                sel = (idx // tr) == k
                for b, pl in enumerate(planes):
                    if np.any(pl[sel] != 0):
                        a = pl[sel].astype(dtype) @ w_in[idx[sel]].astype(dtype)
                        c = np.clip(np.rint(np.asarray(a, np.float64) * ua[k]), -adc["max_code"], adc["max_code"])
                        acc[k] = acc.get(k, 0.0) + (2.0**b) * c
            for k in range(-(-n // tr)):
                sel = (rec // tr) == k
                if np.any(sel):
                    a = np.ones(int(sel.sum()), dtype) @ w_rec[rec[sel]].astype(dtype)
                    c = np.clip(np.rint(np.asarray(a, np.float64) * ua[n_tin + k]), -adc["max_code"], adc["max_code"])
                    acc[n_tin + k] = acc.get(n_tin + k, 0.0) + c
            for k, c in acc.items():
                current = current + (c * step[k]) * (v if k < n_tin else 1.0)
        leak = mem * model["decay"]
        leak = np.where(s, 0.0, leak) if model["reset"] == "hard" else np.where(s, leak - model["v_th"], leak)
        mem = leak + current
        s = mem > model["v_th"]
        spikes[t] = s
        counts[(t * K) // T] += s
    rate = (spikes.sum(axis=0).astype(np.int64) / max(T, 1)).astype(np.float32)
    return {"spikes": spikes, "rate": rate, "counts": counts, "membrane": mem.astype(np.float32)}


def features(model: dict, res: dict) -> np.ndarray:
    """The head's input: the model's features side by side (counts flattened bin-major)."""
    return np.concatenate([np.asarray(res[f], np.float32).reshape(-1) for f in model["features"]])


def main(argv: list[str]) -> int:
    path, events, out_path, onnx_files = argv[0], np.load(argv[1]), argv[2], argv[3:]
    models = load(path)
    out = {}
    for m, model in models.items():
        keys = sorted({int(k.split("/")[1]) for k in events.files if k.startswith(m + "/")})
        feats = []
        for k in keys:
            ev = {name: events[f"{m}/{k}/{name}"] for name in ("t", "x", "y", "p") if f"{m}/{k}/{name}" in events.files}
            res = run(model, raster(model, ev))
            out[f"{m}/{k}/spikes"] = res["spikes"]
            feats.append(features(model, res))
        out[f"{m}/features"] = np.stack(feats)
    for f in onnx_files:
        import onnxruntime as ort

        sess = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
        meta = sess.get_modelmeta().custom_metadata_map
        x = out[f"{meta['modality']}/features"]
        out[f"{f.rsplit('/', 1)[-1]}/output"] = sess.run(None, {"features": x})[0]
        out[f"{f.rsplit('/', 1)[-1]}/features_named"] = np.array(json.loads(meta["features"]))
    out["neurohw_imported"] = np.array("neurohw" in sys.modules)
    np.savez(out_path, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
