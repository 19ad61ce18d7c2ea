"""Energy and latency accounting of crossbar operations.

Counted per operation (by :class:`neurohw.crossbar.Crossbar`):
- ``read_cycles``: array read cycles, one per (input vector, input plane, row tile, column
  tile) with at least one active row; a tile with no active row is not read.
- ``active_rows``: word lines driven, summed over read cycles.
- ``cell_reads``: cells on active rows, summed over read cycles (two per differential pair).
- ``adc_conversions``: one per differential pair (logical output column) per read cycle.
- ``programming_pulses``: forming, SET/RESET and write-verify pulses.
- ``macs``: multiply-accumulates of the same product done digitally (dense:
  ``batch * n_in * n_out`` per MVM), for the digital baseline.

    E = cell_reads e_cell + active_rows e_row + adc_conversions e_adc + programming_pulses e_pulse
    t = read_cycles t_read + programming_pulses t_pulse           (one macro, sequential)
    E_digital = macs * e_mac
with the per-event values from the device YAML (``energy``, ``timing``, ``digital_baseline``).

The ADC's energy per conversion follows its resolution when the device gives
``energy.adc_conversion_bits`` (:func:`adc_conversion_j`): Walden's figure of merit
``FoM_W = E_conv / 2^ENOB`` is roughly constant across SAR ADCs of moderate resolution
(B. Murmann, "ADC Performance Survey 1997-2024", Stanford), so
``e_adc(bits) = adc_conversion_j * 2^(bits - adc_conversion_bits)``, ENOB taken as the nominal
bits. It underestimates the cost of high-resolution converters (thermal noise: about 4x per bit
above ~10 bits, Schreier's figure of merit) and overestimates very low-resolution ones (a floor
set by the comparator and the logic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neurohw.devices.model import DigitalBaseline, Energy, Timing

def adc_conversion_j(device) -> float:
    """Energy of one ADC conversion at the ``device``'s (a DeviceModel) ``adc.bits``, joules
    (module doc): ``adc_conversion_j`` scaled by ``2^(bits - adc_conversion_bits)`` when the
    device gives ``adc_conversion_bits`` and has an ADC, else ``adc_conversion_j`` itself."""
    e = device.energy
    if e.adc_conversion_bits is None or device.adc.bits is None:
        return float(e.adc_conversion_j)
    return float(e.adc_conversion_j) * 2.0 ** (device.adc.bits - e.adc_conversion_bits)


COUNTERS = ("read_cycles", "active_rows", "cell_reads", "adc_conversions", "programming_pulses", "macs")

@dataclass
class EnergyLedger:
    """Operation counters and their cost (see the module doc)."""

    energy: Energy = field(repr=False)
    timing: Timing = field(repr=False)
    baseline: DigitalBaseline = field(repr=False)
    read_cycles: int = 0
    active_rows: int = 0
    cell_reads: int = 0
    adc_conversions: int = 0
    programming_pulses: int = 0
    macs: int = 0

    @classmethod
    def for_device(cls, device) -> EnergyLedger:
        """An empty ledger priced by ``device`` (a DeviceModel), its ADC energy at its bits."""
        energy = device.energy.model_copy(update={"adc_conversion_j": adc_conversion_j(device)})
        return cls(energy, device.timing, device.digital_baseline)

    def add(self, **counts: int) -> None:
        """Add to the named counters."""
        for name, value in counts.items():
            if name not in COUNTERS:
                raise KeyError(f"unknown counter {name!r}; counters: {', '.join(COUNTERS)}")
            setattr(self, name, getattr(self, name) + int(value))

    def reset(self) -> None:
        """Zero every counter."""
        for name in COUNTERS:
            setattr(self, name, 0)

    def counts(self) -> dict[str, int]:
        """The counters as a dict."""
        return {name: int(getattr(self, name)) for name in COUNTERS}

    def breakdown(self) -> dict[str, float]:
        """Energy per component, joules."""
        e = self.energy
        return {
            "cell_reads": self.cell_reads * e.cell_read_j,
            "active_rows": self.active_rows * e.active_row_j,
            "adc_conversions": self.adc_conversions * e.adc_conversion_j,
            "programming_pulses": self.programming_pulses * e.programming_pulse_j,
        }

    def joules(self, include_programming: bool = True) -> float:
        """Total energy of the counted operations, joules."""
        parts = self.breakdown()
        if not include_programming:
            parts.pop("programming_pulses")
        return float(sum(parts.values()))

    def seconds(self, include_programming: bool = True) -> float:
        """Total time of the counted operations on one macro, seconds."""
        t = self.read_cycles * self.timing.read_cycle_s
        if include_programming:
            t += self.programming_pulses * self.timing.programming_pulse_s
        return float(t)

    def digital_baseline_joules(self) -> float:
        """Energy of the same MACs on the digital baseline, joules."""
        return float(self.macs * self.baseline.mac_j)

    def summary(self) -> dict[str, float | int]:
        """Counters, energies and times in one flat dict (for metrics.json)."""
        out: dict[str, float | int] = dict(self.counts())
        out.update({f"energy_{k}_j": v for k, v in self.breakdown().items()})
        out["energy_j"] = self.joules()
        out["energy_read_j"] = self.joules(include_programming=False)
        out["time_s"] = self.seconds()
        out["digital_baseline_j"] = self.digital_baseline_joules()
        return out
