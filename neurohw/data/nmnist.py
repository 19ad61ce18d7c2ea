"""N-MNIST: the original binary event files, and folders of them with a label list.

File format (Orchard et al., Front. Neurosci. 9:437, 2015; the layout ``tonic.io.read_mnist_file``
reads), 5 bytes per event::

    byte 0 = x, byte 1 = y, byte 2 bit 7 = polarity,
    byte 2 bits 0-6, byte 3, byte 4 = 23-bit timestamp in microseconds (big-endian)

An event with ``y == 240`` is a timestamp-overflow marker, not an event: every later timestamp
grows by ``2**13`` (the original MATLAB reader's ``time_increment``, kept by tonic). The sensor is
an ATIS camera cropped to 34 x 34 pixels, two polarities.

Folder layout (``../shared/data/nmnist-small``)::

    ROOT/labels.csv        split,file,label   (file relative to ROOT, label a digit 0-9)
    ROOT/<split>/<id>.bin
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from neurohw.data.dataset import EventDataset
from neurohw.data.events import CAMERA_DTYPE
from neurohw.errors import DataError

#: (W, H, P) of the N-MNIST recordings: 34 x 34 pixels, ON/OFF polarity
SENSOR_SIZE = (34, 34, 2)
#: class names: the digit each sample shows; label i is the digit i
CLASSES = [str(d) for d in range(10)]
#: the label list of a folder, and its header
LABELS_FILE = "labels.csv"
LABELS_HEADER = ["split", "file", "label"]
#: bytes per event in the binary format
EVENT_BYTES = 5
#: ``y`` value of a timestamp-overflow marker, and the timestamp added after each one (us)
OVERFLOW_Y = 240
OVERFLOW_INCREMENT_US = 2**13


def decode_nmnist(raw: bytes | np.ndarray, source: str = "<bytes>") -> np.ndarray:
    """Decode N-MNIST binary content into ``CAMERA_DTYPE`` events (vectorised).

    ``source`` names the file in error messages. Raises :class:`DataError` for empty or
    truncated content (length not a multiple of 5) and for coordinates outside 34 x 34.
    """
    data = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray, memoryview)) else np.asarray(raw, dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"{source}: empty N-MNIST file (no events); replace it with a complete copy")
    if data.size % EVENT_BYTES:
        raise DataError(
            f"{source}: truncated or corrupt N-MNIST file: {data.size} bytes is not a multiple of "
            f"{EVENT_BYTES} bytes per event; replace it with a complete copy"
        )
    rec = data.reshape(-1, EVENT_BYTES)
    x = rec[:, 0].astype(np.int64)
    y = rec[:, 1].astype(np.int64)
    b2 = rec[:, 2].astype(np.int64)
    t = ((b2 & 0x7F) << 16) | (rec[:, 3].astype(np.int64) << 8) | rec[:, 4].astype(np.int64)
    overflow = y == OVERFLOW_Y
    if overflow.any():  # each marker shifts itself and every later timestamp (tonic's loop)
        t = t + OVERFLOW_INCREMENT_US * np.cumsum(overflow)
    real = ~overflow
    x, y, t, p = x[real], y[real], t[real], (b2[real] & 0x80) >> 7
    if x.size and (x.max() >= SENSOR_SIZE[0] or y.max() >= SENSOR_SIZE[1]):
        bad = int(np.flatnonzero((x >= SENSOR_SIZE[0]) | (y >= SENSOR_SIZE[1]))[0])
        raise DataError(
            f"{source}: corrupt N-MNIST file: event {bad} at (x={x[bad]}, y={y[bad]}) lies outside the "
            f"{SENSOR_SIZE[0]}x{SENSOR_SIZE[1]} sensor; is it really an N-MNIST file?"
        )
    events = np.empty(x.size, dtype=CAMERA_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def read_nmnist_file(path: str | os.PathLike) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file into ``CAMERA_DTYPE`` events (t in microseconds)."""
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: N-MNIST file not found; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an N-MNIST file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read N-MNIST file ({exc.strerror or exc})") from None
    return decode_nmnist(raw, source=str(path))


def read_label_list(root: str | os.PathLike) -> list[tuple[str, str, int]]:
    """The rows ``(split, file, label)`` of ``ROOT/labels.csv``, checked against the files.

    Every listed file must exist and every ``.bin`` file under ``ROOT`` must be listed once;
    labels are digits 0-9. Anything else is a :class:`DataError` naming the file and line.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: N-MNIST folder not found (expected {root}/{LABELS_FILE} and {root}/<split>/<id>.bin)")
    labels_path = root / LABELS_FILE
    if not labels_path.is_file():
        raise DataError(
            f"{labels_path}: label list not found; a folder of N-MNIST files needs {LABELS_FILE} "
            f"with the header {','.join(LABELS_HEADER)}"
        )
    try:
        with open(labels_path, newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{labels_path}: cannot read the label list ({exc})") from None
    if not lines or [c.strip() for c in lines[0]] != LABELS_HEADER:
        got = ",".join(lines[0]) if lines else "an empty file"
        raise DataError(f"{labels_path}: the header must be '{','.join(LABELS_HEADER)}', got '{got}'")
    rows: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    root_resolved = root.resolve()
    for lineno, cells in enumerate(lines[1:], start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != 3:
            raise DataError(f"{labels_path} line {lineno}: expected 3 fields split,file,label, got {len(cells)}")
        split, file, label_text = (c.strip() for c in cells)
        try:
            label = int(label_text)
        except ValueError:
            label = -1
        if not 0 <= label < len(CLASSES):
            raise DataError(f"{labels_path} line {lineno}: label '{label_text}' is not a digit 0-9")
        if file in seen:
            raise DataError(f"{labels_path} line {lineno}: {file} is listed twice (first on line {seen[file]})")
        seen[file] = lineno
        path = root / file
        if not path.resolve().is_relative_to(root_resolved):
            raise DataError(f"{labels_path} line {lineno}: {file} points outside {root}")
        if not path.is_file():
            raise DataError(f"{labels_path} line {lineno}: {file} is listed but {path} does not exist; the label list does not match the files")
        rows.append((split, file, label))
    listed = {os.path.normpath(f) for f in seen}
    unlisted = sorted(
        rel for rel in (os.path.relpath(p, root) for p in root.rglob("*.bin")) if os.path.normpath(rel) not in listed
    )
    if unlisted:
        more = f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else ""
        raise DataError(
            f"{labels_path}: the label list does not match the files: {root / unlisted[0]} has no row{more}; "
            f"add rows for them or remove the files"
        )
    return rows


def read_nmnist_folder(root: str | os.PathLike, split: str, name: str = "nmnist") -> EventDataset:
    """A split of a folder of N-MNIST files with ``labels.csv`` (``split,file,label``).

    Files are read on demand by the dataset's loader; their sizes are checked here, so an empty
    or truncated file is reported before any training starts.
    """
    root = Path(root)
    rows = read_label_list(root)
    chosen = [r for r in rows if r[0] == split]
    if not chosen:
        present = sorted({r[0] for r in rows})
        raise DataError(f"{root / LABELS_FILE}: no samples for split '{split}'; splits present: {', '.join(present) or 'none'}")
    paths = [root / file for _, file, _ in chosen]
    for path in paths:
        size = path.stat().st_size
        if size == 0 or size % EVENT_BYTES:
            decode_nmnist(np.zeros(size, dtype=np.uint8), source=str(path))  # raises the right message
    return EventDataset(
        name=name,
        split=split,
        sensor_size=SENSOR_SIZE,
        dtype=CAMERA_DTYPE,
        classes=list(CLASSES),
        labels=np.array([label for *_, label in chosen], dtype=np.int64),
        loader=lambda i: read_nmnist_file(paths[i]),
        sources=[str(p) for p in paths],
        meta={"root": str(root), "format": "nmnist-bin"},
    )
