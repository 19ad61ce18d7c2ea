"""The ``neurohw`` command line.

Each command group lives in its own module (``neurohw.cli.<group>``) exposing
``register(subparsers)``; the handler it sets returns an exit code. User errors
(:class:`neurohw.errors.UserError`) print one line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from neurohw import __version__
from neurohw.errors import UserError

#: command-group modules, in the order ``--help`` lists them
GROUPS = ("run", "sweep", "data", "devices", "bench", "export", "hil")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own convention too)
        self.exit(2, f"neurohw: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurohw", description="neurohw: a liquid state machine on a simulated resistive-memory crossbar")
    parser.add_argument("--version", action="version", version=f"neurohw {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in GROUPS:
        importlib.import_module(f"neurohw.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # before or after the command: neurohw run X --debug works too
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if args.debug:  # the traceback, and still the user error's exit code (2), not Python's 1
            import traceback

            traceback.print_exc(file=sys.stderr)
        print(f"neurohw: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("neurohw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
