"""``neurohw hil``: hardware in the loop (docs/hil-protocol.md, docs/hil-conformance.md).

- ``neurohw hil serve --device NAME_OR_YAML [--set KEY=VALUE ...] [--host 127.0.0.1] [--port 7341]
  [--tiles 8] [--latency-us N] [--faults SPEC] [--max-sessions 8] [--max-connections 16]
  [--max-payload BYTES] [--frame-timeout-s 5] [--idle-timeout-s 600]
  [--session-grace-s 10 (alias --session-ttl-s)] [--hello-timeout-s 5] [--key-file PATH | --insecure]
  [--serial PORT [--baud N]] [--exit-after S] [--verbose]``: the emulator; prints
  ``serving ... on hil://HOST:PORT`` and serves until Ctrl-C or SIGTERM (or ``--exit-after``).
- ``neurohw hil info URL [--verbose]``: what the chip behind URL reports (INFO).
- ``neurohw hil calibrate URL --out DIR [--tiles 0,1] [--reads 32] [--seed 0]
  [--formed gaussian|lognormal|histogram] [--no-drift] [--verbose]``: measure the chip and write
  a device model (device.yaml, conductance maps, calibration.json).
- ``neurohw hil conformance URL [--json] [--destructive] [--core] [--case NAME ...] [--timeout S]
  [--verbose]``: the protocol document as an executable suite; exit 0 when no case fails, 1 when
  one does, 2 for a bad URL or an unreachable chip.

A key (``NEUROHW_HIL_KEY`` or ``NEUROHW_HIL_KEY_FILE``) is read from the environment, never from
the command line. ``--verbose`` logs every frame (logger ``neurohw.hil.frames``) to stderr;
``--debug`` (before or after the command) adds a traceback to an error and keeps its exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time

from neurohw.errors import UserError


def register(subparsers) -> None:
    """Add the ``hil`` group and its commands."""
    parser = subparsers.add_parser(
        "hil",
        help="hardware in the loop: emulator server, chip info, calibration",
        description="hardware in the loop: an emulated macro behind a link, and chip calibration (docs/hil-protocol.md)",
    )
    sub = parser.add_subparsers(dest="hil_command", metavar="COMMAND", parser_class=type(parser))
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    p = sub.add_parser("serve", help="serve emulated chips of a device model over TCP (and a serial port)")
    p.add_argument("--device", required=True, help="device model name (neurohw devices list) or YAML path")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a device value, e.g. --set read_noise.relative=0 (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; beyond loopback a key is required unless --insecure)")
    p.add_argument("--port", type=int, default=7341, help="TCP port (default 7341; 0: a free one, printed)")
    p.add_argument("--tiles", type=int, default=8, help="tiles per emulated chip (default 8)")
    p.add_argument("--latency-us", type=float, default=0.0, help="extra latency per reply, microseconds (a slow board)")
    p.add_argument(
        "--faults", default="", metavar="SPEC", help="fault injection, e.g. drop=0.05,corrupt=0.01,delay=0.01:50,disconnect=0.001,stuck=0.01,slowop=20,seed=1"
    )
    p.add_argument("--max-sessions", type=int, default=8, help="sessions held at once (default 8)")
    p.add_argument("--max-connections", type=int, default=16, help="connections at once (default 16)")
    p.add_argument("--max-payload", type=int, default=None, help="largest payload announced, bytes (default 4 MiB)")
    p.add_argument("--frame-timeout-s", type=float, default=5.0, help="a frame must complete within this time of its first byte (default 5)")
    p.add_argument("--idle-timeout-s", type=float, default=600.0, help="close connections idle this long (default 600)")
    p.add_argument(
        "--session-grace-s",
        "--session-ttl-s",
        dest="session_grace_s",
        type=float,
        default=10.0,
        help="keep a session this long after its connection went away, for resume (default 10; --session-ttl-s is an alias)",
    )
    p.add_argument("--hello-timeout-s", type=float, default=5.0, help="close connections that send no valid frame within this time (default 5)")
    p.add_argument("--key-file", default=None, metavar="PATH", help="pre-shared key for HMAC-SHA256 session authentication (or set NEUROHW_HIL_KEY)")
    p.add_argument("--insecure", action="store_true", help="allow binding beyond loopback without a key (anyone who reaches the port can FORM and PROGRAM)")
    p.add_argument("--serial", default=None, metavar="PORT", help="also serve this serial port (a device path or a pyserial URL)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate of --serial (default 115200)")
    p.add_argument("--exit-after", type=float, default=None, metavar="S", help="stop after S seconds (for scripts and tests)")
    p.add_argument("--verbose", action="store_true", help="log connections and errors to stderr")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("info", help="print what the chip behind URL reports")
    p.add_argument("url", help="hil://HOST:PORT or hil+serial://PORT?baud=N")
    p.add_argument("--verbose", action="store_true", help="log every frame to stderr")
    p.set_defaults(handler=_frames_logged(cmd_info))

    p = sub.add_parser("calibrate", help="measure a chip over the link and write a device model of it")
    p.add_argument("url", help="hil://HOST:PORT or hil+serial://PORT?baud=N")
    p.add_argument("--out", required=True, help="output folder (device.yaml, conductance maps, calibration.json)")
    p.add_argument("--tiles", default=None, help="comma-separated tiles to measure (default all)")
    p.add_argument("--reads", type=int, default=32, help="repeated reads per read-noise pattern (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of FORM, PROGRAM and the row sets (default 0)")
    p.add_argument(
        "--formed", default="gaussian", choices=("gaussian", "lognormal", "histogram"), help="formed-conductance distribution to write (default gaussian)"
    )
    p.add_argument("--no-drift", action="store_true", help="do not advance the chip's clock to measure drift")
    p.add_argument("--verbose", action="store_true", help="log every frame to stderr")
    p.set_defaults(handler=_frames_logged(cmd_calibrate))

    p = sub.add_parser("conformance", help="check a chip against the protocol document, case by case (docs/hil-conformance.md)")
    p.add_argument("url", help="hil://HOST:PORT or hil+serial://PORT?baud=N (key, if the board asks: NEUROHW_HIL_KEY or NEUROHW_HIL_KEY_FILE)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--destructive", action="store_true", help="also run RESET, FORM and PROGRAM on a scratch block of the last tile")
    p.add_argument("--core", action="store_true", help="only the core cases (what the board skeleton implements)")
    p.add_argument("--case", action="append", default=[], metavar="NAME", help="run only this case or group, e.g. replay/ (repeatable)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds to wait for each reply (default 5, or the URL's timeout=)")
    p.add_argument("--verbose", action="store_true", help="log every frame to stderr")
    p.set_defaults(handler=_frames_logged(cmd_conformance))


def _overrides(items: list[str]) -> dict:
    """``--set KEY=VALUE`` items as a nested mapping, parsed by the one configuration layer
    (:func:`neurohw.config.apply_overrides`: its YAML size and alias limits, one-line errors)."""
    from neurohw.config import apply_overrides
    from neurohw.errors import DeviceError

    return apply_overrides({}, items, DeviceError)


def _loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (a name other than localhost counts as not)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from neurohw.devices.model import load_device
    from neurohw.hil.auth import server_key
    from neurohw.hil.faults import parse_faults
    from neurohw.hil.protocol import DEFAULT_MAX_PAYLOAD, MIN_MAX_PAYLOAD
    from neurohw.hil.server import HilServer, ServerConfig

    device = load_device(args.device, _overrides(args.set) or None)
    faults = parse_faults(args.faults)
    checks = [
        (1 <= args.tiles <= 65535, f"--tiles {args.tiles}: give 1..65535"),
        (0 <= args.port <= 65535, f"--port {args.port}: give 0..65535"),
        (args.latency_us >= 0, f"--latency-us {args.latency_us}: must be >= 0"),
        (args.max_sessions >= 1 and args.max_connections >= 1, "--max-sessions and --max-connections must be >= 1"),
        (min(args.frame_timeout_s, args.idle_timeout_s, args.session_grace_s, args.hello_timeout_s) > 0, "timeouts must be > 0 seconds"),
        (
            args.max_payload is None or MIN_MAX_PAYLOAD <= args.max_payload <= 0xFFFFFFFF,
            f"--max-payload {args.max_payload}: give {MIN_MAX_PAYLOAD}..4294967295 bytes",
        ),
        (args.baud >= 1, f"--baud {args.baud}: must be a positive integer"),
    ]
    for ok, text in checks:
        if not ok:
            raise UserError(text)
    key = server_key(args.key_file)
    if key is None and not _loopback(args.host) and not args.insecure:
        raise UserError(f"--host {args.host} is beyond loopback and no key is set: anyone who reaches the port could FORM and PROGRAM the chip; "
                        "give --key-file PATH (or NEUROHW_HIL_KEY), or --insecure to serve without one")
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    config = ServerConfig(
        tiles=args.tiles, latency_us=args.latency_us, faults=faults, max_payload=args.max_payload or DEFAULT_MAX_PAYLOAD,
        max_sessions=args.max_sessions, max_connections=args.max_connections, frame_timeout_s=args.frame_timeout_s,
        idle_timeout_s=args.idle_timeout_s, session_grace_s=args.session_grace_s, hello_timeout_s=args.hello_timeout_s, key=key,
    )  # fmt: skip
    server = HilServer(device, args.host, args.port, config)
    try:
        server.start()
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); pick another --port or --host") from None
    try:
        if args.serial:
            from neurohw.hil.transport import LinkClosed

            try:
                server.serve_serial(args.serial, args.baud)
            except LinkClosed as exc:
                raise UserError(f"--serial {args.serial}: {exc}") from None
        where = server.url + (f" and serial {args.serial}" if args.serial else "")
        if key is None and not _loopback(args.host):
            print(f"neurohw hil: warning: listening on {args.host} without a key (--insecure)", file=sys.stderr)
        print(f"neurohw hil: serving {device.name} ({args.tiles} tiles per chip) on {where}", flush=True)
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        with _stopped_by(signal.SIGTERM) as stop:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                stop.wait(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


@contextlib.contextmanager
def _stopped_by(signum: int):
    """An event set when ``signum`` arrives (``hil serve`` stops on SIGTERM, from ``kill`` or a
    service manager, as cleanly as on Ctrl-C); the previous handler is restored on the way out."""
    stop = threading.Event()
    previous = signal.signal(signum, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signum, previous)


def _frames_logged(handler):
    """``--verbose``: while ``handler`` runs, the HIL loggers (every frame on
    ``neurohw.hil.frames``) write to stderr at DEBUG."""

    def run(args: argparse.Namespace) -> int:
        if not getattr(args, "verbose", False):
            return handler(args)
        import logging

        log = logging.getLogger("neurohw.hil")
        out = logging.StreamHandler(sys.stderr)
        out.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        level = log.level
        log.addHandler(out)
        log.setLevel(logging.DEBUG)
        try:
            return handler(args)
        finally:
            log.removeHandler(out)
            log.setLevel(level)

    return run


def cmd_conformance(args: argparse.Namespace) -> int:
    import json

    from neurohw.hil.conformance import CASES, format_table, run_conformance

    if args.timeout is not None and not 0.01 <= args.timeout <= 600:
        raise UserError(f"--timeout {args.timeout}: give seconds in [0.01, 600]")
    names = {c.name for c in CASES}
    for item in args.case:
        if item not in names and not any(n.startswith(item.rstrip("/") + "/") for n in names):
            raise UserError(f"--case {item!r}: no such case or group; e.g. --case replay/ or --case frames/header-crc")
    results = run_conformance(args.url, destructive=args.destructive, core_only=args.core, only=args.case or None, timeout=args.timeout)
    if args.json:
        print(json.dumps({"url": args.url, "passed": not any(r.outcome == "FAIL" for r in results), "cases": [r.as_dict() for r in results]}, indent=2))
    else:
        print(format_table(results))
    return 1 if any(r.outcome == "FAIL" for r in results) else 0


def cmd_info(args: argparse.Namespace) -> int:
    from neurohw.hil.remote import RemoteMacro

    with RemoteMacro(args.url) as macro:
        info = macro.info()
    adc = f"{info.adc_bits}-bit, LSB {info.lsb_us:g} uS" + (" (per-tile gain)" if info.per_tile_gain else "") if info.adc_bits else "none (analog sums)"
    rows = [
        ("chip", f"0x{info.chip_id:016x} ({info.name or 'unnamed'})"),
        ("tiles", f"{info.tiles} x {info.rows} rows x {info.cols} columns ({info.pairs} differential pairs)"),
        ("adc", adc),
        ("inputs", f"{info.input_bits or 'analog'} bits, {'bit-serial' if info.bit_serial else 'amplitude'}, up to {info.max_planes} planes per read"),
        ("levels", f"{info.level_step_us:g} uS" if info.level_step_us else "continuous"),
        ("program window", f"{info.g_min_us:g}..{info.g_max_us:g} uS"),
        ("clock", f"{info.clock_s:g} s" + (" (drifts)" if info.drift else "")),
        ("exact reads", "yes (emulator)" if info.exact_reads else "no"),
        ("max payload", f"{info.max_payload} bytes"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from neurohw.hil.calibration import calibrate
    from neurohw.hil.remote import RemoteMacro

    tiles = None
    if args.tiles:
        try:
            tiles = [int(t) for t in args.tiles.split(",") if t.strip()]
        except ValueError:
            raise UserError(f"--tiles {args.tiles!r}: give comma-separated tile numbers, e.g. 0,1") from None
    console = Console(stderr=True)
    say = (lambda text: console.print(f"calibrate: {text}")) if console.is_terminal else None
    with RemoteMacro(args.url, chip_seed=args.seed) as macro:
        s = calibrate(macro, args.out, tiles=tiles, reads=args.reads, seed=args.seed, drift=not args.no_drift, formed_kind=args.formed, say=say)
    f, rn, st = s["forming"], s["read_noise"], s["stuck"]
    print(f"chip {s['chip_id']}: formed {f['formed_fraction']:.4f}, formed G {f['formed_mean_us']:.3f} +- {f['formed_std_us']:.3f} uS, "
          f"read noise {100 * rn['relative']:.3f} % + {rn['additive_us']:.4g} uS, stuck on {st['p_on']:.4g} off {st['p_off']:.4g}, "
          f"drift nu {s['drift']['nu_mean']:.4g}")  # fmt: skip
    print(f"wrote {args.out}/device.yaml, conductance_map.h5 and calibration.json")
    return 0
