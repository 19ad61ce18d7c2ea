"""The run: data -> binning -> features (cached) -> task -> run directory, once per seed.

Everything a user can get wrong is checked before anything is computed or written: the config
(schema), the datasets (their files must exist), the device model, then what the run needs from
the machine (:mod:`.preflight`: memory, writable output and cache folders). The
stages live in their own modules: :mod:`.modalities` (datasets), :mod:`.selection` (samples),
:mod:`.encoding` and :mod:`.extraction` (reservoirs and cached features), :mod:`.pipeline`
(one seed), :mod:`.aggregate` (over seeds), :mod:`.run_dir` (the directory).
"""

from __future__ import annotations

from pathlib import Path

from neurohw.experiments.aggregate import aggregate
from neurohw.experiments.modalities import resolve_modalities
from neurohw.experiments.pipeline import run_seed
from neurohw.experiments.preflight import check_folders, preflight
from neurohw.experiments.run_dir import RunDir, RunResult
from neurohw.experiments.schema import ExperimentConfig, apply_overrides, load_config, parse_config
from neurohw.hil.backend import chip_record
from neurohw.progress import note
from neurohw.reservoir.backends import is_url


def run_experiment(cfg: ExperimentConfig, out: str | Path | None = None, progress: bool = True) -> Path:
    """Run ``cfg`` for every seed; write the run directory atomically; return its path."""
    parent = Path(out if out is not None else cfg.output)
    check_folders(parent)  # before the datasets: a cold cache generates them first
    mods = resolve_modalities(cfg, progress)
    preflight(cfg, mods, parent)
    chip = _chip(cfg)
    results = []
    for k, seed in enumerate(cfg.run_seeds):
        note(f"[bold]seed {seed}[/bold] ({k + 1} of {len(cfg.run_seeds)})", progress)
        results.append(run_seed(cfg, mods, seed, progress, figures=cfg.plots and k == 0))
    metrics = aggregate(cfg, [m.name for m in mods], results)
    if chip is not None:
        metrics["chip"] = chip
    return RunDir.write(cfg, parent, metrics, results).path


def _chip(cfg: ExperimentConfig) -> dict | None:
    """For a run on a chip over a link, the chip it runs on (and one warning line when its facts
    differ from the experiment's device); None for the local backends."""
    if not is_url(cfg.backend):
        return None

    return chip_record(cfg.backend, cfg.device.resolved)


def run(config: str | Path | dict | ExperimentConfig, overrides: list[str] | None = None, out: str | Path | None = None,
        progress: bool = True) -> RunResult:
    """Run an experiment from Python, as ``neurohw run`` does; returns a :class:`RunResult`
    (``.path``: the run directory, ``.metrics``: metrics.json).

    ``config``: a YAML path, a shipped experiment's name (``"quickstart"``), a mapping with the
    YAML's content, or an :class:`ExperimentConfig`. ``overrides``: ``["head.epochs=20", ...]``
    as ``--set`` takes them. ``out``: the parent folder of the run directory (default: the
    config's ``output``).
    """
    if isinstance(config, ExperimentConfig):
        cfg = config if not overrides else parse_config(apply_overrides(config.model_dump(mode="json"), overrides), "<config>")
    elif isinstance(config, dict):
        import copy

        cfg = parse_config(apply_overrides(copy.deepcopy(config), overrides), "<config>")
    else:
        cfg = load_config(config, overrides)
    if cfg.name is None:
        cfg = cfg.model_copy(update={"name": "run"})
    path = run_experiment(cfg, out, progress)
    return RunResult.from_dir(path)
