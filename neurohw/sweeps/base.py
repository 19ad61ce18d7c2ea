"""The experiment a sweep or a search starts from, and the points written into it.

``base:`` is a YAML path (relative to the sweep file's folder, else to the working folder), the
name of a shipped experiment (``quickstart``, ``digits_ridge``, ...), or the experiment itself as
an inline mapping. ``overrides:`` (nested or dotted keys) and the command line's ``--set`` are
applied to it before any axis. A point's values are dotted config keys
(``device.overrides.read_noise.relative``) merged into that mapping
(:func:`neurohw.config.merge`); every point is then checked by the experiment schema
(:func:`neurohw.experiments.schema.parse_config`), the same check ``neurohw run`` makes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurohw.config import apply_overrides, merge, read_yaml
from neurohw.errors import ConfigError, did_you_mean
from neurohw.experiments.modalities import resolve_modalities
from neurohw.experiments.preflight import check_folders, check_memory
from neurohw.experiments.schema import EXAMPLE, NAME_PATTERN, ExperimentConfig, experiment_path, parse_config

#: keys that a point may not set: seeds are the sweep's own axis; names and folders are the sweep's
RESERVED = {"seed": "seeds", "seeds": "seeds", "name": "name", "output": "output"}


def resolve_base(base: str | dict, folder: Path | None, source: str) -> dict:
    """The base experiment as a raw mapping (not yet validated)."""
    if isinstance(base, dict):
        return copy.deepcopy(base)
    text = str(base)
    if folder is not None and (folder / text).is_file():
        path = folder / text
    else:
        try:
            path = experiment_path(text)
        except ConfigError as exc:
            raise ConfigError(f"{source}: base {text!r}: {str(exc).split(': ', 1)[-1]}") from None
    return read_yaml(path, ConfigError, "config", EXAMPLE)


def with_overrides(raw: dict, overrides: dict | None, cli: list[str] | None, source: str) -> dict:
    """``raw`` with the file's ``overrides`` and the command line's ``--set`` applied."""
    out = merge(raw, overrides or {}, f"{source}: overrides", ConfigError)
    return apply_overrides(out, cli, ConfigError)


@dataclass(frozen=True)
class StudyBase:
    """What a sweep and a search both take from their file: the base experiment with the
    file's overrides and ``--set`` (``raw``), it checked (``config``), the study's ``name`` and
    run ``seeds``, and ``seeds_raw``: ``raw`` with those seeds, the mapping points are written into."""

    raw: dict
    config: ExperimentConfig
    name: str
    seeds: list[int]
    seeds_raw: dict


def study_base(spec, path: Path, folder: Path | None, source: str, cli: list[str] | None) -> StudyBase:
    """The :class:`StudyBase` of a sweep or search ``spec`` (its ``base``, ``overrides``,
    ``name``, ``seeds``) read from ``path`` (``source`` names it in messages)."""
    raw = with_overrides(resolve_base(spec.base, folder, source), spec.overrides, cli, source)
    config = validate_point(raw, {}, f"{source}: base")
    name = spec.name or path.stem
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{source}: the name {name!r} cannot name a folder; give 'name:' (letters, digits, '.', '_', '-')")
    seeds = list(spec.seeds) if spec.seeds is not None else config.run_seeds
    seeds_raw = {**raw, "seeds": seeds}
    seeds_raw.pop("seed", None)
    return StudyBase(raw, config, name, seeds, seeds_raw)


def check_key(key: str, source: str, what: str = "axis") -> None:
    """A point key must be a dotted path of plain parts, not one the sweep owns."""
    parts = str(key).split(".")
    if not all(parts):
        raise ConfigError(f"{source}: {what} {key!r}: empty part in the key path; write it as section.key (e.g. head.epochs)")
    if parts[0] in RESERVED and len(parts) == 1:
        owner = RESERVED[parts[0]]
        kind = "sweep" if what == "axis" else "search"
        raise ConfigError(f"{source}: {what} {key!r}: {key} is set by the {kind} file itself; use its top-level '{owner}:' key")
    if parts[0] not in ExperimentConfig.model_fields:
        raise ConfigError(f"{source}: {what} {key!r}: unknown key '{parts[0]}' at the top level of the experiment"
                          f"{did_you_mean(parts[0], ExperimentConfig.model_fields)}; allowed: {', '.join(ExperimentConfig.model_fields)}")


def point_config(raw: dict, values: dict[str, Any], where: str) -> dict:
    """A copy of ``raw`` with a point's ``values`` (dotted keys) written in."""
    return merge(raw, values, where, ConfigError)


def validate_point(raw: dict, values: dict[str, Any], prefix: str) -> ExperimentConfig:
    """The point's config, checked by the experiment schema; a problem is one line that starts
    with ``prefix`` (the file and what is checked) and the point's values."""
    where = f"{prefix} {', '.join(f'{k}={v!r}' for k, v in values.items())}" if values else prefix
    return parse_config(point_config(raw, values, where), where)


def run_name(name: str, suffix: str) -> str:
    """A run name ``<name>-<suffix>`` that is a plain file name of at most 100 characters."""
    out = f"{name[: 99 - len(suffix)]}-{suffix}"
    if not NAME_PATTERN.fullmatch(out):
        raise ConfigError(f"name {name!r} cannot name runs; give a plain name (letters, digits, '.', '_', '-')")
    return out


def check_machine(configs: Iterable[ExperimentConfig], folder: Path, what: str, progress: bool = False) -> None:
    """What ``neurohw validate`` checks, for every config of a sweep or a search: that ``folder``
    (``what``: "sweep folder", "search folder") can be written, the datasets each distinct data
    section opens (each opened once), and the memory of each config's reservoirs."""
    check_folders(folder, what)  # before the datasets: a cold cache generates them first
    opened: dict[str, list] = {}
    for cfg in configs:
        key = json.dumps({k: v.model_dump(mode="json") for k, v in cfg.data.items()}, sort_keys=True)
        if key not in opened:
            opened[key] = resolve_modalities(cfg, progress)
        check_memory(cfg, opened[key])
