"""The liquid state machine encoder: rasters in, reservoir features out.

An :class:`LSMEncoder` holds two crossbars on a device (input ``n_inputs x n_neurons`` and
recurrent ``n_neurons x n_neurons``), sampled by stochastic forming as in the reference
(``W = scale * (G+ - G-)``, conductances in uS; Lin et al., Nat. Comput. Sci. 5:37-47, 2025),
and runs the LIF reservoir (:mod:`neurohw.reservoir.lif`) on a backend. Every read goes through
the device's non-idealities: conductance levels, read noise (noise-equivalent sampling), and
the per-tile ADC, exactly as :meth:`neurohw.crossbar.Crossbar.mvm` reads binary inputs.

Features per sample (``features``): ``rate`` = spike count / T (the paper's readout input),
``counts`` = spikes in ``count_bins`` equal time bins, ``membrane`` = the last membrane.

In a few lines::

    import neurohw as nh
    train = nh.load_dataset("digits-dvs", "train")
    binning = nh.Binning(n_bins=30, crop=(28, 28), downsample=2)
    lsm = nh.LSM(n_neurons=256, target_rate=0.06)            # TaOx RRAM by default
    X = lsm.transform(train, binning)                         # (N, 256) firing rates

``n_inputs`` is inferred from the first raster (or from the dataset and binning in
:meth:`LSMEncoder.transform`) when the config does not give it; the crossbars are formed then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Literal, NamedTuple

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from neurohw.config import Section
from neurohw.crossbar import Crossbar
from neurohw.data.binning import SparseRaster, dataset_channels, dataset_rasters, to_sparse
from neurohw.devices.drift import drifts
from neurohw.devices.drift_compensation import MODES
from neurohw.devices.model import DeviceModel, load_device
from neurohw.errors import ConfigError, DataError
from neurohw.progress import Progress
from neurohw.reservoir.backends import BatchResult, check_backend_name, select_backend
from neurohw.reservoir.synapses import Adc, Synapses
from neurohw.reservoir.target_rate import REFERENCE_SCALE, find_scale

FEATURES = ("rate", "counts", "membrane")
#: the device an encoder is built on when none is named (the schema's default too)
DEFAULT_DEVICE = "taox_rram_40nm"
#: sample ids (read-noise keys) are one 32-bit word of the Philox counter (neurohw.reservoir.rng)
MAX_SAMPLE_ID = 2**32 - 1
#: added to the ids of samples outside the training split (evaluation samples get ids in
#: [2**31, 2**32), training samples in [0, 2**31)), so they never reuse a training sample's draws
EVAL_ID_OFFSET = 2**31


class LSMConfig(Section):
    """Configuration of a reservoir; the reference values are the N-MNIST ones of Lin et al."""

    model_config = ConfigDict(frozen=True)

    n_inputs: int | None = Field(None, ge=1, description="input channels (raster columns); None: inferred from the first raster or the dataset and binning")
    n_neurons: int = Field(200, ge=1, description="reservoir neurons")
    v_th: float = Field(5.0, gt=0, description="firing threshold, weight units")
    decay: float = Field(0.90, gt=0, le=1, description="membrane leak factor per time bin")
    scale: float | None = Field(None, gt=0, description=f"weight per uS of the input crossbar (reference: {REFERENCE_SCALE}); give scale or target_rate")
    target_rate: float | None = Field(None, gt=0, lt=1, description="find the scale by bisection so that the mean firing rate is this (e.g. 0.06)")
    calibration_samples: int = Field(64, ge=1, description="samples used to calibrate target_rate")
    p_in: float = Field(1.0, gt=0, le=1, description="probability that an input-neuron pair is connected")
    p_rec: float = Field(1.0, gt=0, le=1, description="probability that a neuron-neuron pair is connected")
    rec_scale: float = Field(1.0, gt=0, description="recurrent weight scale relative to the input scale")
    reset: Literal["hard", "subtract"] = Field("hard", description="hard: mem -> 0 after a spike (reference); subtract: mem -= v_th")
    features: tuple[Literal["rate", "counts", "membrane"], ...] = Field(("rate",), min_length=1, description="features to return")
    count_bins: int = Field(4, ge=1, description="K time bins of the 'counts' feature")
    backend: str = Field(
        "auto", description="auto (cupy when a GPU works, else cpu), numpy, cpu, cupy, or hil://HOST:PORT / hil+serial://PORT?baud=N (crossbars on a chip)"
    )
    noise: bool = Field(True, description="apply the device's read noise on every read")
    seed: int = Field(0, ge=0, lt=2**63, description="seeds forming, connectivity masks and read noise")
    threads: int | None = Field(None, ge=1, description="CPU threads of backends that use them (None: all)")

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str | None) -> str | None:
        return v if v is None else check_backend_name(v)

    @model_validator(mode="after")
    def _scale_xor_target(self) -> "LSMConfig":
        if (self.scale is None) == (self.target_rate is None):
            raise ValueError(f"give exactly one of 'scale' (weight per uS, reference {REFERENCE_SCALE}) and 'target_rate' (e.g. 0.06)")
        return self


class ReadEnergy(NamedTuple):
    """Energy of encoding one sample, joules: the crossbar reads (cells, word lines, ADC), and
    the same products as dense digital MACs (the all-digital baseline)."""

    analog_j: float
    digital_j: float


def derived_seeds(seed: int) -> dict[str, int]:
    """Independent child seeds of a reservoir seed: input crossbar, recurrent crossbar,
    connectivity masks, read noise."""
    state = np.random.SeedSequence(int(seed)).generate_state(4, dtype=np.uint64)
    return {"in": int(state[0] >> 1), "rec": int(state[1] >> 1), "mask": int(state[2] >> 1), "noise": int(state[3])}


def as_sparse(raster, n_inputs: int, index: int = 0) -> SparseRaster:
    """A dense ``(T, n_inputs)`` raster (values 0..255) or a SparseRaster, checked, as a SparseRaster."""
    if isinstance(raster, SparseRaster):
        sr = raster
    else:
        a = np.asarray(raster)
        if a.ndim != 2:
            raise DataError(f"raster {index} has shape {a.shape}; expected (T, {n_inputs}) - bin the events first (neurohw.data.binning.to_raster)")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise DataError(f"raster {index} has values outside 0..255; bin with mode 'binary' or 'count'")
        sr = to_sparse(a)
    if sr.n_channels != n_inputs:
        raise DataError(
            f"raster {index} has {sr.n_channels} channels but the reservoir has n_inputs={n_inputs}; "
            "match the binning (crop, polarity, downsample) to n_inputs"
        )
    return sr


def _channels(raster) -> int:
    if isinstance(raster, SparseRaster):
        return raster.n_channels
    shape = np.shape(raster)
    if len(shape) != 2:
        raise DataError(f"raster 0 has shape {shape}; expected (T, channels) - bin the events first (neurohw.data.binning.to_raster)")
    return int(shape[1])


class LSMEncoder:
    """The reservoir on two crossbars of ``device`` (a :class:`~neurohw.devices.model.DeviceModel`
    or a device name; default :data:`DEFAULT_DEVICE`).

    Give a :class:`LSMConfig`, or its fields as keywords (``LSMEncoder(n_neurons=256,
    target_rate=0.06)``), or both (keywords override the config's fields).
    """

    def __init__(self, config: LSMConfig | None = None, device=DEFAULT_DEVICE, **params):
        if params:
            base = config.model_dump(exclude_unset=True) if config is not None else {}
            config = LSMConfig(**{**base, **params})
        self._setup(config if config is not None else LSMConfig(scale=REFERENCE_SCALE), device)
        if self.config.n_inputs is not None:
            self._form(self.config.n_inputs)

    def _setup(self, config: LSMConfig, device) -> None:
        """Everything but the crossbars."""
        self.config = config
        self.device = device if isinstance(device, DeviceModel) else load_device(device)
        self.seeds = derived_seeds(self.config.seed)
        self.backend = select_backend(self.config.backend, threads=self.config.threads)
        self.scale = self.config.scale  # set by calibrate() when target_rate is given
        self._formed = None  # (crossbar_in, crossbar_rec) at the base scale
        self._synapses: Synapses | None = None
        self.read_time_s: float | None = None  # reads happen this long after programming (read_at)
        self.drift_compensation = "none"

    @classmethod
    def from_crossbars(cls, crossbar_in, crossbar_rec, config: LSMConfig | None = None, **fields) -> LSMEncoder:
        """An encoder on crossbars made elsewhere (a measured conductance map, weights programmed
        from another tool's network, a chip's read-back) instead of sampled forming.

        ``n_inputs`` and ``n_neurons`` come from their shapes and the device from
        ``crossbar_in``; the weight scale is the config's ``scale`` (or found by ``target_rate``
        calibration): the crossbars' conductances are used as they are, rescaled like formed
        ones (``W = scale (G+ - G-)``, the recurrent one at ``scale * rec_scale``).
        """
        n_in, n = crossbar_in.n_in, crossbar_in.n_out
        if crossbar_rec.n_in != n or crossbar_rec.n_out != n:
            raise DataError(f"the recurrent crossbar is {crossbar_rec.n_in} x {crossbar_rec.n_out}; the input crossbar's "
                            f"{n} outputs need a {n} x {n} one")
        base = config.model_dump(exclude_unset=True) if config is not None else {}
        merged = {**base, **fields}
        if "scale" not in merged and "target_rate" not in merged:
            merged["scale"] = float(crossbar_in.scale)
        enc = cls.__new__(cls)
        enc._setup(LSMConfig(**{**merged, "n_inputs": n_in, "n_neurons": n}), crossbar_in.device)
        enc._formed = (crossbar_in, crossbar_rec)
        return enc

    # ------------------------------------------------------------------ crossbars

    @property
    def n_inputs(self) -> int | None:
        """Input channels (None until the first raster or dataset sets them)."""
        return self.config.n_inputs

    def _form(self, n_inputs: int) -> None:
        """Form both crossbars (stochastic forming, then the connectivity masks); a backend that
        holds the crossbars itself (a chip over a link) forms them there and reads them back."""
        if self.config.n_inputs is None:
            self.config = self.config.model_copy(update={"n_inputs": int(n_inputs)})
        c, dev, seeds = self.config, self.device, self.seeds
        on_chip = getattr(self.backend, "form_crossbars", None)
        if on_chip is not None:
            self._formed = on_chip(dev, c, seeds)
            return
        base = 1.0 if c.scale is None else c.scale
        xin = Crossbar.from_forming(dev, c.n_inputs, c.n_neurons, base, seeds["in"])
        xrec = Crossbar.from_forming(dev, c.n_neurons, c.n_neurons, base * c.rec_scale, seeds["rec"])
        rng = np.random.default_rng(seeds["mask"])
        if c.p_in < 1:
            m = rng.random((c.n_inputs, c.n_neurons)) < c.p_in
            xin = Crossbar(dev, xin.g_pos * m, xin.g_neg * m, base, seeds["in"])
        if c.p_rec < 1:
            m = rng.random((c.n_neurons, c.n_neurons)) < c.p_rec
            xrec = Crossbar(dev, xrec.g_pos * m, xrec.g_neg * m, base * c.rec_scale, seeds["rec"])
        self._formed = (xin, xrec)

    def _formed_for(self, rasters_or_channels) -> None:
        """Form the crossbars on first use, with ``n_inputs`` from a channel count or raster."""
        if self._formed is None:
            n = rasters_or_channels if isinstance(rasters_or_channels, int) else _channels(rasters_or_channels)
            self._form(n)

    def _require_formed(self) -> tuple:
        if self._formed is None:
            raise ConfigError("the reservoir's input size is not known yet: give n_inputs, or encode, calibrate or transform data first")
        return self._formed

    @property
    def crossbar_in(self):
        """The input crossbar as formed (weight scale 1 per uS until calibrated; see :meth:`crossbars`)."""
        return self._require_formed()[0]

    @property
    def crossbar_rec(self):
        """The recurrent crossbar as formed (see :meth:`crossbars`)."""
        return self._require_formed()[1]

    def crossbars(self, scale: float | None = None) -> tuple:
        """``(input, recurrent)`` crossbars at input weight scale ``scale`` (weight per uS;
        default: the encoder's scale, calibrated or given); the recurrent one at
        ``scale * rec_scale``. The same conductances, only the scale differs."""
        xin, xrec = self._require_formed()
        scale = self._scale(scale)
        rec = scale * self.config.rec_scale
        return (xin if xin.scale == scale else xin.rescaled(scale)), (xrec if xrec.scale == rec else xrec.rescaled(rec))

    def _scale(self, scale: float | None) -> float:
        if scale is not None:
            return float(scale)
        if self.scale is None:
            raise ConfigError("the encoder has no weight scale yet: target_rate needs calibrate() (or encode()) first")
        return float(self.scale)

    def read_at(self, t_s: float | None = None, compensation: str = "none") -> LSMEncoder:
        """Read the crossbars ``t_s`` seconds after programming from now on: the drifted
        conductances (:meth:`neurohw.crossbar.Crossbar.weights`) on a device with drift, the ADC
        as calibrated at programming. ``compensation``: ``none``, ``global`` or ``column``, a
        digital gain per crossbar or per column estimated from reference reads
        (:mod:`neurohw.devices.drift_compensation`). ``None``: read at programming. Returns self."""
        if t_s is not None and not (np.isfinite(t_s) and t_s >= 0):
            raise ConfigError(f"read time must be a finite number of seconds >= 0 after programming, got {t_s}")
        if compensation not in MODES:
            raise ConfigError(f"drift compensation must be one of {', '.join(MODES)}, got {compensation!r}")
        t_s = None if t_s is None else float(t_s)
        if (t_s, compensation) != (self.read_time_s, self.drift_compensation):
            self.read_time_s, self.drift_compensation = t_s, compensation
            self._synapses = None
        return self

    def synapses(self, scale: float | None = None) -> Synapses:
        """The backends' view of the two crossbars at ``scale`` (default: the encoder's scale).

        Integer weights (levels, ``W == unit * Wq``) when both crossbars sit on the device's
        levels with one common unit; otherwise float64 weights. Read at :meth:`read_at`'s time.
        """
        if scale is None and self._synapses is not None:
            return self._synapses
        xin, xrec = self.crossbars(scale)
        syn = _synapses_of(xin, xrec, self.config, self.seeds["noise"], self.read_time_s, self.drift_compensation)
        if scale is None:
            self._synapses = syn
        return syn

    # ------------------------------------------------------------------ calibration and runs

    def calibrate(self, rasters: Sequence) -> float:
        """Set ``scale`` so that the mean firing rate on ``rasters`` is ``config.target_rate``
        (bisection with read noise off, :func:`neurohw.reservoir.target_rate.find_scale`);
        returns the scale."""
        if self.config.target_rate is None:
            raise ConfigError("calibrate() needs 'target_rate' in the reservoir config")
        rasters = list(rasters)
        if not rasters:
            raise DataError("calibrate() got no rasters")
        self._formed_for(rasters[0])
        sparse = [as_sparse(r, self.n_inputs, i) for i, r in enumerate(rasters)]
        ids = np.arange(len(sparse))

        def rate(scale: float) -> float:
            res = self.backend.run_batch(self.synapses(scale), sparse, ids, self.config.count_bins, False, False)
            return float(res.rate.mean())

        self.scale = find_scale(rate, self.config.target_rate)
        self._synapses = None
        return self.scale

    def run_batch(self, rasters: Sequence, sample_ids: Sequence[int], *, noise: bool | None = None,
                  record_spikes: bool = False) -> BatchResult:
        """One batch through the backend at the encoder's scale. ``sample_ids[b]`` keys sample
        ``b``'s read noise (Philox counter), so a sample gives the same result in any batch, on
        any backend. ``noise``: default ``config.noise``."""
        rasters = list(rasters)
        ids = np.asarray(sample_ids, dtype=np.int64)
        if ids.shape != (len(rasters),):
            raise DataError(f"{ids.size} sample ids for {len(rasters)} rasters; give one id per raster")
        if ids.size and (ids.min() < 0 or ids.max() > MAX_SAMPLE_ID):
            raise DataError(f"sample ids must be in [0, 2**32) (one word of the read-noise counter), got {ids.min()}..{ids.max()}")
        if rasters:
            self._formed_for(rasters[0])
        sparse = [as_sparse(r, self.n_inputs, i) for i, r in enumerate(rasters)]
        noise = self.config.noise if noise is None else noise
        return self.backend.run_batch(self.synapses(), sparse, ids, self.config.count_bins, bool(noise), record_spikes)

    def encode(self, rasters: Iterable, sample_ids: Iterable[int] | None = None, *, batch_size: int = 64,
               progress: bool = True, record_spikes: bool = False) -> dict[str, np.ndarray]:
        """Features of every raster: ``rate`` (N, n) float32, ``counts`` (N, K, n) int32,
        ``membrane`` (N, n) float32 (those named in ``config.features``).

        ``rasters``: dense ``(T_i, n_inputs)`` arrays or SparseRasters, lengths may differ; any
        iterable, consumed one batch at a time (only one batch of rasters is held).
        ``sample_ids``: the read-noise key of each sample (default ``0, 1, 2, ...``); give ids
        that differ between datasets or splits so that their noise draws differ (e.g. the test
        split's indices offset by a constant). Results do not depend on ``batch_size`` or the
        backend. With ``target_rate`` and no :meth:`calibrate` yet, the first
        ``calibration_samples`` rasters calibrate the scale. ``record_spikes`` adds ``spikes``:
        a list of (T_i, n) bool rasters (memory grows with N).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        c = self.config
        it = iter(rasters)
        ids = iter(sample_ids) if sample_ids is not None else iter(range(2**62))
        pending = []
        if self.scale is None:  # target_rate: calibrate on the first samples
            for r in it:
                pending.append(r)
                if len(pending) >= c.calibration_samples:
                    break
            self.calibrate(pending)
        out: dict[str, list] = {f: [] for f in c.features}
        spikes: list = []
        with Progress("reservoir", enabled=progress) as bar:
            for batch in _batches(chain(pending, it), batch_size):
                batch_ids = [next(ids, None) for _ in batch]
                if batch_ids[-1] is None:
                    raise DataError(f"fewer sample_ids than rasters (ran out after {bar.completed + batch_ids.index(None)})")
                res = self.run_batch(batch, batch_ids, record_spikes=record_spikes)
                for f in c.features:
                    out[f].append(getattr(res, f))
                if record_spikes:
                    spikes.extend(res.spikes)
                bar.update(advance=len(batch))
        n = c.n_neurons
        empty = {"rate": (0, n), "counts": (0, c.count_bins, n), "membrane": (0, n)}
        dtypes = {"rate": np.float32, "counts": np.int32, "membrane": np.float32}
        result = {f: (np.concatenate(v) if v else np.zeros(empty[f], dtypes[f])) for f, v in out.items()}
        if record_spikes:
            result["spikes"] = spikes
        return result

    def transform(self, dataset, binning, indices: Sequence[int] | None = None, sample_ids: Iterable[int] | None = None,
                  *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """The features of ``dataset``'s samples (``indices``, default all) binned by
        ``binning``, as one ``(N, d)`` float32 matrix: ``config.features`` side by side
        (``counts`` flattened bin-major). ``n_inputs`` comes from the dataset and binning.
        ``sample_ids``: read-noise keys; default: the dataset indices, plus
        :data:`EVAL_ID_OFFSET` for a split other than ``train`` (so test samples never reuse
        training samples' noise draws)."""
        n = dataset_channels(dataset, binning)
        if self.n_inputs is not None and self.n_inputs != n:
            raise DataError(f"{dataset.name} binned this way has {n} channels but the reservoir has n_inputs={self.n_inputs}; "
                            "use the binning the encoder was built for")
        self._formed_for(n)
        idx = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
        if sample_ids is None:
            sample_ids = idx + (0 if dataset.split == "train" else EVAL_ID_OFFSET)
        feats = self.encode(dataset_rasters(dataset, binning, idx), sample_ids,
                            batch_size=batch_size, progress=progress)
        return feature_matrix(feats, self.config.features)

    def close(self) -> None:
        """Release what the backend holds (a chip session over a link); local backends hold
        nothing. The encoder cannot read afterwards."""
        closing = getattr(self.backend, "close", None)
        if closing is not None:
            closing()

    def __enter__(self) -> LSMEncoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def energy(self, raster, spikes) -> ReadEnergy:
        """The energy of encoding one sample, counted by the crossbars themselves
        (:meth:`neurohw.crossbar.Crossbar.count_reads`): the input crossbar read with every
        time bin's inputs, the recurrent one with the previous bin's spikes."""
        return self.energies([raster], [spikes])[0]

    def energies(self, rasters: Sequence, spikes: Sequence) -> list[ReadEnergy]:
        """:meth:`energy` of each sample of a batch, the crossbars at the encoder's scale built
        once for the batch (a calibrated scale rebuilds them: ~0.1 s for 2,000 neurons)."""
        xin, xrec = self.crossbars()
        return [_read_energy(xin, xrec, r, s) for r, s in zip(rasters, spikes)]


def _read_energy(xin, xrec, raster, spikes) -> ReadEnergy:
    """One sample's read energy on crossbars ``xin``, ``xrec`` (see :meth:`LSMEncoder.energy`)."""
    raster = raster.to_dense() if isinstance(raster, SparseRaster) else np.asarray(raster)
    reads = [xin.count_reads(raster)]
    prev = np.asarray(spikes)[:-1]
    if len(prev):
        reads.append(xrec.count_reads(prev))
    return ReadEnergy(sum(r.joules(include_programming=False) for r in reads), sum(r.digital_baseline_joules() for r in reads))


def feature_matrix(features: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """The named encoder features per sample side by side, one ``(N, d)`` float32 matrix."""
    parts = []
    for name in names:
        if name not in features:
            raise KeyError(f"the encoder produced no {name!r} features (got {sorted(features)})")
        v = np.asarray(features[name], dtype=np.float32)
        parts.append(v.reshape(len(v), -1))
    return np.concatenate(parts, axis=1)


def _batches(items: Iterable, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _read_at(xb, t_s: float, compensation: str):
    """A crossbar as read ``t_s`` after programming: ``(view, weights)``. The compensation's
    gains ``alpha_j`` split into a common gain ``g`` (median), applied exactly as a digital gain
    after the ADC (the crossbar rescaled by ``g``: weights, ADC steps and additive noise all
    times ``g``), and the column residual ``alpha_j / g`` (1 for ``global``), which scales the
    column's weights and so acts ahead of the ADC."""
    alpha = xb.drift_gains(t_s, compensation)
    g = float(np.median(alpha))
    view = xb if g == 1.0 else xb.rescaled(xb.scale * g)
    w = view.weights(t_s)
    residual = alpha / g
    return view, (w if np.all(residual == 1.0) else w * residual)


def _synapses_of(xin, xrec, c: LSMConfig, noise_seed: int, t_s: float | None = None, compensation: str = "none") -> Synapses:
    """:class:`Synapses` of two crossbars read ``t_s`` after programming (None: at programming):
    integer level weights when both sit on one unit and nothing drifts."""
    qi = qr = None
    if drifts(xin.device.drift, t_s):
        (xin, w_in), (xrec, w_rec) = _read_at(xin, t_s, compensation), _read_at(xrec, t_s, compensation)
        unit = None
    else:
        qi, qr = xin.integer_weights(), xrec.integer_weights()
    if qi is not None and qr is not None and qi[1] == qr[1]:
        wmax = max(int(np.abs(qi[0]).max(initial=0)), int(np.abs(qr[0]).max(initial=0)))
        dtype = np.int8 if wmax <= 127 else np.int16 if wmax <= 32767 else np.int32
        w_in, w_rec, unit = qi[0].astype(dtype), qr[0].astype(dtype), qi[1]
    elif not drifts(xin.device.drift, t_s):
        w_in, w_rec, unit = np.array(xin.weights(), np.float64), np.array(xrec.weights(), np.float64), None
    adc = None
    if xin.adc is not None and xrec.adc is not None:
        adc = Adc(xin.tile_rows, xin.adc.step, xrec.adc.step, xin.adc.max_code, xin.adc.gain, xrec.adc.gain)
    return Synapses(
        w_in=np.ascontiguousarray(w_in), w_rec=np.ascontiguousarray(w_rec), unit=unit,
        v_th=c.v_th, decay=c.decay, reset=c.reset,
        noise_relative=xin.read_noise_relative, noise_additive=xin.read_noise_additive,
        adc=adc, seed=noise_seed,
        input_bits=xin.device.input.bits, input_full_scale=xin.device.input.full_scale,
        input_bit_serial=xin.device.input.bit_serial,
    )  # fmt: skip


#: the short name of the front door (``nh.LSM(...)``)
LSM = LSMEncoder
