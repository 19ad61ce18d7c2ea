"""``neurohw export RUN_DIR --format F [--seed N] --out PATH``.

Writes what the tools that program and run real devices read, from a finished run directory
(its resolved config, head weights and the encoders' record; the encoders are rebuilt exactly as
the run had them, without the datasets): conductance maps (HDF5, one CSV per tile), the
reservoir and head as NIR graphs (one per modality), the heads as ONNX or safetensors, or all of
it in a bundle with a manifest (docs/export.md). The output appears complete or not at all.

The old form ``neurohw export CONFIG.yaml --out DIR`` is answered with a one-line pointer: run
the experiment first, then export its run directory.
"""

from __future__ import annotations

from pathlib import Path

from neurohw.errors import ConfigError


def register(subparsers) -> None:
    from neurohw.export.formats import FORMATS

    p = subparsers.add_parser("export", help="write a run's conductance maps, NIR graphs and heads (ONNX, safetensors)",
                              description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'neurohw run'")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default=None,
                   help="conductance-hdf5 and head-safetensors write a file; the others a folder")
    p.add_argument("--out", required=True, metavar="PATH", help="file or folder to create (must not exist)")
    p.add_argument("--seed", type=int, default=None, help="run seed whose encoders and heads to export (default: the first)")
    p.set_defaults(handler=_export)


def _is_config(source: str) -> bool:
    path = Path(source)
    if path.is_dir():
        return False
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return True
    from neurohw.experiments.schema import shipped_experiments

    return source in shipped_experiments()


def _export(args) -> int:
    from neurohw.export.formats import FORMATS
    from neurohw.export.run_export import export_run

    if _is_config(args.run_dir):
        raise ConfigError(f"neurohw export reads a finished run directory now, not a config: run 'neurohw run {args.run_dir}' "
                          f"first, then 'neurohw export runs/<name>-<time> --format bundle --out {args.out}'")
    if args.fmt is None:
        raise ConfigError(f"give --format, one of {', '.join(FORMATS)}")
    for path in export_run(args.run_dir, args.fmt, args.out, args.seed):
        print(path)
    return 0
