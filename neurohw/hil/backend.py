"""The reservoir backend named by a link URL: ``backend: hil://HOST:PORT`` (TCP) or
``hil+serial://PORT?baud=N`` (serial) runs any experiment with its crossbars on a chip.

The encoder (:class:`neurohw.reservoir.lsm.LSMEncoder`) asks the backend to form its two
crossbars (:meth:`HilBackend.form_crossbars`): they are formed on the chip by FORM, tile by tile,
and read back (READ), so export, reports and the energy count know the weights; every crossbar
read of the run then happens on the chip (:class:`neurohw.hil.reservoir.MacroReservoir`: the host
runs the LIF neurons, one exchange per time step per batch). The experiment's device model must
be the chip's (the emulator's ``--device`` YAML, or the device YAML ``neurohw hil calibrate``
wrote for a real chip): the host converts the chip's raw ADC codes with it, and a mismatch is a
one-line error.

Sessions: one chip session per encoder (the emulator gives each session its own chip), opened
when the crossbars are formed and ended by :meth:`HilBackend.close` (``LSMEncoder.close``). The
session's chip seed is the encoder's read-noise seed, so an emulated chip's noise is fixed by the
experiment's seeds.
"""

from __future__ import annotations

import math
import warnings

from neurohw.errors import ConfigError, UserError
from neurohw.hil.address import parse_address
from neurohw.hil.remote import connect
from neurohw.hil.reservoir import MacroReservoir, form_encoder_crossbars

#: device facts that describe rather than determine a chip (text), and those the link already
#: refuses on when they differ (the array's geometry; the ADC's bits, range and gain mode, which
#: fix the LSB the host converts codes with): neither is repeated in the identity warning
DESCRIPTIVE = ("name", "description", "source", "array.technology", "digital_baseline.source")
REFUSED = ("array.rows", "array.cols", "adc.bits", "adc.range_us", "adc.gain")


def check_url(url: str) -> str:
    """``url`` if it is a well-formed HIL address; else one ConfigError line."""
    try:
        parse_address(url)
    except UserError as exc:
        raise ConfigError(str(exc)) from None
    return url


def backend_for(url: str, **options) -> HilBackend:
    """The backend of ``url`` (the local backends' options, e.g. ``threads``, do not apply)."""
    return HilBackend(url)


def _flatten(node, prefix: str = "") -> dict:
    """A nested mapping as {dotted key: leaf}."""
    if isinstance(node, dict):
        out: dict = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0) or (math.isnan(float(a)) and math.isnan(float(b)))
    return a == b


def fact_differences(facts: dict, device) -> dict:
    """The chip's INFO device facts that differ from ``device`` (a DeviceModel): {dotted key:
    {"chip": value, "device": value}}. Only the facts the chip states are compared (a board may
    state none: ``{}``); descriptive text and the facts the link refuses on (:data:`REFUSED`)
    are left out."""
    chip = _flatten(facts or {})
    mine = _flatten(device.model_dump(mode="json"))
    out = {}
    for key in sorted(chip):
        if key in DESCRIPTIVE or key in REFUSED:
            continue
        if key not in mine or not _same(chip[key], mine[key]):
            out[key] = {"chip": chip[key], "device": mine.get(key)}
    return out


def chip_record(url: str, device) -> dict:
    """What a run over ``url`` reports about the chip it ran on (metrics.json's ``chip``): the
    link, the chip's id, name, geometry and ADC from INFO, and every device fact that differs from
    the experiment's ``device`` (named in ONE warning line; geometry and ADC mismatches are
    refused where the crossbars are formed)."""
    with connect(url) as macro:
        info = macro.info()
    differs = fact_differences(info.facts, device)
    if differs:
        listed = ", ".join(f"{k} {v['chip']!r} (device {v['device']!r})" for k, v in differs.items())
        warnings.warn(
            f"{url}: chip '{info.name}' differs from device '{device.name}' in {listed}; the run records the chip's facts in metrics.json and report.md",
            stacklevel=2,
        )
    return {"url": url, "chip_id": f"0x{info.chip_id:016x}", "name": info.name, "tiles": info.tiles, "rows": info.rows, "cols": info.cols,
            "adc_bits": info.adc_bits, "lsb_us": info.lsb_us, "device": device.name, "facts_differ": differs}  # fmt: skip


class HilBackend:
    """A crossbar backend on a chip behind a link (see the module doc)."""

    NAME = "hil"
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, url: str):
        self.url = check_url(url)
        self.macro = None
        self.reservoir = None

    def form_crossbars(self, device, config, seeds: dict) -> tuple:
        """Open a session, form the encoder's crossbars on the chip and read them back; returns
        them as :class:`neurohw.crossbar.Crossbar` s (at weight scale 1 per uS until the encoder
        is calibrated, as formed crossbars are)."""
        self.close()
        self.macro = connect(self.url, chip_seed=int(seeds["noise"]))
        try:
            xin, xrec = form_encoder_crossbars(self.macro, device, config.n_inputs, config.n_neurons, seeds,
                                               scale=config.scale, rec_scale=config.rec_scale, p_in=config.p_in,
                                               p_rec=config.p_rec)
        except BaseException:
            self.close()
            raise
        self.reservoir = MacroReservoir(self.macro, xin, xrec)
        return xin.crossbar, xrec.crossbar

    def run_batch(self, syn, rasters, sample_ids, count_bins: int = 1, noise: bool = False, record_spikes: bool = False):
        """One batch with every crossbar read on the chip (the backends' signature)."""
        if self.reservoir is None:
            raise ConfigError(f"{self.url}: the crossbars are not on the chip yet (the encoder forms them on first use)")
        try:
            return self.reservoir.run_batch(syn, rasters, sample_ids, count_bins, noise, record_spikes)
        except ValueError as exc:  # the host's device model and the chip disagree
            raise ConfigError(f"{self.url}: {exc}; give the experiment the chip's device model") from None

    def identity(self) -> dict:
        """What determines the features besides the config: the link and the chip's INFO (its
        id, geometry, ADC and device facts); the feature cache keys on it."""
        with connect(self.url) as macro:
            info = macro.info()
        return {"url": self.url, "chip_id": info.chip_id, "name": info.name, "tiles": info.tiles, "rows": info.rows,
                "cols": info.cols, "adc_bits": info.adc_bits, "lsb_us": info.lsb_us, "facts": info.facts}

    def close(self) -> None:
        """End the chip session (the emulator frees its chip)."""
        if self.macro is not None:
            macro, self.macro, self.reservoir = self.macro, None, None
            macro.close()
