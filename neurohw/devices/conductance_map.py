"""Measured conductance maps: a chip's conductances in place of sampled forming.

Layout: one 2-D array per physical array, in microsiemens, shape ``(n_in, 2 * n_out)``, the two
cells of differential pair ``j`` in adjacent columns: column ``2j`` = G+, column ``2j+1`` = G-.
It must fit the device's array: ``n_in <= array.rows`` and ``2 * n_out <= array.cols``.

Files (format by suffix):
- ``.npy``: the array (no pickles).
- ``.csv``: comma-separated numbers, one row per word line; ``#`` comment lines and one
  non-numeric header line are skipped.
- ``.h5`` / ``.hdf5``: dataset ``conductance_us`` (or the file's only 2-D dataset); an attribute
  ``units`` of ``"uS"`` (default) or ``"S"`` (converted).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurohw.devices.model import DeviceModel
from neurohw.errors import DeviceError
from neurohw.paths import atomic_path

DATASET = "conductance_us"


def interleave(g_pos: np.ndarray, g_neg: np.ndarray) -> np.ndarray:
    """``(n_in, 2 n_out)`` map from the two ``(n_in, n_out)`` halves."""
    out = np.empty((g_pos.shape[0], 2 * g_pos.shape[1]), dtype=np.float64)
    out[:, 0::2], out[:, 1::2] = g_pos, g_neg
    return out


def deinterleave(g_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(g_pos, g_neg)`` from an interleaved map."""
    return np.ascontiguousarray(g_map[:, 0::2], dtype=np.float64), np.ascontiguousarray(g_map[:, 1::2], dtype=np.float64)


def _read_csv(path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            rows.append([float(v) for v in text.split(",")])
        except ValueError:
            if rows:
                raise DeviceError(f"{path}:{lineno}: not a number in the conductance map; give comma-separated uS values") from None
            continue  # one header line
    if not rows or len({len(r) for r in rows}) != 1:
        raise DeviceError(f"{path}: a conductance map CSV needs rows of equal length (got {sorted({len(r) for r in rows})})")
    return np.asarray(rows, dtype=np.float64)


def _read_h5(path: Path) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if DATASET in f:
                ds = f[DATASET]
            else:
                found = []
                f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) and obj.ndim == 2 else None)
                if len(found) != 1:
                    raise DeviceError(
                        f"{path}: no dataset '{DATASET}' and {len(found)} 2-D datasets ({', '.join(found) or 'none'}); name the map '{DATASET}'"
                    )
                ds = f[found[0]]
            units = ds.attrs.get("units", "uS")
            units = units.decode() if isinstance(units, bytes) else str(units)
            data = np.asarray(ds[()], dtype=np.float64)
            name = ds.name
    except OSError as exc:
        raise DeviceError(f"{path}: not a readable HDF5 file ({exc})") from None
    if units == "S":
        data = data * 1e6
    elif units != "uS":
        raise DeviceError(f"{path}: dataset {name} attribute units = {units!r}; allowed 'uS' or 'S'")
    return data


def read_conductance_map(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Read a measured map file (NPY, CSV, HDF5) into a float64 array in uS (not yet checked).
    The format is the suffix's, or ``kind`` (``"npy"``, ``"csv"``, ``"hdf5"``) when given."""
    path = Path(path)
    if not path.is_file():
        raise DeviceError(f"{path}: no such conductance map file")
    suffix = {"npy": ".npy", "csv": ".csv", "hdf5": ".h5"}.get(kind or "", path.suffix.lower())
    if suffix == ".npy":
        try:
            return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        except (ValueError, OSError) as exc:
            raise DeviceError(f"{path}: not a readable NPY array ({exc})") from None
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path)
    raise DeviceError(f"{path}: unknown conductance map format '{suffix}'; use .npy, .csv, .h5 or .hdf5")


def check_conductance_map(g_map: np.ndarray, device: DeviceModel, source: str = "<array>") -> np.ndarray:
    """Validate a map against the device's array; returns it as float64."""
    g_map = np.asarray(g_map, dtype=np.float64)
    rows, cols = device.array.rows, device.array.cols
    fits = g_map.ndim == 2 and 1 <= g_map.shape[0] <= rows and 2 <= g_map.shape[1] <= cols and g_map.shape[1] % 2 == 0
    if not fits:
        raise DeviceError(
            f"{source}: conductance map shape {g_map.shape} does not fit device '{device.name}' "
            f"(array.rows = {rows}, array.cols = {cols}): need 2-D, 1..{rows} rows and an even number "
            f"of columns in 2..{cols} (G+, G- interleaved)"
        )
    if not np.all(np.isfinite(g_map)):
        raise DeviceError(f"{source}: conductance map has non-finite values; allowed finite values >= 0 uS")
    if np.any(g_map < 0):
        bad = float(g_map.min())
        raise DeviceError(f"{source}: conductance map value {bad} uS < 0; allowed range [0, inf) uS")
    return g_map


def load_conductance_map(path_or_array, device: DeviceModel) -> tuple[np.ndarray, np.ndarray]:
    """A checked map as ``(g_pos, g_neg)`` (n_in, n_out), uS."""
    if isinstance(path_or_array, (str, Path)):
        g_map = check_conductance_map(read_conductance_map(path_or_array), device, str(path_or_array))
    else:
        g_map = check_conductance_map(path_or_array, device)
    return deinterleave(g_map)


def save_conductance_map(path: str | Path, g_pos: np.ndarray, g_neg: np.ndarray) -> Path:
    """Write ``(g_pos, g_neg)`` as an interleaved map (format by suffix), atomically."""
    path = Path(path)
    g_map = interleave(np.asarray(g_pos), np.asarray(g_neg))
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv", ".h5", ".hdf5"):
        raise DeviceError(f"{path}: unknown conductance map format '{suffix}'; use .npy, .csv, .h5 or .hdf5")
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, g_map)
        elif suffix == ".csv":
            np.savetxt(tmp, g_map, delimiter=",", fmt="%.17g", header="conductance map, uS; columns 2j = G+, 2j+1 = G- of pair j")
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                ds = f.create_dataset(DATASET, data=g_map)
                ds.attrs["units"] = "uS"
                ds.attrs["layout"] = "rows = inputs; columns 2j = G+, 2j+1 = G- of output j"
    return path
