"""Conductance maps of a whole chip written out: the chip's tiles with a run's crossbars on them
(HDF5, one CSV per tile) and each crossbar's programming sheet, for the programming tools and
calibrations that read them. The layout, the placement and the reader are
:mod:`neurohw.devices.chip_map` (:func:`~neurohw.devices.chip_map.place`,
:func:`~neurohw.devices.chip_map.read_chip_map`): what these writers write, it reads back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurohw import __version__
from neurohw.devices.chip_map import CSV_COLUMNS, ChipMap, Placement
from neurohw.devices.model import DeviceModel
from neurohw.export.operating_point import write_hdf5_group
from neurohw.paths import atomic_path

FORMAT = "neurohw-conductance-map"
#: bump when the layout of the files changes
FORMAT_VERSION = 2
#: the programming sheet's columns after :data:`CSV_COLUMNS` (format_version 2)
PROGRAM_COLUMNS = ("target_pos_us", "target_neg_us", "tolerance_us", "pulses_pos", "pulses_neg", "converged_pos", "converged_neg")
#: what a chip does with the cells no crossbar uses
UNUSED_CELLS = ("left unformed: never pulsed (no forming, no SET/RESET); a pristine cell conducts ~0 (forming.unformed_us) "
                "and is on no weight's bit-line pair")
MAPPING = ("crossbar cell (i, j) = input i, output j; tile = first_tile + (i // rows) * col_tiles + j // pairs, "
           "word line = i % rows, pair = j % pairs (pairs = cols / 2); pair p: G+ on bit line 2p, G- on bit line 2p + 1; "
           "a crossbar's tiles are numbered row tile first; crossbars in order: each modality's input then recurrent "
           "crossbar, in the config's data order")


@dataclass(frozen=True)
class ProgrammingSheet:
    """How to program one crossbar's cells (index 0: the G+ cell, 1: the G- cell of each pair,
    each array ``(2, n_in, n_out)``): the write-verify ``target_us``, the ``programmed_us`` value
    the simulation reached, the verify ``tolerance_us``, the simulated ``pulses`` (-1: not
    simulated) and ``converged`` (1, 0, -1 unknown); ``source`` and ``target_meaning`` say
    where the target comes from."""

    source: str
    target_meaning: str
    target_us: np.ndarray
    programmed_us: np.ndarray
    tolerance_us: np.ndarray
    pulses: np.ndarray
    converged: np.ndarray


def programming_sheet(xb, device: DeviceModel) -> ProgrammingSheet:
    """The programming sheet of a crossbar: write-verify programmed weights (``Crossbar.from_weights``:
    targets from the weights at the programming scale, pulses and convergence simulated),
    sampled forming (target = the formed sample, one forming pulse per cell) or given cells (a
    measured map or a NIR file's conductances: target = the given value, nothing simulated)."""
    prog = device.programming
    programmed = np.stack([np.asarray(xb.g_pos, np.float64), np.asarray(xb.g_neg, np.float64)])
    tol = np.full(programmed.shape, float(prog.tolerance_us))
    unknown = np.full(programmed.shape, -1, dtype=np.int32)
    if getattr(xb, "targets", None) is not None and xb.pulses is not None:
        return ProgrammingSheet(
            "write-verify", "what the weights ask for at the programming scale: g_min + max(+-W, 0) / s (uS), s = "
            f"{float(xb.target_scale)!r} weight per uS (the crossbar's scale_per_us may differ: target_rate or rec_scale "
            f"rescale the programmed conductances), before clipping to the window [{prog.g_min_us}, {prog.g_max_us}] uS and snapping to levels; verified "
            f"|g - target| <= tolerance_us, at most {prog.max_pulses} pulses",
            np.asarray(xb.targets, np.float64), programmed, tol, np.asarray(xb.pulses, np.int32),
            np.asarray(xb.converged, np.int8))
    if getattr(xb, "formed", None) is not None:
        pulses = np.full(programmed.shape, int(device.forming.pulses_per_cell), dtype=np.int32)
        return ProgrammingSheet(
            "sampled forming", "the formed sample: the conductance stochastic forming gave this cell in the simulation "
            "(programmed = target); a chip reproducing the run programs it by write-verify to this value; pulses = the "
            "simulated forming pulses", programmed.copy(), programmed, tol, pulses, np.ones(programmed.shape, np.int8))
    return ProgrammingSheet(
        "given", "the conductance given to the run (a measured conductance map or a NIR file's conductances); no "
        "programming was simulated (pulses -1, converged -1)", programmed.copy(), programmed, tol, unknown,
        unknown.astype(np.int8))



# ----------------------------------------------------------------------------- building


def chip_of(records: list[tuple[Placement, object]], device: DeviceModel) -> ChipMap:
    """The chip holding ``(placement, crossbar)`` pairs (unused cells NaN)."""
    rows, cols = device.array.rows, device.array.cols
    n_tiles = max((p.first_tile + p.n_tiles for p, _ in records), default=0)
    g = np.full((n_tiles, rows, cols), np.nan)
    stuck = np.zeros((n_tiles, rows, cols), dtype=np.uint8)
    formed = np.full((n_tiles, rows, cols), -1, dtype=np.int8)
    names = {}
    for p, xb in records:
        tile, row, col = p.cells(rows, cols // 2)
        for k, (gk, off) in enumerate(((xb.g_pos, 0), (xb.g_neg, 1))):
            g[tile, row, 2 * col + off] = gk
            stuck[tile, row, 2 * col + off] = xb.stuck_code[k]
            if xb.formed is not None:
                formed[tile, row, 2 * col + off] = xb.formed[k]
        names[p.name] = {"n_in": p.n_in, "n_out": p.n_out, "first_tile": p.first_tile}
    return ChipMap(g, stuck, formed, "<chip>", "", names)


# ----------------------------------------------------------------------------- writing


def _header(device: DeviceModel, meta: dict, csv: bool = False) -> dict:
    layout = ("row = word line, col = differential pair index (G+ on bit line 2 col, G- on 2 col + 1); "
              "W = scale_per_us (g_pos_us - g_neg_us)" if csv else
              "conductance_us[tile, row, col]: row = word line, col = bit line; pair j of a tile: "
              "G+ on bit line 2j, G- on 2j+1; W = scale_per_us (G+ - G-)")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "producer": f"neurohw {__version__}",
        "units": "uS",
        "device": device.name,
        "array_rows": int(device.array.rows),
        "array_cols": int(device.array.cols),
        "layout": layout,
        "mapping": MAPPING,
        "unused_cells": UNUSED_CELLS,
        **meta,
    }


def write_hdf5(path: str | Path, records: list[tuple[Placement, object]], device: DeviceModel, meta: dict,
               operating_points: list[dict] | None = None) -> Path:
    """One versioned HDF5 file: the whole chip (``conductance_us``, ``stuck_code``, ``formed``,
    ``used``) and a group per crossbar (``g_pos_us``, ``g_neg_us``, ``tile``, ``row``, ``col``,
    ``formed``, ``stuck_code``; attributes ``scale_per_us``, placement, seed; its programming
    sheet in ``programming/``, :func:`programming_sheet`), device model as JSON, units as
    attributes; ``operating_points`` (:mod:`neurohw.export.operating_point`) under
    ``operating_point/<modality>``. ``records``: ``(placement, crossbar)``. Written atomically."""
    import h5py  # heavy: imported where a map file is written

    path = Path(path)
    chip = chip_of(records, device)
    used = ~np.isnan(chip.g_us)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        for k, v in _header(device, meta).items():
            f.attrs[k] = v
        f.attrs["device_model"] = json.dumps(device.model_dump(mode="json"), sort_keys=True)
        ds = f.create_dataset("conductance_us", data=np.where(used, chip.g_us, 0.0), compression="gzip")
        ds.attrs["units"] = "uS"
        ds.attrs["meaning"] = ("programmed conductance per cell: the simulated value after programming or forming, the one "
                               "the run computed with (0 where no crossbar cell is placed, see 'used'); write-verify targets: "
                               "crossbars/<modality>/<part>/programming/target_us")
        f.create_dataset("used", data=used, compression="gzip")
        f.create_dataset("stuck_code", data=chip.stuck, compression="gzip").attrs["meaning"] = "0 free, 1 stuck on, 2 stuck off"
        f.create_dataset("formed", data=chip.formed, compression="gzip").attrs["meaning"] = "1 formed, 0 not, -1 unknown"
        rows, cols = device.array.rows, device.array.cols
        for p, xb in records:
            grp = f.create_group(f"crossbars/{p.name}")
            tile, row, col = p.cells(rows, cols // 2)
            grp.attrs.update({"n_in": p.n_in, "n_out": p.n_out, "first_tile": p.first_tile, "row_tiles": p.row_tiles,
                              "col_tiles": p.col_tiles, "scale_per_us": float(xb.scale), "crossbar_seed": int(xb.seed),
                              "weight_equation": "W[i, j] = scale_per_us * (g_pos_us[i, j] - g_neg_us[i, j])"})
            for name, data, units in (("g_pos_us", xb.g_pos, "uS"), ("g_neg_us", xb.g_neg, "uS"), ("tile", tile, ""),
                                      ("row", row, "word line"), ("col", col, "pair (G+ bit line 2 col, G- 2 col + 1)"),
                                      ("stuck_code", xb.stuck_code, "0 free, 1 stuck on, 2 stuck off")):
                grp.create_dataset(name, data=np.asarray(data)).attrs["units"] = units
            if xb.formed is not None:
                grp.create_dataset("formed", data=np.asarray(xb.formed, dtype=bool))
            _write_sheet(grp.create_group("programming"), programming_sheet(xb, device), device)
        if operating_points:
            for point in operating_points:
                write_hdf5_group(f.create_group(f"operating_point/{point['modality']}"), point)
    return path


def _write_sheet(grp, sheet: ProgrammingSheet, device: DeviceModel) -> None:
    prog = device.programming
    grp.attrs.update({"source": sheet.source, "target_meaning": sheet.target_meaning, "unused_cells": UNUSED_CELLS,
                      "write_verify": bool(prog.write_verify), "max_pulses": int(prog.max_pulses),
                      "pulse_std_us": float(prog.pulse_std_us), "window_us": [float(prog.g_min_us), float(prog.g_max_us)],
                      "index": "[0] the G+ cell, [1] the G- cell of pair (i, j)"})
    for name, data, units in (("target_us", sheet.target_us, "uS"), ("programmed_us", sheet.programmed_us, "uS"),
                              ("tolerance_us", sheet.tolerance_us, "uS, verify window |g - target|"),
                              ("pulses", sheet.pulses, "simulated pulses, -1 not simulated"),
                              ("converged", sheet.converged, "1 within tolerance, 0 not, -1 unknown")):
        grp.create_dataset(name, data=data, compression="gzip").attrs["units"] = units


def write_csv_tiles(folder: str | Path, records: list[tuple[Placement, object]], device: DeviceModel, meta: dict) -> list[Path]:
    """One CSV per used tile, ``tile_<id>.csv`` in ``folder`` (which must exist): a header
    comment (format, device, layout and mapping, unused cells, crossbar, scale, programming
    source and target meaning, units), then ``tile,row,col,g_pos_us,g_neg_us,formed_pos,
    formed_neg,stuck_pos,stuck_neg`` and the programming sheet (:data:`PROGRAM_COLUMNS`), one
    row per differential pair in use (formed: 1 / 0, -1 unknown; ``col`` is the pair index).
    Conductances in ``%.17g``: read back bit for bit."""
    folder = Path(folder)
    rows, cols = device.array.rows, device.array.cols
    head = _header(device, meta, csv=True)
    written = []
    for p, xb in records:
        tile, row, col = p.cells(rows, cols // 2)
        formed = np.full((2, p.n_in, p.n_out), -1, dtype=np.int8) if xb.formed is None else np.asarray(xb.formed, np.int8)
        sheet = programming_sheet(xb, device)
        for t in range(p.first_tile, p.first_tile + p.n_tiles):
            sel = tile == t
            lines = [f"# {k}: {v}" for k, v in head.items()]
            lines += [f"# crossbar: {p.name} ({p.n_in} x {p.n_out}), tile {t - p.first_tile + 1} of {p.n_tiles}",
                      f"# scale_per_us: {float(xb.scale)!r} (W = scale_per_us * (g_pos_us - g_neg_us))",
                      f"# programming: {sheet.source}; target_*_us = {sheet.target_meaning}",
                      "# g_*_us: the programmed (simulated) value the run computed with; pulses_*: simulated pulses "
                      "(-1 not simulated); converged_*: 1 within tolerance_us, 0 not, -1 unknown",
                      ",".join(CSV_COLUMNS + PROGRAM_COLUMNS)]
            cells = zip(row[sel], col[sel], xb.g_pos[sel], xb.g_neg[sel], formed[0][sel], formed[1][sel],
                        xb.stuck_code[0][sel], xb.stuck_code[1][sel], sheet.target_us[0][sel], sheet.target_us[1][sel],
                        sheet.tolerance_us[0][sel], sheet.pulses[0][sel], sheet.pulses[1][sel],
                        sheet.converged[0][sel], sheet.converged[1][sel])
            lines += [f"{t},{int(r)},{int(c)},{float(gp)!r},{float(gn)!r},{int(fp)},{int(fn)},{int(sp)},{int(sn)},"
                      f"{float(tp)!r},{float(tn)!r},{float(tol)!r},{int(pp)},{int(pn)},{int(cp)},{int(cn)}"
                      for r, c, gp, gn, fp, fn, sp, sn, tp, tn, tol, pp, pn, cp, cn in cells]
            out = folder / f"tile_{t:04d}.csv"
            out.write_text("\n".join(lines) + "\n")
            written.append(out)
    return written
