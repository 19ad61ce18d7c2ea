"""The run directory: resolved config, metrics.json, report.md, head weights, the encoders'
record (``encoders.json``) and figures,
assembled under a hidden name and published by one rename (:func:`neurohw.paths.staged_directory`),
so a killed or failing run never leaves a half-written result. Its name is
``<name>-<YYYYmmdd-HHMMSS>`` (``-1``, ``-2``, ... when taken, also by a concurrent run)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np

from neurohw.experiments.results import SeedResult, head_state
from neurohw.experiments.schema import ExperimentConfig, dump_config
from neurohw.paths import staged_directory


def write_run_dir(cfg: ExperimentConfig, parent: Path, metrics: dict, results: list[SeedResult]) -> Path:
    """Write the run directory of ``results`` (one per seed) under ``parent``; return its path."""
    from safetensors.torch import save_file

    from neurohw.experiments import report

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    with staged_directory(Path(parent) / f"{cfg.name}-{stamp}", unique=True) as staged:
        tmp = staged.path
        config_text = dump_config(cfg)
        (tmp / "config.yaml").write_text(config_text)
        heads = tmp / "heads"
        heads.mkdir()
        for r in results:  # one metadata key (safetensors writes several in a random order): identical bytes
            state = dict(sorted(head_state(r.output.heads).items()))
            meta = {"neurohw": json.dumps({"seed": r.seed, "task": cfg.task}, sort_keys=True)}
            save_file(state, str(heads / f"seed{r.seed}.safetensors"), metadata=meta)
        (tmp / "encoders.json").write_text(json.dumps(encoders_record(cfg, results), indent=1, default=_json_default))
        figures = report.draw_figures(tmp, cfg, metrics, results[0]) if cfg.plots else []
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
        report.write_report(tmp, metrics, figures, config_text)
    return staged.final


#: the layout of encoders.json; bump when it changes
ENCODERS_FORMAT_VERSION = 1


def encoders_record(cfg: ExperimentConfig, results: list[SeedResult]) -> dict:
    """``encoders.json``: what rebuilds every seed's encoders exactly without the datasets or a
    recalibration (``neurohw export``): the resolved device model and, per seed and modality,
    the LSMConfig with its scale resolved and the files a reservoir came from (path, sha256)."""
    from neurohw import __version__

    return {
        "format": "neurohw-encoders",
        "format_version": ENCODERS_FORMAT_VERSION,
        "neurohw_version": __version__,
        "device": cfg.device.resolved.model_dump(mode="json"),
        "seeds": {str(r.seed): r.encoders for r in results},
    }


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
