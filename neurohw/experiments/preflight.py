"""What is checked after the config and the datasets and before any compute: what the run
needs from this machine. Each problem is one ConfigError line with the number that would be
needed, so a run never fails after minutes of work for a reason it could have seen first.

- memory: each modality's two crossbars, ~:data:`BYTES_PER_WEIGHT` bytes per logical weight
  (conductances G+ and G-, drift exponents, stuck codes, cached weights, the backends' copy;
  measured with tracemalloc: 88 bytes peak per weight on a 578 x 2,000 + 2,000 x 2,000 reservoir),
  against the memory available now (``MemAvailable`` of /proc/meminfo, else physical memory);
- the output folder and the cache folder accept new files (a probe file is made and removed),
  ``NEUROHW_CACHE`` is not set to an empty string, and the cache's own folders (``features/``,
  ``embedded/``, ...) are folders: :func:`check_folders`, which the runner calls **before** the
  datasets are opened (opening an embedded dataset the first time generates it: minutes);
- a ridge readout's ``cv_folds`` against the training samples of each class that every run
  seed selects (stratified k-fold needs at least k per class), before anything is encoded.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurohw.errors import ConfigError
from neurohw.experiments.modalities import Modality
from neurohw.experiments.schema import ExperimentConfig
from neurohw.experiments.selection import select
from neurohw.hil.address import parse_address
from neurohw.paths import cache_dir, check_cache_layout, check_writable_folder
from neurohw.reservoir.backends import is_url

#: bytes held per logical crossbar weight while a reservoir is built and run (see module doc)
BYTES_PER_WEIGHT = 100


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``), else the
    machine's physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_memory(cfg: ExperimentConfig, mods: list[Modality], available: int | None = None) -> None:
    """Refuse reservoirs whose crossbars cannot fit in memory (one modality is built at a time)."""
    available = available_memory() if available is None else available
    for mod in mods:
        n = cfg.reservoir[mod.name].n_neurons
        weights = mod.n_inputs * n + n * n
        need = BYTES_PER_WEIGHT * weights
        if need > available:
            raise ConfigError(
                f"reservoir.{mod.name}.n_neurons={n}: its crossbars ({mod.n_inputs} x {n} + {n} x {n} = {weights:,} weights) "
                f"need about {_gib(need)} of memory, {_gib(available)} is available; lower n_neurons"
            )


def check_cache_folder() -> Path:
    """The cache folder: ``NEUROHW_CACHE`` not empty, new files can be made, its folders are folders."""
    root = cache_dir(create=False)
    check_writable_folder(root, "cache folder (NEUROHW_CACHE)")
    check_cache_layout(root)
    return root


def check_folders(out: str | Path, what: str = "output folder") -> None:
    """The output folder and the cache folder must accept new files (see the module doc)."""
    check_writable_folder(out, what)
    check_cache_folder()


def check_cv_folds(cfg: ExperimentConfig, mods: list[Modality]) -> None:
    """A ridge readout's ``head.cv_folds`` against the fewest training samples of a class that
    any run seed selects (the readout sees the first modality's training split)."""
    if cfg.head_kind != "ridge" or not mods:
        return
    import numpy as np

    k = int(cfg.head.cv_folds)
    for seed in cfg.run_seeds:
        labels = mods[0].train.labels[select(mods[:1], seed)[0].train]
        classes, counts = np.unique(labels, return_counts=True)
        if len(counts) and counts.min() < k:
            c, n = int(classes[int(counts.argmin())]), int(counts.min())
            raise ConfigError(f"head.cv_folds={k} but class {c} has only {n} training samples (data.{mods[0].name} at run seed "
                              f"{seed}); lower cv_folds to at most {n} or select more samples per class")


def check_sources(cfg: ExperimentConfig, mods: list[Modality]) -> None:
    """A ``from_nir`` graph's input size against the binning and a ``device.conductance_map``'s
    tiles against the reservoirs (what building the first seed's reservoirs checks)."""
    if cfg.device.conductance_map is not None or any(r.from_nir is not None for r in cfg.reservoir.values()):
        from neurohw.experiments.encoding import ModalityReservoir  # torch: `neurohw validate` loads it only for a reservoir built from files

        ModalityReservoir.for_seed(cfg, mods, cfg.run_seeds[0])


#: seconds ``neurohw validate`` waits for a ``hil://`` address to accept a TCP connection
LINK_CHECK_TIMEOUT_S = 3.0


def check_links(cfg: ExperimentConfig, timeout_s: float = LINK_CHECK_TIMEOUT_S) -> list[str]:
    """Each chip address the config names (``backend: hil://HOST:PORT``, the experiment's or a
    reservoir's): a TCP address must accept a connection within ``timeout_s`` (then closed at
    once: no protocol is spoken); a serial one is not opened. Returns one note per address
    (``reachable`` / ``not checked``); an address nobody answers is one ConfigError line."""
    import socket

    urls = dict.fromkeys(b for b in [cfg.backend, *(r.backend for r in cfg.reservoir.values())] if b and is_url(b))
    notes = []
    for url in urls:
        addr = parse_address(url)
        if addr.kind != "tcp":
            notes.append(f"{url}: not checked (a serial link is opened only by a run)")
            continue
        try:
            with socket.create_connection((addr.host, addr.port), timeout=timeout_s):
                pass
        except OSError as exc:
            reason = exc.strerror or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
            raise ConfigError(f"backend {url}: nothing answers at {addr.host}:{addr.port} within {timeout_s:g} s ({reason}); "
                              "start the chip's server (neurohw hil serve) or check the host and port") from None
        notes.append(f"{url}: reachable")
    return notes


def preflight(cfg: ExperimentConfig, mods: list[Modality], out: str | Path) -> None:
    """Every machine check of the module doc, and the reservoirs' files against the data."""
    check_folders(out)
    check_cv_folds(cfg, mods)
    check_sources(cfg, mods)
    check_memory(cfg, mods)
