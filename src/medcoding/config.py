"""One strict way to read every configuration: keys, types and ranges, checked in one place.

The package's configurations are classes whose annotations are the schema: training
(:class:`medcoding.train.TrainConfig`), preparation (:class:`medcoding.cohort.preprocess.
PrepareConfig`), the generator (:class:`medcoding.cohort.synthetic.config.SyntheticConfig`) and a
book profile (:class:`medcoding.pipeline.Profile`). :func:`check` validates a mapping read from a
YAML/JSON file, a profile or the command line against such a class and :func:`build` makes the
dataclass. A problem is one line, a :class:`ConfigError` (a ``ValueError``, which the command line
prints without a traceback) that names the source, the key and the fix:

- a key the class does not have (with the closest known key, when one is close);
- a value of the wrong type: validated by pydantic in strict mode, so nothing is coerced (``"3"``
  is not an int, ``1`` not a bool, ``1e-4`` is a string to YAML: write ``1.0e-4``), except that an
  int stands for a float and a list for a tuple;
- a value outside the range declared in the annotation, ``Annotated[int, Field(ge=1)]``, or not one
  of a ``Literal``'s choices; a class with plain annotations can pass ``ranges`` by key pattern
  instead (``{"*_rate": (0, 1)}``, applied to a number and to every value of a mapping).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

#: Shared value types; a field's annotation states its type and range.
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]  # a share or a probability


class ConfigError(ValueError):
    """A configuration value that cannot be used, worded as one line with its fix."""


@functools.cache
def schema(cls: type) -> dict[str, Any]:
    """The annotated type of every key of ``cls`` (a dataclass or an annotated class)."""
    return typing.get_type_hints(cls, include_extras=True)


@functools.cache
def _adapter(cls: type, key: str) -> TypeAdapter:
    return TypeAdapter(schema(cls)[key])


def _is_tuple(annotation: Any) -> bool:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_tuple(arm) for arm in typing.get_args(annotation))
    return annotation is tuple or typing.get_origin(annotation) is tuple


def _describe(error: dict) -> str:
    where = "".join(f"[{part!r}]" for part in error["loc"])
    return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}" if where else (
        error["msg"][0].lower() + error["msg"][1:])


def check(cls: type, values: Mapping[str, Any], source: str = "config",
          ranges: Mapping[str, tuple[float | None, float | None]] | None = None) -> dict[str, Any]:
    """``values`` validated against the annotations of ``cls``: the validated values (ints given
    for floats become floats, lists given for tuples tuples); a :class:`ConfigError` otherwise.

    ``ranges``: ``{key pattern: (low, high)}`` (fnmatch patterns, the first match applies, None
    for no bound), for classes whose annotations state no range."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: expected a mapping of key: value, got "
                          f"{type(values).__name__}; fix: write one 'key: value' per line")
    known = schema(cls)
    name = f"{cls.__module__}.{cls.__qualname__}"
    checked = {}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}; fix: {hint}remove it or use one of "
                              f"the keys of {name}: {sorted(known)}")
        if isinstance(value, list) and _is_tuple(known[key]):
            value = tuple(value)
        try:
            checked[key] = _adapter(cls, key).validate_python(value, strict=True)
        except ValidationError as error:
            problem = _describe(error.errors()[0])
            raise ConfigError(f"{source}: {key} = {value!r}: {problem}; fix: change {key} "
                              f"(its type is {_type_name(known[key])}, see {name})") from None
        _check_range(key, checked[key], ranges or {}, source, name)
    return checked


def _check_range(key: str, value: Any, ranges: Mapping, source: str, name: str) -> None:
    pattern = next((pattern for pattern in ranges if fnmatch.fnmatchcase(key, pattern)), None)
    if pattern is None:
        return
    low, high = ranges[pattern]
    items = value.items() if isinstance(value, Mapping) else [(None, value)]
    for item, number in items:
        if isinstance(number, bool) or not isinstance(number, int | float):
            continue
        if (low is not None and number < low) or (high is not None and number > high):
            where = f"{key}[{item!r}]" if item is not None else key
            bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise ConfigError(f"{source}: {where} = {number!r} is outside {bounds}; fix: give a "
                              f"value in {bounds} (see {name})")


def build(cls: type, values: Mapping[str, Any], source: str = "config"):
    """A ``cls`` dataclass from ``values`` (any subset of its fields) after :func:`check`."""
    return cls(**check(cls, values, source))


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arm) for arm in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    text = str(annotation).replace("typing.", "")
    if "Annotated[" in text:  # Annotated[int, FieldInfo(... metadata=[Ge(ge=1)])] -> int, ge=1
        base = typing.get_args(annotation)[0]
        limits = [f"{key}={value}" for item in typing.get_args(annotation)[1:]
                  for meta in getattr(item, "metadata", [])
                  for key, value in dataclasses.asdict(meta).items()]
        return f"{_type_name(base)} ({', '.join(limits)})" if limits else _type_name(base)
    return getattr(annotation, "__name__", text) if not typing.get_args(annotation) else text
