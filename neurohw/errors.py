"""Errors a user can cause.

Every input a user controls (YAML, files, CLI flags, bytes on the wire) is validated at the
boundary and, when wrong, raises a :class:`UserError` subclass whose message is one line that
says what is wrong and what to do. The CLI prints that line and exits with code 2; the
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """An error caused by user input; the message is one actionable line."""

    exit_code = 2


class ConfigError(UserError):
    """A YAML file, a ``--set`` override or a schema value is wrong."""


class DataError(UserError):
    """An event file, a dataset folder or a label list is missing, truncated or corrupt."""


class DeviceError(UserError):
    """A device model or a measured conductance map is wrong."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
