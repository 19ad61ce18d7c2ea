"""``neurohw sweep SWEEP.yaml`` and ``neurohw search SEARCH.yaml``: many experiments, on this
machine's cores or on a Ray cluster.

    neurohw sweep SWEEP.yaml|NAME [--workers N] [--executor local|ray] [--address ADDR] [--out DIR] [--set K=V ...]
    neurohw search SEARCH.yaml|NAME [--trials N] [--workers N] [--executor local|ray] [--address ADDR] [--out DIR] [--set K=V ...]

``--set`` changes the base experiment (as ``neurohw run --set`` does), before the axes or
parameters. Everything is checked before anything runs or is written.
"""

from __future__ import annotations

import argparse


def _add_common(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("file", metavar=f"{what.upper()}.yaml", help=f"{what} YAML, or a shipped {what}'s name")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="points run at the same time (default: the cores / threads per point; on Ray: the cluster's CPUs / threads)")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="local process pool (default) or Ray")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster: auto (the one on this machine) or HOST:PORT; default: start a local Ray and stop it at the end")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"the {what} folder (default: <output>/<name>); running again into it resumes; a folder of another sweep or search is refused",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="change the base experiment (repeatable), e.g. --set reservoir.digits.n_neurons=64")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def register(subparsers) -> None:
    """Add the ``sweep`` and ``search`` commands."""
    s = subparsers.add_parser("sweep", help="run an experiment over a grid of config values and seeds; one table, plots",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(s, "sweep")
    s.set_defaults(handler=_sweep)
    q = subparsers.add_parser("search", help="hyperparameter search (Optuna) on a validation metric (best config) or several objectives (Pareto front)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(q, "search")
    q.add_argument("--trials", type=int, default=None, metavar="N", help="trials in total, counting earlier sessions (default: the file's)")
    q.set_defaults(handler=_search)


def _sweep(args) -> int:
    from neurohw.sweeps.executors import check_executor, make_executor
    from neurohw.sweeps.records import claim_folder
    from neurohw.sweeps.base import check_machine
    from neurohw.sweeps.spec import load_sweep
    from neurohw.sweeps.sweep import run_sweep, sweep_folder

    sweep = load_sweep(args.file, args.overrides)
    check_executor(args.executor, args.workers, args.address)
    folder = sweep_folder(sweep, args.out)
    claim_folder(folder, "sweep", sweep.name)
    check_machine(sweep.configs.values(), folder, "sweep folder", progress=not args.quiet)
    with make_executor(args.executor, args.workers, args.address, sweep.threads) as executor:
        result = run_sweep(sweep, executor, folder, progress=not args.quiet)
    print(result.folder)
    return 0 if result.failed == 0 else 1


def _search(args) -> int:
    from neurohw.sweeps.executors import check_executor, make_executor
    from neurohw.sweeps.records import claim_folder
    from neurohw.sweeps.base import check_machine
    from neurohw.sweeps.search import load_search, run_search, search_folder

    search = load_search(args.file, args.overrides, trials=args.trials)
    check_executor(args.executor, args.workers, args.address)
    folder = search_folder(search, args.out)
    claim_folder(folder, "search", search.name)
    check_machine(search.configs, folder, "search folder", progress=not args.quiet)
    with make_executor(args.executor, args.workers, args.address, search.threads) as executor:
        result = run_search(search, executor, folder, progress=not args.quiet)
    print(result.pareto or result.best_config)
    return 0
