"""Errors a user can cause.

Every input a user controls (YAML, files, CLI flags, bytes on the wire) is validated at the
boundary and, when wrong, raises a :class:`UserError` subclass whose message is one line that
says what is wrong and what to do. The CLI prints that line and exits with code 2; the
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import difflib
import types
import typing
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


def unwrap_annotation(annotation):
    """Strip Optional / Union-with-None / Annotated down to the pydantic model or container type
    a field holds, so that error messages can list its keys or its allowed range."""
    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else (args[0] if args else annotation)
    if origin is typing.Annotated:
        return unwrap_annotation(typing.get_args(annotation)[0])
    return annotation
