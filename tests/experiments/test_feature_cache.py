"""Feature cache: stable keys, resume after an interrupted run, rebuild of a corrupt file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neurohw.experiments.feature_cache import FeatureCache, compute_cached, feature_key


def _encode_fn(calls):
    def encode(idx):
        calls.append(idx.tolist())
        x = idx.astype(np.float32)
        return {"rate": np.stack([x, x**2], 1), "counts": np.repeat(x[:, None, None], 3, 1).astype(np.uint16)}

    return encode


def test_key_is_canonical_and_sensitive():
    a = {"data": {"dataset": "d", "n": 1}, "seed": 3}
    b = {"seed": 3, "data": {"n": 1, "dataset": "d"}}
    assert feature_key(a) == feature_key(b)
    assert feature_key(a) != feature_key({**a, "seed": 4})
    assert len(feature_key(a)) == 64


def test_compute_then_reuse(tmp_path):
    calls = []
    cache = FeatureCache({"k": 1}, 10, root=tmp_path)
    feats, attrs = compute_cached(cache, _encode_fn(calls), batch_size=4)
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(feats["rate"][:, 1], np.arange(10) ** 2)
    assert feats["counts"].shape == (10, 3, 1) or feats["counts"].shape == (10, 3)
    assert attrs["encode_s"] >= 0
    calls.clear()
    again, _ = compute_cached(FeatureCache({"k": 1}, 10, root=tmp_path), _encode_fn(calls), batch_size=4)
    assert calls == []  # a second run with the same key computes nothing
    np.testing.assert_array_equal(again["rate"], feats["rate"])


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    calls = []
    base = _encode_fn(calls)

    def failing(idx):
        if idx[0] == 8:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the third batch
        return base(idx)

    with pytest.raises(KeyboardInterrupt):
        compute_cached(FeatureCache({"k": 2}, 14, root=tmp_path), failing, batch_size=4)
    cache = FeatureCache({"k": 2}, 14, root=tmp_path)
    np.testing.assert_array_equal(cache.done, np.arange(14) < 8)
    calls.clear()
    feats, _ = compute_cached(cache, base, batch_size=4)
    assert calls == [[8, 9, 10, 11], [12, 13]]
    np.testing.assert_array_equal(feats["rate"][:, 0], np.arange(14))


def test_killed_process_resumes(tmp_path):
    """A process killed hard (os._exit, no cleanup) in the middle of its run."""
    script = textwrap.dedent(
        f"""
        import os, numpy as np
        from neurohw.experiments.feature_cache import FeatureCache, compute_cached
        def enc(idx):
            if idx[0] == 6:
                os._exit(9)
            return {{"rate": idx[:, None].astype(np.float32)}}
        compute_cached(FeatureCache({{"k": 3}}, 9, root=r"{tmp_path}"), enc, batch_size=3)
        """
    )
    rc = subprocess.run([sys.executable, "-c", script], env={**os.environ}).returncode
    assert rc == 9
    cache = FeatureCache({"k": 3}, 9, root=tmp_path)
    np.testing.assert_array_equal(cache.done, np.arange(9) < 6)
    calls = []
    feats, _ = compute_cached(cache, lambda idx: calls.append(idx.tolist()) or {"rate": idx[:, None].astype(np.float32)}, 3)
    assert calls == [[6, 7, 8]]
    np.testing.assert_array_equal(feats["rate"][:, 0], np.arange(9))


def test_corrupt_or_mismatched_file_is_rebuilt(tmp_path):
    cache = FeatureCache({"k": 4}, 5, root=tmp_path)
    cache.path.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    calls = []
    feats, _ = compute_cached(FeatureCache({"k": 4}, 5, root=tmp_path), _encode_fn(calls), batch_size=5)
    assert calls == [[0, 1, 2, 3, 4]]
    # same key but a different sample count (e.g. edited by hand): rebuilt, not misread
    calls.clear()
    compute_cached(FeatureCache({"k": 4}, 6, root=tmp_path), _encode_fn(calls), batch_size=5)
    assert calls == [[0, 1, 2, 3, 4], [5]]


def _flip_byte_in_rows(path, name: str, row: int):
    """Flip one byte of dataset ``name`` at ``row`` directly in the file (as a failing disk would)."""
    import h5py

    with h5py.File(path, "r") as f:
        ds = f[name]
        if ds.chunks is None:
            offset = ds.id.get_offset() + row * ds.dtype.itemsize * int(np.prod(ds.shape[1:]))
        else:
            info = next(ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())
                        if ds.id.get_chunk_info(i).chunk_offset[0] <= row < ds.id.get_chunk_info(i).chunk_offset[0] + ds.chunks[0])
            local = row - info.chunk_offset[0]
            offset = info.byte_offset + local * ds.dtype.itemsize * int(np.prod(ds.chunks[1:]))
    with open(path, "r+b") as fh:
        fh.seek(offset + 1)
        b = fh.read(1)
        fh.seek(offset + 1)
        fh.write(bytes([b[0] ^ 0x5A]))


def test_flipped_bytes_in_the_data_are_found_and_only_that_block_is_encoded_again(tmp_path, capsys):
    calls = []
    feats, _ = compute_cached(FeatureCache({"k": 5}, 12, root=tmp_path), _encode_fn(calls), batch_size=4)
    cache = FeatureCache({"k": 5}, 12, root=tmp_path)
    _flip_byte_in_rows(cache.path, "rate", 6)  # inside block 1 (samples 4..7)
    with __import__("h5py").File(cache.path, "r") as f:
        assert not np.array_equal(f["rate"][...], feats["rate"])  # the damage is really there
    calls.clear()
    again, _ = compute_cached(cache, _encode_fn(calls), batch_size=4)
    assert calls == [[4, 5, 6, 7]]  # exactly the damaged block
    np.testing.assert_array_equal(again["rate"], feats["rate"])
    np.testing.assert_array_equal(again["counts"], feats["counts"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and "checksum" in err[0] and "[1]" in err[0]


def test_concurrent_processes_on_one_key_compute_once_and_agree(tmp_path):
    """Three processes start on the same cold entry at once: none fails, the features are
    encoded once (the others wait on the lock, then read), all read the same numbers."""
    log = tmp_path / "calls.txt"
    script = textwrap.dedent(
        f"""
        import sys, time, numpy as np
        from neurohw.experiments.feature_cache import FeatureCache, compute_cached
        def enc(idx):
            with open(r"{log}", "a") as fh:
                fh.write(" ".join(map(str, idx)) + "\\n")
            time.sleep(0.2)
            return {{"rate": (idx[:, None] * np.ones((1, 3))).astype(np.float32)}}
        feats, _ = compute_cached(FeatureCache({{"k": 6}}, 10, root=r"{tmp_path}"), enc, batch_size=5)
        print(float(feats["rate"].sum()))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert {o[0].strip() for o in outs} == {str(float(3 * sum(range(10))))}
    assert sorted(log.read_text().split("\n")[:-1]) == ["0 1 2 3 4", "5 6 7 8 9"]
