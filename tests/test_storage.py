"""The storage rule (neurohw.storage): sealed files verify before parsing, damage at any offset
is caught, a failed write publishes nothing."""

from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest

from neurohw import storage


def test_sealed_round_trip_and_digest_is_sha256(tmp_path):
    data = os.urandom(5000)
    digest = storage.write_sealed(tmp_path / "x.bin", data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert storage.read_sealed(tmp_path / "x.bin") == data
    assert not [p for p in tmp_path.iterdir() if p.name != "x.bin"]  # no temporaries left


@pytest.mark.parametrize("fill", [0x00, 0xFF])
def test_damage_at_random_offsets_is_always_caught(tmp_path, fill):
    data = os.urandom(3000)
    path = tmp_path / "x.bin"
    storage.write_sealed(path, data)
    clean = path.read_bytes()
    rng = np.random.default_rng(7)
    for off in rng.integers(0, len(clean), 60):
        blob = bytearray(clean)
        blob[off : off + 4] = bytes([fill]) * len(blob[off : off + 4])
        if bytes(blob) == clean:
            continue
        path.write_bytes(bytes(blob))
        with pytest.raises(storage.DamagedEntry):
            storage.read_sealed(path)
    for cut in (0, 10, storage.HEADER_SIZE, len(clean) - 1):
        path.write_bytes(clean[:cut])
        with pytest.raises(storage.DamagedEntry):
            storage.read_sealed(path)
    path.write_bytes(clean + b"\0")
    with pytest.raises(storage.DamagedEntry):
        storage.read_sealed(path)


def test_read_verified_checks_a_manifest_digest(tmp_path):
    p = tmp_path / "a.json"
    digest = storage.write_bytes_atomic(p, b'{"a": 1}')
    assert storage.read_verified(p, digest) == b'{"a": 1}'
    p.write_bytes(b'{"a": 2}')
    with pytest.raises(storage.DamagedEntry):
        storage.read_verified(p, digest)


def test_a_folder_where_a_file_belongs_is_damage(tmp_path):
    (tmp_path / "x.bin").mkdir()
    with pytest.raises(storage.DamagedEntry):
        storage.read_sealed(tmp_path / "x.bin")


def test_full_disk_publishes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"
    storage.write_sealed(path, b"old")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", no_space)
    with pytest.raises(storage.NoSpaceError, match="no space left"):
        storage.write_sealed(path, b"new content")
    monkeypatch.undo()
    assert storage.read_sealed(path) == b"old"  # the old entry is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_quarantine_moves_aside_and_warns(tmp_path, capsys):
    path = tmp_path / "x.bin"
    path.write_bytes(b"junk")
    moved = storage.quarantine(path, "bad magic")
    assert not path.exists() and moved.read_bytes() == b"junk"
    err = capsys.readouterr().err
    assert "x.bin" in err and "bad magic" in err and len(err.strip().splitlines()) == 1
