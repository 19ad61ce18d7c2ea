"""Shared helpers of the sweep and search tests: a tiny classification base on the embedded
digits (seconds per point) and the CLI run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

#: a classify experiment that runs in about a second: 60 small digits-dvs samples, 16 neurons
TINY_BASE = {
    "task": "classify",
    "data": {"d": {"dataset": "digits-dvs", "options": {"samples_per_class": 6},
                   "binning": {"n_bins": 12, "crop": [28, 28], "downsample": 4}}},
    "reservoir": {"d": {"n_neurons": 16, "target_rate": 0.06, "calibration_samples": 16, "features": ["rate", "counts"],
                        "count_bins": 2}},
    "head": {"kind": "ridge", "features": ["rate", "counts"], "cv_folds": 2, "alphas": [1.0, 100.0]},
    "batch_size": 16,
}


def write_yaml(path: Path, obj: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    return path


def cli(args: list[str], cache: Path, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """``neurohw ARGS`` in a fresh process with its own cache (as a user runs it)."""
    env = {**os.environ, "NEUROHW_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "neurohw", *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=kw.pop("cwd", None), **kw)
