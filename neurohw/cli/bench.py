"""``neurohw bench``: throughput benchmarks with their baselines measured in the same run.

``neurohw bench reservoir [--json] [--quick]``: benchmarks/bench_reservoir.py (every reservoir
backend against snntorch and plain torch).
``neurohw bench hil [--json] [--quick] [--quickstart]``: benchmarks/bench_hil.py (MVM frames/s and rows/s over
loopback TCP beside the in-process macro). The benchmarks/ folder is installed with the package
(``neurohw.benchmarks``), so the command runs wherever neurohw is installed.
"""

from __future__ import annotations

import importlib
import json


def _load(name: str):
    return importlib.import_module(f"neurohw.benchmarks.bench_{name}")


def _reservoir(args) -> int:
    bench = _load("reservoir")
    report = bench.run(quick=args.quick)
    print(json.dumps(report) if args.json else bench.format_table(report))
    return 0


def _hil(args) -> int:
    bench = _load("hil")
    report = bench.run(quick=args.quick)
    if args.quickstart:
        report["quickstart"] = bench.quickstart()
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
    h = sub.add_parser("hil", help="HIL link: MVM frames/s and rows/s over loopback TCP vs the in-process macro")
    h.add_argument("--json", action="store_true", help="print one JSON object: {workload, results}")
    h.add_argument("--quick", action="store_true", help="short timings (checks the pipeline, not speed)")
    h.add_argument("--quickstart", action="store_true", help="also time the whole quickstart, local and over hil:// (minutes)")
    h.set_defaults(handler=_hil)
