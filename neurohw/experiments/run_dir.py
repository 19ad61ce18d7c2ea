"""The run directory, owned by :class:`RunDir`: its layout (the file names are its constants), its
writing and the only way to read it.

A run directory holds the resolved ``config.yaml``, ``metrics.json``, ``report.md``, the head
weights ``heads/seed<N>.safetensors``, the encoders' record ``encoders.json``
(:meth:`RunDir.record` / :meth:`RunDir.from_record`), figures and, written last,
``manifest.json`` (the sha256 of every other file). :meth:`RunDir.write` assembles it under a
hidden name and publishes it by one rename (:func:`neurohw.paths.staged_directory`), so a killed
or failing run never leaves a half-written result. Its name is ``<name>-<YYYYmmdd-HHMMSS>``
(``-1``, ``-2``, ... when taken, also by a concurrent run).

Every reader (``neurohw export``, :meth:`RunResult.from_dir`, ...) goes through
:meth:`RunDir.open`, which checks the manifest first (:func:`verify_run_dir`): a listed file
that is missing, or whose bytes no longer have the recorded sha256 (edited, damaged), is refused
with one line naming it (exit code 2), and the readers parse the verified bytes. A run directory
without ``manifest.json`` was written before manifests existed: it is read with one warning
saying it cannot be verified."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np

from neurohw import __version__
from neurohw.config import parse_yaml
from neurohw.devices.chip_map import Placement, map_sha256, read_chip_map
from neurohw.devices.model import DeviceModel, validate_device
from neurohw.errors import ConfigError, DataError, UserError
from neurohw.experiments import report
from neurohw.experiments.encoding import EncoderSource
from neurohw.experiments.results import SeedResult, head_state
from neurohw.experiments.schema import ExperimentConfig, dump_config, parse_config
from neurohw.experiments.tasks import task_of
from neurohw.paths import staged_directory
from neurohw.progress import warn
from neurohw.reservoir.lsm import LSMConfig
from neurohw.reservoir.nir_reader import read_reservoir
from neurohw.storage import DamagedEntry, StorageError, file_sha256, read_verified, sha256_bytes, write_bytes_atomic, write_error

#: the manifest of a run directory, written last
MANIFEST = "manifest.json"
#: the layout of manifest.json; bump when it changes
MANIFEST_FORMAT_VERSION = 1
_MANIFEST_MAX_BYTES = 1 << 22
#: the layout of encoders.json; bump when it changes (a reader refuses a newer one)
ENCODERS_FORMAT_VERSION = 1


@dataclass(frozen=True)
class RecordedEncoder:
    """One modality's encoder as ``encoders.json`` records it: the LSMConfig with its scale
    resolved, where its crossbars come from, and the record itself (classes, n_steps, sensor)."""

    modality: str
    lsm: LSMConfig
    source: EncoderSource
    record: dict


@dataclass(frozen=True)
class EncodersRecord:
    """``encoders.json`` read and checked (:meth:`RunDir.from_record`): the device model
    (validated as a device YAML is, consistency check included) and per run seed the records
    of its modalities, in the config's order."""

    device: DeviceModel
    seeds: dict[str, list[dict]]
    where: Path

    def encoders(self, seed: int) -> list[RecordedEncoder]:
        """The encoders of run seed ``seed``: each record's LSMConfig and source (a NIR graph
        or a chip map's cells at the recorded placement; the files must be the run's, sha256
        unchanged)."""
        try:
            records = self.seeds[str(seed)]
            out, chip = [], None
            for rec in records:
                lsm = LSMConfig(**rec["lsm"])
                source = EncoderSource()
                if rec.get("from_nir"):
                    path = self._same_file(rec["from_nir"], "reservoir.from_nir")
                    source = EncoderSource(graph=read_reservoir(path), graph_path=path)
                elif rec.get("conductance_map"):
                    cm = rec["conductance_map"]
                    if chip is None:
                        chip = read_chip_map(self._same_file(cm, "device.conductance_map"), self.device)
                    source = EncoderSource(chip=chip, placements=self._placements(rec["modality"], lsm, cm["placement"]))
                out.append(RecordedEncoder(rec["modality"], lsm, source, rec))
        except UserError:
            raise
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise DataError(f"{self.where}: unreadable or incomplete ({type(exc).__name__}: {exc}); rerun the experiment") from None
        return out

    def _placements(self, modality: str, lsm: LSMConfig, first_tiles: dict) -> tuple[Placement, Placement]:
        """The input and recurrent crossbars where the run placed them (their first tiles as
        recorded; their tile counts by the device's array size, as :func:`place` gives them)."""
        return (Placement.at(f"{modality}/input", lsm.n_inputs, lsm.n_neurons, int(first_tiles["input"]), self.device),
                Placement.at(f"{modality}/recurrent", lsm.n_neurons, lsm.n_neurons, int(first_tiles["recurrent"]), self.device))

    def _same_file(self, entry: dict, key: str) -> str:
        """The file a run read (``entry``: path, sha256), checked to be unchanged."""
        p = Path(entry["path"])
        if not p.exists():
            raise DataError(f"{self.where}: the run's {key} {p} is gone; put it back to export this run")
        if map_sha256(p) != entry["sha256"]:
            raise DataError(f"{self.where}: the run's {key} {p} has changed since the run (sha256 differs); export needs the same file")
        return str(p)


class RunDir:
    """A run directory (see the module doc): the names of its files and the only way to write
    (:meth:`write`) and read (:meth:`open`) it."""

    CONFIG = "config.yaml"
    METRICS = "metrics.json"
    REPORT = "report.md"
    ENCODERS = "encoders.json"
    HEADS = "heads"
    MANIFEST = MANIFEST
    ENCODERS_FORMAT = "neurohw-encoders"
    ENCODERS_FORMAT_VERSION = ENCODERS_FORMAT_VERSION

    def __init__(self, path: Path, files: dict[str, bytes] | None):
        """Use :meth:`open` (or :meth:`write`); ``files``: the verified bytes by relative path,
        None for a run directory without a manifest."""
        self.path = Path(path)
        self._files = files

    @staticmethod
    def head_file(seed: int) -> str:
        """The relative path of run seed ``seed``'s head weights."""
        return f"{RunDir.HEADS}/seed{int(seed)}.safetensors"

    # ------------------------------------------------------------------------- writing

    @classmethod
    def write(cls, cfg: ExperimentConfig, parent: Path, metrics: dict, results: list[SeedResult]) -> RunDir:
        """Write the run directory of ``results`` (one per seed) under ``parent``. A write that
        fails (full disk: "no space left") is one :class:`~neurohw.storage.StorageError` line
        naming the file, and nothing is published."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            path = cls._write(cfg, Path(parent) / f"{cfg.name}-{stamp}", metrics, results)
        except OSError as exc:  # a full disk or a folder that went read-only: nothing was published
            raise write_error(Path(exc.filename) if exc.filename else Path(parent), exc) from None
        return cls(path, None)

    @classmethod
    def _write(cls, cfg: ExperimentConfig, final: Path, metrics: dict, results: list[SeedResult]) -> Path:
        from safetensors.torch import save

        with staged_directory(final, unique=True) as staged:
            tmp = staged.path
            config_text = dump_config(cfg)
            (tmp / cls.CONFIG).write_text(config_text)
            (tmp / cls.HEADS).mkdir()
            for r in results:  # one metadata key (safetensors writes several in a random order): identical bytes
                state = dict(sorted(head_state(r.output.heads).items()))
                meta = {"neurohw": json.dumps({"seed": r.seed, "task": cfg.task}, sort_keys=True)}
                write_bytes_atomic(tmp / cls.head_file(r.seed), save(state, metadata=meta))
            (tmp / cls.ENCODERS).write_text(json.dumps(cls.record(cfg, results), indent=1, default=_json_default))
            figures = []
            if cfg.plots:
                from neurohw.experiments.figures import draw_figures  # matplotlib (~0.5 s): only a run with plots loads it

                figures = draw_figures(tmp, cfg, metrics, results[0])
            (tmp / cls.METRICS).write_text(json.dumps(metrics, indent=2, default=_json_default))
            report.write_report(tmp / cls.REPORT, metrics, figures, config_text, task_of(cfg).report_section(metrics))
            write_manifest(tmp)
        return staged.final

    @classmethod
    def record(cls, cfg: ExperimentConfig, results: list[SeedResult]) -> dict:
        """``encoders.json``: what rebuilds every seed's encoders exactly without the datasets
        or a recalibration (``neurohw export``): the resolved device model and, per seed and
        modality, the LSMConfig with its scale resolved and the files a reservoir came from
        (path, sha256; a chip map's placement as first tiles)."""
        return {
            "format": cls.ENCODERS_FORMAT,
            "format_version": cls.ENCODERS_FORMAT_VERSION,
            "neurohw_version": __version__,
            "device": cfg.device.resolved.model_dump(mode="json"),
            "seeds": {str(r.seed): r.encoders for r in results},
        }

    @classmethod
    def from_record(cls, data: object, where: Path | str = ENCODERS) -> EncodersRecord:
        """``encoders.json``'s content checked: its format and version (a newer or unknown
        version is refused with one line: this neurohw cannot read it), the device validated
        as a device YAML is (:func:`~neurohw.devices.model.validate_device`)."""
        where = Path(where)
        if not isinstance(data, dict) or data.get("format") != cls.ENCODERS_FORMAT:
            raise DataError(f"{where}: not an encoders record (format {cls.ENCODERS_FORMAT!r} expected); rerun the experiment")
        version = data.get("format_version")
        if type(version) is int and version > cls.ENCODERS_FORMAT_VERSION:
            raise DataError(f"{where}: format_version {version} was written by a newer neurohw ({data.get('neurohw_version', '?')}); "
                            f"this one reads up to {cls.ENCODERS_FORMAT_VERSION}: upgrade neurohw to read this run")
        if type(version) is not int or version < 1:
            raise DataError(f"{where}: format_version {version!r} is unknown (this neurohw reads 1 to {cls.ENCODERS_FORMAT_VERSION}); "
                            "rerun the experiment")
        seeds = data.get("seeds")
        if not isinstance(seeds, dict) or not all(isinstance(v, list) for v in seeds.values()):
            raise DataError(f"{where}: unreadable or incomplete (no 'seeds' mapping of lists); rerun the experiment")
        if not isinstance(data.get("device"), dict):
            raise DataError(f"{where}: unreadable or incomplete (no 'device' mapping); rerun the experiment")
        return EncodersRecord(validate_device(data["device"], f"{where}: device"), seeds, where)

    # ------------------------------------------------------------------------- reading

    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """The run directory at ``path``, every file checked against its manifest before
        anything is parsed (:func:`verify_run_dir`)."""
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"{path}: no such run directory; give a folder written by 'neurohw run'")
        if not (path / cls.CONFIG).is_file():
            raise ConfigError(f"{path}: not a run directory (no {cls.CONFIG}); give a folder written by 'neurohw run'")
        return cls(path, verify_run_dir(path))

    def file(self, rel: str) -> Path:
        """The path of file ``rel`` (relative POSIX path) of this run directory."""
        return self.path / rel

    def read(self, rel: str) -> bytes | None:
        """The bytes of file ``rel``, verified against the manifest (read from disk for a run
        directory without one); None when the run directory has no such file."""
        if self._files is not None:
            return self._files.get(rel)
        p = self.file(rel)
        return p.read_bytes() if p.is_file() else None

    def config(self) -> ExperimentConfig:
        """The run's resolved config."""
        where = str(self.file(self.CONFIG))
        raw = self.read(self.CONFIG)
        try:
            text = raw.decode("utf-8") if raw is not None else None
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not a text file (YAML expected)") from None
        data = parse_yaml(text, where, ConfigError) if text is not None else None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: missing, empty or not a mapping; rerun the experiment")
        return parse_config(data, where)

    def metrics(self) -> dict:
        """metrics.json's content."""
        raw = self.read(self.METRICS)
        try:
            if raw is None:
                raise FileNotFoundError(self.METRICS)
            return json.loads(raw)
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.file(self.METRICS)}: missing or unreadable ({type(exc).__name__}); rerun the experiment") from None

    def head_state(self, seed: int) -> dict:
        """Run seed ``seed``'s head weights (``name.param -> tensor``)."""
        from safetensors.torch import load

        rel = self.head_file(seed)
        raw = self.read(rel)
        if raw is None:
            raise DataError(f"{self.file(rel)}: missing; the run directory lacks the trained head of seed {seed} (rerun it)")
        try:
            return load(raw)
        except Exception as exc:
            raise DataError(f"{self.file(rel)}: not a readable safetensors file ({exc})") from None

    def encoders(self) -> EncodersRecord | None:
        """``encoders.json`` read and checked (:meth:`from_record`); None for a run directory
        written before it existed."""
        raw = self.read(self.ENCODERS)
        if raw is None:
            return None
        where = self.file(self.ENCODERS)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise DataError(f"{where}: unreadable ({exc}); rerun the experiment") from None
        return self.from_record(data, where)


@dataclass(frozen=True)
class RunResult:
    """A finished run: its directory and metrics.json's content (see docs/experiments.md)."""

    path: Path
    metrics: dict

    @classmethod
    def from_dir(cls, path: str | Path) -> RunResult:
        """Read a run directory written by :func:`neurohw.run`, its manifest verified first
        (:meth:`RunDir.open`)."""
        run = RunDir.open(path)
        return cls(run.path, run.metrics())

    @property
    def test_accuracy(self) -> float | None:
        """Mean test accuracy over seeds (classification tasks)."""
        return self.metrics.get("test_accuracy")

    @property
    def zero_shot(self) -> dict | None:
        """Mean top-1 retrieval ``{seen|unseen: {a_to_b, b_to_a}}`` over seeds (zero_shot)."""
        return self.metrics.get("zero_shot")

    def __repr__(self) -> str:
        shown = {k: self.metrics[k] for k in ("test_accuracy", "zero_shot", "chance") if k in self.metrics}
        return f"RunResult({str(self.path)!r}, {shown})"


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


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
