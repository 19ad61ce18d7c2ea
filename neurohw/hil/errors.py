"""Errors of the hardware-in-the-loop link.

Everything a user can cause over the link (a bad URL, a server that is gone, a peer that speaks
another protocol version, a request the chip refuses) raises :class:`HilError`, a
:class:`neurohw.errors.UserError`: one line that says what is wrong and what to do; the CLI
prints it and exits 2.
"""

from __future__ import annotations

from neurohw.errors import UserError


class HilError(UserError):
    """The HIL link, the server or the chip refused or failed; the message is one line."""


class HilLinkLost(HilError):
    """The link closed before a reply came, with no refusal and nothing but HIL frames from the
    peer: a flaky link, worth another try."""


class HilStatusError(HilError):
    """The chip answered a request with a status other than OK (``status``: its code)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = int(status)


class ChipRangeError(ValueError):
    """A request names a tile, a row or column range, or a value the chip does not have
    (raised by the chip model; the server answers OUT_OF_RANGE, LocalMacro raises
    :class:`HilStatusError` with the same message)."""

    #: the reply status (protocol.Status.OUT_OF_RANGE)
    status = 4


class ChipStateError(ChipRangeError):
    """A request the chip's state forbids, e.g. FORM on cells already formed (status
    BAD_REQUEST; nothing is changed)."""

    #: protocol.Status.BAD_REQUEST
    status = 10
