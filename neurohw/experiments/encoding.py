"""One modality's reservoir in one run seed: its derived config, and the encoder, formed and
calibrated on first use (a run whose features are all cached never forms it, unless plots ask).

Read-noise keys (the 32-bit sample word of the Philox counter, :mod:`neurohw.reservoir.rng`): a
training sample's key is its dataset index, a test sample's is its index plus
:data:`~neurohw.reservoir.lsm.EVAL_ID_OFFSET` (2**31), so test samples never reuse a training
sample's noise draws and a sample's features do not depend on how the samples are batched,
selected or resumed.

Where the crossbars come from (:class:`EncoderSource`): sampled forming (the default), a NIR
graph's weights programmed onto the device (``reservoir.<m>.from_nir``), or the cells of a
measured chip map (``device.conductance_map``; each modality's input then recurrent crossbar on
tiles of its own, :func:`neurohw.devices.chip_map.place`). The crossbars' seeds are the
reservoir's (``derived_seeds``), so ADC gains, drift and read noise follow the same streams
whatever the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurohw.crossbar import Crossbar
from neurohw.data.binning import dataset_rasters
from neurohw.devices.chip_map import ChipMap, Placement, place, reservoir_crossbars
from neurohw.devices.model import DeviceModel
from neurohw.errors import ConfigError
from neurohw.experiments.modalities import Modality
from neurohw.experiments.results import ConductanceMap, SpikeSample
from neurohw.experiments.schema import ExperimentConfig
from neurohw.experiments.selection import Selection, select
from neurohw.reservoir.lsm import EVAL_ID_OFFSET, LSMConfig, LSMEncoder, derived_seeds
from neurohw.reservoir.nir_reader import ReservoirGraph, programmed_crossbars
from neurohw.storage import file_sha256


@dataclass(frozen=True)
class EncoderSource:
    """Where a reservoir's crossbars come from: sampled forming (nothing set), a NIR graph
    (``graph``, read from ``graph_path``) or a chip map (``chip``, and the input and recurrent
    crossbars' ``placements`` on it)."""

    graph: ReservoirGraph | None = None
    graph_path: str | None = None
    chip: ChipMap | None = None
    placements: tuple[Placement, Placement] | None = None

    def spec(self) -> dict:
        """What identifies the source in a feature-cache key (empty for sampled forming)."""
        out: dict = {}
        if self.graph_path is not None:
            out["from_nir_sha256"] = file_sha256(self.graph_path)
        if self.chip is not None:
            out["conductance_map_sha256"] = self.chip.sha256
            out["placement"] = [[p.name, p.n_in, p.n_out, p.first_tile] for p in self.placements]
        return out


def build_encoder(lsm: LSMConfig, device: DeviceModel, source: EncoderSource | None = None) -> LSMEncoder:
    """The encoder of ``lsm`` on ``device``, its crossbars from ``source`` (see the module doc).
    A graph is programmed at its programming scale and a map's cells are taken at ``lsm.scale``
    (1 before calibration), as formed crossbars are; the encoder then runs at ``lsm.scale`` or
    calibrates ``target_rate``."""
    if source is None or (source.graph is None and source.chip is None):
        return LSMEncoder(lsm, device)
    seeds = derived_seeds(lsm.seed)
    if source.graph is not None:
        xin, xrec = programmed_crossbars(source.graph, device, seeds["in"], seeds["rec"])
    else:
        base = 1.0 if lsm.scale is None else lsm.scale
        built = []
        for placement, scale, seed in zip(source.placements, (base, base * lsm.rec_scale), (seeds["in"], seeds["rec"])):
            cells = source.chip.cells(placement)
            xb = Crossbar(device, cells.g_pos, cells.g_neg, scale, seed, stuck_code=cells.stuck_code)
            xb.formed = cells.formed
            built.append(xb)
        xin, xrec = built
    return LSMEncoder.from_crossbars(xin, xrec, lsm)


@dataclass
class ModalityReservoir:
    """The reservoir of modality ``mod`` in run seed ``run_seed`` (see the module doc)."""

    mod: Modality
    selection: Selection
    lsm: LSMConfig
    device: DeviceModel
    run_seed: int
    source: EncoderSource = field(default_factory=EncoderSource)
    #: the weight scale found in the feature cache (set by extraction; saves a recalibration)
    recorded_scale: float | None = None
    #: per split, ``(time after programming, drift compensation)`` of its reads (DeviceSpec.read)
    reads: dict[str, tuple[float | None, str]] = field(default_factory=lambda: {"train": (None, "none"), "test": (None, "none")})
    _encoder: LSMEncoder | None = field(default=None, repr=False)

    @classmethod
    def for_seed(cls, cfg: ExperimentConfig, mods: list[Modality], run_seed: int) -> list[ModalityReservoir]:
        """One per modality, in the config's order, with the run seed's sample selection."""
        device = cfg.device.resolved
        lsms = []
        for i, mod in enumerate(mods):
            try:
                lsms.append(cfg.reservoir[mod.name].lsm_config(mod.n_inputs, run_seed, i, cfg.backend, device))
            except ConfigError as exc:
                raise ConfigError(f"reservoir.{mod.name}.{exc}") from None
        sources = [EncoderSource() for _ in mods]
        if cfg.device.chip is not None:
            shapes = [s for mod, lsm in zip(mods, lsms) for s in reservoir_crossbars(mod.name, lsm.n_inputs, lsm.n_neurons)]
            placed = place(shapes, device)
            sources = [EncoderSource(chip=cfg.device.chip, placements=(placed[2 * i], placed[2 * i + 1])) for i in range(len(mods))]
            for src in sources:  # a map that does not fit fails here, before any compute
                for p in src.placements:
                    src.chip.cells(p)
        for i, mod in enumerate(mods):
            spec = cfg.reservoir[mod.name]
            if spec.from_nir is not None:
                sources[i] = EncoderSource(graph=spec.nir_graph, graph_path=spec.from_nir)
        reads = {split: cfg.device.read(split) for split in ("train", "test")}
        return [cls(mod, sel, lsm, device, run_seed, src, reads=reads)
                for mod, sel, lsm, src in zip(mods, select(mods, run_seed, shared=cfg.zero_shot.pairing == "instance"), lsms, sources)]

    @property
    def encoder(self) -> LSMEncoder:
        """The encoder, built on first use from its source (formed, programmed or a map's
        cells); with ``target_rate``, calibrated on the first ``calibration_samples`` of the
        selection's calibration order, read as the training split is."""
        if self._encoder is None:
            enc = build_encoder(self.lsm, self.device, self.source).read_at(*self.reads["train"])
            if self.lsm.target_rate is not None:
                enc.calibrate(self.rasters("train", self.calibration_indices))
            self._encoder = enc
        return self._encoder

    def encoder_at(self, split: str) -> LSMEncoder:
        """The encoder reading its crossbars as ``split``'s samples are read (its time after
        programming and drift compensation)."""
        return self.encoder.read_at(*self.reads[split])

    @property
    def scale(self) -> float:
        """The encoder's weight scale: given, recorded in the feature cache, or calibrated."""
        if self.lsm.scale is not None:
            return float(self.lsm.scale)
        if self._encoder is None and self.recorded_scale is not None:
            return float(self.recorded_scale)
        return float(self.encoder.scale)

    def record(self) -> dict:
        """What rebuilds this encoder without data or calibration (a run directory's
        ``encoders.json`` entry): the LSMConfig with its scale resolved, the source's files."""
        lsm = self.lsm.model_copy(update={"scale": self.scale, "target_rate": None})
        out = {"modality": self.mod.name, "lsm": lsm.model_dump(mode="json"), "target_rate": self.lsm.target_rate,
               "classes": [str(c) for c in self.mod.train.classes],
               "n_steps": self.mod.binning.n_bins or self.mod.binning.max_bins,
               "sensor": {"size": [int(v) for v in self.mod.train.sensor_size], "camera": bool(self.mod.train.is_camera)}}
        if self.source.graph_path is not None:
            out["from_nir"] = {"path": self.source.graph_path, "sha256": file_sha256(self.source.graph_path)}
        if self.source.chip is not None:
            out["conductance_map"] = {"path": self.source.chip.source, "sha256": self.source.chip.sha256,
                                      "placement": {p.name.split("/")[-1]: p.first_tile for p in self.source.placements}}
        return out

    @property
    def calibration_indices(self) -> np.ndarray | None:
        """The training samples that set ``target_rate``'s scale (None with a fixed scale)."""
        if self.lsm.target_rate is None:
            return None
        return self.selection.calibration[: self.lsm.calibration_samples]

    def indices(self, split: str) -> np.ndarray:
        """The selected dataset indices of ``split`` ("train" or "test")."""
        return {"train": self.selection.train, "test": self.selection.test}[split]

    def rasters(self, split: str, indices: np.ndarray) -> list[np.ndarray]:
        """The binned rasters of samples ``indices`` of ``split``."""
        return list(dataset_rasters(self.mod.split(split), self.mod.binning, indices))

    @staticmethod
    def noise_ids(split: str, indices: np.ndarray) -> np.ndarray:
        """Read-noise keys of samples ``indices`` of ``split`` (module doc)."""
        return np.asarray(indices, dtype=np.int64) + (EVAL_ID_OFFSET if split == "test" else 0)

    def spike_sample(self, split: str, index: int) -> SpikeSample:
        """Sample ``index`` of ``split``: its raster and the reservoir spikes behind its features
        (the same read-noise key as in the run)."""
        raster = self.rasters(split, np.array([index]))[0]
        res = self.encoder_at(split).run_batch([raster], self.noise_ids(split, np.array([index])), record_spikes=True)
        return SpikeSample(self.mod.name, raster, np.asarray(res.spikes[0]))

    def close(self) -> None:
        """Release the encoder's backend (a chip session over a link), if it was built."""
        if self._encoder is not None:
            self._encoder.close()

    def conductance_maps(self) -> list[ConductanceMap]:
        """Both crossbars' conductances (uS), for the run's histogram."""
        xin, xrec = self.encoder.crossbars()
        name = self.mod.name
        return [ConductanceMap(f"{name} input", np.asarray(xin.g_pos), np.asarray(xin.g_neg)),
                ConductanceMap(f"{name} recurrent", np.asarray(xrec.g_pos), np.asarray(xrec.g_neg))]
