"""``neurohw run CONFIG.yaml [--set key.path=value ...] [--out DIR]`` and ``neurohw validate CONFIG.yaml``."""

from __future__ import annotations

import argparse
import sys


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML, or a shipped experiment's name (quickstart, nmnist_small, ...)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a config value; the value is parsed as YAML (repeatable), e.g. --set head.epochs=20",
    )


def register(subparsers) -> None:
    """Add the ``run`` and ``validate`` commands."""
    p = subparsers.add_parser("run", help="run a YAML experiment; write a run directory", description=__doc__)
    _add_common(p)
    p.add_argument("--out", default=None, metavar="DIR", help="parent folder of the run directory (default: the config's output)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_run)
    v = subparsers.add_parser("validate", help="check a YAML experiment (schema, datasets, device, memory, folders) without running it")
    _add_common(v)
    v.add_argument("--out", default=None, metavar="DIR", help="the output folder to check (default: the config's output)")
    v.set_defaults(handler=_validate)


def _run(args) -> int:
    from neurohw.experiments.runner import run_experiment
    from neurohw.experiments.schema import load_config

    cfg = load_config(args.config, args.overrides)
    path = run_experiment(cfg, out=args.out, progress=not args.quiet)
    print(path)
    return 0


def _validate(args) -> int:
    from neurohw.experiments.modalities import resolve_modalities
    from neurohw.experiments.schema import load_config

    from neurohw.experiments.preflight import check_folders, check_links, preflight

    cfg = load_config(args.config, args.overrides)
    links = check_links(cfg)  # a TCP connect, a few seconds at most
    out = args.out if args.out is not None else cfg.output
    check_folders(out)  # before the datasets: a cold cache generates them first
    mods = resolve_modalities(cfg)
    preflight(cfg, mods, out)
    parts = [f"{m.name}: {m.spec.dataset} ({len(m.train)} train / {len(m.test)} test, {m.n_inputs} inputs)" for m in mods]
    parts += [f"link {note}" for note in links]
    print(f"{args.config}: valid ({cfg.task}; seeds {cfg.run_seeds}; " + "; ".join(parts) + ")", file=sys.stdout)
    return 0
