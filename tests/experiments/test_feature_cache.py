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


def test_flipped_bytes_in_a_block_are_found_and_only_that_block_is_encoded_again(tmp_path, capsys):
    calls = []
    feats, _ = compute_cached(FeatureCache({"k": 5}, 12, root=tmp_path), _encode_fn(calls), batch_size=4)
    cache = FeatureCache({"k": 5}, 12, root=tmp_path)
    block = cache.block_path(1)  # samples 4..7
    raw = bytearray(block.read_bytes())
    raw[len(raw) - 7] ^= 0x5A  # inside the tensor bytes, past the header
    block.write_bytes(bytes(raw))
    calls.clear()
    again, _ = compute_cached(cache, _encode_fn(calls), batch_size=4)
    assert calls == [[4, 5, 6, 7]]  # exactly the damaged block
    np.testing.assert_array_equal(again["rate"], feats["rate"])
    np.testing.assert_array_equal(again["counts"], feats["counts"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and "block-000001.seal" in err[0] and "SHA-256" in err[0], err
    moved = list((cache.path / ".quarantine").iterdir())
    assert len(moved) == 1 and moved[0].read_bytes() == bytes(raw)  # moved aside as it was, not patched
    assert block.read_bytes() != bytes(raw)  # a new file in its place


def test_a_block_of_another_entry_or_block_is_refused(tmp_path, capsys):
    """A verified block copied under another block's name (its metadata names its own block)."""
    compute_cached(FeatureCache({"k": 7}, 8, root=tmp_path), _encode_fn([]), batch_size=4)
    cache = FeatureCache({"k": 7}, 8, root=tmp_path)
    cache.block_path(0).write_bytes(cache.block_path(1).read_bytes())
    calls = []
    feats, _ = compute_cached(cache, _encode_fn(calls), batch_size=4)
    assert calls == [[0, 1, 2, 3]]
    np.testing.assert_array_equal(feats["rate"][:, 0], np.arange(8))
    assert "another entry or block" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["features-is-a-file", "entry-is-a-file", "block-is-a-folder", "lock-is-a-folder",
                                   "dangling-entry-link", "dangling-block-link", "spec-deleted", "features-deleted"])
def test_odd_layouts_are_recomputed_with_at_most_one_warning(tmp_path, capsys, where):
    root = tmp_path / "features"
    clean, _ = compute_cached(FeatureCache({"k": 8}, 6, root=root), _encode_fn([]), batch_size=4)
    cache = FeatureCache({"k": 8}, 6, root=root)
    if where == "features-is-a-file":
        import shutil

        shutil.rmtree(root)
        root.write_text("x")
    elif where == "entry-is-a-file":
        import shutil

        shutil.rmtree(cache.path)
        cache.path.write_text("x")
    elif where == "block-is-a-folder":
        cache.block_path(0).unlink()
        cache.block_path(0).mkdir()
    elif where == "lock-is-a-folder":
        os.unlink(f"{cache.path}.lock")
        os.mkdir(f"{cache.path}.lock")
    elif where == "dangling-entry-link":
        import shutil

        shutil.rmtree(cache.path)
        cache.path.symlink_to(tmp_path / "nowhere")
    elif where == "dangling-block-link":
        cache.block_path(1).unlink()
        cache.block_path(1).symlink_to(tmp_path / "nowhere")
    elif where == "spec-deleted":
        cache.spec_path.unlink()
    elif where == "features-deleted":
        import shutil

        shutil.rmtree(root)
    capsys.readouterr()
    feats, _ = compute_cached(FeatureCache({"k": 8}, 6, root=root), _encode_fn([]), batch_size=4)
    for k in clean:
        np.testing.assert_array_equal(feats[k], clean[k])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 1 and "Traceback" not in "".join(err), err
    again, _ = compute_cached(FeatureCache({"k": 8}, 6, root=root), _encode_fn(calls := []), batch_size=4)
    assert calls == [] and capsys.readouterr().err == ""  # repaired for good


def test_no_space_publishes_nothing_and_is_one_user_error(tmp_path, monkeypatch):
    """A block write that fails with ENOSPC: NoSpaceError naming the block and "no space left";
    the blocks finished before it are kept, the failed one is absent (not half-written)."""
    import errno

    from neurohw.storage import NoSpaceError

    real_fsync = os.fsync
    count = {"n": 0}

    def full(fd):
        import stat

        if stat.S_ISREG(os.fstat(fd).st_mode):
            count["n"] += 1
            if count["n"] == 3:  # spec, block 0, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    cache = FeatureCache({"k": 9}, 10, root=tmp_path)
    with pytest.raises(NoSpaceError, match="block-000001.seal.*no space left"):
        compute_cached(cache, _encode_fn([]), batch_size=4)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert cache.block_path(0).is_file() and not cache.block_path(1).exists()
    assert not [p for p in cache.path.iterdir() if ".tmp-" in p.name]
    calls = []
    feats, _ = compute_cached(FeatureCache({"k": 9}, 10, root=tmp_path), _encode_fn(calls), batch_size=4)
    assert calls == [[4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(feats["rate"][:, 1], np.arange(10) ** 2)


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


def test_the_cache_deleted_mid_run_gives_the_right_features_and_a_usable_cache(tmp_path):
    import shutil

    root = tmp_path / "features"
    calls = []
    base = _encode_fn(calls)

    def deleting(idx):
        if idx[0] == 4:
            shutil.rmtree(root)  # someone cleans the cache while block 1 is encoded
        return base(idx)

    feats, _ = compute_cached(FeatureCache({"k": 10}, 10, root=root), deleting, batch_size=4)
    np.testing.assert_array_equal(feats["rate"][:, 1], np.arange(10) ** 2)
    calls.clear()
    again, _ = compute_cached(FeatureCache({"k": 10}, 10, root=root), base, batch_size=4)
    assert calls == [[0, 1, 2, 3]]  # only the block that went with the folder
    np.testing.assert_array_equal(again["rate"], feats["rate"])


def test_stored_blocks_with_other_features_than_the_encoder_gives_are_encoded_again_once(tmp_path, capsys):
    """Sealed blocks holding an extra feature (written for this key by another encoder): the
    encoder's features win, the stale blocks are encoded again, and the next run encodes nothing."""
    def extra(idx):
        return {**_encode_fn([])(idx), "membrane": idx[:, None].astype(np.float32)}

    compute_cached(FeatureCache({"k": 11}, 12, root=tmp_path), extra, batch_size=4)
    FeatureCache({"k": 11}, 12, root=tmp_path).block_path(2).unlink()
    calls = []
    feats, _ = compute_cached(FeatureCache({"k": 11}, 12, root=tmp_path), _encode_fn(calls), batch_size=4)
    assert sorted(feats) == ["counts", "rate"] and sorted(map(tuple, calls)) == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)]
    np.testing.assert_array_equal(feats["rate"][:, 1], np.arange(12) ** 2)
    calls.clear()
    compute_cached(FeatureCache({"k": 11}, 12, root=tmp_path), _encode_fn(calls), batch_size=4)
    assert calls == []


def test_a_read_only_cache_is_read_and_an_incomplete_one_is_one_error(tmp_path):
    """The cache on a read-only mount (a read-only bind mount; skipped where it cannot be made):
    a complete entry is read without its lock; an entry that needs a block written ends in one
    StorageError naming it."""
    from neurohw.storage import StorageError

    rw, ro = tmp_path / "rw", tmp_path / "ro"
    clean, _ = compute_cached(FeatureCache({"k": 12}, 6, root=rw), _encode_fn([]), batch_size=4)
    FeatureCache({"k": 12}, 6, root=rw).block_path(1).unlink()
    compute_cached(FeatureCache({"k": 13}, 4, root=rw), _encode_fn([]), batch_size=4)
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(rw), str(ro)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a bind mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        calls = []
        feats, _ = compute_cached(FeatureCache({"k": 13}, 4, root=ro), _encode_fn(calls), batch_size=4)
        assert calls == [] and feats["rate"].shape == (4, 2)
        with pytest.raises(StorageError, match="block-000001.seal"):
            compute_cached(FeatureCache({"k": 12}, 6, root=ro), _encode_fn([]), batch_size=4)
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
