"""medcoding.config: one strict check of keys, types and ranges for every configuration."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from medcoding import config
from medcoding.config import ConfigError, Fraction, PositiveInt


@dataclass
class Example:
    steps: PositiveInt = 3
    share: Fraction = 0.5
    names: tuple[str, ...] = ("a",)
    limit: PositiveInt | None = None
    rates: dict[str, float] | None = None


def test_build_checks_and_converts_only_what_is_lossless():
    built = config.build(Example, {"steps": 4, "share": 1, "names": ["x", "y"]}, "f.yaml")
    assert built == Example(steps=4, share=1.0, names=("x", "y"))
    assert isinstance(built.share, float)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"step": 4}, "f.yaml: unknown key 'step'; fix: did you mean 'steps'?"),
        ({"zzz": 4}, "f.yaml: unknown key 'zzz'; fix: remove it or use one of the keys of "),
        ({"steps": "4"}, "f.yaml: steps = '4': input should be a valid integer; fix: change "
                         "steps (its type is int (ge=1), see "),
        ({"steps": True}, "steps = True: input should be a valid integer"),
        ({"share": 1.5}, "share = 1.5: input should be less than or equal to 1"),
        ({"limit": 0}, "its type is int (ge=1) | None"),
        ({"names": ["x", 2]}, r"names = ('x', 2): [1]: input should be a valid string"),
    ],
)
def test_errors_are_one_line_naming_source_key_and_fix(values, message):
    with pytest.raises(ConfigError) as error:
        config.build(Example, values, "f.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_ranges_by_key_pattern_reach_into_mappings():
    ranges = {"*rates": (0, 1), "*": (0, None)}
    assert config.check(Example, {"rates": {"a": 0.2}, "steps": 2}, "f", ranges)["rates"] == {
        "a": 0.2}
    with pytest.raises(ConfigError, match=r"f: rates\['b'\] = 2.0 is outside \[0, 1\]"):
        config.check(Example, {"rates": {"a": 0.2, "b": 2}}, "f", ranges)
    with pytest.raises(ConfigError, match=r"f: expected a mapping of key: value, got list"):
        config.check(Example, [1, 2], "f")
