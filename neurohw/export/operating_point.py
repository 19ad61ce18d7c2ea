"""The operating point of an exported reservoir: what a chip needs besides its conductances to
run as the run did, in numbers, and the input wiring (which sensor channel drives which word line).

Everything here is read from the objects the backends run on (:class:`~neurohw.reservoir.synapses.Synapses`
for the neuron constants, weight arithmetic, ADC and input encoding; :mod:`neurohw.data.binning`
for the time bins and the channel of each sensor event), so the record cannot drift from the
simulation. :func:`operating_point` returns a JSON-ready dict; :func:`write_hdf5_group` stores
it as one HDF5 group per modality (scalars and strings as attributes, arrays as datasets).

The step the reservoir runs (docs/internals.md, section Reservoir; noise off)::

    codes  = clip(rint(raster / v), 0, 2^bits - 1)                  input encoding (v = input_value)
    per input row tile k, per bit plane b with an active row:
        a  = sum_i ((code_i >> b) & 1) Wq[i, :]                      integer (or float64) partial sum
        c  = clip(rint(a * ua[k]), -max_code, max_code)              ADC code, ua = (unit / step_k) gain_k
        acc[k] += 2^b c
    per recurrent row tile k with a spike at t-1: the same with the spikes (one plane)
    I[t]   = sum_k (acc[k] step_k) * (v for input tiles, 1 for recurrent), tiles in that order
    mem[t] = decay mem[t-1] (1 - s[t-1]) + I[t]  (hard)  |  decay mem[t-1] - v_th s[t-1] + I[t]  (subtract)
    s[t]   = mem[t] > v_th
"""

from __future__ import annotations

import json

import numpy as np

from neurohw.data.binning import event_channels, n_channels

#: what the read voltage is in this model (the device model has no voltage parameter)
READ_VOLTAGE = ("not a parameter of the device model: partial sums are in conductance x input code (uS per code at unit "
                "input, times scale_per_us in weight units); one input code step is one read pulse at the macro's read "
                "voltage, whatever it is; the energy figures of the device model state the voltage they assume")


def time_step(binning) -> dict:
    """The time step of the binned data: fixed (``bin_width_us``) or per sample (``n_bins``)."""
    rule = {"n_bins": binning.n_bins, "bin_width_us": binning.bin_width_us, "max_bins": binning.max_bins}
    return {**rule, **_time_rule(binning)}


def _time_rule(binning) -> dict:
    if binning.bin_width_us is not None:
        rule = (f"b = floor((t - t_first) / {binning.bin_width_us}); "
                + (f"bins past {binning.max_bins} dropped, missing bins empty" if binning.max_bins else "T = b_last + 1"))
        return {"dt_us": float(binning.bin_width_us), "rule": rule}
    n = int(binning.n_bins)
    return {"dt_us": None,
            "rule": f"each sample's duration D = t_last - t_first (us) cut into {n} equal bins: dt = D / {n} per sample; "
                    f"b = floor((t - t_first) * {n} / D) in integers, t_last in bin {n - 1}; D = 0: every event in bin 0"}


def wiring(sensor_size, camera: bool, binning) -> dict:
    """Which word line of the input crossbar each sensor channel drives (-1: dropped by the
    crop or the polarity choice), as ``sensor_to_word_line[p, y, x]``, and per word line the
    sensor rectangle and polarity it pools (``x_lo..x_hi``, ``y_lo..y_hi`` inclusive; polarity
    -1: both polarities summed), computed by :func:`neurohw.data.binning.event_channels`."""
    W, H, P = (int(v) for v in sensor_size)
    p, y, x = np.meshgrid(np.arange(P), np.arange(H), np.arange(W), indexing="ij")
    fields = [("t", np.int64), ("x", np.int64), ("p", np.int64)] + ([("y", np.int64)] if camera else [])
    ev = np.zeros(p.size, dtype=fields)
    ev["t"], ev["x"], ev["p"] = 0, x.ravel(), p.ravel()
    if camera:
        ev["y"] = y.ravel()
    keep, channel = event_channels(ev, sensor_size, binning)
    table = np.full(p.size, -1, dtype=np.int32)
    table[keep] = channel
    table = table.reshape(P, H, W)
    n = n_channels(sensor_size, binning, camera)
    lo_x, hi_x = np.full(n, W, np.int32), np.full(n, -1, np.int32)
    lo_y, hi_y = np.full(n, H, np.int32), np.full(n, -1, np.int32)
    pol = np.full(n, -2, np.int32)
    for pp, yy, xx in zip(*np.nonzero(table >= 0)):
        c = table[pp, yy, xx]
        lo_x[c], hi_x[c] = min(lo_x[c], xx), max(hi_x[c], xx)
        lo_y[c], hi_y[c] = min(lo_y[c], yy), max(hi_y[c], yy)
        pol[c] = pp if pol[c] in (-2, pp) else -1
    return {
        "sensor_size": [W, H, P], "sensor": "camera" if camera else "cochlea",
        "rule": ("camera: centre crop, then x // f, y // f, word line = (p_index * H' + y') * W' + x'" if camera else
                 "cochlea: word line = p_index * C' + x // f (x = cochlea channel)")
                + f"; crop {binning.crop}, downsample {binning.downsample}, polarity {binning.polarity!r}",
        "sensor_to_word_line": table,
        "word_line_x_lo": lo_x, "word_line_x_hi": hi_x, "word_line_y_lo": lo_y, "word_line_y_hi": hi_y,
        "word_line_polarity": pol,
    }


def operating_point(encoder, modality: str, binning, sensor_size=None, camera: bool | None = None,
                    features=(), count_bins: int | None = None) -> dict:
    """The operating point of one modality's encoder (see the module doc); ``sensor_size`` and
    ``camera`` give the input wiring (omitted when None)."""
    syn = encoder.synapses()
    cfg = encoder.config
    xin, xrec = encoder.crossbars()
    tr, n_tin, n_trec = syn.tiles()
    reset = ("hard: mem[t] = decay*mem[t-1]*(1 - s[t-1]) + I[t] (to 0 the step after a spike)" if syn.reset == "hard" else
             "subtract: mem[t] = decay*mem[t-1] - v_th*s[t-1] + I[t] (v_th taken off the step after a spike)")
    out: dict = {
        "modality": modality,
        "time_step": time_step(binning),
        "raster": {"mode": binning.mode, "rule": "binary: 1 where a bin/channel saw an event; count: events, at most 255"},
        "neuron": {
            "v_th": float(syn.v_th), "decay": float(syn.decay), "reset": syn.reset, "reset_rule": reset,
            "fire": "s[t] = mem[t] > v_th (strict)", "initial": "mem = 0, s = 0 at the start of every sample",
            "leak_units": "decay is per time bin (dimensionless, the same in weight units and ADC codes)",
            "v_leak": 0.0, "v_reset": 0.0,
        },
        "weights": {
            "arithmetic": "integer" if syn.integer else "float64",
            "unit": float(syn.unit_value),
            "level_step_us": float(xin.device.levels.step_us) if syn.integer else None,
            "scale_per_us_input": float(xin.scale), "scale_per_us_recurrent": float(xrec.scale),
            "rule": ("Wq = rint(g_pos_us / level_step_us) - rint(g_neg_us / level_step_us), W = unit * Wq, "
                     "unit = scale_per_us * level_step_us (both crossbars share it)" if syn.integer else
                     "W = scale_per_us * (g_pos_us - g_neg_us), float64"),
        },
        "input": {
            "bits": syn.input_bits, "full_scale": syn.input_full_scale, "bit_serial": bool(syn.bit_serial),
            "input_value": float(syn.input_value),
            "code_rule": ("code = clip(rint(x / input_value), 0, 2^bits - 1)" if syn.input_bits is not None else
                          "the raster value is the analog amplitude"),
            "planes": ("bit plane b = (code >> b) & 1, read separately, coefficient input_value * 2^b; a plane with no "
                       "active row in a tile is not read" if syn.bit_serial else "one amplitude plane (code), coefficient input_value"),
            "read_voltage": READ_VOLTAGE,
        },
        "tile_rows": int(tr),
        "features": list(features), "count_bins": count_bins,
        "read_noise": {"relative": float(syn.noise_relative), "additive_weight_units": float(syn.noise_additive),
                       "on_in_run": bool(cfg.noise)},
    }
    if syn.adc is not None:
        step, ua, _, _ = syn.read_tables()
        a = syn.adc
        gain = np.concatenate([np.ones(n_tin) if a.gain_in is None else np.asarray(a.gain_in, np.float64),
                               np.ones(n_trec) if a.gain_rec is None else np.asarray(a.gain_rec, np.float64)])
        for name, sl, scale in (("input", slice(0, n_tin), xin.scale), ("recurrent", slice(n_tin, n_tin + n_trec), xrec.scale)):
            out[f"adc_{name}"] = {
                "bits": int(xin.device.adc.bits), "max_code": int(syn.adc.max_code),
                "step": step[sl], "step_us": step[sl] / scale, "gain": gain[sl], "codes_per_unit": ua[sl],
                "v_th_codes": float(syn.v_th) / step[sl],
                "rule": "code = clip(rint(a * codes_per_unit), -max_code, max_code), codes_per_unit = (unit / step) * gain; "
                        "out = code * step (weight units); one entry per row tile",
            }
    else:
        out["adc_input"] = out["adc_recurrent"] = None
    if sensor_size is not None:
        out["wiring"] = wiring(sensor_size, bool(camera), binning)
    return out


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def to_json(points: list[dict]) -> dict:
    """The operating points as one JSON-ready document."""
    return {"format": "neurohw-operating-point", "format_version": 1, "modalities": _jsonable(points)}


def write_hdf5_group(group, point: dict) -> None:
    """``point`` into an HDF5 group: sub-dicts as subgroups, arrays as datasets, lists as JSON
    strings, the rest as attributes (None as the string ``"none"``)."""
    for key, value in point.items():
        if isinstance(value, dict):
            write_hdf5_group(group.create_group(key), value)
        elif isinstance(value, np.ndarray):
            group.create_dataset(key, data=value)
        elif value is None:
            group.attrs[key] = "none"
        elif isinstance(value, (list, tuple)):
            group.attrs[key] = json.dumps(_jsonable(list(value)))
        else:
            group.attrs[key] = value
