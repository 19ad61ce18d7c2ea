"""Pre-shared-key authentication of HIL sessions (docs/hil-protocol.md, "Authentication").

A server started with a key answers HELLO with capability AUTH_REQUIRED and a 32-byte random
challenge; the session opens only after the client's AUTH request carries

    HMAC-SHA256(key, b"neurohw-hil-auth-v1" + challenge (32 bytes) + u32 session id, little-endian)

(32 bytes; compared with :func:`hmac.compare_digest`). The key is the bytes of a file (one
trailing ``\\n`` or ``\\r\\n`` stripped) or the UTF-8 bytes of an environment variable; never a
command-line argument (it would show in ``ps`` and shell histories).

- server: ``neurohw hil serve --key-file PATH`` or ``NEUROHW_HIL_KEY``;
- driver: ``NEUROHW_HIL_KEY`` or ``NEUROHW_HIL_KEY_FILE`` (a path).
An empty key, an unreadable file or both variables at once is one :class:`HilError` line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from pathlib import Path

from neurohw.hil.errors import HilError

#: the domain-separation label that starts every MAC input
LABEL = b"neurohw-hil-auth-v1"
CHALLENGE_SIZE = 32
MAC_SIZE = 32
ENV_KEY = "NEUROHW_HIL_KEY"
ENV_KEY_FILE = "NEUROHW_HIL_KEY_FILE"


def new_challenge() -> bytes:
    """32 random bytes from the OS's CSPRNG."""
    return secrets.token_bytes(CHALLENGE_SIZE)


def mac(key: bytes, challenge: bytes, session: int) -> bytes:
    """The AUTH payload: HMAC-SHA256(key, LABEL + challenge + u32 session LE)."""
    return hmac.new(bytes(key), LABEL + bytes(challenge) + struct.pack("<I", int(session)), hashlib.sha256).digest()


def verify(key: bytes, challenge: bytes, session: int, payload: bytes) -> bool:
    """Whether ``payload`` is the right MAC (constant-time comparison; a wrong length is wrong)."""
    return len(payload) == MAC_SIZE and hmac.compare_digest(mac(key, challenge, session), bytes(payload))


def key_from_file(path: str | os.PathLike, what: str) -> bytes:
    """The key held in ``path`` (one trailing newline stripped); ``what`` names the source in
    the error line."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise HilError(f"{what} {path}: cannot read the key file ({exc.strerror or exc}); give a readable file holding the key") from None
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise HilError(f"{what} {path}: the key file is empty; put the shared key in it")
    return data


def key_from_env(value: str, what: str) -> bytes:
    data = value.encode("utf-8")
    if not data:
        raise HilError(f"{what} is set but empty; give the shared key or unset it")
    return data


def server_key(key_file: str | None, environ: dict | None = None) -> bytes | None:
    """The server's key: ``--key-file`` if given, else ``NEUROHW_HIL_KEY`` if set, else None."""
    env = os.environ if environ is None else environ
    if key_file:
        return key_from_file(key_file, "--key-file")
    if ENV_KEY in env:
        return key_from_env(env[ENV_KEY], ENV_KEY)
    return None


def client_key(environ: dict | None = None) -> bytes | None:
    """The driver's key: ``NEUROHW_HIL_KEY`` or the file named by ``NEUROHW_HIL_KEY_FILE``
    (not both), else None."""
    env = os.environ if environ is None else environ
    if ENV_KEY in env and ENV_KEY_FILE in env:
        raise HilError(f"both {ENV_KEY} and {ENV_KEY_FILE} are set; set only one of them")
    if ENV_KEY in env:
        return key_from_env(env[ENV_KEY], ENV_KEY)
    if ENV_KEY_FILE in env:
        return key_from_file(env[ENV_KEY_FILE], ENV_KEY_FILE)
    return None
