"""Writers of small event files in the real formats, for the reader tests (tonic's own approach:
inject fake files, read them with the real classes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np


def encode_nmnist(x, y, t, p) -> bytes:
    """N-MNIST bytes, one event at a time: x, y, p<<7 | t[22:16], t[15:8], t[7:0]."""
    out = bytearray()
    for xi, yi, ti, pi in zip(x, y, t, p):
        ti = int(ti)
        out += bytes([int(xi), int(yi), (int(pi) << 7) | ((ti >> 16) & 0x7F), (ti >> 8) & 0xFF, ti & 0xFF])
    return bytes(out)


def random_nmnist_bytes(rng, n=200) -> tuple[bytes, dict]:
    x, y = rng.integers(0, 34, n), rng.integers(0, 34, n)
    t, p = np.sort(rng.integers(0, 2**23, n)), rng.integers(0, 2, n)
    return encode_nmnist(x, y, t, p), dict(x=x, y=y, t=t, p=p)


def copy_nmnist_subset(src: Path, dst: Path, per_split: int = 4) -> Path:
    """A small folder in the nmnist-small layout, made of the first real files of each split."""
    lines = (src / "labels.csv").read_text().splitlines()
    keep = [lines[0]]
    counts: dict[str, int] = {}
    for line in lines[1:]:
        split, file, _ = line.split(",")
        if counts.get(split, 0) < per_split:
            counts[split] = counts.get(split, 0) + 1
            (dst / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / file, dst / file)
            keep.append(line)
    (dst / "labels.csv").write_text("\n".join(keep) + "\n")
    return dst


def synthetic_nmnist_folder(dst: Path, rng, per_split: int = 3) -> tuple[Path, dict]:
    """A folder in the nmnist-small layout with random events; returns it and {file: fields}."""
    truth = {}
    rows = ["split,file,label"]
    for split in ("train", "test"):
        (dst / split).mkdir(parents=True, exist_ok=True)
        for i in range(per_split):
            raw, fields = random_nmnist_bytes(rng, n=50 + i)
            file = f"{split}/{i + 1}.bin"
            (dst / file).write_bytes(raw)
            label = int(rng.integers(0, 10))
            rows.append(f"{split},{file},{label}")
            truth[file] = dict(fields, label=label)
    (dst / "labels.csv").write_text("\n".join(rows) + "\n")
    return dst, truth


def tonic_nmnist(root: Path, rng, per_digit: int = 2) -> dict:
    """ROOT/NMNIST/{Train,Test}/<digit>/<id>.bin; returns {path: (fields, digit)}."""
    truth = {}
    for folder in ("Train", "Test"):
        for digit in (0, 3, 9):
            d = root / "NMNIST" / folder / str(digit)
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_digit):
                raw, fields = random_nmnist_bytes(rng, n=40)
                path = d / f"{i:05d}.bin"
                path.write_bytes(raw)
                truth[str(path)] = (fields, digit)
    return truth


def tonic_shd(root: Path, split: str, rng, n: int = 4) -> dict:
    """ROOT/SHD/shd_<split>.h5 with the fields tonic's SHD reads; returns the truth."""
    d = root / "SHD"
    d.mkdir(parents=True, exist_ok=True)
    times, units = [], []
    with h5py.File(d / f"shd_{split}.h5", "w") as fh:
        t_ds = fh.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
        u_ds = fh.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            k = int(rng.integers(5, 30))
            times.append(np.sort(rng.integers(0, 800, k)) / 1000.0)  # whole milliseconds, in seconds
            units.append(rng.integers(0, 700, k).astype(np.uint16))
            t_ds[i] = times[-1].astype(np.float32)
            u_ds[i] = units[-1]
        labels = rng.integers(0, 20, n).astype(np.uint16)
        fh["labels"] = labels
        fh["extra/keys"] = np.array([f"digit-{i}".encode() for i in range(20)])
        fh["extra/speaker"] = np.zeros(n, dtype=np.uint16)
    return dict(times=times, units=units, labels=labels)


def tonic_ntidigits(root: Path, rng) -> dict:
    """ROOT/NTIDIGITS18/n-tidigits.hdf5 with single- and multi-digit utterances."""
    d = root / "NTIDIGITS18"
    d.mkdir(parents=True, exist_ok=True)
    names = {"train": ["man-ae-1", "woman-bf-o", "man-cd-12z", "boy-ef-z"], "test": ["girl-gh-9", "man-ij-34"]}
    truth = {}
    with h5py.File(d / "n-tidigits.hdf5", "w") as fh:
        for split, ids in names.items():
            fh[f"{split}_labels"] = np.array([s.encode() for s in ids])
            for s in ids:
                k = int(rng.integers(5, 40))
                t = np.sort(rng.integers(0, 900, k)) / 1000.0  # seconds, whole ms
                x = rng.integers(0, 64, k)
                fh[f"{split}_addresses/{s}"] = x
                fh[f"{split}_timestamps/{s}"] = t
                truth[(split, s)] = (t, x)
    return truth


def tonic_dvsgesture(root: Path, rng) -> dict:
    """ROOT/DVSGesture/ibmGesture{Train,Test}/user<NN>_<light>/<label>.npy (x, y, p, t in ms)."""
    truth = {}
    for folder in ("ibmGestureTrain", "ibmGestureTest"):
        for user, light in (("user01", "fluorescent"), ("user02", "led")):
            d = root / "DVSGesture" / folder / f"{user}_{light}"
            d.mkdir(parents=True, exist_ok=True)
            for label in (0, 7):
                k = int(rng.integers(10, 50))
                arr = np.stack([rng.integers(0, 128, k), rng.integers(0, 128, k), rng.integers(0, 2, k),
                                np.sort(rng.integers(0, 5000, k))], axis=1).astype(np.float64)
                np.save(d / f"{label}.npy", arr)
                truth[str(d / f"{label}.npy")] = (arr, label)
    return truth
