"""Shared fixtures: one neurohw cache for the session, the real N-MNIST subset beside the
checkout, the GPU marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """One neurohw cache (``NEUROHW_CACHE``) for every test of the session, and for the processes
    they start: embedded datasets and encoded features are generated once, not once per test, and
    the user's own cache is never written. Shared by the xdist workers (their temporary folders
    are siblings); the cache's per-entry locks let them fill it at once (tests/experiments/
    test_reliability.py). A test that needs a cold or an odd cache sets its own."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "neurohw-cache"
    path.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROHW_CACHE", str(path))
        yield path
