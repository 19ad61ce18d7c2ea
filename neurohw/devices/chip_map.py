"""A whole chip's conductance map: the tiles of the device's array, where a run's crossbars sit on
them (:func:`place`), and the files that calibrations and ``neurohw export`` write, read back
(:func:`read_chip_map`). The writers are in :mod:`neurohw.export.chip_map`.

A chip is ``n_tiles`` arrays of the device (``array.rows`` word lines x ``array.cols`` bit
lines). A crossbar of ``n_in`` inputs x ``n_out`` outputs takes ``ceil(n_in / rows)`` row tiles
x ``ceil(n_out / (cols // 2))`` column tiles of its own, numbered row tile first (the device's
tiling, :class:`neurohw.crossbar.Crossbar`); differential pair ``j`` of a tile lies on bit lines
``2j`` (G+) and ``2j + 1`` (G-). The crossbars of an experiment are placed in order, each
modality's input crossbar then its recurrent one, in the order of ``data`` (:func:`place`), so
a chip map measured by a calibration (tiles only) and a map written by ``neurohw export``
(tiles plus per-crossbar records) are read the same way.

Files (:func:`read_chip_map`):
- HDF5 (``.h5``/``.hdf5``): dataset ``conductance_us`` of shape ``(n_tiles, rows, cols)`` or
  ``(rows, cols)`` (one tile; also the only 2-D dataset of a file), attribute ``units`` ``uS``
  or ``S``; files written by :func:`neurohw.export.chip_map.write_hdf5` add ``stuck_code`` and
  ``formed`` per cell and a group per crossbar (``crossbars/<modality>/<input|recurrent>``).
- CSV: one row per differential pair, header ``tile,row,col,g_pos_us,g_neg_us,...`` (the files
  of :func:`neurohw.export.chip_map.write_csv_tiles`; a folder of them is one chip), or a plain
  matrix of numbers (one tile, the format of :mod:`neurohw.devices.conductance_map`).
- A folder of ``conductance_map_tile<t>.h5`` (one tile each; what ``neurohw hil calibrate``
  writes): tile ``t`` of the chip; tiles not measured are missing.
- NPY: an array of shape ``(n_tiles, rows, cols)`` or ``(rows, cols)``.
Cells a file does not give are missing; a crossbar placed on a missing cell, a map with more
rows or columns than the array, or a negative or non-finite conductance is a one-line
:class:`~neurohw.errors.DeviceError`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurohw.devices.conductance_map import read_conductance_map
from neurohw.devices.model import DeviceModel
from neurohw.errors import DeviceError
from neurohw.storage import file_sha256

#: a tile CSV's columns (the programming sheet's follow them in neurohw's export)
CSV_COLUMNS = ("tile", "row", "col", "g_pos_us", "g_neg_us", "formed_pos", "formed_neg", "stuck_pos", "stuck_neg")


@dataclass(frozen=True)
class Placement:
    """Where crossbar ``name`` (``n_in`` x ``n_out``) sits: tiles ``first_tile`` ..
    ``first_tile + row_tiles * col_tiles - 1``, row tile major."""

    name: str
    n_in: int
    n_out: int
    first_tile: int
    row_tiles: int
    col_tiles: int

    @classmethod
    def at(cls, name: str, n_in: int, n_out: int, first_tile: int, device: DeviceModel) -> Placement:
        """Crossbar ``name`` from tile ``first_tile`` on, on as many tiles as ``device``'s
        arrays need: ``ceil(n_in / rows)`` row tiles by ``ceil(n_out / (cols / 2))`` column tiles."""
        rows, pairs = device.array.rows, device.array.cols // 2
        return cls(name, int(n_in), int(n_out), int(first_tile), -(-int(n_in) // rows), -(-int(n_out) // pairs))

    @property
    def n_tiles(self) -> int:
        return self.row_tiles * self.col_tiles

    def cells(self, rows: int, pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(tile, row, col)`` of every pair (n_in, n_out): ``col`` is the pair's index in its
        tile (G+ on bit line ``2 col``, G- on ``2 col + 1``)."""
        i = np.arange(self.n_in)[:, None]
        j = np.arange(self.n_out)[None, :]
        tile = self.first_tile + (i // rows) * self.col_tiles + (j // pairs)
        return tile.astype(np.int32), np.broadcast_to(i % rows, tile.shape).astype(np.int32), np.broadcast_to(j % pairs, tile.shape).astype(np.int32)


def place(crossbars: list[tuple[str, int, int]], device: DeviceModel) -> list[Placement]:
    """The placement of ``(name, n_in, n_out)`` crossbars, in order, each on tiles of its own."""
    out, first = [], 0
    for name, n_in, n_out in crossbars:
        p = Placement.at(name, n_in, n_out, first, device)
        out.append(p)
        first += p.n_tiles
    return out


def reservoir_crossbars(modality: str, n_inputs: int, n_neurons: int) -> list[tuple[str, int, int]]:
    """A modality's reservoir crossbars as :func:`place` takes them, in the order they are
    placed: ``<modality>/input`` (n_inputs x n_neurons), then ``<modality>/recurrent``."""
    return [(f"{modality}/input", int(n_inputs), int(n_neurons)), (f"{modality}/recurrent", int(n_neurons), int(n_neurons))]


@dataclass
class CrossbarCells:
    """One crossbar's cells as a chip holds them: conductances (uS), stuck codes
    (:mod:`neurohw.devices.stuck`), forming (None when unknown)."""

    g_pos: np.ndarray
    g_neg: np.ndarray
    stuck_code: np.ndarray  # (2, n_in, n_out) uint8
    formed: np.ndarray | None  # (2, n_in, n_out) bool


@dataclass
class ChipMap:
    """A chip's conductances ``g_us`` ``(n_tiles, rows, cols)`` (NaN: not given), stuck codes
    and forming per cell (``formed`` -1: unknown), the crossbars a file names, and the sha256
    of the file(s) read."""

    g_us: np.ndarray
    stuck: np.ndarray
    formed: np.ndarray
    source: str
    sha256: str
    crossbars: dict[str, dict]

    @property
    def n_tiles(self) -> int:
        return int(self.g_us.shape[0])

    def cells(self, placement: Placement) -> CrossbarCells:
        """The cells of a placed crossbar (a one-line error when the chip lacks them)."""
        rows, cols = self.g_us.shape[1:]
        if placement.first_tile + placement.n_tiles > self.n_tiles:
            raise DeviceError(f"{self.source}: the map has {self.n_tiles} tile(s) but crossbar {placement.name} "
                              f"({placement.n_in} x {placement.n_out}) needs tiles {placement.first_tile}.."
                              f"{placement.first_tile + placement.n_tiles - 1}; give a map of the whole chip")
        known = self.crossbars.get(placement.name)
        if known is not None and (int(known["n_in"]), int(known["n_out"]), int(known["first_tile"])) != (
                placement.n_in, placement.n_out, placement.first_tile):
            raise DeviceError(f"{self.source}: crossbar {placement.name} is {known['n_in']} x {known['n_out']} at tile "
                              f"{known['first_tile']} in the map, but this experiment needs {placement.n_in} x "
                              f"{placement.n_out} at tile {placement.first_tile}; use the map of this configuration")
        tile, row, col = placement.cells(rows, cols // 2)
        g_pos, g_neg = self.g_us[tile, row, 2 * col], self.g_us[tile, row, 2 * col + 1]
        missing = np.isnan(g_pos) | np.isnan(g_neg)
        if missing.any():
            i, j = np.argwhere(missing)[0]
            raise DeviceError(f"{self.source}: crossbar {placement.name} cell ({i}, {j}) = tile {tile[i, j]} row {row[i, j]} "
                              f"pair {col[i, j]} is not in the map ({int(missing.sum())} cells missing)")
        stuck = np.stack([self.stuck[tile, row, 2 * col], self.stuck[tile, row, 2 * col + 1]])
        formed = np.stack([self.formed[tile, row, 2 * col], self.formed[tile, row, 2 * col + 1]])
        return CrossbarCells(np.ascontiguousarray(g_pos), np.ascontiguousarray(g_neg), np.ascontiguousarray(stuck),
                             None if np.any(formed < 0) else formed.astype(bool))


def _calibration_tiles(folder: Path) -> dict[int, Path]:
    """The per-tile maps ``conductance_map_tile<t>.h5`` that ``neurohw hil calibrate`` writes."""
    out = {}
    for f in folder.glob("conductance_map_tile*.h5"):
        m = re.fullmatch(r"conductance_map_tile(\d+)\.h5", f.name)
        if m:
            out[int(m.group(1))] = f
    return out


def map_sha256(path: str | Path) -> str:
    """The sha256 that identifies a map: of a file's bytes (:func:`neurohw.storage.file_sha256`),
    or of a folder's map files, each file's name then its bytes, in one digest (the calibration
    tiles in tile order, else the CSV files sorted by name)."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    tiles = _calibration_tiles(path)
    h = hashlib.sha256()
    for p in [tiles[t] for t in sorted(tiles)] if tiles else sorted(path.glob("*.csv")):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _as_tiles(a: np.ndarray, device: DeviceModel, source: str) -> np.ndarray:
    """A 2-D (one tile) or 3-D array as ``(n_tiles, rows, cols)``, NaN outside it; every value
    it holds must be a conductance (finite, >= 0)."""
    rows, cols = device.array.rows, device.array.cols
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise DeviceError(f"{source}: conductance map has non-finite values; allowed finite values >= 0 uS")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] < 1 or not (1 <= a.shape[1] <= rows and 1 <= a.shape[2] <= cols):
        raise DeviceError(f"{source}: conductance map shape {a.shape} does not fit device '{device.name}' (array.rows = {rows}, "
                          f"array.cols = {cols}): give (rows, cols) for one tile or (tiles, rows, cols), at most {rows} x {cols}")
    out = np.full((a.shape[0], rows, cols), np.nan)
    out[:, : a.shape[1], : a.shape[2]] = a
    return out


def _check_values(g: np.ndarray, source: str) -> None:
    given = g[~np.isnan(g)]
    if np.any(np.isinf(given)):
        raise DeviceError(f"{source}: conductance map has non-finite values; allowed finite values >= 0 uS")
    if given.size and given.min() < 0:
        raise DeviceError(f"{source}: conductance map value {float(given.min())} uS < 0; allowed range [0, inf) uS")


def _read_tile_csvs(files: list[Path], device: DeviceModel, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = device.array.rows, device.array.cols
    entries = []
    for path in files:
        header = None
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = [s.strip() for s in text.split(",")]
            if header is None:
                header = fields
                if header[:5] != list(CSV_COLUMNS[:5]):
                    raise DeviceError(f"{path}:{lineno}: header {','.join(header[:5])!r}; a tile CSV starts with "
                                      f"{','.join(CSV_COLUMNS[:5])}")
                continue
            if len(fields) != len(header):
                raise DeviceError(f"{path}:{lineno}: {len(fields)} fields, the header has {len(header)}")
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise DeviceError(f"{path}:{lineno}: not a number; give tile,row,col as integers and conductances in uS") from None
            rec = dict(zip(header, values))
            entries.append((path, lineno, rec))
        if header is None:
            raise DeviceError(f"{path}: no header line; a tile CSV starts with {','.join(CSV_COLUMNS[:5])}")
    if not entries:
        raise DeviceError(f"{source}: no cells in the conductance map")
    idx = np.array([[e[2]["tile"], e[2]["row"], e[2]["col"]] for e in entries])
    if np.any(idx != np.round(idx)) or idx.min() < 0:
        raise DeviceError(f"{source}: tile, row and col must be integers >= 0")
    idx = idx.astype(np.int64)
    if idx[:, 1].max() >= rows or idx[:, 2].max() >= cols // 2:
        bad = entries[int(np.argmax((idx[:, 1] >= rows) | (idx[:, 2] >= cols // 2)))]
        raise DeviceError(f"{bad[0]}:{bad[1]}: row / col outside device '{device.name}''s array ({rows} rows, {cols // 2} pairs)")
    n_tiles = int(idx[:, 0].max()) + 1
    g = np.full((n_tiles, rows, cols), np.nan)
    stuck = np.zeros((n_tiles, rows, cols), dtype=np.uint8)
    formed = np.full((n_tiles, rows, cols), -1, dtype=np.int8)
    t, r, c = idx[:, 0], idx[:, 1], 2 * idx[:, 2]
    col = {name: np.array([e[2].get(name, np.nan if name.startswith("g_") else -1) for e in entries]) for name in CSV_COLUMNS[3:]}
    g[t, r, c], g[t, r, c + 1] = col["g_pos_us"], col["g_neg_us"]
    if np.isnan(col["g_pos_us"]).any() or np.isnan(col["g_neg_us"]).any():
        raise DeviceError(f"{source}: conductance map has non-finite values; allowed finite values >= 0 uS")
    for name, off in (("formed_pos", 0), ("formed_neg", 1)):
        formed[t, r, c + off] = np.clip(col[name], -1, 1).astype(np.int8)
    for name, off in (("stuck_pos", 0), ("stuck_neg", 1)):
        v = np.where(col[name] < 0, 0, col[name])
        if np.any(~np.isin(v, (0, 1, 2))):
            raise DeviceError(f"{source}: {name} must be 0 (free), 1 (stuck on) or 2 (stuck off)")
        stuck[t, r, c + off] = v.astype(np.uint8)
    return g, stuck, formed


def read_chip_map(path: str | Path, device: DeviceModel) -> ChipMap:
    """A chip map from a file or a folder of tile CSVs (see the module doc), checked against
    ``device``'s array."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DeviceError(f"{path}: no such conductance map file or folder")
    stuck = formed = None
    crossbars: dict[str, dict] = {}
    kind = _kind(path)
    if path.is_dir():
        tiles = _calibration_tiles(path)
        if tiles:
            g = np.full((max(tiles) + 1, device.array.rows, device.array.cols), np.nan)
            for t, f in tiles.items():
                g[t] = _as_tiles(read_conductance_map(f, "hdf5"), device, str(f))[0]
        else:
            files = sorted(path.glob("*.csv"))
            if not files:
                raise DeviceError(f"{path}: a folder map holds tile CSVs (tile_0000.csv, ...) or a calibration's "
                                  "conductance_map_tile<t>.h5 files; none found")
            g, stuck, formed = _read_tile_csvs(files, device, source)
    elif kind == "csv" and _is_tile_csv(path):
        g, stuck, formed = _read_tile_csvs([path], device, source)
    elif kind == "hdf5":
        g, stuck, formed, crossbars = _read_hdf5(path, device)
    elif kind in ("npy", "csv"):
        g = _as_tiles(read_conductance_map(path, kind), device, source)
    else:
        raise DeviceError(f"{path}: not a conductance map: give HDF5, NPY (by content) or CSV (.csv), or a folder of tile CSVs")
    _check_values(g, source)
    n = g.shape[0]
    rows, cols = device.array.rows, device.array.cols
    if g.shape[1:] != (rows, cols):
        raise DeviceError(f"{source}: tiles of {g.shape[1:]} do not fit device '{device.name}' ({rows} x {cols})")
    stuck = np.zeros((n, rows, cols), np.uint8) if stuck is None else stuck
    formed = np.full((n, rows, cols), -1, np.int8) if formed is None else formed
    return ChipMap(g, stuck, formed, source, map_sha256(path), crossbars)


def _kind(path: Path) -> str:
    """``hdf5``, ``npy`` or ``csv`` from the file's first bytes (any suffix), ``?`` otherwise."""
    if path.is_dir():
        return "folder"
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if path.suffix.lower() == ".csv":
        return "csv"
    return "?"


def _is_tile_csv(path: Path) -> bool:
    with open(path) as f:
        for line in f:
            text = line.strip()
            if text and not text.startswith("#"):
                return text.split(",")[0].strip() == "tile"
    return False


def _read_hdf5(path: Path, device: DeviceModel):
    import h5py  # heavy: imported where a map file is read

    try:
        with h5py.File(path, "r") as f:
            if "conductance_us" not in f or f["conductance_us"].ndim != 3:
                return _as_tiles(read_conductance_map(path, "hdf5"), device, str(path)), None, None, {}
            ds = f["conductance_us"]
            units = ds.attrs.get("units", "uS")
            units = units.decode() if isinstance(units, bytes) else str(units)
            if units not in ("uS", "S"):
                raise DeviceError(f"{path}: dataset conductance_us attribute units = {units!r}; allowed 'uS' or 'S'")
            g = np.asarray(ds[()], dtype=np.float64) * (1e6 if units == "S" else 1.0)
            g = _as_tiles(g, device, str(path))
            if "used" in f and f["used"].shape == g.shape:
                g = np.where(np.asarray(f["used"][()], bool), g, np.nan)
            shape = g.shape
            stuck = formed = None
            if "stuck_code" in f and f["stuck_code"].shape == shape:
                stuck = np.asarray(f["stuck_code"][()], np.uint8)
            if "formed" in f and f["formed"].shape == shape:
                formed = np.asarray(f["formed"][()], np.int8)
            crossbars = {}
            if "crossbars" in f:
                for m in f["crossbars"]:
                    for which in f["crossbars"][m]:
                        a = f["crossbars"][m][which].attrs
                        crossbars[f"{m}/{which}"] = {k: int(a[k]) for k in ("n_in", "n_out", "first_tile")}
    except OSError as exc:
        raise DeviceError(f"{path}: not a readable HDF5 file ({exc})") from None
    return g, stuck, formed, crossbars
