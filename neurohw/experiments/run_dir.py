"""The run directory: resolved config, metrics.json, report.md, head weights, the encoders'
record (``encoders.json``), figures and, written last, ``manifest.json`` (the sha256 of every
other file), assembled under a hidden name and published by one rename
(:func:`neurohw.paths.staged_directory`), so a killed or failing run never leaves a half-written
result. Its name is ``<name>-<YYYYmmdd-HHMMSS>`` (``-1``, ``-2``, ... when taken, also by a
concurrent run).

Every reader of a run directory (``neurohw export``, :meth:`RunResult.from_dir`) calls
:func:`verify_run_dir` first: a listed file that is missing, or whose bytes no longer have the
recorded sha256 (edited, damaged), is refused with one line naming it (exit code 2), and the
reader parses the verified bytes it returns. A run directory without ``manifest.json`` was
written before manifests existed: it is read with one warning saying it cannot be verified."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np

from neurohw.experiments.results import SeedResult, head_state
from neurohw.experiments.schema import ExperimentConfig, dump_config
from neurohw.paths import staged_directory
from neurohw.storage import DamagedEntry, StorageError, file_sha256, read_verified, sha256_bytes, write_bytes_atomic, write_error

#: the manifest of a run directory, written last
MANIFEST = "manifest.json"
#: the layout of manifest.json; bump when it changes
MANIFEST_FORMAT_VERSION = 1
_MANIFEST_MAX_BYTES = 1 << 22


def write_run_dir(cfg: ExperimentConfig, parent: Path, metrics: dict, results: list[SeedResult]) -> Path:
    """Write the run directory of ``results`` (one per seed) under ``parent``; return its path.
    A write that fails (full disk: "no space left") is one :class:`~neurohw.storage.StorageError`
    line naming the file, and nothing is published."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        return _write_run_dir(cfg, Path(parent) / f"{cfg.name}-{stamp}", metrics, results)
    except OSError as exc:  # a full disk or a folder that went read-only: nothing was published
        raise write_error(Path(exc.filename) if exc.filename else Path(parent), exc) from None


def _write_run_dir(cfg: ExperimentConfig, final: Path, metrics: dict, results: list[SeedResult]) -> Path:
    from safetensors.torch import save

    from neurohw.experiments import report

    with staged_directory(final, unique=True) as staged:
        tmp = staged.path
        config_text = dump_config(cfg)
        (tmp / "config.yaml").write_text(config_text)
        heads = tmp / "heads"
        heads.mkdir()
        for r in results:  # one metadata key (safetensors writes several in a random order): identical bytes
            state = dict(sorted(head_state(r.output.heads).items()))
            meta = {"neurohw": json.dumps({"seed": r.seed, "task": cfg.task}, sort_keys=True)}
            write_bytes_atomic(heads / f"seed{r.seed}.safetensors", save(state, metadata=meta))
        (tmp / "encoders.json").write_text(json.dumps(encoders_record(cfg, results), indent=1, default=_json_default))
        figures = report.draw_figures(tmp, cfg, metrics, results[0]) if cfg.plots else []
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
        report.write_report(tmp, metrics, figures, config_text)
        write_manifest(tmp)
    return staged.final


def write_manifest(folder: Path) -> Path:
    """Write ``manifest.json`` into run directory ``folder``: the sha256 of every other file
    (relative POSIX paths) and the sha256 of that list's canonical JSON (so a damaged manifest
    is found too). Call it after every other file is written."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): file_sha256(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST}
    doc = {"format": "neurohw-run-manifest", "format_version": MANIFEST_FORMAT_VERSION, "files": files,
           "files_sha256": _files_digest(files)}
    path = folder / MANIFEST
    write_bytes_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())
    return path


def _files_digest(files: dict) -> str:
    return sha256_bytes(json.dumps(files, sort_keys=True, separators=(",", ":")).encode())


def verify_run_dir(folder: Path | str) -> dict[str, bytes] | None:
    """Check every file listed in ``folder``'s manifest against its sha256 and return the
    verified bytes by relative path; None (after one warning) for a run directory written before
    manifests. Raises :class:`~neurohw.storage.StorageError` (one line naming the file) for a
    damaged manifest or a listed file that is missing or edited."""
    from neurohw.progress import warn

    folder = Path(folder)
    path = folder / MANIFEST
    if not (path.exists() or path.is_symlink()):
        warn(f"{folder} has no {MANIFEST} (written before run manifests): its files cannot be verified")
        return None
    try:
        if path.stat().st_size > _MANIFEST_MAX_BYTES:
            raise ValueError("larger than a manifest")
        doc = json.loads(path.read_bytes())
        files = doc["files"]
        ok = (doc.get("format") == "neurohw-run-manifest" and doc.get("format_version") == MANIFEST_FORMAT_VERSION
              and isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
              and doc.get("files_sha256") == _files_digest(files))
        if not ok:
            raise ValueError("its content does not match its own digest or format")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorageError(f"{path}: damaged or not a run manifest ({type(exc).__name__}: {exc}); "
                           "the run directory cannot be trusted: rerun the experiment") from None
    out = {}
    for rel, digest in sorted(files.items()):
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise StorageError(f"{path}: lists {rel!r}, not a file inside the run directory; rerun the experiment")
        try:
            out[rel] = read_verified(folder / rel, digest)
        except FileNotFoundError:
            raise StorageError(f"{folder / rel}: missing (listed in {MANIFEST}); the run directory is incomplete: rerun the experiment") from None
        except DamagedEntry as exc:
            raise StorageError(f"{folder / rel}: edited or damaged since the run ({exc.reason}); "
                               "rerun the experiment or restore the file") from None
    return out


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
