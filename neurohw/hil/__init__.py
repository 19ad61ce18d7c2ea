"""Hardware in the loop: an in-memory-computing macro behind a link, emulated or real.

- :mod:`.protocol`: framing (header, CRCs, sans-IO reader); :mod:`.messages`: the payloads of
  every command. The byte-level specification is docs/hil-protocol.md.
- :mod:`.chip`: the emulated chip (neurohw's device models per tile); :mod:`.faults`: fault
  injection; :mod:`.session` and :mod:`.server`: the emulator server (``neurohw hil serve``).
- :mod:`.macro`: the :class:`~.macro.Macro` API and :class:`~.macro.LocalMacro` (in process);
  :mod:`.remote`: :class:`~.remote.RemoteMacro`, the driver over :mod:`.transport` (TCP,
  serial); :mod:`.address`: ``hil://`` and ``hil+serial://`` URLs.
- :mod:`.reservoir`: the LSM reservoir with its crossbar reads on a macro;
  :mod:`.calibration`: a device model measured over the link (``neurohw hil calibrate``).
"""
