"""Shared fixtures: one neurohw cache for the session, one finished tiny quickstart run for the
tests that only read it, the real N-MNIST subset beside the checkout, the GPU marker."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from _tiny_quickstart import NOISE_OFF, QUICKSTART, TINY
from neurohw.cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED_NMNIST = Path(os.environ.get("NEUROHW_NMNIST_SMALL", REPO.parent / "shared" / "data" / "nmnist-small"))


def _gpu_works() -> bool:
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        cupy.zeros(1).sum()
        return True
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if any("gpu" in item.keywords for item in items) and not _gpu_works():
        skip = pytest.mark.skip(reason="needs a working CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def nmnist_small() -> Path:
    """../shared/data/nmnist-small (1,000 train + 100 test real N-MNIST files), or skip."""
    if not (SHARED_NMNIST / "labels.csv").is_file():
        pytest.skip(f"real N-MNIST subset not found at {SHARED_NMNIST}")
    return SHARED_NMNIST


def _session_root(tmp_path_factory) -> Path:
    """The folder every worker of this session shares (its own temporary folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """One neurohw cache (``NEUROHW_CACHE``) for every test of the session, and for the processes
    they start: embedded datasets and encoded features are generated once, not once per test, and
    the user's own cache is never written. Shared by the xdist workers (their temporary folders
    are siblings); the cache's per-entry locks let them fill it at once (tests/experiments/
    test_reliability.py). A test that needs a cold or an odd cache sets its own."""
    path = _session_root(tmp_path_factory) / "neurohw-cache"
    path.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROHW_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, session_cache) -> Path:
    """The tiny quickstart (tests/_tiny_quickstart.py: TINY, read noise off) run once per session
    and shared by the workers (the first one runs it under a file lock, the others wait and read
    it): its run directory, for tests that only read it (its metrics, an export of it)."""
    out = _session_root(tmp_path_factory) / "tiny-run"
    with open(str(out) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        runs = sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []
        if not runs:
            assert main(["run", str(QUICKSTART), "--quiet", "--out", str(out), *sum((["--set", s] for s in TINY + NOISE_OFF), [])]) == 0
            runs = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    (run,) = runs
    return run
