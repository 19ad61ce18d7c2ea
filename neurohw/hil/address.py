"""HIL link addresses: ``hil://HOST:PORT`` (TCP) and ``hil+serial://PORT?baud=N`` (serial).

- ``hil://127.0.0.1:7341``, ``hil://[::1]:7341``, ``hil://board.local:7341``
- ``hil+serial:///dev/ttyUSB0?baud=921600``, ``hil+serial://COM3?baud=115200``, and any
  pyserial URL as the port: ``hil+serial://socket://127.0.0.1:7341?baud=115200`` (a raw TCP
  socket), ``hil+serial://loop://`` (a loopback; useful only to test the framing).
Both take the driver options ``timeout`` (seconds per attempt, default 2), ``retries``
(attempts per request before giving up, default 8), ``window`` (requests in flight,
default 32, at most 64: the replay window of the protocol) and ``busy_wait`` (seconds the
driver waits out BUSY answers, a full server or a chip busy with a long operation, with
backoff 0.1 s doubling to 2 s; default 60) as query keys, e.g. ``hil://127.0.0.1:7341?timeout=0.5``. ``baud`` defaults to
115200. A pyserial URL's own ``?options`` cannot be given inside a ``hil+serial`` URL.

:func:`parse_address` raises :class:`neurohw.hil.errors.HilError` with one line for a bad URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from neurohw.errors import did_you_mean
from neurohw.hil.errors import HilError

SCHEMES = ("hil", "hil+serial")
DEFAULT_PORT = 7341
DEFAULT_BAUD = 115200
OPTIONS = ("timeout", "retries", "window", "busy_wait")
#: requests in flight at most: the emulator keeps the replies of the last 64 requests
MAX_WINDOW = 64


@dataclass(frozen=True)
class HilAddress:
    """A parsed link address. ``kind``: "tcp" or "serial"."""

    kind: str
    url: str
    host: str = ""
    port: int = 0
    serial_port: str = ""
    baud: int = DEFAULT_BAUD
    timeout_s: float = 2.0
    retries: int = 8
    window: int = 32
    busy_wait_s: float = 60.0

    def __str__(self) -> str:
        return self.url


def _options(query: str, url: str, allowed: tuple[str, ...]) -> dict:
    out: dict = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise HilError(f"{url}: unknown option {key!r}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")
        if key in out:
            raise HilError(f"{url}: option {key!r} is given twice")
        out[key] = value
    if query and not out and "=" not in query:
        raise HilError(f"{url}: options must be key=value pairs after '?', e.g. ?timeout=0.5")
    return {field: _number(url, key, out[key], convert, lo, hi, rule)
            for key, (field, convert, lo, hi, rule) in _NUMBERS.items() if key in out}


#: query key -> (HilAddress field, conversion, lowest, highest, what the value must be);
#: checked in this order, so the first bad one named is always the same
_NUMBERS = {
    "timeout": ("timeout_s", float, 0.001, 3600, "seconds in [0.001, 3600]"),
    "busy_wait": ("busy_wait_s", float, 0, 86400, "seconds in [0, 86400]"),
    "retries": ("retries", int, 1, 1000, "an integer in [1, 1000]"),
    "window": ("window", int, 1, MAX_WINDOW, f"an integer in [1, {MAX_WINDOW}]"),
    "baud": ("baud", int, 1, 100_000_000, "a positive integer (bits per second), e.g. baud=115200"),
}


def _number(url: str, key: str, text: str, convert: Callable[[str], float], lo: float, hi: float, rule: str) -> float | int:
    """``text`` as a number in ``[lo, hi]`` (``convert``: float or int), or one HilError line."""
    try:
        value = convert(text)
    except ValueError:
        value = math.nan
    if not lo <= value <= hi:
        raise HilError(f"{url}: {key}={text!r} must be {rule}")
    return value


def parse_address(url: str) -> HilAddress:
    """Parse a ``hil://`` or ``hil+serial://`` URL (see the module doc)."""
    text = str(url).strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise HilError(f"{text!r} is not a HIL address; use hil://HOST:PORT (TCP) or hil+serial://PORT?baud=N (serial)")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise HilError(f"{text}: unknown scheme {scheme + '://'!r}{did_you_mean(scheme, SCHEMES)}; use hil://HOST:PORT or hil+serial://PORT?baud=N")
    if scheme == "hil+serial":
        port, q, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
        if not port:
            raise HilError(f"{text}: no serial port; e.g. hil+serial:///dev/ttyUSB0?baud=115200 or hil+serial://socket://127.0.0.1:7341")
        opts = _options(query, text, OPTIONS + ("baud",))
        return HilAddress("serial", text, serial_port=port, **opts)
    hostport, q, query = rest.partition("?")
    if "/" in hostport.rstrip("/"):
        raise HilError(f"{text}: a hil:// address has no path; use hil://HOST:PORT")
    hostport = hostport.rstrip("/")
    if hostport.startswith("["):
        host, close, tail = hostport[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise HilError(f"{text}: malformed IPv6 host; use hil://[ADDR]:PORT")
        port_text = tail[1:] if tail else ""
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, ""
    if not host:
        raise HilError(f"{text}: no host; use hil://HOST:PORT, e.g. hil://127.0.0.1:{DEFAULT_PORT}")
    if not port_text:
        raise HilError(f"{text}: no port; use hil://{host}:PORT (neurohw hil serve listens on {DEFAULT_PORT} by default)")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise HilError(f"{text}: port {port_text!r} must be an integer in 1..65535")
    opts = _options(query, text, OPTIONS)
    return HilAddress("tcp", text, host=host, port=port, **opts)
