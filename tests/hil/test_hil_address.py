"""HIL URLs: the forms that parse, and one clear line for each bad one."""

from __future__ import annotations

import pytest

from neurohw.errors import UserError
from neurohw.hil.address import parse_address
from neurohw.hil.errors import HilError


def test_tcp_forms():
    a = parse_address("hil://127.0.0.1:7341")
    assert (a.kind, a.host, a.port, a.timeout_s, a.retries, a.window) == ("tcp", "127.0.0.1", 7341, 2.0, 8, 32)
    a = parse_address("hil://[::1]:9/?timeout=0.5&retries=3&window=4")
    assert (a.host, a.port, a.timeout_s, a.retries, a.window) == ("::1", 9, 0.5, 3, 4)
    assert parse_address("HIL://board.local:1").host == "board.local"


def test_serial_forms():
    a = parse_address("hil+serial:///dev/ttyUSB0?baud=921600")
    assert (a.kind, a.serial_port, a.baud) == ("serial", "/dev/ttyUSB0", 921600)
    a = parse_address("hil+serial://socket://127.0.0.1:7341?baud=9600&timeout=1")
    assert (a.serial_port, a.baud, a.timeout_s) == ("socket://127.0.0.1:7341", 9600, 1.0)
    a = parse_address("hil+serial://COM3")
    assert (a.serial_port, a.baud) == ("COM3", 115200)
    assert parse_address("hil+serial://loop://").serial_port == "loop://"


@pytest.mark.parametrize(
    "url, words",
    [
        ("127.0.0.1:7341", "not a HIL address"),
        ("http://127.0.0.1:7341", "unknown scheme"),
        ("hil+tcp://x:1", "unknown scheme"),
        ("hil://127.0.0.1", "no port"),
        ("hil://:7341", "no host"),
        ("hil://h:0", "must be an integer in 1..65535"),
        ("hil://h:99999", "must be an integer in 1..65535"),
        ("hil://h:abc", "must be an integer"),
        ("hil://h:1/path", "no path"),
        ("hil://[::1:1", "malformed IPv6"),
        ("hil://h:1?timeout=0", "timeout"),
        ("hil://h:1?retries=x", "retries"),
        ("hil://h:1?tmeout=1", "did you mean 'timeout'"),
        ("hil://h:1?baud=9600", "unknown option 'baud'"),
        ("hil+serial://?baud=9600", "no serial port"),
        ("hil+serial:///dev/ttyS0?baud=-3", "baud"),
        ("hil+serial:///dev/ttyS0?baud=fast", "baud"),
        ("hil+serial:///dev/ttyS0?baud=1&baud=2", "given twice"),
    ],
)
def test_bad_urls_are_one_line(url, words):
    with pytest.raises(HilError) as e:
        parse_address(url)
    text = str(e.value)
    assert isinstance(e.value, UserError) and "\n" not in text and words in text
