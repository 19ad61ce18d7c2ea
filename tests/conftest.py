"""Shared fixtures: the real N-MNIST subset beside the checkout, a private cache, the GPU marker."""

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
