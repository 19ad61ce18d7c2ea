"""``neurohw bench``: throughput benchmarks with their baselines measured in the same run.

``neurohw bench reservoir [--json] [--quick]``: benchmarks/bench_reservoir.py (every reservoir
backend against snntorch and plain torch). The benchmark code lives in the repository's
benchmarks/ folder, so this command runs from a checkout.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import neurohw
from neurohw.errors import UserError

BENCHMARKS = Path(neurohw.__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    path = BENCHMARKS / f"bench_{name}.py"
    if not path.is_file():
        raise UserError(f"benchmark file {path} not found; run 'neurohw bench' from a neurohw checkout (benchmarks/ is not installed)")
    spec = importlib.util.spec_from_file_location(f"neurohw_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reservoir(args) -> int:
    bench = _load("reservoir")
    report = bench.run(quick=args.quick)
    print(json.dumps(report) if args.json else bench.format_table(report))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="throughput benchmarks against baselines measured in the same run")
    sub = p.add_subparsers(dest="bench_command", metavar="BENCH")
    p.set_defaults(handler=lambda a: (p.print_help(), 2)[1])
    r = sub.add_parser("reservoir", help="reservoir backends vs snntorch and plain torch (samples/s, peak memory)")
    r.add_argument("--json", action="store_true", help="print one JSON object: {workload, results}")
    r.add_argument("--quick", action="store_true", help="a tiny workload (checks the pipeline, not speed)")
    r.set_defaults(handler=_reservoir)
