"""A finished run directory out to the tools that program and run devices (``neurohw export``).

From a run directory, read through :class:`~neurohw.experiments.run_dir.RunDir` (its resolved
``config.yaml``, ``heads/seed<N>.safetensors`` and ``encoders.json``) the encoders of one run seed are rebuilt exactly as the run had them
(:func:`neurohw.experiments.encoding.build_encoder` from the recorded LSMConfig, calibrated
scale included: neither the datasets nor a recalibration are needed), the heads are loaded, and
one format is written (:data:`~.formats.FORMATS`, docs/export.md):

- ``conductance-hdf5``: one file, the whole chip and every crossbar (:mod:`.chip_map`);
- ``conductance-csv``: a folder, one CSV per tile;
- ``nir``: a folder, one graph per modality (``<modality>.nir``, :mod:`.nir_graph`), the head
  as Affine nodes where it is an affine map of the firing rates;
- ``head-onnx``: a folder, one ONNX model per head (:mod:`.onnx_head`), checked by
  ``onnx.checker`` and against the torch head with onnxruntime;
- ``head-safetensors``: one file, the heads' tensors and what they read;
- ``bundle``: a folder with all of them and ``manifest.json`` (files, sha256, versions).

A run directory without ``encoders.json`` (written before it existed) is rebuilt through
:meth:`~neurohw.experiments.encoding.ModalityReservoir.for_seed`, which needs the run's datasets
and recalibrates ``target_rate``. Outputs are written atomically; an existing path is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurohw import __version__
from neurohw.data.registry import load_dataset
from neurohw.devices.chip_map import place, reservoir_crossbars
from neurohw.errors import ConfigError, DataError, did_you_mean
from neurohw.experiments.encoding import ModalityReservoir, build_encoder
from neurohw.experiments.modalities import resolve_modalities
from neurohw.experiments.run_dir import RunDir
from neurohw.experiments.tasks import task_of
from neurohw.export.chip_map import FORMAT_VERSION, write_csv_tiles, write_hdf5
from neurohw.export.formats import FILE_FORMATS, FORMATS
from neurohw.export.nir_graph import ReadoutAffine, readout_affine, write_nir
from neurohw.export.onnx_head import OPSET, check_onnx, head_to_onnx
from neurohw.export.operating_point import operating_point, to_json
from neurohw.heads.ridge import RidgeReadout
from neurohw.paths import atomic_path, check_writable_folder, staged_directory
from neurohw.reservoir.backends import is_url
from neurohw.storage import file_sha256

BUNDLE_FORMAT_VERSION = 2  # 2: a file's length is 'size' (bytes), as docs/export.md says
#: a bundle's own manifest (its files' sizes and sha256, the versions); not a run directory's
BUNDLE_MANIFEST = "manifest.json"


@dataclass
class ExportedEncoder:
    """One modality's rebuilt encoder and what the run recorded about it."""

    modality: str
    encoder: object
    record: dict


@dataclass
class Head:
    """One trained head: its name in the run (``readout``, ``contrastive``, ``prototypical``),
    the modality it reads, the torch module and its output name."""

    name: str
    modality: str
    module: object
    output: str

    @property
    def file_stem(self) -> str:
        return f"{self.name}_{self.modality}"


@dataclass
class RunArtifacts:
    """A run directory's config, one seed's encoders and heads (see the module doc)."""

    path: Path
    cfg: object
    seed: int
    encoders: list[ExportedEncoder]
    state: dict | None
    heads: list[Head] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: str | Path, seed: int | None = None, need_heads: bool = True) -> RunArtifacts:
        run = RunDir.open(run_dir)  # every file checked against the run's manifest before anything is parsed
        cfg = run.config()
        seeds = list(cfg.run_seeds)
        seed = seeds[0] if seed is None else int(seed)
        if seed not in seeds:
            raise ConfigError(f"--seed {seed}: the run has seeds {seeds}; pick one of them")
        state = run.head_state(seed) if need_heads else None
        art = cls(run.path, cfg, seed, _encoders(run, cfg, seed), state)
        if state is not None:
            art.heads = _heads(cfg, state, [e.modality for e in art.encoders], run.file(run.head_file(seed)))
        return art


# ----------------------------------------------------------------------------- encoders


def _encoders(run, cfg, seed: int) -> list[ExportedEncoder]:
    """The encoders of run seed ``seed`` as the run's ``encoders.json`` records them
    (:meth:`~neurohw.experiments.run_dir.RunDir.encoders`), built on the recorded device."""
    record = run.encoders()
    if record is None:
        return _rebuilt(run, cfg, seed)
    out = []
    for e in record.encoders(seed):
        _local(e.lsm.backend, record.where)
        out.append(ExportedEncoder(e.modality, build_encoder(e.lsm, record.device, e.source), e.record))
    return out


def _local(backend: str, where: Path) -> None:
    """A run whose crossbars were formed on a chip over a link (``hil://``) read them back from
    it; the run directory does not hold them, and forming again would give other cells."""
    if is_url(backend):
        raise DataError(f"{where}: this run's reservoir ran on a chip ({backend}); its crossbars were read back from it and "
                        "are not in the run directory, so export cannot rebuild them; export a run of a local backend")


def _rebuilt(run, cfg, seed: int) -> list[ExportedEncoder]:
    """Encoders of a run directory without encoders.json: rebuilt as the run built them."""
    try:
        mods = resolve_modalities(cfg, progress=False)
    except DataError as exc:
        raise DataError(f"{run.path} has no {run.ENCODERS} (written by runs of neurohw >= 0.1 with export support); "
                        f"rebuilding its encoders needs the run's data: {exc}") from None
    out = []
    for res in ModalityReservoir.for_seed(cfg, mods, seed):
        _local(res.lsm.backend, run.file(run.CONFIG))
        enc = res.encoder  # forms and, with target_rate, calibrates on the run's calibration samples
        out.append(ExportedEncoder(res.mod.name, enc, res.record()))
    return out


# ----------------------------------------------------------------------------- heads


def _heads(cfg, state: dict, modalities: list[str], where: Path) -> list[Head]:
    try:
        return [Head(name, modalities[i], module, output) for name, i, module, output in task_of(cfg).rebuild_heads(cfg, state)]
    except (KeyError, RuntimeError, ValueError) as exc:
        raise DataError(f"{where}: does not hold the heads its config.yaml describes ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0]})") from None


def _nir_readout(art: RunArtifacts, enc: ExportedEncoder):
    """``(ReadoutAffine or None, note)``: the modality's head as one affine map of the rates, or
    why it is not one."""
    cfg = art.cfg
    name = task_of(cfg).main_head
    head = next((h for h in art.heads if h.name == name and h.modality == enc.modality), None)
    if head is None:
        return None, "no trained head for this modality"
    if list(cfg.head.features) != ["rate"]:
        return None, f"the head reads {list(cfg.head.features)}; only a head of the firing rate alone is an affine map of the spikes"
    n_steps = enc.record.get("n_steps")
    if not n_steps:
        return None, "the samples have no fixed number of time bins (binning.bin_width_us without max_bins): rate = count / T varies"
    module = head.module
    if isinstance(module, RidgeReadout):
        linear = module.linear
    else:
        linears = [m for m in module.net if hasattr(m, "weight")]
        if len(linears) != 1:
            return None, "the head has hidden layers (ReLU has no NIR node)"
        linear = linears[0]
        if getattr(module, "normalize", False):
            return None, "the projection is L2-normalised (no NIR node)"
    w, b = readout_affine(module.norm.mean.numpy(), module.norm.std.numpy(), linear.weight.detach().numpy(),
                          linear.bias.detach().numpy())
    meta = {"head": name, "modality": enc.modality, "run_seed": art.seed, "task": cfg.task}
    if head.output == "logits":
        meta["classes"] = json.dumps(enc.record.get("classes", []))
    return ReadoutAffine("readout", w, b, int(n_steps), head.output, meta), ""


# ----------------------------------------------------------------------------- writers


def _meta(art: RunArtifacts) -> dict:
    return {"run": str(art.path.resolve()), "run_name": str(art.cfg.name), "run_seed": int(art.seed), "task": str(art.cfg.task)}


def _placed(art: RunArtifacts):
    """``(placement, crossbar at the encoder's scale)`` of every crossbar, in the run's order."""
    device = art.encoders[0].encoder.device
    xbs, shapes = [], []
    for e in art.encoders:
        xin, xrec = e.encoder.crossbars()
        xbs += [xin, xrec]
        shapes += reservoir_crossbars(e.modality, xin.n_in, xin.n_out)
    return list(zip(place(shapes, device), xbs)), device


def _sensor(art: RunArtifacts, enc: ExportedEncoder) -> tuple[list | None, bool | None]:
    """``(sensor_size, camera)`` of a modality's dataset: from the run's record, else (a run
    written before the record held it) from the dataset itself; ``(None, None)`` when neither."""
    if "sensor" in enc.record:
        return list(enc.record["sensor"]["size"]), bool(enc.record["sensor"]["camera"])

    spec = art.cfg.data[enc.modality]
    try:
        ds = load_dataset(spec.dataset, spec.train_split, root=spec.root, progress=False, **spec.options)
    except (ConfigError, DataError):
        return None, None
    return list(ds.sensor_size), bool(ds.is_camera)


def operating_points(art: RunArtifacts) -> list[dict]:
    """Each modality's operating point and input wiring (:mod:`.operating_point`)."""
    out = []
    for e in art.encoders:
        size, camera = _sensor(art, e)
        c = e.encoder.config
        out.append(operating_point(e.encoder, e.modality, art.cfg.data[e.modality].binning, size, camera,
                                   c.features, c.count_bins))
    return out


def write_conductance_hdf5(art: RunArtifacts, path: Path) -> list[Path]:
    records, device = _placed(art)
    return [write_hdf5(path, records, device, _meta(art), operating_points(art))]


def write_conductance_csv(art: RunArtifacts, folder: Path) -> list[Path]:
    records, device = _placed(art)
    written = write_csv_tiles(folder, records, device, _meta(art))
    sidecar = folder / "operating_point.json"
    sidecar.write_text(json.dumps({**to_json(operating_points(art)), "run": _meta(art)}, indent=1) + "\n")
    return [*written, sidecar]


def write_nir_graphs(art: RunArtifacts, folder: Path) -> list[Path]:
    out = []
    for e in art.encoders:
        readout, note = _nir_readout(art, e)
        out.append(write_nir(e.encoder, folder / f"{e.modality}.nir", readout=readout, readout_note=note))
    return out


def _probe(head: Head, seed: int) -> np.ndarray:
    """Features to check the ONNX head on: the training mean +- 3 std, seeded."""
    norm = head.module.norm
    rng = np.random.default_rng([seed, 11])
    z = rng.standard_normal((64, int(norm.mean.numel())))
    return (norm.mean.numpy() + 3 * z * norm.std.numpy()).astype(np.float32)


def write_head_onnx(art: RunArtifacts, folder: Path) -> list[Path]:
    import onnx

    out = []
    for h in art.heads:
        meta = {"neurohw_version": __version__, "head": h.name, "modality": h.modality, "run_seed": art.seed,
                "features": json.dumps(list(art.cfg.head.features)), "task": art.cfg.task}
        rec = next((e.record for e in art.encoders if e.modality == h.modality), {})
        if h.output == "logits":
            meta["classes"] = json.dumps(rec.get("classes", []))
        model = head_to_onnx(h.module, h.output, meta)
        check_onnx(model, h.module, _probe(h, art.seed))
        path = folder / f"{h.file_stem}.onnx"
        onnx.save(model, str(path))
        out.append(path)
    return out


def write_head_safetensors(art: RunArtifacts, path: Path) -> list[Path]:
    meta = {"format": "neurohw-heads", "format_version": "1", "neurohw_version": __version__, "task": str(art.cfg.task),
            "run_seed": str(art.seed), "head_kind": str(art.cfg.head_kind), "features": json.dumps(list(art.cfg.head.features)),
            "heads": json.dumps([{"name": h.name, "modality": h.modality, "output": h.output,
                                  "in_dim": int(h.module.norm.mean.numel())} for h in art.heads]),
            "classes": json.dumps({e.modality: e.record.get("classes", []) for e in art.encoders}),
            "layout": "<head>.norm.{mean,std} standardise the features; then the head's Linear layers (weight (out, in))"}
    state = {k: v.contiguous() for k, v in sorted(art.state.items())}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_safetensors(state, tmp, meta)
    return [path]


def save_safetensors(state: dict, path: Path, metadata: dict[str, str]) -> Path:
    """``safetensors.torch.save_file``, then its JSON header rewritten with sorted keys (the
    library writes its metadata map in a random order, so identical heads gave different
    bytes); same length, spaces pad it as the format allows, tensor offsets unchanged."""
    from safetensors.torch import save_file

    save_file(state, str(path), metadata=metadata)
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        text = json.dumps(json.loads(f.read(n)), sort_keys=True, separators=(",", ":")).encode()
        if len(text) <= n:
            f.seek(8)
            f.write(text + b" " * (n - len(text)))
    return path


WRITERS = {
    "conductance-hdf5": write_conductance_hdf5,
    "conductance-csv": write_conductance_csv,
    "nir": write_nir_graphs,
    "head-onnx": write_head_onnx,
    "head-safetensors": write_head_safetensors,
}
#: where each format goes inside a bundle
BUNDLE_LAYOUT = {"conductance-hdf5": "conductance.h5", "conductance-csv": "conductance_csv", "nir": "nir",
                 "head-onnx": "onnx", "head-safetensors": "heads.safetensors"}


def versions() -> dict:
    """Versions of neurohw, the file formats and the libraries that wrote them."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"neurohw": __version__, "conductance_map_format": FORMAT_VERSION, "bundle_format": BUNDLE_FORMAT_VERSION,
           "onnx_opset": OPSET}
    for pkg in ("nir", "onnx", "onnxruntime", "torch", "numpy", "h5py", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def write_bundle(art: RunArtifacts, folder: Path) -> list[Path]:
    files = []
    for fmt, writer in WRITERS.items():
        target = folder / BUNDLE_LAYOUT[fmt]
        if fmt not in FILE_FORMATS:
            target.mkdir()
        files += writer(art, target)
    manifest = {
        "format": "neurohw-export-bundle",
        "format_version": BUNDLE_FORMAT_VERSION,
        "versions": versions(),
        "run": _meta(art),
        "files": [{"path": p.relative_to(folder).as_posix(), "format": _format_of(p.relative_to(folder)),
                   "size": p.stat().st_size, "sha256": file_sha256(p)} for p in sorted(files)],
    }
    path = folder / BUNDLE_MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return [*files, path]


def _format_of(rel: Path) -> str:
    top = rel.parts[0]
    return next(fmt for fmt, where in BUNDLE_LAYOUT.items() if where == top)


def export_run(run_dir: str | Path, fmt: str, out: str | Path, seed: int | None = None) -> list[Path]:
    """Write format ``fmt`` of run seed ``seed`` (default: the run's first) of ``run_dir`` to
    ``out`` (a file for :data:`FILE_FORMATS`, else a folder); returns the files written (their
    final paths). ``out`` must not exist; it appears complete or not at all."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}{did_you_mean(fmt, FORMATS)}; formats: {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise ConfigError(f"--out {out} already exists; give a new path")
    check_writable_folder(out.parent, "--out: folder")
    need_heads = fmt not in ("conductance-hdf5", "conductance-csv")
    art = RunArtifacts.load(run_dir, seed, need_heads=need_heads)
    if fmt in FILE_FORMATS:
        with atomic_path(out, suffix=FILE_FORMATS[fmt]) as tmp:
            tmp.unlink()
            WRITERS[fmt](art, tmp)
        return [out]
    writer = write_bundle if fmt == "bundle" else WRITERS[fmt]
    with staged_directory(out) as staged:
        written = writer(art, staged.path)
    return [out / p.relative_to(staged.path) for p in written]
