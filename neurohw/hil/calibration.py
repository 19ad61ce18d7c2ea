"""Chip calibration: measure a macro over the link and write a device model of it.

``neurohw hil calibrate URL --out DIR`` runs :func:`calibrate`. Per measured tile:

1. FORM the whole tile (seeded) and READ it: the formed conductance map. Formed cells are those
   above the unformed cluster (:func:`formed_threshold`: Otsu's split, then just above the
   unformed cells; the chip's own formed map from FORM's reply is recorded beside it); forming probability = formed fraction of the free
   (not stuck) cells, formed distribution = mean and std of their conductances (or a histogram),
   unformed conductance = the median of the others.
2. Read noise and ADC gain from repeated reads: random sets of 1, 16 and 64 rows, each read
   ``reads`` times (fresh noise per read). Per column, the mean code times the tile's LSB
   against the expected sum ``mu = sum_i dG_i`` (dG from READ) gives the tile's analog gain
   (least squares through the origin); the variance of the codes, less the quantisation
   variance ``LSB^2 / 12`` and divided by gain^2, is fitted by weighted least squares to the
   read-noise model ``r^2 sum_i dG_i^2 + a^2 k`` (k rows; :mod:`neurohw.devices.read_noise`)
   over all columns, row sets and tiles: ``relative = r``, ``additive_us = a``. Columns whose
   reads reach the ADC's end codes are left out.
3. Stuck cells: PROGRAM every cell to 25 % and then to 75 % of the programming window and READ
   after each; a cell that did not move by a quarter of the window is stuck (on above the
   middle, off below). Their share is ``stuck.p_on`` / ``p_off``, their conductances
   ``g_on_us`` / ``g_off_us``; the programming reply's converged share and pulses are recorded.
4. Drift, when the chip's clock can advance (TIME): READ at ages 10 t0 and 1000 t0 after the
   last PROGRAM; per free cell ``nu = ln(G(10 t0) / G(1000 t0)) / ln(100)`` (the power law of
   :mod:`neurohw.devices.drift`); ``drift.nu_mean``, ``nu_std``; drift off when all are 0.

Written to DIR (atomically): ``device.yaml`` (validated by
:func:`neurohw.devices.model.load_device`; each measured value cites chip id, date and counts in
its comment; values not measurable over the link come from the chip's INFO facts and say so),
``conductance_map.h5`` (tile 0's formed map, readable by
:meth:`neurohw.crossbar.Crossbar.from_conductance_map`), ``conductance_map_tile<t>.h5`` per
tile, and ``calibration.json`` (every measurement, per tile).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

import neurohw
from neurohw.devices.conductance_map import save_conductance_map
from neurohw.errors import DeviceError
from neurohw.hil.errors import HilError
from neurohw.hil.macro import Macro
from neurohw.hil.messages import Block, ChipInfo
from neurohw.paths import atomic_path

#: rows per read-noise pattern, and patterns per size
PATTERN_ROWS = (1, 16, 64)
PATTERNS_PER_SIZE = 8


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold (maximum between-class variance) of a 1-D sample."""
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min(initial=0.0)), float(v.max(initial=0.0))
    if hi <= lo:
        return hi
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)
    w1 = w0[-1] - w0
    s0 = np.cumsum(counts * centers)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    i = int(np.argmax(between[:-1])) if len(between) > 1 else 0
    return float(edges[i + 1])


def formed_threshold(values: np.ndarray, step_us: float = 0.0) -> float:
    """The conductance above which a cell counts as formed.

    Otsu's threshold splits the unformed cluster from the formed distribution when the two are
    separate (between-class variance >= 80 % of the total; a single Gaussian gives 2/pi = 64 %);
    the threshold then sits just above the unformed cluster, at its median plus six robust
    standard deviations (1.4826 MAD) or two level steps, so that the formed distribution's lower
    tail is not cut. One cluster: every cell formed (-inf), or none when all cells read the same
    value (+inf).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or float(v.max()) == float(v.min()):
        return float("inf")
    thr = otsu_threshold(v)
    low, high = v[v <= thr], v[v > thr]
    total = v.var()
    between = low.size * high.size / v.size**2 * (high.mean() - low.mean()) ** 2 if low.size and high.size else 0.0
    if total <= 0 or between / total < 0.8:
        return float("-inf")
    med = float(np.median(low))
    mad = float(np.median(np.abs(low - med)))
    margin = max(6 * 1.4826 * mad, 2 * step_us, 1e-9 * max(abs(float(v.max())), 1.0))
    return min(med + margin, thr)


def fit_read_noise(var: np.ndarray, q: np.ndarray, k: np.ndarray, floor: float) -> tuple[float, float]:
    """``(r, a)`` of ``var = r^2 q + a^2 k`` by weighted least squares (weights 1/var_model^2,
    the variance of a sample variance being proportional to var^2), both >= 0; ``floor``: the
    smallest model variance used in the weights."""
    X = np.stack([q, k], axis=1).astype(np.float64)
    y = np.asarray(var, dtype=np.float64)
    w = np.ones_like(y)
    coef = np.zeros(2)
    for _ in range(3):
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
        if coef[1] < 0:  # no additive part: refit r alone
            coef = np.array([float(np.sum(w * q * y) / max(np.sum(w * q * q), 1e-300)), 0.0])
        if coef[0] < 0:
            coef = np.array([0.0, float(np.sum(w * k * y) / max(np.sum(w * k * k), 1e-300))])
        pred = np.maximum(X @ coef, floor)
        w = 1.0 / pred**2
    return float(math.sqrt(max(coef[0], 0.0))), float(math.sqrt(max(coef[1], 0.0)))


def _tile_seed(seed: int, tile: int) -> int:
    return int(np.random.SeedSequence([int(seed), 0x43414C, int(tile)]).generate_state(1, np.uint64)[0] >> 1)


def _noise_reads(macro: Macro, info: ChipInfo, tile: int, dg: np.ndarray, reads: int, rng: np.random.Generator) -> dict:
    """Repeated reads of random row sets on ``tile``: per (set, column) the mean and variance of
    the values in uS, the expected sum, sum of squares and row count, and a clipping flag."""
    rows, pairs = dg.shape
    sets = [rng.choice(rows, size=min(k, rows), replace=False) for k in PATTERN_ROWS for _ in range(PATTERNS_PER_SIZE)]
    planes = np.zeros((len(sets), rows), dtype=np.uint8)
    for i, s in enumerate(sets):
        planes[i, s] = 1
    batch = np.repeat(planes, reads, axis=0)[:, None, :]
    values = macro.mvm(Block(tile, 0, rows, 0, pairs), batch)[:, 0, :].reshape(len(sets), reads, pairs)
    lsb = info.tile_lsb_us[tile] if info.adc_bits else 1.0
    clipped = (np.abs(values) >= info.adc_max_code).any(axis=1) if info.adc_bits else np.zeros((len(sets), pairs), dtype=bool)
    v = values.astype(np.float64) * lsb
    mu = np.stack([dg[s].sum(axis=0) for s in sets])
    q = np.stack([np.square(dg[s]).sum(axis=0) for s in sets])
    k = np.array([len(s) for s in sets], dtype=np.float64)[:, None].repeat(pairs, axis=1)
    return {"mean": v.mean(axis=1), "var": v.var(axis=1, ddof=1), "mu": mu, "q": q, "k": k, "ok": ~clipped, "lsb": lsb}


def _gain(m: dict) -> tuple[float, int]:
    """Least-squares gain through the origin over unclipped columns with |mu| > 4 LSB."""
    use = m["ok"] & (np.abs(m["mu"]) > 4 * m["lsb"])
    if not use.any():
        return 1.0, 0
    mu, mean = m["mu"][use], m["mean"][use]
    return float(np.sum(mean * mu) / np.sum(mu * mu)), int(use.sum())


def _fmt(v: float) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if v == 0:
        return "0.0"
    text = f"{v:.6g}"
    mant, e, exp = text.partition("e")
    if "." not in mant:  # YAML 1.1 reads a float only with a dot: 2e-11 would be a string
        mant += ".0"
    return mant + e + exp


def calibrate(
    macro: Macro, out_dir: str | Path, *, tiles: list[int] | None = None, reads: int = 32, seed: int = 0, drift: bool = True,
    formed_kind: str = "gaussian", say: Callable[[str], None] | None = None,
) -> dict:  # fmt: skip
    """Measure ``macro`` and write the device model (see the module doc); returns the summary
    (what calibration.json holds). ``tiles``: which tiles (None: all); ``reads``: repeats per
    read-noise pattern (>= 4); ``formed_kind``: gaussian, lognormal or histogram."""
    say = say or (lambda text: None)
    if reads < 4:
        raise HilError(f"--reads {reads}: need at least 4 repeated reads per pattern to measure read noise")
    if formed_kind not in ("gaussian", "lognormal", "histogram"):
        raise HilError(f"formed distribution kind {formed_kind!r}; use gaussian, lognormal or histogram")
    out = Path(out_dir)
    info = macro.info()
    tiles = list(range(info.tiles)) if tiles is None else [int(t) for t in tiles]
    bad = [t for t in tiles if not 0 <= t < info.tiles]
    if bad or not tiles:
        raise HilError(f"tiles {bad or tiles}: this chip has tiles 0..{info.tiles - 1}")
    facts = info.facts or {}
    rows, pairs = info.rows, info.pairs
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    chip = f"0x{info.chip_id:016x}"
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x524541]))
    macro.reset()
    maps, formed_chip, noise, gains, gain_used = {}, {}, [], {}, {}
    form_pulses = 0
    for t in tiles:
        say(f"tile {t}: FORM and READ")
        block = Block(t, 0, rows, 0, pairs)
        reply = macro.form(block, _tile_seed(seed, t))
        form_pulses += reply.pulses
        maps[t] = macro.read(block)
        formed_chip[t] = reply.formed
    info = macro.info()  # per-tile LSBs are set after FORM on chips with per-tile gain
    for t in tiles:
        say(f"tile {t}: read noise and ADC gain ({len(PATTERN_ROWS) * PATTERNS_PER_SIZE} row sets x {reads} reads)")
        g = maps[t]
        m = _noise_reads(macro, info, t, g[:, 0::2] - g[:, 1::2], reads, rng)
        gains[t], gain_used[t] = _gain(m) if info.adc_bits else (1.0, 0)
        m["gain"] = gains[t]
        noise.append(m)
    # read noise over all tiles: (var - lsb^2/12) / gain^2 = r^2 q + a^2 k
    ys, qs, ks, floors = [], [], [], []
    for m in noise:
        ok = m["ok"]
        quant = m["lsb"] ** 2 / 12 if info.adc_bits else 0.0
        ys.append(((m["var"] - quant) / m["gain"] ** 2)[ok])
        qs.append(m["q"][ok])
        ks.append(m["k"][ok])
        floors.append(max(quant, 1e-12))
    y, q, k = np.concatenate(ys), np.concatenate(qs), np.concatenate(ks)
    r_rel, a_add = fit_read_noise(y, q, k, floor=max(floors))
    n_groups = int(len(y))
    lsb_max = max(m["lsb"] for m in noise)
    pred_sd = float(np.median(np.sqrt(np.maximum(r_rel**2 * q + a_add**2 * k, 0.0)))) if n_groups else 0.0
    noise_resolved = (not info.adc_bits) or pred_sd >= 0.5 * lsb_max

    # stuck cells: program to 25 % and 75 % of the window
    lo_w, hi_w = info.g_min_us, info.g_max_us
    t1, t2 = lo_w + 0.25 * (hi_w - lo_w), lo_w + 0.75 * (hi_w - lo_w)
    stuck_on, stuck_off, prog_stats = {}, {}, {"cells": 0, "converged": 0, "pulses": 0, "max_pulses": 0, "max_error_us": 0.0}
    g_after: dict[int, np.ndarray] = {}
    for t in tiles:
        say(f"tile {t}: stuck cells (PROGRAM to {t1:g} and {t2:g} uS)")
        block = Block(t, 0, rows, 0, pairs)
        r1 = macro.program(block, np.full((rows, 2 * pairs), t1), _tile_seed(seed + 1, t))
        g1 = macro.read(block)
        r2 = macro.program(block, np.full((rows, 2 * pairs), t2), _tile_seed(seed + 2, t))
        g2 = macro.read(block)
        # only formed cells can be written: a cell that did not form (FORM's map) does not move
        # either. A cell that does not move and sits high is stuck on (formed or not); one that
        # sits low is stuck off only if it formed (else it is an unformed cell)
        still = np.abs(g2 - g1) < 0.25 * (t2 - t1)
        mid = (t1 + t2) / 2
        stuck_on[t] = still & (g2 > mid)
        stuck_off[t] = still & (g2 <= mid) & formed_chip[t]
        free = ~still & formed_chip[t]
        for r, gg, tt in ((r1, g1, t1), (r2, g2, t2)):
            conv = r.converged & free
            prog_stats["cells"] += int(free.sum())
            prog_stats["converged"] += int(conv.sum())
            prog_stats["pulses"] += int(r.pulses[free].sum())
            prog_stats["max_pulses"] = max(prog_stats["max_pulses"], int(r.pulses.max(initial=0)))
            if conv.any():
                prog_stats["max_error_us"] = max(prog_stats["max_error_us"], float(np.abs(gg[conv] - tt).max()))
        g_after[t] = g2

    # drift from two ages after the last PROGRAM
    drift_facts = facts.get("drift", {}) if isinstance(facts.get("drift"), dict) else {}
    t0 = float(drift_facts.get("t0_s", 1.0) or 1.0)
    nu_all = []
    drift_measured = bool(drift and info.has_time)
    if drift_measured:
        say(f"drift: READ at ages {10 * t0:g} s and {1000 * t0:g} s")
        macro.time(10 * t0)
        ga = {t: macro.read(Block(t, 0, rows, 0, pairs)) for t in tiles}
        macro.time(990 * t0)
        for t in tiles:
            gb = macro.read(Block(t, 0, rows, 0, pairs))
            use = ~(stuck_on[t] | stuck_off[t]) & formed_chip[t] & (ga[t] > 0) & (gb > 0)
            nu_all.append(np.log(ga[t][use] / gb[use]) / math.log(100.0))
    nu = np.concatenate(nu_all) if nu_all else np.zeros(0)

    # forming statistics on the free cells of the formed maps
    free_g = np.concatenate([maps[t][~(stuck_on[t] | stuck_off[t])] for t in tiles])
    thr = formed_threshold(free_g, info.level_step_us)
    formed = free_g > thr
    n_free = int(free_g.size)
    n_formed = int(formed.sum())
    g_formed = free_g[formed]
    chip_formed = float(np.mean(np.concatenate([formed_chip[t][~(stuck_on[t] | stuck_off[t])] for t in tiles])))
    n_cells = len(tiles) * rows * 2 * pairs
    # stuck off is seen only among formed cells (an unformed cell sits low too): its fraction is of them
    n_formed_cells = max(1, int(sum(int(formed_chip[t].sum()) for t in tiles)))
    n_on = int(sum(int(stuck_on[t].sum()) for t in tiles))
    n_off = int(sum(int(stuck_off[t].sum()) for t in tiles))
    g_on = float(np.mean(np.concatenate([g_after[t][stuck_on[t]] for t in tiles]))) if n_on else None
    g_off = float(np.mean(np.concatenate([g_after[t][stuck_off[t]] for t in tiles]))) if n_off else None
    gain_list = [gains[t] for t in tiles]

    summary = {
        "chip_id": chip, "chip_name": info.name, "link": macro.where, "date": date, "neurohw": neurohw.__version__,
        "tiles": tiles, "rows": rows, "cols": info.cols, "seed": int(seed),
        "forming": {
            "threshold_us": thr if math.isfinite(thr) else None, "free_cells": n_free, "formed_cells": n_formed, "formed_fraction": n_formed / max(n_free, 1),
            "formed_fraction_reported_by_chip": chip_formed, "formed_mean_us": float(g_formed.mean()) if n_formed else 0.0,
            "formed_std_us": float(g_formed.std()) if n_formed else 0.0,
            "unformed_median_us": float(np.median(free_g[~formed])) if n_formed < n_free else 0.0, "pulses": int(form_pulses),
        },
        "read_noise": {
            "relative": r_rel, "additive_us": a_add, "column_groups": n_groups, "reads_per_group": int(reads),
            "row_sets": [int(x) for x in PATTERN_ROWS], "sets_per_size": PATTERNS_PER_SIZE, "resolved": bool(noise_resolved),
            "median_noise_std_us": pred_sd, "lsb_us": lsb_max,
        },
        "adc": {"bits": info.adc_bits, "lsb_us": info.lsb_us, "tile_lsb_us": {str(t): info.tile_lsb_us[t] for t in tiles},
                "gain": {str(t): gains[t] for t in tiles}, "gain_columns": {str(t): gain_used[t] for t in tiles},
                "gain_error_std": float(np.std(gain_list, ddof=1)) if len(gain_list) > 1 else 0.0},
        "stuck": {"cells": n_cells, "on": n_on, "off": n_off, "p_on": n_on / n_cells, "p_off": n_off / n_formed_cells, "g_on_us": g_on, "g_off_us": g_off},
        "programming": {**prog_stats, "converged_fraction": prog_stats["converged"] / max(prog_stats["cells"], 1),
                        "mean_pulses": prog_stats["pulses"] / max(prog_stats["cells"], 1), "targets_us": [t1, t2]},
        "drift": {"measured": drift_measured, "t0_s": t0, "ages_s": [10 * t0, 1000 * t0] if drift_measured else [],
                  "cells": int(nu.size), "nu_mean": float(nu.mean()) if nu.size else 0.0, "nu_std": float(nu.std()) if nu.size else 0.0},
    }  # fmt: skip
    if formed_kind == "histogram" and n_formed:
        counts, edges = np.histogram(g_formed, bins=60)
        summary["forming"]["histogram"] = {"edges_us": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    say(f"writing {out}")
    _write(out, summary, maps, info, facts, formed_kind, tiles)
    return summary


def _write(out: Path, s: dict, maps: dict, info: ChipInfo, facts: dict, formed_kind: str, tiles: list[int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    first = tiles[0]
    for t in tiles:
        save_conductance_map(out / f"conductance_map_tile{t}.h5", maps[t][:, 0::2], maps[t][:, 1::2])
    save_conductance_map(out / "conductance_map.h5", maps[first][:, 0::2], maps[first][:, 1::2])
    text = device_yaml(s, info, facts, formed_kind)
    final = out / "device.yaml"
    with atomic_path(final, suffix=".yaml") as tmp:
        tmp.write_text(text)
        from neurohw.devices.model import load_device

        try:
            load_device(tmp)
        except DeviceError as exc:
            raise HilError(f"the measured device model does not validate ({exc}); measurements are in {out / 'calibration.json'}") from None
    with atomic_path(out / "calibration.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(s, indent=2, sort_keys=True))


def device_yaml(s: dict, info: ChipInfo, facts: dict, formed_kind: str) -> str:
    """The device model YAML of a calibration summary, every value with its source."""
    f = s["forming"]
    rn = s["read_noise"]
    st = s["stuck"]
    pr = s["programming"]
    dr = s["drift"]
    adc = s["adc"]
    chip, date, link = s["chip_id"], s["date"], s["link"]
    ntiles = len(s["tiles"])
    cells = f"{f['free_cells']} free cells of {ntiles} tile(s)"
    where = f"chip {chip}, {date}"
    fx = {k: v for k, v in facts.items() if isinstance(v, dict)}

    def fact(section: str, key: str, default):
        if key in fx.get(section, {}):
            return fx[section][key], f"from the chip's INFO facts ({section}.{key}; not measured)"
        return default, "not measurable over the link and not in the chip's facts; neurohw default"

    L = [
        "# Device model measured over the HIL link by `neurohw hil calibrate`.",
        f"#   chip {chip} (it names itself {info.name or 'nothing'!r}), link {s['link']}, {date}, neurohw {s['neurohw']}",
        f"#   tiles {', '.join(str(t) for t in s['tiles'])} of {info.rows} x {info.cols} cells; measurements in calibration.json;",
        "#   the formed conductance map of the first tile is conductance_map.h5 (Crossbar.from_conductance_map).",
        f"name: chip_{chip[2:10]}",
        f"description: {json.dumps(f'{info.name or chip} measured over {link} on {date}')}",
        f"source: {json.dumps(f'neurohw hil calibrate, chip {chip}, {date}')}",
        "",
        "array:",
        f"  rows: {info.rows}                # from INFO",
        f"  cols: {info.cols}                # from INFO",
        f"  technology: {json.dumps(str(fx.get('array', {}).get('technology', '')))}   # from the chip's INFO facts",
        "",
        "forming:",
        f"  probability: {_fmt(f['formed_fraction'])}   # measured: {f['formed_cells']} formed of {cells} ({'above ' + format(f['threshold_us'], '.4g') + ' uS' if f['threshold_us'] is not None else 'one cluster'}; the chip's FORM map says {f['formed_fraction_reported_by_chip']:.4f}), {where}",
        "  formed:",
    ]
    if formed_kind == "histogram" and "histogram" in f:
        h = f["histogram"]
        L += [
            "    kind: histogram          # measured: histogram of the formed cells' conductances, " + where,
            "    edges_us: [" + ", ".join(_fmt(e) for e in h["edges_us"]) + "]",
            "    counts: [" + ", ".join(str(c) for c in h["counts"]) + "]",
        ]
    else:
        L += [
            f"    kind: {formed_kind}",
            f"    mean_us: {_fmt(max(f['formed_mean_us'], 1e-9) if formed_kind == 'lognormal' else f['formed_mean_us'])}   # measured: mean of {f['formed_cells']} formed cells, {where}",
            f"    std_us: {_fmt(f['formed_std_us'])}    # measured: std of the same cells",
        ]
    g_min, src_min = fact("forming", "g_min_us", 0.0)
    g_max, src_max = fact("forming", "g_max_us", max(info.g_max_us, f["formed_mean_us"] + 10 * f["formed_std_us"], 1e-6))
    ppc = f["pulses"] / max(f["free_cells"] + st["on"] + st["off"], 1)
    L += [
        f"  unformed_us: {_fmt(f['unformed_median_us'])}   # measured: median of the {f['free_cells'] - f['formed_cells']} unformed cells",
        f"  g_min_us: {_fmt(g_min)}   # {src_min}",
        f"  g_max_us: {_fmt(g_max)}   # {src_max}",
        f"  pulses_per_cell: {int(round(ppc))}   # measured: FORM reported {f['pulses']} pulses",
        "",
        "levels:",
        f"  step_us: {_fmt(info.level_step_us) if info.level_step_us > 0 else 'null'}   # from INFO (level_step_us)",
        "",
    ]
    wv, src = fact("programming", "write_verify", True)
    tol, src_tol = fact("programming", "tolerance_us", max(pr["max_error_us"], 1e-6))
    pstd, src_pstd = fact("programming", "pulse_std_us", tol)
    mp, src_mp = fact("programming", "max_pulses", max(pr["max_pulses"], 1))
    L += [
        f"# programming: measured on the free cells at {pr['targets_us'][0]:g} and {pr['targets_us'][1]:g} uS: {pr['converged_fraction']:.4f} converged, "
        f"{pr['mean_pulses']:.3f} pulses per cell, largest converged error {pr['max_error_us']:.4g} uS",
        "programming:",
        f"  write_verify: {_fmt(bool(wv))}   # {src}",
        f"  tolerance_us: {_fmt(tol)}   # {src_tol}",
        f"  pulse_std_us: {_fmt(pstd)}   # {src_pstd}",
        f"  max_pulses: {int(mp)}   # {src_mp}",
        f"  g_min_us: {_fmt(info.g_min_us)}   # from INFO (PROGRAM's window)",
        f"  g_max_us: {_fmt(info.g_max_us)}   # from INFO (PROGRAM's window)",
        "",
        "read_noise:",
        f"  relative: {_fmt(rn['relative'])}   # measured: {rn['column_groups']} column groups x {rn['reads_per_group']} reads of 1/16/64-row sets, {where}"
        + ("" if rn["resolved"] else f" (noise below half an LSB of {rn['lsb_us']:.4g} uS: not resolved, an estimate)"),
        f"  additive_us: {_fmt(rn['additive_us'])}   # measured: same fit (additive term per active row)",
        "",
        "drift:",
    ]
    if dr["measured"]:
        on = dr["nu_mean"] > 1e-6
        L += [
            f"  enabled: {_fmt(on)}   # measured: {dr['cells']} cells READ at ages {dr['ages_s'][0]:g} s and {dr['ages_s'][1]:g} s, {where}",
            f"  t0_s: {_fmt(dr['t0_s'])}   # from the chip's INFO facts (drift.t0_s; not measured)",
            f"  nu_mean: {_fmt(max(dr['nu_mean'], 0.0))}   # measured: mean drift exponent",
            f"  nu_std: {_fmt(dr['nu_std'])}   # measured: std of the drift exponents",
        ]
    else:
        L += ["  enabled: false   # not measured (the chip cannot advance its clock)"]
    g_on = st["g_on_us"] if st["g_on_us"] is not None else fact("stuck", "g_on_us", info.g_max_us)[0]
    g_off = st["g_off_us"] if st["g_off_us"] is not None else fact("stuck", "g_off_us", 0.0)[0]
    L += [
        "",
        "stuck:",
        f"  p_on: {_fmt(st['p_on'])}   # measured: {st['on']} of {st['cells']} cells did not move under PROGRAM and sit high, {where}",
        f"  p_off: {_fmt(st['p_off'])}   # measured: {st['off']} of {st['cells']} cells did not move and sit low",
        f"  g_on_us: {_fmt(max(g_on, 0.0))}   # " + ("measured: mean of the stuck-on cells" if st["g_on_us"] is not None else "none stuck on; from the facts or the window"),
        f"  g_off_us: {_fmt(max(g_off, 0.0))}   # " + ("measured: mean of the stuck-off cells" if st["g_off_us"] is not None else "none stuck off; from the facts or 0"),
        "",
        "adc:",
    ]
    if info.adc_bits:
        gains = ", ".join(f"tile {t}: {v:.5f}" for t, v in adc["gain"].items())
        L += [
            f"  bits: {info.adc_bits}   # from INFO",
            f"  range_us: {_fmt(info.lsb_us * 2 ** (info.adc_bits - 1))}   # from INFO: LSB {info.lsb_us:g} uS x 2^(bits-1)",
            f"  gain: {'per_tile' if info.per_tile_gain else 'fixed'}   # from INFO",
            f"  gain_error_std: {_fmt(adc['gain_error_std'])}   # measured: std of the per-tile analog gains ({gains}) from mean codes vs READ sums",
        ]
    else:
        L += ["  bits: null   # from INFO: no ADC"]
    in_bits = info.input_bits or None
    fs, src_fs = fact("input", "full_scale", None)
    L += [
        "",
        "input:",
        f"  bits: {in_bits if in_bits else 'null'}   # from INFO",
        f"  full_scale: {_fmt(fs) if fs is not None else 'null'}   # {src_fs}",
        f"  bit_serial: {_fmt(info.bit_serial or in_bits is None)}   # from INFO",
        "",
    ]
    ir_on, src_ir = fact("ir_drop", "enabled", False)
    ir_r, src_r = fact("ir_drop", "wire_resistance_ohm", 0.0)
    L += ["ir_drop:", f"  enabled: {_fmt(bool(ir_on))}   # {src_ir}", f"  wire_resistance_ohm: {_fmt(ir_r)}   # {src_r}", ""]
    for section, keys, defaults in (
        ("energy", ("cell_read_j", "active_row_j", "adc_conversion_j", "programming_pulse_j"), (0.0, 0.0, 0.0, 0.0)),
        ("timing", ("read_cycle_s", "programming_pulse_s"), (0.0, 0.0)),
    ):
        L.append(f"{section}:")
        for key, d in zip(keys, defaults):
            v, src_v = fact(section, key, d)
            L.append(f"  {key}: {_fmt(v)}   # {src_v}")
        L.append("")
    mac, src_mac = fact("digital_baseline", "mac_j", 4.6e-12)
    bsrc = fx.get("digital_baseline", {}).get("source", "M. Horowitz, ISSCC 2014: FP32 mult 3.7 pJ + add 0.9 pJ, 45 nm")
    L += ["digital_baseline:", f"  mac_j: {_fmt(mac)}   # {src_mac}", f"  source: {json.dumps(bsrc)}", ""]
    return "\n".join(L)
