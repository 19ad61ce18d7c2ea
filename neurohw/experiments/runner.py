"""The run: data -> binning -> features (cached) -> task -> run directory.

Everything a user can get wrong is checked before anything is written: the config (schema),
the datasets (their files must exist), the device model. The run directory is assembled in a
hidden temporary sibling (``.<name>.partial-<pid>``) and renamed onto its final name in one step
at the end, so a killed or failing run never leaves a half-written result; stale partial
folders of dead processes are removed by the next run in the same output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

import neurohw
from neurohw.errors import ConfigError, DataError
from neurohw.experiments.feature_cache import FeatureCache, compute_cached
from neurohw.experiments.features import FeatureSet, TaskOutput, assemble, head_state
from neurohw.experiments.schema import ExperimentConfig, dump_config

#: ``b -> a`` style labels of the modalities in metrics.json
SIDES = ("a", "b")


@dataclass
class Modality:
    """One modality's datasets and selected samples, resolved before anything runs."""

    name: str
    spec: object  # DataSpec
    train: object  # EventDataset
    test: object
    binning: object  # Binning
    n_inputs: int


def _log(progress: bool, msg: str) -> None:
    if progress:
        from rich.console import Console

        Console(stderr=True).print(msg)


# ----------------------------------------------------------------------------- preparation


def resolve_modalities(cfg: ExperimentConfig) -> list[Modality]:
    """Open every dataset split (missing files raise DataError) and compute input sizes."""
    from neurohw.data.binning import Binning, n_channels
    from neurohw.data.registry import load_dataset

    out = []
    for name, spec in cfg.data.items():
        splits = []
        for split in (spec.train_split, spec.test_split):
            try:
                splits.append(load_dataset(spec.dataset, split, root=spec.root, **spec.options))
            except (ConfigError, DataError) as exc:
                raise type(exc)(f"data.{name}: {exc}") from None
        binning = Binning(**spec.binning)
        try:
            n_in = n_channels(splits[0].sensor_size, binning, camera=splits[0].is_camera)
        except ConfigError as exc:
            raise ConfigError(f"data.{name}.binning: {exc}") from None
        out.append(Modality(name, spec, splits[0], splits[1], binning, n_in))
    return out


def select_samples(labels: np.ndarray, per_class: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices: all samples, or at most ``per_class`` random ones of each class."""
    if per_class is None:
        return np.arange(len(labels))
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def lsm_config(cfg: ExperimentConfig, mod: Modality, index: int, seed: int):
    """The modality's LSMConfig: n_inputs from the binning; seed and backend from the run unless given."""
    from neurohw.reservoir.lsm import LSMConfig

    raw = dict(cfg.reservoir[mod.name])
    raw["n_inputs"] = mod.n_inputs
    raw.setdefault("seed", 1000 * seed + index)  # distinct reservoirs per modality and per run seed
    raw.setdefault("backend", cfg.backend)
    return LSMConfig(**raw)


# ----------------------------------------------------------------------------- features


class ModalityEncoder:
    """Builds the encoder on first use (calibrated on the training selection), encodes samples,
    and counts the crossbar operations of every encoding for the energy estimate."""

    def __init__(self, cfg: ExperimentConfig, mod: Modality, index: int, seed: int, device, calibration=None):
        self.cfg, self.mod, self.seed, self.device = cfg, mod, seed, device
        self.lsm = lsm_config(cfg, mod, index, seed)
        self.calibration = calibration  # (dataset, indices): the samples that set target_rate's scale
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            from neurohw.reservoir.lsm import LSMEncoder

            enc = LSMEncoder(self.lsm, self.device)
            if self.lsm.target_rate is not None:
                ds, idx = self.calibration
                enc.calibrate(self.rasters(ds, idx[: self.lsm.calibration_samples]))
            self._encoder = enc
        return self._encoder

    def rasters(self, ds, indices: np.ndarray) -> list[np.ndarray]:
        from neurohw.data.binning import to_raster

        return [to_raster(ds.events(int(i)), ds.sensor_size, self.mod.binning) for i in indices]

    def encode(self, ds, indices: np.ndarray, noise_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Features of ``ds[indices]``; read noise keyed by ``noise_ids`` (unique per sample and
        split, so the numbers do not depend on how the samples are batched or resumed)."""
        from neurohw.data.binning import to_sparse

        enc = self.encoder
        rasters = self.rasters(ds, indices)
        res = enc._run(enc._synapses, [to_sparse(r) for r in rasters], np.asarray(noise_ids), self.lsm.noise, True)
        feats = {f: np.asarray(getattr(res, f)) for f in self.lsm.features}
        analog, digital = zip(*(encoding_energy(enc, r, s) for r, s in zip(rasters, res.spikes)))
        feats["_encoder_j"] = np.asarray(analog)
        feats["_digital_j"] = np.asarray(digital)
        return feats

    def sample_spikes(self, ds, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Input raster and reservoir spikes (T, n) of sample ``i`` (for the raster plot)."""
        raster = self.rasters(ds, np.array([i]))[0]
        return raster, np.asarray(self.encoder.encode([raster], 1, progress=False, record_spikes=True)["spikes"][0])

    def cache_spec(self, split: str, ds, indices: np.ndarray) -> dict:
        spec = self.mod.spec
        cal = None
        if self.lsm.target_rate is not None:
            cal = _sha(self.calibration[1][: self.lsm.calibration_samples])
        return {
            "data": {"dataset": spec.dataset, "root": spec.root, "options": spec.options, "split": split},
            "binning": self.mod.binning.model_dump(mode="json"),
            "device": self.device.model_dump(mode="json"),
            "reservoir": self.lsm.model_dump(mode="json", exclude={"backend", "threads"}),
            "seed": self.seed,
            "samples": {"n": int(len(ds)), "indices_sha": _sha(indices), "calibration_sha": cal},
            "dataset": dataset_fingerprint(ds),
        }


def dataset_fingerprint(ds) -> dict:
    """What identifies a dataset's content cheaply: its generator version/model and its labels."""
    meta = {k: v for k, v in ds.meta.items() if k in ("version", "model", "seed", "source", "format") and isinstance(v, (str, int))}
    return {**meta, "labels_sha": _sha(ds.labels)}


def _sha(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()


def crossbar_read_energy(xb, active: np.ndarray) -> tuple[float, float]:
    """Joules of reading crossbar ``xb`` once per row of ``active`` (S, n_in), by the counting
    rules of :mod:`neurohw.devices.energy`; and the digital baseline's joules for the same dense
    products (S * n_in * n_out MACs). Binary inputs are one plane; count inputs on a bit-serial
    device are read one plane per bit (bit k of every input at once), as ``Crossbar.mvm`` does."""
    from neurohw.devices.energy import EnergyLedger

    ledger = EnergyLedger(xb.device.energy, xb.device.timing, xb.device.digital_baseline)
    s = active.shape[0]
    active = np.asarray(active)
    top = int(active.max(initial=0))
    if top > 1 and xb.device.input.bit_serial:
        planes = [(active.astype(np.int64) >> k) & 1 for k in range(top.bit_length())]
        active = np.concatenate(planes, axis=0)  # one read per (row, bit plane)
    pad = xb.n_tiles * xb.tile_rows - xb.n_in
    r = active.shape[0]
    a = (np.concatenate([active, np.zeros((r, pad), dtype=active.dtype)], axis=1) if pad else active) != 0
    per_tile = a.reshape(r, xb.n_tiles, xb.tile_rows).sum(-1)  # active rows per (read, row tile)
    reads, rows = int(np.count_nonzero(per_tile)), int(per_tile.sum())
    ledger.add(read_cycles=reads * xb.n_col_tiles, active_rows=rows * xb.n_col_tiles, cell_reads=rows * 2 * xb.n_out,
               adc_conversions=reads * xb.n_out, macs=s * xb.n_in * xb.n_out)
    return ledger.joules(include_programming=False), ledger.digital_baseline_joules()


def encoding_energy(encoder, raster: np.ndarray, spikes: np.ndarray) -> tuple[float, float]:
    """(analog joules, digital-baseline joules) of one sample: the input crossbar is read with the
    active inputs of every time bin, the recurrent one with the previous bin's spikes."""
    e_in, d_in = crossbar_read_energy(encoder.crossbar_in, np.asarray(raster))
    prev = np.asarray(spikes)[:-1]
    e_rec, d_rec = crossbar_read_energy(encoder.crossbar_rec, prev) if len(prev) else (0.0, 0.0)
    return e_in + e_rec, d_in + d_rec


def extract(menc: ModalityEncoder, split: str, ds, indices: np.ndarray, batch_size: int, progress: bool):
    """Features of ``ds[indices]`` through the cache; returns (features, energy per sample, encode_s)."""
    cache = FeatureCache(menc.cache_spec(split, ds, indices), len(indices))
    offset = 0 if split == "train" else 1 << 40  # noise ids: dataset index, test split shifted
    feats, attrs = compute_cached(
        cache, lambda block: menc.encode(ds, indices[block], offset + indices[block]), batch_size, progress,
        f"features {menc.mod.name}/{split}",
    )
    energy = {"encoder_j": float(np.mean(feats.pop("_encoder_j"))), "digital_j": float(np.mean(feats.pop("_digital_j")))}
    return feats, energy, float(attrs.get("encode_s", 0.0)), cache.path


# ----------------------------------------------------------------------------- the run


def run_experiment(cfg: ExperimentConfig, out: str | Path | None = None, progress: bool = True) -> Path:
    """Run ``cfg`` for every seed; write the run directory atomically; return its path."""
    from neurohw.devices.model import load_device

    device = load_device(cfg.device.model, cfg.device.overrides or None)
    mods = resolve_modalities(cfg)
    parent = Path(out if out is not None else cfg.output)
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"output {parent} exists and is not a folder; choose another with --out")

    per_seed, outputs, timings, energies, sample_plot = [], [], [], [], None
    for seed in cfg.run_seeds:
        _log(progress, f"[bold]seed {seed}[/bold]")
        res = _run_seed(cfg, mods, device, seed, progress)
        per_seed.append(res["metrics"])
        outputs.append(res["output"])
        timings.append(res["timing"])
        energies.append(res["energy"])
        if sample_plot is None:
            sample_plot = res["plot"]
    metrics = aggregate(cfg, mods, per_seed, timings, energies)
    return write_run_dir(cfg, parent, metrics, outputs, sample_plot)


def modality_encoders(cfg: ExperimentConfig, mods: list[Modality], device, seed: int):
    """For each modality of run seed ``seed``: (modality, its ModalityEncoder, train indices,
    test indices). The sample selection and the calibration order are drawn from the seed."""
    out = []
    for i, mod in enumerate(mods):
        rng = np.random.default_rng([seed, 7, i])
        train_idx = select_samples(mod.train.labels, mod.spec.max_train_per_class, rng)
        test_idx = select_samples(mod.test.labels, mod.spec.max_test_per_class, rng)
        cal = rng.permutation(train_idx)  # target_rate calibrates on the first samples of this order
        out.append((mod, ModalityEncoder(cfg, mod, i, seed, device, calibration=(mod.train, cal)), train_idx, test_idx))
    return out


def _run_seed(cfg: ExperimentConfig, mods: list[Modality], device, seed: int, progress: bool) -> dict:
    sets, energy, feat_s, plot = {}, {"encoder_j": 0.0, "digital_j": 0.0}, 0.0, {"maps": {}, "rasters": {}}
    for mod, menc, train_idx, test_idx in modality_encoders(cfg, mods, device, seed):
        for split, ds, idx in (("train", mod.train, train_idx), ("test", mod.test, test_idx)):
            t0 = time.perf_counter()
            feats, e, encode_s, _ = extract(menc, split, ds, idx, cfg.batch_size, progress)
            feat_s += time.perf_counter() - t0
            if split == "test":
                energy["encoder_j"] += e["encoder_j"]
                energy["digital_j"] += e["digital_j"]
            sets[(mod.name, split)] = (FeatureSet(assemble(feats, cfg.head.features), ds.labels[idx], list(ds.classes)), idx)
        if cfg.plots:
            plot["maps"].update(_conductance_maps(menc))
            plot["rasters"][mod.name] = menc.sample_spikes(mod.test, int(test_idx[0]))
    t0 = time.perf_counter()
    output = _run_task(cfg, mods, sets, seed, progress)
    train_s = time.perf_counter() - t0
    metrics = {"seed": seed, **output.metrics}
    baselines = {}
    if cfg.baselines.srnn.enabled:
        baselines = _run_srnn(cfg, mods, sets, seed, progress, output)
        metrics["baselines"] = baselines
    head_j = output.head_macs * device.digital_baseline.mac_j
    return {
        "metrics": metrics,
        "output": output,
        "timing": {"features_s": feat_s, "train_s": output.train_s, "task_s": train_s},
        "energy": {
            "encoder_j_per_sample": energy["encoder_j"],
            "head_j_per_sample": head_j,
            "digital_baseline_j_per_sample": energy["digital_j"] + head_j,
            "mac_j": device.digital_baseline.mac_j,
            "head_macs_per_sample": output.head_macs,
        },
        "plot": plot,
    }


def _run_task(cfg, mods, sets, seed, progress) -> TaskOutput:
    if cfg.task in ("classify", "linear_probe"):
        from neurohw.experiments.classify import run_classify

        m = mods[0].name
        hidden = [] if cfg.task == "linear_probe" or cfg.head_kind == "linear" else (cfg.head.hidden or [128])
        return run_classify(sets[(m, "train")][0], sets[(m, "test")][0], cfg.head, hidden, seed, progress)
    from neurohw.experiments.zero_shot import run_zero_shot

    a, b = mods[0].name, mods[1].name
    args = (sets[(a, "train")][0], sets[(b, "train")][0], sets[(a, "test")][0], sets[(b, "test")][0], cfg.head, cfg.zero_shot, seed)
    objectives = ("contrastive", "prototypical") if cfg.zero_shot.prototypical_baseline else ("contrastive",)
    out = run_zero_shot(*args, progress=progress, objectives=objectives)
    if cfg.zero_shot.rotations:
        rots = []
        for rot in cfg.zero_shot.rotations:
            r = run_zero_shot(*args, progress=progress, unseen=[str(c) for c in rot])
            rots.append({k: r.metrics[k] for k in ("seen_classes", "unseen_classes", "zero_shot", "chance")})
        out.metrics["rotations"] = rots
    return out


def _run_srnn(cfg, mods, sets, seed, progress, lsm_output: TaskOutput) -> dict:
    """The trainable spiking-RNN baseline on the same samples; its training time beside the LSM's."""
    from neurohw.baselines import spiking_rnn as srnn
    from neurohw.experiments.features import stratified_split

    s = cfg.baselines.srnn
    _log(progress, "training the spiking-RNN baseline (BPTT)")
    rng = np.random.default_rng([seed, 51])
    if cfg.task != "zero_shot":
        mod = mods[0]
        menc = ModalityEncoder(cfg, mod, 0, seed, None)
        tr_idx, te_idx = sets[(mod.name, "train")][1], sets[(mod.name, "test")][1]
        x_tr = srnn.stack_rasters(menc.rasters(mod.train, tr_idx))
        x_te = srnn.stack_rasters(menc.rasters(mod.test, te_idx))
        y_tr, y_te = mod.train.labels[tr_idx], mod.test.labels[te_idx]
        a, v = stratified_split(y_tr, cfg.head.val_fraction, rng)
        res = srnn.train_classifier(x_tr[a], y_tr[a], x_tr[v], y_tr[v], x_te, y_te, len(mod.train.classes), s.hidden,
                                    s.beta, s.epochs, s.lr, s.batch_size, seed)
    else:
        res = _run_srnn_contrastive(cfg, mods, sets, seed, rng)
    res["lsm_head_train_s"] = lsm_output.train_s
    res["training_cost_ratio"] = res["train_s"] / max(lsm_output.train_s, 1e-9)
    return res


def _run_srnn_contrastive(cfg, mods, sets, seed, rng) -> dict:
    from neurohw.baselines import spiking_rnn as srnn
    from neurohw.experiments.features import stratified_split
    from neurohw.experiments.zero_shot import make_pairs

    s, zs = cfg.baselines.srnn, cfg.zero_shot
    seen, unseen = [str(c) for c in zs.seen], [str(c) for c in zs.unseen]
    pool = seen + unseen
    encs = [ModalityEncoder(cfg, m, i, seed, None) for i, m in enumerate(mods)]

    def raster_set(k, split):
        mod = mods[k]
        fs, idx = sets[(mod.name, split)]
        ds = mod.train if split == "train" else mod.test
        x = srnn.stack_rasters(encs[k].rasters(ds, idx))
        return FeatureSet(x.reshape(len(x), -1).numpy(), fs.labels, fs.classes), x.shape[1:]

    (a_tr, sa), (b_tr, sb) = raster_set(0, "train"), raster_set(1, "train")
    (a_te, _), (b_te, _) = raster_set(0, "test"), raster_set(1, "test")
    a_fit, a_val = stratified_split(a_tr.labels, cfg.head.val_fraction, rng)
    b_fit, b_val = stratified_split(b_tr.labels, cfg.head.val_fraction, rng)

    def torch_pairs(p, shape_a, shape_b):
        import torch

        return (torch.from_numpy(p.xa.reshape(-1, *shape_a)), torch.from_numpy(p.xb.reshape(-1, *shape_b)), p.y)

    train_p = make_pairs(a_tr.take(a_fit), b_tr.take(b_fit), pool, seen, None, rng)
    val_p = make_pairs(a_tr.take(a_val), b_tr.take(b_val), pool, seen, None, rng)
    tes = make_pairs(a_te, b_te, pool, seen, zs.test_pairs_per_class, rng)
    teu = make_pairs(a_te, b_te, pool, unseen, zs.test_pairs_per_class, rng)
    xa, xb, y = torch_pairs(train_p, sa, sb)
    return srnn.train_contrastive(xa, xb, y, torch_pairs(val_p, sa, sb), torch_pairs(tes, sa, sb), torch_pairs(teu, sa, sb),
                                  s.hidden, s.beta, s.dim, cfg.head.temperature, s.epochs, s.lr, s.batch_size, seed)


def _conductance_maps(menc: ModalityEncoder) -> dict:
    enc = menc.encoder
    return {
        f"{menc.mod.name} input": (np.asarray(enc.crossbar_in.g_pos), np.asarray(enc.crossbar_in.g_neg)),
        f"{menc.mod.name} recurrent": (np.asarray(enc.crossbar_rec.g_pos), np.asarray(enc.crossbar_rec.g_neg)),
    }


# ----------------------------------------------------------------------------- aggregation and output


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _agg_retrieval(items: list[dict]) -> tuple[dict, dict]:
    mean, std = {}, {}
    for s in ("seen", "unseen"):
        mean[s], std[s] = {}, {}
        for d in ("a_to_b", "b_to_a"):
            mean[s][d], std[s][d] = _mean_std([it[s][d] for it in items])
    return mean, std


def aggregate(cfg: ExperimentConfig, mods, per_seed: list[dict], timings: list[dict], energies: list[dict]) -> dict:
    """metrics.json: means over seeds (std with ddof=1 beside them), per-seed details kept."""
    m: dict = {
        "name": cfg.name,
        "task": cfg.task,
        "seed": cfg.run_seeds[0],
        "seeds": cfg.run_seeds,
        "neurohw_version": neurohw.__version__,
        "modalities": [x.name for x in mods],
    }
    if cfg.task in ("classify", "linear_probe"):
        m["test_accuracy"], m["test_accuracy_std"] = _mean_std([p["test_accuracy"] for p in per_seed])
        m["chance"] = per_seed[0]["chance"]
    else:
        m["zero_shot"], m["zero_shot_std"] = _agg_retrieval([p["zero_shot"] for p in per_seed])
        m["chance"] = per_seed[0]["chance"]
        m["classes"] = {"seen": per_seed[0]["seen_classes"], "unseen": per_seed[0]["unseen_classes"]}
        m["selection"] = cfg.zero_shot.selection
        m["optimistic"] = cfg.zero_shot.selection != "validation"
        if "zero_shot_prototypical" in per_seed[0]:
            m["zero_shot_prototypical"], m["zero_shot_prototypical_std"] = _agg_retrieval(
                [p["zero_shot_prototypical"] for p in per_seed]
            )
        if per_seed[0].get("rotations"):
            rots = []
            for k, r in enumerate(per_seed[0]["rotations"]):
                mean, std = _agg_retrieval([p["rotations"][k]["zero_shot"] for p in per_seed])
                rots.append({"unseen_classes": r["unseen_classes"], "zero_shot": mean, "zero_shot_std": std, "chance": r["chance"]})
            m["rotations"] = rots
    if per_seed[0].get("baselines"):
        b = {}
        for key, v in per_seed[0]["baselines"].items():
            if isinstance(v, (int, float)):
                b[key] = _mean_std([p["baselines"][key] for p in per_seed])[0]
            elif isinstance(v, dict) and key in ("seen", "unseen"):
                b[key] = {d: _mean_std([p["baselines"][key][d] for p in per_seed])[0] for d in v}
        m["baselines"] = b
    m["energy"] = {k: _mean_std([e[k] for e in energies])[0] for k in ("encoder_j_per_sample", "head_j_per_sample", "digital_baseline_j_per_sample")}
    m["energy"]["mac_j"] = energies[0]["mac_j"]
    m["energy"]["head_macs_per_sample"] = energies[0]["head_macs_per_sample"]
    m["timing"] = {k: float(np.sum([t[k] for t in timings])) for k in ("features_s", "train_s")}
    m["per_seed"] = per_seed
    return m


def _clean_stale_partials(parent: Path) -> None:
    for p in parent.glob(".*.partial-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, PermissionError, IndexError):
            continue


def write_run_dir(cfg: ExperimentConfig, parent: Path, metrics: dict, outputs: list[TaskOutput], plot: dict) -> Path:
    """Assemble the run directory in a hidden sibling, then rename it into place in one step."""
    from safetensors.torch import save_file

    from neurohw.experiments import report

    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_partials(parent)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    final = parent / f"{cfg.name}-{stamp}"
    k = 1
    while final.exists():
        final = parent / f"{cfg.name}-{stamp}-{k}"
        k += 1
    tmp = parent / f".{final.name}.partial-{os.getpid()}"
    tmp.mkdir()
    try:
        config_text = dump_config(cfg)
        (tmp / "config.yaml").write_text(config_text)
        heads = tmp / "heads"
        heads.mkdir()
        for seed, out in zip(cfg.run_seeds, outputs):
            save_file(head_state(out.heads), str(heads / f"seed{seed}.safetensors"), metadata={"task": cfg.task, "seed": str(seed)})
        figures = []
        if cfg.plots:
            figures = _figures(tmp, cfg, metrics, outputs[0], plot)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
        report.write_report(tmp, metrics, figures, config_text)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _figures(folder: Path, cfg, metrics: dict, out: TaskOutput, plot: dict) -> list[str]:
    from neurohw.experiments import report

    figs = []
    if plot and plot.get("maps"):
        figs.append(report.plot_conductances(folder, plot["maps"]))
    if plot and plot.get("rasters"):
        figs.append(report.plot_spike_raster(folder, plot["rasters"]))
    if out.curves:
        figs.append(report.plot_training_curves(folder, out.curves))
    mods = metrics["modalities"]
    for name, (mat, classes) in out.matrices.items():
        if name == "confusion":
            figs.append(report.plot_matrix(folder, "confusion_matrix", mat, classes, f"test confusion (seed {cfg.run_seeds[0]})", "predicted", "true"))
        else:
            _, which, d1, _, d2 = name.split("_")
            src, dst = (mods[0], mods[1]) if d1 == "a" else (mods[1], mods[0])
            figs.append(report.plot_matrix(folder, name, mat, classes, f"{which} retrieval {src} -> {dst} (seed {cfg.run_seeds[0]})",
                                           f"retrieved class ({dst})", f"query class ({src})"))
    figs.append(report.plot_energy(folder, metrics["energy"]))
    return figs
