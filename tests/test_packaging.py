"""The package as installed: every subpackage is listed in pyproject.toml, and a wheel (not an
editable install) carries the device presets, the kernels, the shipped experiments and the
benchmarks, and works from a folder outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPED = {"neurohw.device_models": "device_models", "neurohw.kernels": "kernels", "neurohw.experiment_files": "experiments",
          "neurohw.benchmarks": "benchmarks"}


def test_every_package_is_listed_in_pyproject():
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "neurohw").rglob("__init__.py")}
    # the subfolders of a mapped folder (experiments/sweeps) are packages of their own
    data = {f"{pkg}.{'.'.join(d.relative_to(REPO / folder).parts)}" for pkg, folder in MAPPED.items()
            for d in (REPO / folder).rglob("*") if d.is_dir() and d.name != "__pycache__"}
    assert set(tool["packages"]) == found | set(MAPPED) | data
    assert tool["package-dir"] == MAPPED


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (building writes build/ next to the sources)."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "runs", "__pycache__", "*.egg-info", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
                   check=True, capture_output=True, cwd=out)
    (whl,) = out.glob("neurohw-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_carries_the_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("neurohw/device_models/taox_rram_40nm.yaml", "neurohw/device_models/ideal.yaml", "neurohw/device_models/pcm_like.yaml",
              "neurohw/kernels/lsm.cu", "neurohw/kernels/host_shim.h", "neurohw/experiment_files/quickstart.yaml",
              "neurohw/benchmarks/bench_reservoir.py", "neurohw/experiment_files/digits_ridge.yaml",
              "neurohw/experiment_files/sweeps/drift.yaml", "neurohw/experiment_files/sweeps/noise_robustness.yaml",
              "neurohw/experiment_files/sweeps/stuck_cells.yaml", "neurohw/experiment_files/searches/digits_ridge.yaml"):
        assert f in names, f


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    """The wheel's files, unpacked into a folder on PYTHONPATH (its dependencies from this
    environment), run from a folder that is not the checkout: presets listed, the quickstart
    config found by name, the kernel compiled for the CPU from the installed source."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True,
                   capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def py(*args):
        res = subprocess.run([sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    assert py("-m", "neurohw", "--version").strip().startswith("neurohw ")
    listing = py("-m", "neurohw", "devices", "list")
    for name in ("taox_rram_40nm", "ideal", "pcm_like"):
        assert name in listing
    code = (
        "import neurohw, neurohw.resources as r\n"
        "from neurohw.experiments.schema import load_config\n"
        "from neurohw.reservoir.backends import host_shim\n"
        f"assert str(r.kernels_dir()).startswith({str(site)!r}), r.kernels_dir()\n"
        "cfg = load_config('quickstart'); print(cfg.name, cfg.task)\n"
        "m = host_shim.build(r.kernels_dir() / 'lsm.cu', {'WT': 'short', 'AT': 'int', 'QT': 'long long'})\n"
        "print(m.get_function('lsm_step').name)\n"
        "from neurohw.sweeps.spec import load_sweep\n"
        "s = load_sweep('drift'); print(s.name, len(s.points), s.source.startswith(" + repr(str(site)) + "))\n"
    )
    out = py("-c", code)
    assert "quickstart zero_shot" in out and "lsm_step" in out
    assert "drift 21 True" in out  # a shipped sweep found by name, its base (a shipped experiment) too
