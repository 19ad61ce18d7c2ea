"""Helpers of the HIL tests: servers that bind 127.0.0.1 on a free port and stop by themselves,
and a raw-socket client that speaks frames byte by byte."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import yaml

from neurohw.devices.model import load_device, validate_device
from neurohw.hil import messages as msg
from neurohw.hil.protocol import Frame, FrameReader, Opcode, encode_frame
from neurohw.hil.server import HilServer, ServerConfig
from neurohw.resources import device_models_dir



def device(name: str = "taox_rram_40nm", **overrides):
    """A shipped device model with dotted-key overrides."""
    return load_device(name, overrides or None)


def device_from_yaml(path_or_name: str, edit) -> object:
    """A device model from a shipped YAML whose raw dict ``edit(raw)`` changes in place."""
    path = device_models_dir() / f"{path_or_name}.yaml"
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    return validate_device(raw, f"{path} (edited by the test)")


@contextlib.contextmanager
def live_server(dev=None, **config):
    """An in-process HilServer on 127.0.0.1, a free port; stopped on exit."""
    server = HilServer(dev or device(), "127.0.0.1", 0, ServerConfig(**config)).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def pty_null_modem():
    """Two pseudo-terminals wired back to back, as a null-modem cable joins two serial ports:
    what one side writes to its tty (the slave end) is read from the other's. A thread pumps
    bytes between the two master ends (non-blocking, buffered: a side that does not read does
    not stall the other). Both ttys are raw (no echo, no line editing) and held open for the
    whole block, so their settings stay and a port may be opened and closed many times.
    Yields the two tty paths."""
    pairs = [os.openpty(), os.openpty()]
    masters = [m for m, _ in pairs]
    for _, slave in pairs:
        tty.setraw(slave)
    for m in masters:
        os.set_blocking(m, False)
    stop = threading.Event()
    pending = {masters[0]: bytearray(), masters[1]: bytearray()}  # bytes waiting to be written to that master

    def pump():
        other = {masters[0]: masters[1], masters[1]: masters[0]}
        while not stop.is_set():
            wr = [m for m in masters if pending[m]]
            r, w, _ = select.select(masters, wr, [], 0.05)
            for m in r:
                try:
                    pending[other[m]] += os.read(m, 1 << 16)
                except (BlockingIOError, OSError):
                    pass
            for m in w:
                try:
                    n = os.write(m, pending[m])
                    del pending[m][:n]
                except (BlockingIOError, OSError):
                    pass

    thread = threading.Thread(target=pump, name="null-modem", daemon=True)
    thread.start()
    try:
        yield os.ttyname(pairs[0][1]), os.ttyname(pairs[1][1])
    finally:
        stop.set()
        thread.join(10)
        for fd in (*masters, *(s for _, s in pairs)):
            os.close(fd)


@contextlib.contextmanager
def serve_process(*args: str, exit_after: float = 300.0, env: dict | None = None):
    """``neurohw hil serve`` in a subprocess on a free port (``--exit-after`` as a safety net);
    yields (process, url)."""
    cmd = [sys.executable, "-m", "neurohw", "hil", "serve", "--port", "0", "--exit-after", str(exit_after), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))
    try:
        line = proc.stdout.readline()
        m = re.search(r"hil://127\.0\.0\.1:\d+", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()[-2000:]}")
        yield proc, m.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class RawClient:
    """Frames over a plain socket, for the bad-input tests."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = FrameReader(1 << 30)
        self.session = 0
        self.seq = 0
        self._backlog: list = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, opcode: int, payload: bytes = b"", *, seq: int | None = None, session: int | None = None, flags: int = 0, version: int = 1) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.sock.sendall(encode_frame(opcode, payload, seq=seq, session=self.session if session is None else session, flags=flags, version=version))
        return seq

    def events(self, timeout: float = 30.0, until=None) -> list:
        """Events (first those held back by :meth:`reply`) until ``until(events)`` is true or
        ``timeout`` passes; all are handed over."""
        out: list = self._backlog
        self._backlog = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until(out):
                break
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            out += self.reader.feed(data)
        return out

    def reply(self, seq: int, timeout: float = 30.0, final: bool = True) -> Frame:
        """The first (final) reply frame with ``seq``; other events are kept for later calls."""
        def match(e):
            return isinstance(e, Frame) and e.seq == seq and (not final or not e.header.is_progress)

        evs = self.events(timeout, lambda evs: any(match(e) for e in evs))
        for i, e in enumerate(evs):
            if match(e):
                self._backlog = evs[i + 1 :] + self._backlog
                return e
        raise AssertionError(f"no reply to seq {seq}: {evs}")

    def hello(self, chip_seed: int = 0, resume: int = 0) -> msg.HelloReply:
        seq = self.send(Opcode.HELLO, msg.Hello(1, 1, resume, chip_seed, "test").pack(), session=0)
        r = self.reply(seq)
        assert r.status == 0, r
        rep = msg.HelloReply.unpack(r.payload)
        self.session = rep.session
        return rep

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(0.2)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return True
            if not data:
                return True
        return False

    def drop(self) -> None:
        """Close the socket, leaving the session to be resumed."""
        self.sock.close()

    def close(self) -> None:
        """End the session (BYE) and close."""
        if self.session:
            try:
                self.send(Opcode.BYE)
            except OSError:
                pass
        self.sock.close()
