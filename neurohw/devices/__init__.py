"""Device models and their non-idealities, one module per effect.

- :mod:`~neurohw.devices.model`: the YAML schema, ``load_device``, ``list_devices``.
- :mod:`~neurohw.devices.forming`: stochastic electroforming (formation probability, formed
  conductance distribution, unformed conductance).
- :mod:`~neurohw.devices.levels`: discrete conductance levels.
- :mod:`~neurohw.devices.programming`: write-verify programming with pulse counts.
- :mod:`~neurohw.devices.read_noise`: per-read multiplicative and additive noise.
- :mod:`~neurohw.devices.drift`: power-law conductance drift.
- :mod:`~neurohw.devices.stuck`: stuck-at-on/off cells.
- :mod:`~neurohw.devices.adc`: the per-tile column ADC.
- :mod:`~neurohw.devices.input_encoding`: input quantisation and bit-serial planes.
- :mod:`~neurohw.devices.ir_drop`: first-order IR drop along the wires.
- :mod:`~neurohw.devices.energy`: the energy and latency ledger.
- :mod:`~neurohw.devices.conductance_map`: measured conductance maps (NPY, CSV, HDF5).
- :mod:`~neurohw.devices.chip_map`: a whole chip's map: tiles, placement, its files read.

The crossbar that composes them is :class:`neurohw.crossbar.Crossbar`.
"""

from neurohw.devices.model import DeviceModel, list_devices, load_device

__all__ = ["DeviceModel", "list_devices", "load_device"]
