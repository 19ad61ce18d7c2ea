"""Files that ship with neurohw: device presets, CUDA kernels, shipped experiments, benchmarks.

They live in the repository's top-level folders ``device_models/``, ``kernels/``,
``experiments/`` and ``benchmarks/``, and are installed inside the package as
``neurohw.device_models``, ``neurohw.kernels``, ``neurohw.experiment_files`` and
``neurohw.benchmarks`` (``[tool.setuptools.package-dir]`` in pyproject.toml). So the same code
finds them in a checkout (editable install) and in a wheel installed anywhere, without paths
relative to the source tree.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from neurohw.errors import ConfigError, did_you_mean

#: resource folder -> the package it is installed as
PACKAGES = {
    "device_models": "neurohw.device_models",
    "kernels": "neurohw.kernels",
    "experiments": "neurohw.experiment_files",
    "benchmarks": "neurohw.benchmarks",
}


@functools.cache
def folder(name: str) -> Path:
    """The installed folder of resource ``name`` (a key of :data:`PACKAGES`)."""
    if name not in PACKAGES:
        raise KeyError(f"unknown resource folder {name!r}; one of {', '.join(PACKAGES)}")
    return Path(str(resources.files(PACKAGES[name])))


def device_models_dir() -> Path:
    """The shipped device presets (``<name>.yaml``)."""
    return folder("device_models")


def kernels_dir() -> Path:
    """The CUDA sources (``*.cu``) and the host shim header."""
    return folder("kernels")


def experiments_dir() -> Path:
    """The shipped experiment YAML files (quickstart, nmnist_small, the paper's settings)."""
    return folder("experiments")


def shipped_yaml(name_or_path: str | Path, sub: str = "", what: str = "experiment", file_kind: str = "") -> Path:
    """A YAML path as given, or for a bare name (no suffix, no folder, no such file here) the
    shipped file ``experiments/<sub>/<name>.yaml``; an unknown name is one ConfigError line that
    lists the shipped ones (``what`` names the kind: experiment, sweep, search; ``file_kind``
    names the file in that line, ``what`` when empty)."""
    text = str(name_or_path)
    path = Path(text)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in text or os.sep in text:
        return path
    folder = experiments_dir() / sub if sub else experiments_dir()
    shipped = folder / f"{text}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    raise ConfigError(f"{text}: no such {file_kind or what} file or shipped {what}{did_you_mean(text, names)}; shipped: {', '.join(names)}")
