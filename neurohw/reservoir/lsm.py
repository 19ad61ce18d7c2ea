"""The liquid state machine encoder: rasters in, reservoir features out.

An :class:`LSMEncoder` holds two crossbars on a device (input ``n_inputs x n_neurons`` and
recurrent ``n_neurons x n_neurons``), sampled by stochastic forming as in the reference
(``W = scale * (G+ - G-)``, conductances in uS; Lin et al., Nat. Comput. Sci. 5:37-47, 2025),
and runs the LIF reservoir (:mod:`neurohw.reservoir.lif`) on a backend. Every read goes through
the device's non-idealities: conductance levels, read noise (noise-equivalent sampling), and
the per-tile ADC, exactly as :meth:`neurohw.crossbar.Crossbar.mvm` reads binary inputs.

Features per sample (``features``): ``rate`` = spike count / T (the paper's readout input),
``counts`` = spikes in ``count_bins`` equal time bins, ``membrane`` = the last membrane.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurohw.data.binning import SparseRaster, to_sparse
from neurohw.errors import ConfigError, DataError
from neurohw.reservoir.backends import BatchResult, select_backend
from neurohw.reservoir.synapses import Adc, Synapses

FEATURES = ("rate", "counts", "membrane")


class LSMConfig(BaseModel):
    """Configuration of a reservoir; the reference values are the N-MNIST ones of Lin et al."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_inputs: int = Field(256, ge=1, description="input channels (raster columns); N-MNIST: 16x16 crop, polarity 0")
    n_neurons: int = Field(200, ge=1, description="reservoir neurons")
    v_th: float = Field(5.0, gt=0, description="firing threshold, weight units")
    decay: float = Field(0.90, gt=0, le=1, description="membrane leak factor per time bin")
    scale: float | None = Field(None, gt=0, description="weight per uS of the input crossbar (reference: 0.07); give scale or target_rate")
    target_rate: float | None = Field(None, gt=0, lt=1, description="find the scale by bisection so that the mean firing rate is this (e.g. 0.06)")
    calibration_samples: int = Field(64, ge=1, description="samples used to calibrate target_rate")
    p_in: float = Field(1.0, gt=0, le=1, description="probability that an input-neuron pair is connected")
    p_rec: float = Field(1.0, gt=0, le=1, description="probability that a neuron-neuron pair is connected")
    rec_scale: float = Field(1.0, gt=0, description="recurrent weight scale relative to the input scale")
    reset: Literal["hard", "subtract"] = Field("hard", description="hard: mem -> 0 after a spike (reference); subtract: mem -= v_th")
    features: tuple[Literal["rate", "counts", "membrane"], ...] = Field(("rate",), min_length=1, description="features to return")
    count_bins: int = Field(4, ge=1, description="K time bins of the 'counts' feature")
    backend: Literal["auto", "numpy", "cpu", "cupy"] = Field("auto", description="auto: cupy when a GPU works, else cpu")
    noise: bool = Field(True, description="apply the device's read noise on every read")
    seed: int = Field(0, ge=0, lt=2**63, description="seeds forming, connectivity masks and read noise")
    threads: int | None = Field(None, ge=1, description="cpu backend threads (None: numba's default)")

    @model_validator(mode="after")
    def _scale_xor_target(self) -> "LSMConfig":
        if (self.scale is None) == (self.target_rate is None):
            raise ValueError("give exactly one of 'scale' (weight per uS, reference 0.07) and 'target_rate' (e.g. 0.06)")
        return self


def _seeds(seed: int) -> dict[str, int]:
    """Independent child seeds: input crossbar, recurrent crossbar, masks, read noise."""
    state = np.random.SeedSequence(int(seed)).generate_state(4, dtype=np.uint64)
    return {"in": int(state[0] >> 1), "rec": int(state[1] >> 1), "mask": int(state[2] >> 1), "noise": int(state[3])}


def _as_sparse(r, n_inputs: int, index: int) -> SparseRaster:
    if isinstance(r, SparseRaster):
        sr = r
    else:
        a = np.asarray(r)
        if a.ndim != 2:
            raise DataError(f"raster {index} has shape {a.shape}; expected (T, {n_inputs}) - bin the events first (neurohw.data.binning.to_raster)")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise DataError(f"raster {index} has values outside 0..255; bin with mode 'binary' or 'count'")
        sr = to_sparse(a)
    if sr.n_channels != n_inputs:
        raise DataError(f"raster {index} has {sr.n_channels} channels but the reservoir has n_inputs={n_inputs}; match the binning (crop, polarity, downsample) to n_inputs")
    return sr


class LSMEncoder:
    """The reservoir on two crossbars of ``device`` (a :class:`~neurohw.devices.model.DeviceModel`
    or a device name); ``encode(rasters)`` returns the features."""

    def __init__(self, config: LSMConfig, device="ideal"):
        from neurohw.crossbar import Crossbar
        from neurohw.devices.model import DeviceModel, load_device

        self.config = config
        self.device = device if isinstance(device, DeviceModel) else load_device(device)
        self.seeds = _seeds(config.seed)
        c = config
        base = 1.0 if c.scale is None else c.scale
        xin = Crossbar.from_forming(self.device, c.n_inputs, c.n_neurons, base, self.seeds["in"])
        xrec = Crossbar.from_forming(self.device, c.n_neurons, c.n_neurons, base * c.rec_scale, self.seeds["rec"])
        rng = np.random.default_rng(self.seeds["mask"])
        if c.p_in < 1:
            m = rng.random((c.n_inputs, c.n_neurons)) < c.p_in
            xin = Crossbar(self.device, xin.g_pos * m, xin.g_neg * m, base, self.seeds["in"])
        if c.p_rec < 1:
            m = rng.random((c.n_neurons, c.n_neurons)) < c.p_rec
            xrec = Crossbar(self.device, xrec.g_pos * m, xrec.g_neg * m, base * c.rec_scale, self.seeds["rec"])
        self.crossbar_in, self.crossbar_rec = xin, xrec
        self.backend = select_backend(c.backend)
        self.scale = c.scale  # set by calibrate() when target_rate is given
        self._synapses: Synapses | None = None
        if c.scale is not None:
            self._synapses = self.synapses(c.scale)

    # ------------------------------------------------------------------ weights

    def synapses(self, scale: float) -> Synapses:
        """The backends' view of the two crossbars at input scale ``scale`` (weight per uS).

        Integer weights (levels, ``W == unit * Wq``) when both crossbars sit on the device's
        levels with one common unit; otherwise float64 weights.
        """
        c = self.config
        xin = self.crossbar_in if self.crossbar_in.scale == scale else self.crossbar_in.rescaled(scale)
        xrec_scale = scale * c.rec_scale
        xrec = self.crossbar_rec if self.crossbar_rec.scale == xrec_scale else self.crossbar_rec.rescaled(xrec_scale)
        qi, qr = xin.integer_weights(), xrec.integer_weights()
        if qi is not None and qr is not None and qi[1] == qr[1]:
            wmax = max(int(np.abs(qi[0]).max(initial=0)), int(np.abs(qr[0]).max(initial=0)))
            dtype = np.int8 if wmax <= 127 else np.int16 if wmax <= 32767 else np.int32
            w_in, w_rec, unit = qi[0].astype(dtype), qr[0].astype(dtype), qi[1]
        else:
            w_in, w_rec, unit = np.array(xin.weights(), np.float64), np.array(xrec.weights(), np.float64), None
        adc = None
        if xin.adc is not None and xrec.adc is not None:
            adc = Adc(xin.tile_rows, xin.adc.step, xrec.adc.step, xin.adc.max_code, xin.adc.gain, xrec.adc.gain)
        return Synapses(
            w_in=np.ascontiguousarray(w_in), w_rec=np.ascontiguousarray(w_rec), unit=unit,
            v_th=c.v_th, decay=c.decay, reset=c.reset,
            noise_relative=xin.read_noise_relative, noise_additive=xin.read_noise_additive,
            adc=adc, seed=self.seeds["noise"],
        )  # fmt: skip

    def calibrate(self, rasters: Sequence) -> float:
        """Set ``scale`` so that the mean firing rate on ``rasters`` is ``config.target_rate``
        (bisection, :func:`neurohw.reservoir.target_rate.find_scale`); returns the scale."""
        from neurohw.reservoir.target_rate import find_scale

        if self.config.target_rate is None:
            raise ConfigError("calibrate() needs 'target_rate' in the reservoir config")
        sparse = [_as_sparse(r, self.config.n_inputs, i) for i, r in enumerate(rasters)]
        if not sparse:
            raise DataError("calibrate() got no rasters")

        def rate(scale: float) -> float:
            res = self._run(self.synapses(scale), sparse, np.arange(len(sparse)), noise=False)
            return float(res.rate.mean())

        self.scale = find_scale(rate, self.config.target_rate)
        self._synapses = self.synapses(self.scale)
        return self.scale

    # ------------------------------------------------------------------ encoding

    def _run(self, syn: Synapses, batch, ids, noise: bool, record_spikes: bool = False) -> BatchResult:
        kwargs = {"threads": self.config.threads} if self.backend.NAME == "cpu" else {}
        return self.backend.run_batch(syn, batch, ids, self.config.count_bins, noise, record_spikes, **kwargs)

    def encode(self, rasters: Iterable, batch_size: int = 64, progress: bool = True, record_spikes: bool = False) -> dict[str, np.ndarray]:
        """Features of every raster: ``rate`` (N, n) float32, ``counts`` (N, K, n) int32,
        ``membrane`` (N, n) float32 (those named in ``config.features``).

        ``rasters``: dense ``(T_i, n_inputs)`` arrays or SparseRasters, lengths may differ; any
        iterable, consumed one batch at a time (only one batch of rasters is held). With
        ``target_rate`` and no :meth:`calibrate` yet, the first ``calibration_samples`` rasters
        calibrate the scale. Sample ``i``'s read noise is keyed by ``i``, so results do not
        depend on ``batch_size`` or the backend. ``record_spikes`` adds ``spikes``: a list of
        (T_i, n) bool rasters (for tests and plots; memory grows with N).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        c = self.config
        out: dict[str, list] = {f: [] for f in c.features}
        spikes: list = []
        it = iter(rasters)
        pending: list = []
        if self._synapses is None:  # target_rate: calibrate on the first samples
            for r in it:
                pending.append(r)
                if len(pending) >= c.calibration_samples:
                    break
            self.calibrate(pending)
        index = 0
        bar = _Progress(progress)

        def flush(batch):
            nonlocal index
            sparse = [_as_sparse(r, c.n_inputs, index + k) for k, r in enumerate(batch)]
            res = self._run(self._synapses, sparse, np.arange(index, index + len(sparse)), c.noise, record_spikes)
            for f in c.features:
                out[f].append(getattr(res, f))
            if record_spikes:
                spikes.extend(res.spikes)
            index += len(sparse)
            bar.update(index)

        batch = []
        for r in _chain(pending, it):
            batch.append(r)
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        bar.close()
        n = c.n_neurons
        empty = {"rate": (0, n), "counts": (0, c.count_bins, n), "membrane": (0, n)}
        dtypes = {"rate": np.float32, "counts": np.int32, "membrane": np.float32}
        result = {f: (np.concatenate(v) if v else np.zeros(empty[f], dtypes[f])) for f, v in out.items()}
        if record_spikes:
            result["spikes"] = spikes
        return result


def _chain(first, rest):
    yield from first
    yield from rest


class _Progress:
    """A one-line progress counter on stderr (rich, when asked for)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._console = None
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True)

    def update(self, n: int) -> None:
        if self._console is not None and self._console.is_terminal:
            self._console.print(f"reservoir: {n} samples", end="\r")

    def close(self) -> None:
        if self._console is not None and self._console.is_terminal:
            self._console.print()
