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
    from neurohw.experiments.encoding import ModalityReservoir
    from neurohw.experiments.modalities import resolve_modalities
    from neurohw.experiments.schema import load_config
    from neurohw.export.nir_graph import write_nir
    from neurohw.paths import check_writable_folder, staged_directory

    cfg = load_config(args.config, args.overrides)
    seeds = list(cfg.run_seeds)
    seed = seeds[0] if args.seed is None else args.seed
    if seed not in seeds:
        raise ConfigError(f"--seed {seed}: the config runs seeds {seeds}; pick one of them")
    out = Path(args.out)
    if out.exists():
        raise ConfigError(f"--out {out} already exists; give a new folder")
    check_writable_folder(out.parent, "--out: folder")
    mods = resolve_modalities(cfg)
    written = []
    with staged_directory(out) as staged:
        for res in ModalityReservoir.for_seed(cfg, mods, seed):
            enc = res.encoder  # calibrates target_rate on the run's training samples
            xin, xrec = enc.crossbars()
            written.append(write_nir(enc, staged.path / f"{res.mod.name}.nir"))
            written.append(xin.save_conductance_map(staged.path / f"{res.mod.name}_input_conductances.h5"))
            written.append(xrec.save_conductance_map(staged.path / f"{res.mod.name}_recurrent_conductances.h5"))
    for path in written:
        print(out / path.name)
    return 0
