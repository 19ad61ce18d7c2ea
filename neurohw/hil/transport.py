"""Byte streams that carry HIL frames: TCP sockets and serial ports (pyserial).

A :class:`Transport` sends bytes and receives what has arrived within a timeout; framing is
:class:`neurohw.hil.protocol.FrameReader`'s job. :class:`TcpTransport` wraps a socket;
:class:`SerialTransport` wraps ``serial.serial_for_url``, so a port may be a device
(``/dev/ttyUSB0``, ``COM3``, a pty) or one of pyserial's URLs (``socket://HOST:PORT``: a raw
TCP socket; ``loop://``: a loopback that returns what is written). Both raise
:class:`LinkClosed` when the peer is gone.
"""

from __future__ import annotations

import abc
import socket
import time


class LinkClosed(ConnectionError):
    """The peer closed the link or it failed (reset, broken pipe, port gone)."""


class Transport(abc.ABC):
    """A byte stream. ``recv(timeout)``: the bytes that arrived within ``timeout`` seconds (b""
    when none); ``send(data)``: all of ``data`` or :class:`LinkClosed`."""

    name = "link"

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """See the class doc."""

    @abc.abstractmethod
    def recv(self, timeout: float) -> bytes:
        """See the class doc."""

    @abc.abstractmethod
    def close(self) -> None:
        """See the class doc."""


class TcpTransport(Transport):
    """A connected TCP socket. ``tick``: the socket's timeout, the longest one blocking call
    waits; ``send_timeout``: how long a send may wait for a peer that does not read."""

    def __init__(self, sock: socket.socket, name: str = "tcp", *, tick: float = 0.25, send_timeout: float = 10.0):
        self.sock = sock
        self.name = name
        self.tick = float(tick)
        self.send_timeout = float(send_timeout)
        self._timeout = None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._set_timeout(self.tick)
        self.closed = False

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0, **kwargs) -> "TcpTransport":
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        return cls(sock, f"{host}:{port}", **kwargs)

    def _set_timeout(self, t: float) -> None:
        if t != self._timeout:
            self.sock.settimeout(t)
            self._timeout = t

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + self.send_timeout
        while view:
            try:
                n = self.sock.send(view)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise LinkClosed(f"{self.name}: the peer does not read (send timed out)") from None
                continue
            except OSError as exc:
                raise LinkClosed(f"{self.name}: {exc.strerror or exc}") from None
            view = view[n:]

    def recv(self, timeout: float | None = None) -> bytes:
        """``timeout`` None: the tick (the socket's timeout; safe while another thread sends)."""
        if timeout is not None:
            self._set_timeout(max(float(timeout), 1e-4))
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise LinkClosed(f"{self.name}: {exc.strerror or exc}") from None
        if not data:
            raise LinkClosed(f"{self.name}: connection closed by the peer")
        return data

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class SerialTransport(Transport):
    """A pyserial port (``serial.serial_for_url``)."""

    def __init__(self, port, name: str = "serial", *, tick: float = 0.25):
        self.port = port
        self.name = name
        self.tick = float(tick)
        self.closed = False
        self._timeout = None

    @classmethod
    def open(cls, url: str, baud: int, *, tick: float = 0.25, write_timeout: float = 10.0) -> "SerialTransport":
        import serial

        try:
            port = serial.serial_for_url(url, baudrate=int(baud), timeout=tick, write_timeout=write_timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LinkClosed(f"{url}: cannot open the serial port ({exc})") from None
        return cls(port, url, tick=tick)

    def send(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkClosed(f"{self.name}: {exc}") from None

    def recv(self, timeout: float | None = None) -> bytes:
        import serial

        t = self.tick if timeout is None else max(float(timeout), 1e-4)
        try:
            # wait up to t for the first byte, then take what has arrived without waiting
            # (in_waiting is not exact on every port type, e.g. pyserial's socket://)
            self._set_timeout(t)
            first = self.port.read(1)
            if not first:
                return b""
            self._set_timeout(0)
            return bytes(first) + bytes(self.port.read(1 << 16))
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            raise LinkClosed(f"{self.name}: {exc}") from None

    def _set_timeout(self, t: float) -> None:
        if t != self._timeout:
            self.port.timeout = t
            self._timeout = t

    def close(self) -> None:
        self.closed = True
        try:
            self.port.close()
        except Exception:  # catch-all on purpose: closing a failed port must not raise
            pass
