"""The one configuration layer: YAML reading, dotted overrides, schema errors as one line.

Every YAML a user hands to neurohw (an experiment, a device model, a sweep, a search)
goes through :func:`read_yaml` and is validated by a :class:`Section` model with
:func:`validate`; the experiment schema (:mod:`neurohw.experiments.schema`) and the device
schema (:mod:`neurohw.devices.model`) share this code, so their messages read the same:

- ``FILE:LINE:COL: malformed YAML: <problem>`` and ``FILE:LINE:COL: key 'k' is given twice``;
- ``SOURCE: unknown key 'k' in a.b (did you mean 'kk'?); allowed keys: ...``;
- ``SOURCE: missing required key 'a.b.k'``;
- ``SOURCE: key 'a.b.k' = <value>: <rule>; allowed [lo, hi]``.

Bounds that protect the machine are checked while reading, before anything is built: the file
size (:data:`MAX_YAML_BYTES`) and the number of values the document expands to once YAML
aliases are followed (:data:`MAX_YAML_VALUES`; a few nested aliases can otherwise expand to
gigabytes). A :class:`Section` refuses unknown keys, non-finite floats (``.inf``, ``.nan``) and
booleans where a number is expected (YAML's ``true`` would otherwise pass as 1).
"""

from __future__ import annotations

import copy
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from neurohw.errors import ConfigError, UserError, did_you_mean, unwrap_annotation

#: the largest YAML document read, bytes (a config is a few kB)
MAX_YAML_BYTES = 1 << 20
#: the most values (scalars, sequences, mappings) a document may expand to with aliases followed
MAX_YAML_VALUES = 100_000


# ----------------------------------------------------------------------------- reading


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML 1.2 forbids it;
    PyYAML keeps the last one silently)."""

    error_cls: type[UserError] = ConfigError
    source = "<yaml>"

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
                if first is not key_node:
                    m = key_node.start_mark
                    raise self.error_cls(
                        f"{self.source}:{m.line + 1}:{m.column + 1}: key {key!r} is given twice in one mapping "
                        f"(first at line {first.start_mark.line + 1}); keep one"
                    )
        return super().construct_mapping(node, deep=deep)


def _expanded_values(node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is expanded (aliases are the same
    node object reached twice, so a memo keyed by identity counts them as often as they occur)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_YAML_VALUES + 1  # a recursive alias expands without bound
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_values(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_values(k, memo) + _expanded_values(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, 10 * MAX_YAML_VALUES)
    return memo[key]


def parse_yaml(text: str, source: str, error: type[UserError] = ConfigError) -> Any:
    """Parse YAML ``text`` (named ``source`` in messages) with the bounds of the module doc."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise error(f"{source}: larger than {MAX_YAML_BYTES // 1024} KiB; a configuration is a few kB - is this the right file?")
    loader_cls = type("Loader", (_StrictLoader,), {"error_cls": error, "source": source})
    try:
        loader = loader_cls(text)  # the reader checks every character here (a NUL byte is refused)
    except yaml.reader.ReaderError as exc:
        raise error(f"{source}: malformed YAML: character U+{int(exc.character):04X} at position {exc.position} is not allowed in YAML "
                    "(a binary or damaged file?)") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_values(node, {}) > MAX_YAML_VALUES:
            raise error(f"{source}: the document expands to more than {MAX_YAML_VALUES:,} values once its YAML aliases "
                        "(*name) are followed; write the values out or use fewer aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}: malformed YAML: {problem}") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, error: type[UserError] = ConfigError, what: str = "config", example: str = "") -> dict:
    """Read a YAML file whose top level is a mapping; every problem is one ``error`` line.

    ``what`` names the kind of file in messages ("config", "device model"); ``example`` is
    appended to the message of an empty file (e.g. where a complete example is).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (YAML expected)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    raw = parse_yaml(text, str(path), error)
    if raw is None:
        raise error(f"{path}: empty {what}{'; ' + example if example else ''}")
    if not isinstance(raw, dict):
        raise error(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


# ----------------------------------------------------------------------------- overrides


def set_path(raw: dict, parts: list[str], value: Any, where: str, error: type[UserError] = ConfigError) -> None:
    """Set ``raw[p0][p1]...[pn] = value``, creating missing sections; a value where a section
    is needed is one ``error`` line naming ``where`` (the override as the user wrote it)."""
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise error(f"{where}: {'.'.join(parts[: depth + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(raw: dict, overrides: list[str] | None, error: type[UserError] = ConfigError) -> dict:
    """Apply ``key.path=value`` overrides (the value parsed as YAML) to ``raw`` in place."""
    for item in overrides or []:
        if "=" not in item:
            raise error(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise error(f"--set {item!r}: empty part in key path {key!r}")
        try:
            value = parse_yaml(text, f"--set {key}", error) if text.strip() else None
        except UserError:
            raise error(f"--set {item!r}: the value is not valid YAML; quote it") from None
        set_path(raw, parts, value, f"--set {item!r}", error)
    return raw


def merge(raw: dict, overrides: dict, where: str, error: type[UserError] = ConfigError) -> dict:
    """A copy of ``raw`` with ``overrides`` merged in: nested mappings merge key by key, dotted
    keys (``"a.b": v``) address nested sections, anything else replaces."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = str(key).split(".")
        parent = out
        for depth, part in enumerate(parts[:-1]):
            child = parent.setdefault(part, {})
            if not isinstance(child, dict):
                raise error(f"{where}: override '{key}': {'.'.join(parts[: depth + 1])} is a value, not a section")
            parent = child
        last = parts[-1]
        if isinstance(value, dict) and isinstance(parent.get(last), dict):
            parent[last] = merge(parent[last], value, where, error)
        else:
            parent[last] = copy.deepcopy(value)
    return out


# ----------------------------------------------------------------------------- schema


class Section(BaseModel):
    """Base of every schema model: unknown keys, non-finite floats and booleans given for
    numbers are errors (see the module doc)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value, info):
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields[info.field_name]
            if _takes_number(field.annotation) and not _takes_bool(field.annotation):
                raise ValueError("expected a number, got a boolean (true/false)")
        if isinstance(value, (list, tuple)) and info.field_name is not None:
            field = cls.model_fields[info.field_name]
            inner = _item_type(field.annotation)
            if inner is not None and _takes_number(inner) and not _takes_bool(inner) and any(isinstance(v, bool) for v in value):
                raise ValueError("expected numbers, got a boolean (true/false)")
        return value


def _leaves(annotation) -> list:
    """The non-container types an annotation admits (Optional, Union, Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _leaves(a)]
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    return [annotation]


def _takes_number(annotation) -> bool:
    return any(t in (int, float) for t in _leaves(annotation))


def _takes_bool(annotation) -> bool:
    return any(t is bool for t in _leaves(annotation))


def _item_type(annotation):
    """The item type of a list/tuple field (``tuple[int, ...]``, ``list[int]``), else None."""
    for t in _leaves(annotation):
        if typing.get_origin(t) in (list, tuple):
            args = [a for a in typing.get_args(t) if a is not Ellipsis]
            if len(args) == 1:
                return args[0]
    return None


def _type_at(model: type[BaseModel], loc: tuple):
    """The type found at ``loc`` below ``model``: a model class, or a field's annotation; dict
    and list levels (user-named entries, list indices) are stepped through. None: no such key."""
    node: Any = model
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return None
            node = unwrap_annotation(field.annotation)
        elif typing.get_origin(node) in (dict, list, tuple):
            args = typing.get_args(node)
            node = unwrap_annotation(args[-1] if args else Any)
        else:
            return None
    return node


def field_at(model: type[BaseModel], loc: tuple):
    """The FieldInfo of the key at ``loc`` below ``model``, or None."""
    holder = _type_at(model, loc[:-1]) if loc else None
    if isinstance(holder, type) and issubclass(holder, BaseModel):
        return holder.model_fields.get(str(loc[-1]))
    return None


def allowed_keys(model: type[BaseModel], parent_loc: tuple) -> list[str]:
    """The keys allowed at ``parent_loc`` (where an unknown key was found)."""
    node = _type_at(model, parent_loc)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def allowed_range(model: type[BaseModel], loc: tuple) -> str:
    """The allowed values of the field at ``loc`` from its constraints: ``[0, 1]``, ``(0, inf)``,
    ``one of 'a', 'b'``; "" when the schema states none."""
    field = field_at(model, loc)
    if field is None:
        return ""
    ann = unwrap_annotation(field.annotation)
    if typing.get_origin(ann) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(ann))
    lo = hi = None
    lo_open = hi_open = False
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
    if lo is None and hi is None:
        return ""
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def _shown(value) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return f" = {value}"
    return f" = {value!r}"


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str, prefix: tuple = (),
                            error: type[UserError] = ConfigError) -> UserError:
    """The first pydantic error as one ``error`` line (formats in the module doc). ``prefix``:
    where the validated section sits in its file (e.g. ``("data", "img", "binning")``)."""
    errors = exc.errors()
    # an unknown key first: a misspelt key usually also makes a required key "missing"
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or "[" in p)))
    path = ".".join(str(p) for p in prefix + loc)
    if err["type"] == "extra_forbidden":
        parent = ".".join(str(p) for p in prefix + loc[:-1]) or "the top level"
        choices = allowed_keys(model, loc[:-1])
        listed = f"; allowed keys: {', '.join(choices)}" if choices else ""
        return error(f"{source}: unknown key '{loc[-1]}' in {parent}{did_you_mean(loc[-1], choices)}{listed}")
    if err["type"] == "missing":
        return error(f"{source}: missing required key '{path}'")
    msg = err["msg"].removeprefix("Value error, ")
    rng = allowed_range(model, loc)
    allowed = f"; allowed {rng}" if rng and rng not in msg else ""
    where = f"key '{path}'" if path else "the top level"
    return error(f"{source}: {where}{_shown(err.get('input'))}: {msg}{allowed}")


def validate(model: type[BaseModel], raw: Any, source: str, prefix: tuple = (), error: type[UserError] = ConfigError):
    """``model.model_validate(raw)``; a schema error becomes one ``error`` line."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, model, source, prefix, error) from None
