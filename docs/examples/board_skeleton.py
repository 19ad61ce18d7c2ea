#!/usr/bin/env python3
"""A HIL board skeleton, written from docs/hil-protocol.md alone: a starting point to port.

Plain Python 3.10+, standard library only (it imports nothing of neurohw). It serves over TCP on
127.0.0.1 what a board serves over its link: the framing (both CRCs, resynchronisation), the
header checks, sessions with the anti-replay window and request digests, HELLO (with the HMAC
challenge when it is given a key), INFO, MVM, AUTH and BYE, on a fake array: one tile of
64 word lines x 64 bit lines (32 differential pairs) whose cells hold integer conductance
levels, read by a fixed 8-bit ADC. FORM, PROGRAM, READ, TIME, RESET, ABORT and STATS are not
implemented (UNKNOWN_OPCODE; the HELLO capabilities do not announce TIME, ABORT or STATS).

    python board_skeleton.py [--port 7342]          # no key: loopback only
    NEUROHW_HIL_KEY=secret python board_skeleton.py  # or --key-file PATH
    neurohw hil conformance hil://127.0.0.1:7342 --core

On a board: replace Link (a socket here) with the UART/Ethernet driver, Chip.mvm with the array
read, and keep the rest. Simplifications (documented so a port can add them): a session ends with
its connection (no resume), there is no frame timeout and no connection limit.
"""

import argparse
import binascii
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import threading
import zlib

SYNC, VERSION = 0xA5, 1
HEAD = struct.Struct("<BBBBIIIBBH")
HELLO, INFO, MVM, BYE, AUTH = 0x01, 0x02, 0x06, 0x0B, 0x0C
STATE_CHANGING = {0x03, 0x04, 0x06, 0x07, 0x08}  # FORM PROGRAM MVM TIME RESET
EMPTY_PAYLOAD = {INFO, 0x08, 0x0A, BYE}  # INFO RESET STATS BYE
REPLY, PROGRESS, EXACT, RETRY = 0x01, 0x02, 0x04, 0x08
(OK, BAD_CRC, BAD_LENGTH, UNKNOWN_OPCODE, OUT_OF_RANGE, BUSY, ABORTED, BAD_VERSION,
 BAD_SESSION, STALE, BAD_REQUEST, INTERNAL, SEQ_REUSED, BAD_AUTH) = range(14)  # fmt: skip
CAP_EXACT, CAP_AUTH = 0x1, 0x10
MAX_PAYLOAD = 64 * 1024
WINDOW = 64
TILES, ROWS, COLS, ADC_BITS, MAX_PLANES = 1, 64, 64, 8, 8
LEVEL_STEP_US, LSB_US = 1.0, 4.0  # conductance = level * 1 uS; one ADC code = 4 uS of column sum


class Chip:
    """The fake array: integer levels 0..15, G+ and G- of each pair, and the fixed ADC rule
    code = clip(rint(I / LSB), -(2^(bits-1)-1), 2^(bits-1)-1) of I = sum_i x_i (G+_i - G-_i)."""

    def __init__(self):
        self.level = [[(r * 7 + c * 3 + (r * c) % 5) % 16 for c in range(COLS)] for r in range(ROWS)]

    def mvm_code(self, rows, pair):
        current = sum((self.level[r][2 * pair] - self.level[r][2 * pair + 1]) * LEVEL_STEP_US for r in rows)
        top = (1 << (ADC_BITS - 1)) - 1
        return max(-top, min(top, round(current / LSB_US)))


def crc16(data):
    return binascii.crc_hqx(data, 0xFFFF)  # CRC-16/CCITT-FALSE


def encode(opcode, payload, seq, session, status=OK, flags=REPLY):
    head = HEAD.pack(SYNC, VERSION, opcode, flags, seq, session, len(payload), status, 0, 0)[:18]
    return head + struct.pack("<H", crc16(head)) + payload + struct.pack("<I", zlib.crc32(payload))


def error(text):
    return text.encode("utf-8")[:200]


RING = (1 << 32) - 1  # seqs live on the ring of the 2^32 - 1 nonzero values: 0xFFFFFFFF -> 1


def serial_ahead(a, b):
    """RFC 1982 on the ring: a is ahead of b when 0 < (a - b) mod (2^32 - 1) < 2^31."""
    return 0 < (a - b) % RING < (1 << 31)


def distance(a, b):
    """How many sequence numbers a lies behind b on the ring."""
    return (b - a) % RING


class Session:
    def __init__(self, sid, challenge):
        self.id, self.challenge, self.open = sid, challenge, challenge is None
        self.last_seq = 0
        self.kept = {}  # seq -> (request digest, reply payload, status): the window's executed requests

    def replay_check(self, seq, digest):
        """None to execute, else the reply (status, payload) that the window rule gives."""
        if self.last_seq == 0 or serial_ahead(seq, self.last_seq):
            return None
        if distance(seq, self.last_seq) >= WINDOW:
            return STALE, error("behind the replay window; it is not executed")
        if seq not in self.kept:
            return None  # inside the window, not executed yet
        old_digest, payload, status = self.kept[seq]
        if old_digest != digest:
            return SEQ_REUSED, error(f"seq {seq} was used by another request")
        return status, payload

    def record(self, seq, digest, status, payload):
        if self.last_seq == 0 or serial_ahead(seq, self.last_seq):
            self.last_seq = seq
        self.kept[seq] = (digest, payload, status)
        for s in [s for s in self.kept if distance(s, self.last_seq) >= WINDOW]:
            del self.kept[s]


class Board:
    def __init__(self, key=None):
        self.key, self.chip = key, Chip()
        self.sessions, self.dead, self.lock = {}, set(), threading.Lock()
        self.chip_id = 0x5EED0000B0A4D001

    def new_session_id(self):
        with self.lock:
            while True:
                sid = secrets.randbits(32)
                if sid and sid not in self.sessions and sid not in self.dead:
                    return sid

    def info(self):
        flags = 0x01 | 0x08  # bit-serial inputs, EXACT reads (there is no noise to leave out)
        fixed = struct.pack("<HHHBBBBdddddQI", TILES, ROWS, COLS, ADC_BITS, 1, MAX_PLANES, flags,
                            LSB_US, LEVEL_STEP_US, 0.0, 15 * LEVEL_STEP_US, 0.0, self.chip_id, MAX_PAYLOAD)  # fmt: skip
        name, facts = b"board-skeleton", json.dumps({"levels": 16}).encode()
        return fixed + struct.pack("<d", LSB_US) * TILES + struct.pack("<H", len(name)) + name + struct.pack("<I", len(facts)) + facts

    def mvm(self, p):
        if len(p) < 14:
            return BAD_LENGTH, error("MVM payload shorter than block + B, P, reserved")
        tile, row0, nrows, col0, ncols = struct.unpack_from("<HHHHH", p)
        B, P, reserved = struct.unpack_from("<HBB", p, 10)
        row_bytes = (nrows + 7) // 8
        if len(p) != 14 + 8 * B + B * P * row_bytes:
            return BAD_LENGTH, error("MVM payload size does not fit B, P and nrows")
        if reserved:
            return BAD_REQUEST, error("MVM reserved byte not 0")
        if tile >= TILES or nrows < 1 or ncols < 1 or row0 + nrows > ROWS or col0 + ncols > COLS // 2:
            return OUT_OF_RANGE, error("block outside the chip")
        if B == 0 or P == 0 or P > MAX_PLANES:
            return OUT_OF_RANGE, error(f"B must be >= 1 and P in 1..{MAX_PLANES}")
        out, off = [], 14 + 8 * B
        for _ in range(B * P):
            bits = p[off : off + row_bytes]
            off += row_bytes
            if nrows % 8 and bits[-1] >> (nrows % 8):
                return BAD_REQUEST, error("non-zero padding bits in a bit row")
            rows = [row0 + i for i in range(nrows) if bits[i // 8] >> (i % 8) & 1]
            out += [self.chip.mvm_code(rows, col0 + j) if rows else 0 for j in range(ncols)]
        return OK, struct.pack("<HBBH", B, P, 0, ncols) + struct.pack(f"<{len(out)}i", *out)


class Connection:
    def __init__(self, board, sock):
        self.board, self.sock, self.buf = board, sock, bytearray()
        self.session, self.hello = None, None  # hello: (seq, payload, reply) of the open session's HELLO

    def send(self, opcode, payload, seq, status=OK):
        self.sock.sendall(encode(opcode, payload, seq, self.session.id if self.session else 0, status))

    def frames(self):
        """§Reading a byte stream: yields (header fields, payload) or (header, None) on a bad CRC."""
        while True:
            while self.buf and self.buf[0] != SYNC:
                del self.buf[0]
            if len(self.buf) >= 20:
                if crc16(bytes(self.buf[:18])) != struct.unpack_from("<H", self.buf, 18)[0]:
                    del self.buf[0]
                    continue
                head = HEAD.unpack_from(self.buf)
                n = head[6]
                if n > MAX_PAYLOAD:
                    del self.buf[:20]
                    yield head, "oversized"
                    continue
                if len(self.buf) >= 24 + n:
                    payload = bytes(self.buf[20 : 20 + n])
                    good = zlib.crc32(payload) == struct.unpack_from("<I", self.buf, 20 + n)[0]
                    del self.buf[: 24 + n]
                    yield head, (payload if good else None)
                    continue
            data = self.sock.recv(65536)
            if not data:
                return
            self.buf += data

    def run(self):
        try:
            for head, payload in self.frames():
                self.handle(head, payload)
                if self.sock.fileno() < 0:
                    break
        except OSError:
            pass
        finally:
            self.end_session()
            self.sock.close()

    def end_session(self):
        if self.session is not None:
            with self.board.lock:
                self.board.sessions.pop(self.session.id, None)
                self.board.dead.add(self.session.id)  # ids are never reused
        self.session, self.hello = None, None

    def handle(self, head, payload):
        _, version, op, flags, seq, sid, n, status, reserved, _ = head
        if payload == "oversized":
            return self.send(op, error(f"length {n} above max_payload {MAX_PAYLOAD}"), seq, BAD_LENGTH)
        if payload is None:
            return self.send(op, error("payload CRC-32 wrong; resend"), seq, BAD_CRC)
        if version != VERSION:  # the header checks, in the document's order
            return self.send(op, bytes([VERSION, VERSION]) + error("version 1 only"), seq, BAD_VERSION)
        if flags & REPLY or flags & PROGRESS or status or reserved or seq == 0:
            return self.send(op, error("bad header: REPLY/PROGRESS flag, status, reserved byte or seq 0"), seq, BAD_REQUEST)
        if op in EMPTY_PAYLOAD and payload:
            return self.send(op, error("this command takes no payload"), seq, BAD_LENGTH)
        if op == HELLO:
            return self.on_hello(seq, payload)
        s = self.session
        if s is None or sid != s.id:
            return self.send(op, error("no such session on this connection; send HELLO"), seq, BAD_SESSION)
        if op == BYE:
            self.send(op, b"", seq)
            return self.end_session()
        if op == AUTH:
            return self.on_auth(seq, payload)
        if not s.open:
            return self.send(op, error("send AUTH first"), seq, BAD_AUTH)
        if op == INFO:
            return self.send(op, self.board.info(), seq)
        if op not in (MVM,):
            return self.send(op, error(f"opcode 0x{op:02x} not implemented by this board"), seq, UNKNOWN_OPCODE)
        digest = hashlib.sha256(bytes([op, flags & ~RETRY & 0xFF]) + payload).digest()
        kept = s.replay_check(seq, digest)
        if kept is not None:
            return self.send(op, kept[1], seq, kept[0])
        st, body = self.board.mvm(payload)
        if st == OK:  # refused requests change nothing, so they are not recorded
            s.record(seq, digest, st, body)
        self.send(op, body, seq, st)

    def on_hello(self, seq, p):
        if self.session is not None:
            if self.hello and self.hello[:2] == (seq, p):
                return self.send(HELLO, self.hello[2], seq)
            return self.send(HELLO, error(f"this connection holds session {self.session.id}; send BYE first"), seq, BAD_REQUEST)
        if len(p) < 18 or len(p) != 18 + struct.unpack_from("<H", p, 16)[0]:
            return self.send(HELLO, error("HELLO payload size"), seq, BAD_LENGTH)
        lo, hi, reserved, resume, _seed, _n = struct.unpack_from("<BBHIQH", p)
        if not lo <= VERSION <= hi:
            return self.send(HELLO, bytes([VERSION, VERSION]) + error("this board speaks version 1"), seq, BAD_VERSION)
        if reserved:
            return self.send(HELLO, error("HELLO reserved field not 0"), seq, BAD_REQUEST)
        if resume:
            return self.send(HELLO, error(f"session {resume} unknown (this board does not resume)"), seq, BAD_SESSION)
        challenge = secrets.token_bytes(32) if self.board.key else None
        s = Session(self.board.new_session_id(), challenge)
        with self.board.lock:
            self.board.sessions[s.id] = s
        self.session = s
        caps = CAP_EXACT | (CAP_AUTH if challenge else 0)
        reply = struct.pack("<BBHIIII", VERSION, 0, 0, s.id, MAX_PAYLOAD, caps, 0) + (challenge or b"")
        self.hello = (seq, p, reply)
        self.send(HELLO, reply, seq)

    def on_auth(self, seq, p):
        s = self.session
        if s.challenge is None:
            return self.send(AUTH, error("this board asks for no key"), seq, BAD_REQUEST)
        want = hmac.new(self.board.key, b"neurohw-hil-auth-v1" + s.challenge + struct.pack("<I", s.id), hashlib.sha256).digest()
        if len(p) == 32 and hmac.compare_digest(p, want):
            s.open = True
            return self.send(AUTH, b"", seq)
        self.send(AUTH, error("wrong key"), seq, BAD_AUTH)
        self.end_session()
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def read_key(path):
    if path:
        with open(path, "rb") as f:
            key = f.read()
        key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
    else:
        key = os.environ.get("NEUROHW_HIL_KEY", "").encode("utf-8") or None
    if key == b"":
        raise SystemExit("board_skeleton: the key is empty")
    return key


def main():
    ap = argparse.ArgumentParser(description="a HIL board skeleton on 127.0.0.1 (docs/hil-conformance.md)")
    ap.add_argument("--port", type=int, default=7342, help="TCP port (0: a free one, printed)")
    ap.add_argument("--key-file", default=None, help="pre-shared key file (or set NEUROHW_HIL_KEY)")
    args = ap.parse_args()
    board = Board(read_key(args.key_file))
    server = socket.create_server(("127.0.0.1", args.port))
    print(f"board skeleton on hil://127.0.0.1:{server.getsockname()[1]}" + (" (key required)" if board.key else ""), flush=True)
    try:
        while True:
            sock, _ = server.accept()
            threading.Thread(target=Connection(board, sock).run, daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
