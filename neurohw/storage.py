"""The one storage rule for everything neurohw writes and later reads back.

Feature caches, embedded datasets, sweep point records, search journals and run directories
all follow it (the exported files for device tools are a separate matter):

1. the digest (SHA-256) is computed from the data **in memory**, before anything is written;
2. the bytes go to a temporary name beside the destination, are flushed and fsynced, and are
   renamed into place (then the folder is fsynced), so a reader sees the whole file or none;
3. the digest is stored where a reader finds it *before* parsing: in a small header of the
   file itself (:func:`write_sealed` / :func:`read_sealed`), or in a manifest that is itself
   sealed;
4. a reader checks the digest of the bytes first and hands only verified bytes to a parser
   (HDF5, numpy, JSON, YAML): C-library parsers are not robust against damaged input;
5. a damaged entry is moved aside (:func:`quarantine`, one warning line naming it) and rebuilt
   as a new entry, never patched in place;
6. a write that fails for lack of space publishes nothing and ends in one :class:`NoSpaceError`
   line naming the path (exit code 2 at the CLI).

This is the rule git objects and SQLite pages follow: content-addressed or checksummed units,
written once, verified on read.

Sealed file layout (all integers little-endian)::

    offset size field
         0    8 magic  b"NHWSEAL1"
         8   32 sha256 of the payload
        40    8 u64 payload length
        48    N payload
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from neurohw.errors import UserError
from neurohw.progress import warn as warn_line

MAGIC = b"NHWSEAL1"
_HEADER = struct.Struct("<8s32sQ")
HEADER_SIZE = _HEADER.size  # 48 bytes
_CHUNK = 1 << 20


class StorageError(UserError):
    """A file neurohw wrote cannot be written or read back (one line, exit code 2)."""


class NoSpaceError(StorageError):
    """A write failed because the file system is full (or over quota); nothing was published."""


class DamagedEntry(Exception):
    """The bytes of a stored entry do not match their digest (or its header is unreadable).

    Not a user error by itself: a reader catches it, quarantines the entry and rebuilds it."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """The SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path | str) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def write_error(path: Path | str, exc: OSError) -> StorageError:
    """The one-line error of a failed write of ``path``: :class:`NoSpaceError` for a full
    disk or quota, else :class:`StorageError` with the OS's reason."""
    return _space_error(Path(path), exc)


def _space_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceError(f"{path}: no space left on device while writing it; nothing was published: free space and run again")
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"{path}: cannot be written ({reason}); check the folder's permissions and free space")


def fsync_folder(folder: Path | str) -> None:
    """fsync a folder so that a rename inside it survives a crash (ignored where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path | str, data: bytes | bytearray | memoryview) -> str:
    """Write ``data`` to ``path`` by the storage rule (temporary name, flush, fsync, rename,
    fsync the folder) and return the SHA-256 of ``data`` computed before writing.

    Raises :class:`NoSpaceError` (disk full) or :class:`StorageError` (any other OS error) with
    nothing published; the temporary file is removed."""
    path = Path(path)
    digest = sha256_bytes(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _space_error(path, exc) from None
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as exc:
        _unlink_quietly(tmp_path)
        raise _space_error(path, exc) from None
    except BaseException:
        _unlink_quietly(tmp_path)
        raise
    fsync_folder(path.parent)
    return digest


def seal(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` with the sealed header in front (magic, SHA-256, length)."""
    return _HEADER.pack(MAGIC, hashlib.sha256(data).digest(), len(data)) + bytes(data)


def unseal(blob: bytes, source: Path | str = "<bytes>") -> bytes:
    """The payload of a sealed blob after checking magic, length and digest; raises
    :class:`DamagedEntry` otherwise. Parse only what this returns."""
    if len(blob) < HEADER_SIZE:
        raise DamagedEntry(source, f"truncated ({len(blob)} bytes, header needs {HEADER_SIZE})")
    magic, digest, length = _HEADER.unpack_from(blob, 0)
    if magic != MAGIC:
        raise DamagedEntry(source, "not a sealed neurohw file (bad magic)")
    if length != len(blob) - HEADER_SIZE:
        raise DamagedEntry(source, f"length {len(blob) - HEADER_SIZE} bytes, header says {length}")
    payload = blob[HEADER_SIZE:]
    if hashlib.sha256(payload).digest() != digest:
        raise DamagedEntry(source, "SHA-256 of the content does not match its header")
    return payload


@contextmanager
def _os_errors_as_damage(path: Path) -> Iterator[None]:
    """Reading ``path`` inside this block: an absent file stays ``FileNotFoundError``; a folder
    where the file belongs, or any other ``OSError`` (unreadable), becomes :class:`DamagedEntry`
    (the caller quarantines and rebuilds)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise DamagedEntry(path, "a folder where a file belongs") from None
    except OSError as exc:
        raise DamagedEntry(path, f"unreadable ({exc.strerror or exc})") from None


def write_sealed(path: Path | str, data: bytes | bytearray | memoryview) -> str:
    """Write ``data`` sealed (header + payload) by the storage rule; returns the payload's
    SHA-256 hex digest."""
    write_bytes_atomic(path, seal(data))
    return sha256_bytes(data)


def read_sealed(path: Path | str, max_bytes: int | None = None) -> bytes:
    """Read a sealed file and return its verified payload. Raises :class:`DamagedEntry` when the
    file is truncated, oversized, of another format or its digest does not match, and
    ``FileNotFoundError`` when it is absent. A path that is a folder or unreadable is a
    :class:`DamagedEntry` too (the caller quarantines and rebuilds). The payload is read after
    the header (no copy of the whole file), then hashed."""
    path = Path(path)
    with _os_errors_as_damage(path):
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes + HEADER_SIZE:
            raise DamagedEntry(path, f"{size} bytes, more than the {max_bytes} expected")
        with open(path, "rb") as fh:
            header = fh.read(HEADER_SIZE)
            if len(header) < HEADER_SIZE:
                raise DamagedEntry(path, f"truncated ({len(header)} bytes, header needs {HEADER_SIZE})")
            magic, digest, length = _HEADER.unpack(header)
            if magic != MAGIC:
                raise DamagedEntry(path, "not a sealed neurohw file (bad magic)")
            if length != size - HEADER_SIZE:
                raise DamagedEntry(path, f"length {size - HEADER_SIZE} bytes, header says {length}")
            payload = fh.read(length + 1)
    if len(payload) != length:
        raise DamagedEntry(path, f"length {len(payload)} bytes, header says {length} (changed while read)")
    if hashlib.sha256(payload).digest() != digest:
        raise DamagedEntry(path, "SHA-256 of the content does not match its header")
    return payload


# ----------------------------------------------------------------------------- array payloads

#: safetensors dtype names and numpy's
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def pack_arrays(arrays: dict, meta: dict[str, str]) -> bytes:
    """Named numpy arrays and string metadata as safetensors bytes (tensors in name order): a
    flat, documented layout (u64 header length, JSON header, raw little-endian data), no code
    execution on load. Seal the result (:func:`write_sealed`)."""
    import numpy as np
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(arrays[k]) for k in sorted(arrays)}, metadata=meta)


def unpack_arrays(payload: bytes) -> tuple[dict, dict[str, str]]:
    """The arrays and metadata of :func:`pack_arrays` bytes, as read-only views of ``payload``
    (no copy); ``ValueError`` when the bytes are not such a payload. Call it on verified bytes
    only (the bounds are checked all the same)."""
    import json

    import numpy as np

    if len(payload) < 8:
        raise ValueError("shorter than an array header")
    (n,) = struct.unpack_from("<Q", payload, 0)
    if n > len(payload) - 8:
        raise ValueError("array header longer than the payload")
    try:
        header = json.loads(bytes(payload[8 : 8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("array header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("array header is not a mapping")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("array metadata is not a mapping of strings")
    out = {}
    data_len = len(payload) - 8 - n
    for name, info in header.items():
        try:
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"array {name!r}: bad dtype, shape or offsets") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= data_len or end - begin != count * dtype.itemsize:
            raise ValueError(f"array {name!r}: offsets do not match its shape")
        out[name] = np.frombuffer(payload, dtype=dtype, count=count, offset=8 + n + begin).reshape(shape)
    return out, meta


def read_verified(path: Path | str, sha256: str) -> bytes:
    """Read a plain file whose digest is kept elsewhere (a manifest) and return its bytes only
    when their SHA-256 equals ``sha256``; else :class:`DamagedEntry`."""
    path = Path(path)
    with _os_errors_as_damage(path):
        data = path.read_bytes()
    if sha256_bytes(data) != sha256:
        raise DamagedEntry(path, "SHA-256 does not match the one recorded for it")
    return data


QUARANTINE = ".quarantine"


def quarantine(path: Path | str, reason: str, warn: bool = True) -> Path | None:
    """Move a damaged entry (file, folder or link) aside into ``<folder>/.quarantine/`` under a
    unique name, print one warning line naming it and the reason, and return its new path
    (None when it vanished meanwhile, e.g. another process quarantined it first). The entry is
    never patched in place: the caller rebuilds a new one."""
    path = Path(path)
    qdir = path.parent / QUARANTINE
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = qdir / f"{path.name}.{stamp}-{os.getpid()}-{os.urandom(6).hex()}"  # 48 random bits: no two names meet
    try:
        qdir.mkdir(exist_ok=True)
        os.rename(path, target)
    except FileNotFoundError:
        return None
    except OSError:
        # a quarantine folder that cannot be made (a file in its place, read-only folder):
        # remove the damaged entry instead, so that the rebuild can take its name
        target = None
        _remove_quietly(path)
    if warn:
        where = f"moved to {target}" if target is not None else "removed"
        warn_line(f"{path} is damaged ({reason}); {where} and rebuilt")
    return target


def _remove_quietly(path: Path) -> None:
    import shutil

    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except OSError:
        pass


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
