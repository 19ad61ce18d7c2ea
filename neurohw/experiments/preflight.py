"""What is checked after the config and the datasets and before any compute: what the run
needs from this machine. Each problem is one ConfigError line with the number that would be
needed, so a run never fails after minutes of work for a reason it could have seen first.

- memory: each modality's two crossbars, ~:data:`BYTES_PER_WEIGHT` bytes per logical weight
  (conductances G+ and G-, drift exponents, stuck codes, cached weights, the backends' copy;
  measured with tracemalloc: 88 bytes peak per weight on a 578 x 2,000 + 2,000 x 2,000 reservoir),
  against the memory available now (``MemAvailable`` of /proc/meminfo, else physical memory);
- the output folder and the cache folder accept new files (a probe file is made and removed).
"""

from __future__ import annotations

import os
from pathlib import Path

from neurohw.errors import ConfigError
from neurohw.experiments.modalities import Modality
from neurohw.experiments.schema import ExperimentConfig
from neurohw.paths import cache_dir, check_writable_folder

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


def check_folders(out: str | Path) -> None:
    """The output folder and the cache folder must accept new files."""
    check_writable_folder(out, "output folder")
    check_writable_folder(cache_dir(create=False), "cache folder (NEUROHW_CACHE)")


def check_sources(cfg: ExperimentConfig, mods: list[Modality]) -> None:
    """A ``from_nir`` graph's input size against the binning and a ``device.conductance_map``'s
    tiles against the reservoirs (what building the first seed's reservoirs checks)."""
    if cfg.device.conductance_map is not None or any(r.from_nir is not None for r in cfg.reservoir.values()):
        from neurohw.experiments.encoding import ModalityReservoir

        ModalityReservoir.for_seed(cfg, mods, cfg.run_seeds[0])


def preflight(cfg: ExperimentConfig, mods: list[Modality], out: str | Path) -> None:
    """Every machine check of the module doc, and the reservoirs' files against the data."""
    check_sources(cfg, mods)
    check_memory(cfg, mods)
    check_folders(out)
