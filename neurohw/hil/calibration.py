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
   reads reach the ADC's end codes are left out. An ADC gain error between tiles is written only
   when the per-tile gains differ beyond their own standard errors (:func:`gain_spread`: a
   chi-square test, p < 0.001); a chip without one gets none.
3. Stuck cells: PROGRAM every cell to 25 % and then to 75 % of the programming window and READ
   after each; a cell that did not move by a quarter of the window is stuck (on above the
   middle, off below). Only cells FORM formed can be written: an unformed cell that sits high
   without moving is stuck on, one that sits low counts as unformed (stuck off or not, the link
   cannot tell), so ``p_on`` is a share of all cells and ``p_off`` of the formed (writable)
   ones. Their share is ``stuck.p_on`` / ``p_off``, their conductances
   ``g_on_us`` / ``g_off_us``; the programming reply's converged share and pulses are recorded.
4. Drift, when the chip's clock can advance (TIME): READ at ages 10 t0 and 1000 t0 after the
   last PROGRAM; per free cell ``nu = ln(G(10 t0) / G(1000 t0)) / ln(100)`` (the power law of
   :mod:`neurohw.devices.drift`); ``drift.nu_mean``, ``nu_std``; drift off when all are 0.

Written to DIR (atomically): ``device.yaml`` (a :class:`~neurohw.devices.model.DeviceModel`
built from the measurements and validated, then dumped: each measured value cites chip id, date
and counts in its comment; values not measurable over the link come from the chip's INFO facts
and say so; nothing else is written, so the model's defaults apply to the rest),
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
import yaml

import neurohw
from neurohw.devices.conductance_map import save_conductance_map
from neurohw.devices.model import DeviceModel, validate_device
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


def _gain(m: dict) -> tuple[float, float, int]:
    """Least-squares gain through the origin over unclipped columns with |mu| > 4 LSB, its
    standard error (from the residuals: the measurement's own uncertainty, quantisation and read
    noise included) and the number of columns used."""
    use = m["ok"] & (np.abs(m["mu"]) > 4 * m["lsb"])
    n = int(use.sum())
    if n < 2:
        return 1.0, math.inf, n
    mu, mean = m["mu"][use], m["mean"][use]
    g = float(np.sum(mean * mu) / np.sum(mu * mu))
    resid = mean - g * mu
    # heteroscedasticity-robust (HC1 sandwich) standard error: the residuals grow with |mu|
    # (read noise r^2 sum dG^2), which the plain formula would understate
    se2 = n / (n - 1) * np.sum(mu * mu * resid * resid) / np.sum(mu * mu) ** 2
    return g, float(math.sqrt(se2)), n


#: a gain spread between tiles is written only when chi^2 of the per-tile gains against their
#: common mean has a p-value below this (it is then not explained by their standard errors)
GAIN_SPREAD_P = 0.001


def gain_spread(gains: list[float], ses: list[float]) -> dict:
    """Is there an ADC gain error between tiles? chi^2 = sum_t (g_t - g_w)^2 / se_t^2 about the
    inverse-variance weighted mean g_w, on T - 1 degrees of freedom; p < GAIN_SPREAD_P: resolved,
    and the spread is the sample std of the gains less their mean squared standard error,
    sqrt(max(var(g) - mean(se^2), 0)). One tile, or an infinite standard error: not measurable."""
    from scipy.stats import chi2

    g, se = np.asarray(gains, float), np.asarray(ses, float)
    if len(g) < 2 or not np.all(np.isfinite(se)):
        return {"tiles": int(len(g)), "chi2": None, "dof": max(len(g) - 1, 0), "p": None, "resolved": False, "gain_error_std": None}
    w = 1.0 / np.maximum(se, 1e-12) ** 2
    gw = float(np.sum(w * g) / np.sum(w))
    x2 = float(np.sum(w * (g - gw) ** 2))
    p = float(chi2.sf(x2, len(g) - 1))
    resolved = p < GAIN_SPREAD_P
    std = float(math.sqrt(max(np.var(g, ddof=1) - np.mean(se**2), 0.0))) if resolved else None
    return {"tiles": int(len(g)), "chi2": x2, "dof": int(len(g) - 1), "p": p, "resolved": bool(resolved), "gain_error_std": std}


def calibrate(
    macro: Macro, out_dir: str | Path, *, tiles: list[int] | None = None, reads: int = 32, seed: int = 0, drift: bool = True,
    formed_kind: str = "gaussian", say: Callable[[str], None] | None = None,
) -> dict:  # fmt: skip
    """Measure ``macro`` and write the device model (see the module doc); returns the summary
    (what calibration.json holds). ``tiles``: which tiles (None: all); ``reads``: repeats per
    read-noise pattern (>= 4); ``formed_kind``: gaussian, lognormal or histogram."""
    say = say or (lambda text: None)
    _check_options(reads, formed_kind)
    out = Path(out_dir)
    info = macro.info()
    tiles = _tiles_of(info, tiles)
    facts = info.facts or {}
    rows, pairs = info.rows, info.pairs
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    chip = f"0x{info.chip_id:016x}"
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x524541]))
    macro.reset()
    maps, formed_chip, form_pulses = _form_tiles(macro, tiles, rows, pairs, seed, say)
    info = macro.info()  # per-tile LSBs are set after FORM on chips with per-tile gain
    noise, gains, gain_se, gain_used = _noise_and_gain(macro, info, tiles, maps, reads, rng, say)
    stuck = _stuck_cells(macro, info, tiles, rows, pairs, seed, formed_chip, say)
    drift_section = _drift(macro, info, facts, tiles, rows, pairs, formed_chip, stuck, drift, say)
    spread = gain_spread([gains[t] for t in tiles], [gain_se[t] for t in tiles]) if info.adc_bits else gain_spread([], [])
    summary = {
        "chip_id": chip, "chip_name": info.name, "link": macro.where, "date": date, "neurohw": neurohw.__version__,
        "tiles": tiles, "rows": rows, "cols": info.cols, "seed": int(seed),
        "forming": _forming_section(maps, formed_chip, stuck, tiles, info, form_pulses, formed_kind),
        "read_noise": _read_noise_section(noise, info, reads),
        "adc": {"bits": info.adc_bits, "lsb_us": info.lsb_us, "tile_lsb_us": {str(t): info.tile_lsb_us[t] for t in tiles},
                "gain": {str(t): gains[t] for t in tiles}, "gain_se": {str(t): gain_se[t] if math.isfinite(gain_se[t]) else None for t in tiles},
                "gain_columns": {str(t): gain_used[t] for t in tiles}, "gain_spread": spread,
                "gain_error_std": spread["gain_error_std"]},
        "stuck": _stuck_section(stuck, tiles, rows, pairs),
        "programming": stuck["programming"],
        "drift": drift_section,
    }  # fmt: skip
    say(f"writing {out}")
    _write(out, summary, maps, info, facts, formed_kind, tiles)
    return summary


def _check_options(reads: int, formed_kind: str) -> None:
    """``reads`` and ``formed_kind`` checked before anything is sent to the chip."""
    if reads < 4:
        raise HilError(f"--reads {reads}: need at least 4 repeated reads per pattern to measure read noise")
    if formed_kind not in ("gaussian", "lognormal", "histogram"):
        raise HilError(f"formed distribution kind {formed_kind!r}; use gaussian, lognormal or histogram")


def _tiles_of(info: ChipInfo, tiles: list[int] | None) -> list[int]:
    """The tiles to measure (None: all of the chip's), each checked against the chip."""
    tiles = list(range(info.tiles)) if tiles is None else [int(t) for t in tiles]
    bad = [t for t in tiles if not 0 <= t < info.tiles]
    if bad or not tiles:
        raise HilError(f"tiles {bad or tiles}: this chip has tiles 0..{info.tiles - 1}")
    return tiles


def _form_tiles(macro: Macro, tiles: list[int], rows: int, pairs: int, seed: int, say) -> tuple[dict, dict, int]:
    """Step 1: FORM every tile (seeded) and READ it; the formed maps, the chip's own formed
    flags (FORM's reply) and the forming pulses."""
    maps, formed_chip = {}, {}
    form_pulses = 0
    for t in tiles:
        say(f"tile {t}: FORM and READ")
        block = Block(t, 0, rows, 0, pairs)
        reply = macro.form(block, _tile_seed(seed, t))
        form_pulses += reply.pulses
        maps[t] = macro.read(block)
        formed_chip[t] = reply.formed
    return maps, formed_chip, form_pulses


def _noise_and_gain(macro: Macro, info: ChipInfo, tiles: list[int], maps: dict, reads: int, rng: np.random.Generator, say) -> tuple:
    """Step 2, the reads: per tile the repeated reads of the row sets (:func:`_noise_reads`) and
    the tile's analog gain, its standard error and the columns it used (1, inf, 0 without ADC)."""
    noise, gains, gain_se, gain_used = [], {}, {}, {}
    for t in tiles:
        say(f"tile {t}: read noise and ADC gain ({len(PATTERN_ROWS) * PATTERNS_PER_SIZE} row sets x {reads} reads)")
        g = maps[t]
        m = _noise_reads(macro, info, t, g[:, 0::2] - g[:, 1::2], reads, rng)
        gains[t], gain_se[t], gain_used[t] = _gain(m) if info.adc_bits else (1.0, math.inf, 0)
        m["gain"] = gains[t]
        noise.append(m)
    return noise, gains, gain_se, gain_used


def _read_noise_section(noise: list[dict], info: ChipInfo, reads: int) -> dict:
    """Step 2, the fit over all tiles: ``(var - lsb^2/12) / gain^2 = r^2 q + a^2 k``."""
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
    return {
        "relative": r_rel, "additive_us": a_add, "column_groups": n_groups, "reads_per_group": int(reads),
        "row_sets": [int(x) for x in PATTERN_ROWS], "sets_per_size": PATTERNS_PER_SIZE, "resolved": bool(noise_resolved),
        "median_noise_std_us": pred_sd, "lsb_us": lsb_max,
    }  # fmt: skip


def _stuck_cells(macro: Macro, info: ChipInfo, tiles: list[int], rows: int, pairs: int, seed: int, formed_chip: dict, say) -> dict:
    """Step 3: PROGRAM every cell to 25 % and 75 % of the window and READ after each. Per tile
    the stuck-on and stuck-off masks and the conductances after the second PROGRAM; the
    writable cells and the programming statistics of the free cells."""
    lo_w, hi_w = info.g_min_us, info.g_max_us
    t1, t2 = lo_w + 0.25 * (hi_w - lo_w), lo_w + 0.75 * (hi_w - lo_w)
    n_writable = 0
    stuck_on, stuck_off, prog_stats = {}, {}, {"cells": 0, "converged": 0, "pulses": 0, "max_pulses": 0, "max_error_us": 0.0}
    g_after: dict[int, np.ndarray] = {}
    for t in tiles:
        say(f"tile {t}: stuck cells (PROGRAM to {t1:g} and {t2:g} uS)")
        block = Block(t, 0, rows, 0, pairs)
        r1 = macro.program(block, np.full((rows, 2 * pairs), t1), _tile_seed(seed + 1, t))
        g1 = macro.read(block)
        r2 = macro.program(block, np.full((rows, 2 * pairs), t2), _tile_seed(seed + 2, t))
        g2 = macro.read(block)
        # only cells FORM formed can be written (an unformed cell reports 0 pulses and keeps its
        # value, so it does not move either). A cell that does not move and sits high is stuck on
        # (formed or not); one that sits low is stuck off only if it formed: an unformed one may
        # be stuck off or merely unformed (the link cannot tell), so it counts as unformed
        writable = np.asarray(formed_chip[t], bool)
        still = np.abs(g2 - g1) < 0.25 * (t2 - t1)
        mid = (t1 + t2) / 2
        stuck_on[t] = still & (g2 > mid)
        stuck_off[t] = still & (g2 <= mid) & writable
        free = ~still & writable
        n_writable += int(writable.sum())
        for r, gg, tt in ((r1, g1, t1), (r2, g2, t2)):
            conv = r.converged & free
            prog_stats["cells"] += int(free.sum())
            prog_stats["converged"] += int(conv.sum())
            prog_stats["pulses"] += int(r.pulses[free].sum())
            prog_stats["max_pulses"] = max(prog_stats["max_pulses"], int(r.pulses.max(initial=0)))
            if conv.any():
                prog_stats["max_error_us"] = max(prog_stats["max_error_us"], float(np.abs(gg[conv] - tt).max()))
        g_after[t] = g2
    programming = {**prog_stats, "converged_fraction": prog_stats["converged"] / max(prog_stats["cells"], 1),
                   "mean_pulses": prog_stats["pulses"] / max(prog_stats["cells"], 1), "targets_us": [t1, t2]}
    return {"on": stuck_on, "off": stuck_off, "g_after": g_after, "writable": n_writable, "programming": programming}


def _stuck_section(stuck: dict, tiles: list[int], rows: int, pairs: int) -> dict:
    """Step 3's summary: ``p_on`` of all cells (stuck on is seen on every cell), ``p_off`` of
    the writable ones; the mean conductance of each kind."""
    n_cells = len(tiles) * rows * 2 * pairs
    n_writable = stuck["writable"]
    n_on = int(sum(int(stuck["on"][t].sum()) for t in tiles))
    n_off = int(sum(int(stuck["off"][t].sum()) for t in tiles))
    g_on = float(np.mean(np.concatenate([stuck["g_after"][t][stuck["on"][t]] for t in tiles]))) if n_on else None
    g_off = float(np.mean(np.concatenate([stuck["g_after"][t][stuck["off"][t]] for t in tiles]))) if n_off else None
    return {"cells": n_cells, "writable_cells": n_writable, "on": n_on, "off": n_off, "p_on": n_on / n_cells, "p_off": n_off / max(n_writable, 1),
            "g_on_us": g_on, "g_off_us": g_off}  # fmt: skip


def _drift(macro: Macro, info: ChipInfo, facts: dict, tiles: list[int], rows: int, pairs: int, formed_chip: dict, stuck: dict, drift: bool, say) -> dict:
    """Step 4: READ at ages 10 t0 and 1000 t0 after the last PROGRAM (when asked and the chip's
    clock can advance); ``nu`` of every formed, free cell that reads above 0 at both ages."""
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
            use = np.asarray(formed_chip[t], bool) & ~(stuck["on"][t] | stuck["off"][t]) & (ga[t] > 0) & (gb > 0)
            nu_all.append(np.log(ga[t][use] / gb[use]) / math.log(100.0))
    nu = np.concatenate(nu_all) if nu_all else np.zeros(0)
    return {"measured": drift_measured, "t0_s": t0, "ages_s": [10 * t0, 1000 * t0] if drift_measured else [],
            "cells": int(nu.size), "nu_mean": float(nu.mean()) if nu.size else 0.0, "nu_std": float(nu.std()) if nu.size else 0.0}  # fmt: skip


def _forming_section(maps: dict, formed_chip: dict, stuck: dict, tiles: list[int], info: ChipInfo, form_pulses: int, formed_kind: str) -> dict:
    """Step 1's summary, on the free (not stuck) cells of the formed maps: the formed threshold,
    share, mean and std (and a histogram for ``formed_kind`` histogram), the unformed median."""
    free = {t: ~(stuck["on"][t] | stuck["off"][t]) for t in tiles}
    free_g = np.concatenate([maps[t][free[t]] for t in tiles])
    thr = formed_threshold(free_g, info.level_step_us)
    formed = free_g > thr
    n_free = int(free_g.size)
    n_formed = int(formed.sum())
    g_formed = free_g[formed]
    chip_formed = float(np.mean(np.concatenate([formed_chip[t][free[t]] for t in tiles])))
    section = {
        "threshold_us": thr if math.isfinite(thr) else None, "free_cells": n_free, "formed_cells": n_formed, "formed_fraction": n_formed / max(n_free, 1),
        "formed_fraction_reported_by_chip": chip_formed, "formed_mean_us": float(g_formed.mean()) if n_formed else 0.0,
        "formed_std_us": float(g_formed.std()) if n_formed else 0.0,
        "unformed_median_us": float(np.median(free_g[~formed])) if n_formed < n_free else 0.0, "pulses": int(form_pulses),
    }  # fmt: skip
    if formed_kind == "histogram" and n_formed:
        counts, edges = np.histogram(g_formed, bins=60)
        section["histogram"] = {"edges_us": [float(e) for e in edges], "counts": [int(c) for c in counts]}
    return section


def _write(out: Path, s: dict, maps: dict, info: ChipInfo, facts: dict, formed_kind: str, tiles: list[int]) -> None:
    model, notes = device_model(s, info, facts, formed_kind)  # validated before anything is written
    out.mkdir(parents=True, exist_ok=True)
    first = tiles[0]
    for t in tiles:
        save_conductance_map(out / f"conductance_map_tile{t}.h5", maps[t][:, 0::2], maps[t][:, 1::2])
    save_conductance_map(out / "conductance_map.h5", maps[first][:, 0::2], maps[first][:, 1::2])
    with atomic_path(out / "device.yaml", suffix=".yaml") as tmp:
        tmp.write_text(dump_device(model, notes, _header(s, info)))
    with atomic_path(out / "calibration.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(s, indent=2, sort_keys=True))


def _header(s: dict, info: ChipInfo) -> list[str]:
    chip = s["chip_id"]
    return [
        "Device model measured over the HIL link by `neurohw hil calibrate`.",
        f"  chip {chip} (it names itself {info.name or 'nothing'!r}), link {s['link']}, {s['date']}, neurohw {s['neurohw']}",
        f"  tiles {', '.join(str(t) for t in s['tiles'])} of {info.rows} x {info.cols} cells; measurements in calibration.json;",
        "  the formed conductance map of the first tile is conductance_map.h5 (Crossbar.from_conductance_map).",
        "  Only what was measured, read from INFO or stated in the chip's INFO facts is written; every other",
        "  value is the device model's default (docs/hil-protocol.md, Calibration).",
    ]


def _scalar(value) -> str:
    """One YAML value on one line (flow style for lists)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    return text.removesuffix("...").strip()


def dump_device(model: DeviceModel, notes: dict[str, str], header: list[str]) -> str:
    """The YAML of ``model``: the keys ``notes`` names (dotted paths), each with its note as a
    comment, in the model's field order; keys without a note are left to the model's defaults."""
    lines = [f"# {h}" for h in header]

    def walk(node: dict, path: str, indent: str) -> None:
        for key, value in node.items():
            dotted = f"{path}{key}"
            if isinstance(value, dict):
                if any(n.startswith(dotted + ".") for n in notes):
                    lines.append(f"{indent}{key}:" + (f"   # {notes[dotted]}" if dotted in notes else ""))
                    walk(value, dotted + ".", indent + "  ")
            elif dotted in notes:
                lines.append(f"{indent}{key}: {_scalar(value)}" + (f"   # {notes[dotted]}" if notes[dotted] else ""))

    walk(model.model_dump(mode="json"), "", "")
    return "\n".join(lines) + "\n"


def device_model(s: dict, info: ChipInfo, facts: dict, formed_kind: str) -> tuple[DeviceModel, dict[str, str]]:
    """The device model of a calibration summary (validated) and, per written key, its source:
    measured (with chip id, date and counts), from INFO, or from the chip's INFO facts."""
    chip = s["chip_id"]
    where = f"chip {chip}, {s['date']}"
    w = _ModelKeys(facts)
    _identity_keys(w, s, info)
    _forming_keys(w, s, info, formed_kind, where)
    _programming_keys(w, s, info)
    _read_noise_keys(w, s, where)
    _drift_keys(w, s, where)
    _stuck_keys(w, s, info, where)
    _adc_keys(w, s, info)
    _unmeasured_keys(w, info)
    try:
        model = validate_device(w.raw, f"the device model measured on chip {chip}")
    except DeviceError as exc:
        raise HilError(f"the measured device model does not validate ({exc})") from None
    return model, w.notes


class _ModelKeys:
    """The raw device mapping being written and, per dotted key, its note (its source)."""

    def __init__(self, facts: dict):
        self.fx = {k: v for k, v in facts.items() if isinstance(v, dict)}
        self.raw: dict = {}
        self.notes: dict[str, str] = {}

    def put(self, path: str, value, note: str = "") -> None:
        node = self.raw
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
        self.notes[path] = note

    def stated(self, path: str, default=None) -> None:
        """A value the link cannot measure: the chip's INFO facts' if it states one, else the default."""
        section, key = path.split(".")
        if key in self.fx.get(section, {}):
            self.put(path, self.fx[section][key], f"from the chip's INFO facts ({path}; not measured)")
        elif default is not None:
            self.put(path, default, "not measurable over the link and not in the chip's facts; neurohw's choice")


def _identity_keys(w: _ModelKeys, s: dict, info: ChipInfo) -> None:
    """Name, description, source and the array's geometry (from INFO)."""
    chip, date, link = s["chip_id"], s["date"], s["link"]
    w.put("name", f"chip_{chip[2:10]}")
    w.put("description", f"{info.name or chip} measured over {link} on {date}")
    w.put("source", f"neurohw hil calibrate, chip {chip}, {date}")
    w.put("array.rows", info.rows, "from INFO")
    w.put("array.cols", info.cols, "from INFO")
    w.stated("array.technology")


def _forming_keys(w: _ModelKeys, s: dict, info: ChipInfo, formed_kind: str, where: str) -> None:
    """Forming probability, the formed distribution, the unformed conductance, pulses; levels."""
    f, st = s["forming"], s["stuck"]
    cells = f"{f['free_cells']} free cells of {len(s['tiles'])} tile(s)"
    split = f"above {f['threshold_us']:.4g} uS" if f["threshold_us"] is not None else "one cluster"
    chip_says = f"the chip's FORM map says {f['formed_fraction_reported_by_chip']:.4f}"
    w.put("forming.probability", f["formed_fraction"], f"measured: {f['formed_cells']} formed of {cells} ({split}; {chip_says}), {where}")
    if formed_kind == "histogram" and "histogram" in f:
        w.put("forming.formed.kind", "histogram", f"measured: histogram of the formed cells' conductances, {where}")
        w.put("forming.formed.edges_us", f["histogram"]["edges_us"])
        w.put("forming.formed.counts", f["histogram"]["counts"])
    else:
        w.put("forming.formed.kind", formed_kind)
        mean = max(f["formed_mean_us"], 1e-9) if formed_kind == "lognormal" else f["formed_mean_us"]
        w.put("forming.formed.mean_us", mean, f"measured: mean of {f['formed_cells']} formed cells, {where}")
        w.put("forming.formed.std_us", f["formed_std_us"], "measured: std of the same cells")
    w.put("forming.unformed_us", f["unformed_median_us"], f"measured: median of the {f['free_cells'] - f['formed_cells']} unformed cells")
    w.stated("forming.g_min_us", 0.0)
    w.stated("forming.g_max_us", max(info.g_max_us, f["formed_mean_us"] + 10 * f["formed_std_us"], 1e-6))
    ppc = f["pulses"] / max(f["free_cells"] + st["on"] + st["off"], 1)
    w.put("forming.pulses_per_cell", max(int(round(ppc)), 1), f"measured: FORM reported {f['pulses']} pulses")
    if info.level_step_us > 0:
        w.put("levels.step_us", info.level_step_us, "from INFO (level_step_us)")


def _programming_keys(w: _ModelKeys, s: dict, info: ChipInfo) -> None:
    """Write-verify settings (the chip's facts, else from the measured convergence) and PROGRAM's window."""
    pr = s["programming"]
    prog = (f"measured on the free cells at {pr['targets_us'][0]:g} and {pr['targets_us'][1]:g} uS: {pr['converged_fraction']:.4f} converged, "
            f"{pr['mean_pulses']:.3f} pulses per cell, largest converged error {pr['max_error_us']:.4g} uS")  # fmt: skip
    w.stated("programming.write_verify", True)
    w.stated("programming.tolerance_us", max(pr["max_error_us"], 1e-6))
    w.stated("programming.pulse_std_us", w.raw["programming"]["tolerance_us"])
    w.stated("programming.max_pulses", max(pr["max_pulses"], 1))
    w.notes["programming"] = prog
    w.put("programming.g_min_us", info.g_min_us, "from INFO (PROGRAM's window)")
    w.put("programming.g_max_us", info.g_max_us, "from INFO (PROGRAM's window)")


def _read_noise_keys(w: _ModelKeys, s: dict, where: str) -> None:
    """The fitted read-noise model."""
    rn = s["read_noise"]
    unresolved = "" if rn["resolved"] else f" (noise below half an LSB of {rn['lsb_us']:.4g} uS: not resolved, an estimate)"
    w.put("read_noise.relative", rn["relative"],
          f"measured: {rn['column_groups']} column groups x {rn['reads_per_group']} reads of 1/16/64-row sets, {where}{unresolved}")
    w.put("read_noise.additive_us", rn["additive_us"], "measured: same fit (additive term per active row)")


def _drift_keys(w: _ModelKeys, s: dict, where: str) -> None:
    """The drift power law, when measured; off otherwise."""
    dr = s["drift"]
    if dr["measured"]:
        w.put("drift.enabled", dr["nu_mean"] > 1e-6, f"measured: {dr['cells']} cells READ at ages {dr['ages_s'][0]:g} s and {dr['ages_s'][1]:g} s, {where}")
        w.put("drift.t0_s", dr["t0_s"], "from the chip's INFO facts (drift.t0_s; not measured)")
        w.put("drift.nu_mean", max(dr["nu_mean"], 0.0), "measured: mean drift exponent")
        w.put("drift.nu_std", dr["nu_std"], "measured: std of the drift exponents")
    else:
        w.put("drift.enabled", False, "not measured (the chip cannot advance its clock)")


def _stuck_keys(w: _ModelKeys, s: dict, info: ChipInfo, where: str) -> None:
    """Stuck-on and stuck-off shares and conductances."""
    st = s["stuck"]
    w.put("stuck.p_on", st["p_on"], f"measured: {st['on']} of {st['cells']} cells did not move under PROGRAM and sit high (formed or not), {where}")
    w.put("stuck.p_off", st["p_off"], f"measured: {st['off']} of the {st['writable_cells']} formed (writable) cells did not move and sit low")
    if st["g_on_us"] is not None:
        w.put("stuck.g_on_us", max(st["g_on_us"], 0.0), "measured: mean of the stuck-on cells")
    else:
        w.stated("stuck.g_on_us", info.g_max_us)
    if st["g_off_us"] is not None:
        w.put("stuck.g_off_us", max(st["g_off_us"], 0.0), "measured: mean of the stuck-off cells")
    else:
        w.stated("stuck.g_off_us", 0.0)


def _adc_keys(w: _ModelKeys, s: dict, info: ChipInfo) -> None:
    """The ADC from INFO; a gain error between tiles only when resolved."""
    adc = s["adc"]
    if info.adc_bits:
        sp = adc["gain_spread"]
        gains = ", ".join(f"tile {t}: {v:.5f}" for t, v in adc["gain"].items())
        w.put("adc.bits", info.adc_bits, "from INFO")
        w.put("adc.range_us", info.lsb_us * 2 ** (info.adc_bits - 1), f"from INFO: LSB {info.lsb_us:g} uS x 2^(bits-1)")
        if sp["resolved"]:
            w.put("adc.gain", "per_tile" if info.per_tile_gain else "fixed", "from INFO")
            w.put("adc.gain_error_std", sp["gain_error_std"],
                  f"measured: per-tile analog gains ({gains}) from mean codes vs READ sums differ beyond their standard errors "
                  f"(chi2 {sp['chi2']:.4g} on {sp['dof']} dof, p {sp['p']:.2g}); spread less the standard errors")  # fmt: skip
        else:
            why = "one tile measured" if sp["chi2"] is None else f"chi2 {sp['chi2']:.4g} on {sp['dof']} dof, p {sp['p']:.2g} >= {GAIN_SPREAD_P}"
            w.put("adc.gain", "per_tile" if info.per_tile_gain else "fixed", f"from INFO; no gain error between tiles resolved ({gains}; {why}), none written")
    else:
        w.put("adc.bits", None, "from INFO: no ADC")


def _unmeasured_keys(w: _ModelKeys, info: ChipInfo) -> None:
    """Input encoding from INFO; IR drop, energy, timing and the digital baseline: the chip's facts or neurohw's choice."""
    w.put("input.bits", info.input_bits or None, "from INFO")
    w.stated("input.full_scale")
    w.put("input.bit_serial", bool(info.bit_serial or not info.input_bits), "from INFO")
    w.stated("ir_drop.enabled", False)
    w.stated("ir_drop.wire_resistance_ohm", 0.0)
    for path in ("energy.cell_read_j", "energy.active_row_j", "energy.adc_conversion_j", "energy.programming_pulse_j",
                 "timing.read_cycle_s", "timing.programming_pulse_s"):
        w.stated(path, 0.0)
    w.stated("energy.adc_conversion_bits")  # only where the facts give it (else the ADC energy does not scale with bits)
    w.stated("digital_baseline.mac_j", 4.6e-12)
    w.stated("digital_baseline.source", "M. Horowitz, ISSCC 2014: FP32 mult 3.7 pJ + add 0.9 pJ, 45 nm")
