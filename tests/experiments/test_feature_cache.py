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
