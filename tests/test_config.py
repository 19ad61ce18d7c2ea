"""The configuration layer shared by every schema: YAML bounds and one message format."""

from __future__ import annotations

import pytest
from pydantic import Field

from neurohw.config import MAX_YAML_VALUES, Section, apply_overrides, merge, parse_yaml, read_yaml, validate
from neurohw.errors import ConfigError, DeviceError


class Inner(Section):
    rate: float = Field(0.5, gt=0, le=1)
    mode: str = "a"


class Outer(Section):
    count: int = Field(3, ge=1)
    ids: list[int] = Field(default_factory=list)
    flag: bool = False
    inner: Inner = Field(default_factory=Inner)
    named: dict[str, Inner] = Field(default_factory=dict)


def test_key_given_twice_names_both_lines():
    with pytest.raises(ConfigError, match=r"f.yaml:3:1: key 'count' is given twice in one mapping \(first at line 1\)"):
        parse_yaml("count: 1\nflag: true\ncount: 2\n", "f.yaml")
    with pytest.raises(DeviceError, match="given twice"):
        parse_yaml("a: {b: 1, b: 2}\n", "d.yaml", DeviceError)


def test_alias_expansion_is_bounded_before_anything_is_built():
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg"))
    with pytest.raises(ConfigError, match=f"more than {MAX_YAML_VALUES:,} values"):
        parse_yaml(bomb, "bomb.yaml")
    assert parse_yaml("a: &a [1, 2]\nb: *a\n", "ok.yaml") == {"a": [1, 2], "b": [1, 2]}  # a few aliases are fine
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        parse_yaml("x: 1\n" * 300_000, "big.yaml")


def test_read_yaml_messages(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        read_yaml(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2:1: malformed YAML"):
        read_yaml(tmp_path / "bad.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match="not a text file"):
        read_yaml(tmp_path / "bin.yaml")


def test_a_nul_byte_or_control_character_is_one_line_for_every_yaml_reader(tmp_path):
    """PyYAML's reader refuses non-printable characters while the loader is built; that is one
    ConfigError line (it was a yaml.reader.ReaderError traceback) for an experiment, a sweep, a
    search and a --set value."""
    from neurohw.experiments.schema import load_config
    from neurohw.sweeps.search import load_search
    from neurohw.sweeps.spec import load_sweep

    bad = tmp_path / "nul.yaml"
    bad.write_bytes(b"task: classify\nname: a\x00b\n")
    for load in (load_config, load_sweep, load_search, read_yaml):
        with pytest.raises(ConfigError, match=r"nul.yaml: malformed YAML: character U\+0000 at position 22 is not allowed") as exc:
            load(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"character U\+0007 at position 3"):
        parse_yaml("a: \x07", "bell.yaml")
    with pytest.raises(ConfigError, match=r"--set 'name=a\\x00b': the value is not valid YAML; quote it"):
        apply_overrides({}, ["name=a\x00b"])


def test_booleans_and_non_finite_numbers_are_refused():
    for raw, words in (({"count": True}, "boolean"), ({"ids": [1, False]}, "boolean"), ({"inner": {"rate": float("inf")}}, "finite"),
                       ({"inner": {"rate": float("nan")}}, "finite")):
        with pytest.raises(ConfigError, match=words) as exc:
            validate(Outer, raw, "x.yaml")
        assert "\n" not in str(exc.value)
    assert validate(Outer, {"flag": True, "count": 2}, "x.yaml").flag is True  # a real bool field takes one


def test_one_message_format_for_every_schema():
    def msg(raw, error=ConfigError, prefix=()):
        with pytest.raises(error) as exc:
            validate(Outer, raw, "s.yaml", prefix, error)
        return str(exc.value)

    assert msg({"inner": {"rat": 0.1}}) == "s.yaml: unknown key 'rat' in inner (did you mean 'rate'?); allowed keys: rate, mode"
    assert msg({"named": {"x": {"rat": 0.1}}}).startswith("s.yaml: unknown key 'rat' in named.x (did you mean 'rate'?)")
    assert msg({"inner": {"rate": 2.0}}) == "s.yaml: key 'inner.rate' = 2.0: Input should be less than or equal to 1; allowed (0, 1]"
    assert msg({"count": 0}, DeviceError, ("sec",)) == "s.yaml: key 'sec.count' = 0: Input should be greater than or equal to 1; allowed [1, inf)"


def test_overrides_and_merge():
    raw = apply_overrides({"inner": {"rate": 0.5}}, ["inner.mode=b", "ids=[1, 2]", "named.x.rate=0.25"])
    assert raw == {"inner": {"rate": 0.5, "mode": "b"}, "ids": [1, 2], "named": {"x": {"rate": 0.25}}}
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"count": 1}, ["count.x=1"])
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 5}, "d.e": 3}, "w") == {"a": {"b": 5, "c": 2}, "d": {"e": 3}}
