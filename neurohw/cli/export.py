"""``neurohw export CONFIG.yaml --out DIR [--seed N] [--set key.path=value ...]``.

Builds the encoders of an experiment exactly as ``neurohw run`` does for run seed ``N``
(same sample selection, same target_rate calibration, same reservoir seeds) and writes, per
modality, what the tools that program and run real devices read:

- ``<modality>.nir``: the reservoir as a NIR graph (neurohw.export.nir_graph), conductance
  maps and device facts in the Linear nodes' metadata;
- ``<modality>_input_conductances.h5`` and ``<modality>_recurrent_conductances.h5``: the
  differential conductance maps (uS), the format ``Crossbar.from_conductance_map`` reads back.

The folder appears complete or not at all (built beside DIR, then renamed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from neurohw.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="write an experiment's encoders as NIR graphs and conductance maps", description=__doc__)
    p.add_argument("config", help="experiment YAML (as for 'neurohw run')")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to create (must not exist)")
    p.add_argument("--seed", type=int, default=None, help="run seed whose encoders to export (default: the first)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a config value, as for 'neurohw run'",
    )
    p.set_defaults(handler=_export)


def _export(args) -> int:
    from neurohw.devices.model import load_device
    from neurohw.experiments.runner import modality_encoders, resolve_modalities
    from neurohw.experiments.schema import load_config
    from neurohw.export.nir_graph import write_nir

    cfg = load_config(args.config, args.overrides)
    seeds = list(cfg.run_seeds)
    seed = seeds[0] if args.seed is None else args.seed
    if seed not in seeds:
        raise ConfigError(f"--seed {seed}: the config runs seeds {seeds}; pick one of them")
    out = Path(args.out)
    if out.exists():
        raise ConfigError(f"--out {out} already exists; give a new folder")
    device = load_device(cfg.device.model, cfg.device.overrides or None)
    mods = resolve_modalities(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        written = []
        for mod, menc, _, _ in modality_encoders(cfg, mods, device, seed):
            enc = menc.encoder  # calibrates target_rate on the run's training samples
            written.append(write_nir(enc, tmp / f"{mod.name}.nir"))
            scale = enc.scale
            xin = enc.crossbar_in if enc.crossbar_in.scale == scale else enc.crossbar_in.rescaled(scale)
            written.append(xin.save_conductance_map(tmp / f"{mod.name}_input_conductances.h5"))
            written.append(enc.crossbar_rec.save_conductance_map(tmp / f"{mod.name}_recurrent_conductances.h5"))
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for path in written:
        print(out / path.name)
    return 0
