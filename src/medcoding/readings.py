"""Readings that cannot go stale: sentences computed from an estimate and its interval.

A chapter's reading states a direction ("PLM-CA beat the prior", "F1 falls as the secondary share
rises") only when the 95% interval of the difference or association excludes the value of no
difference; otherwise it says that the data cannot tell. Every number in such a sentence comes
from the call, none is typed into a notebook. :func:`glue` hands a finished string to myst-nb,
so a markdown cell can hold it as ``{glue:text}`name```.

Functions return plain strings (Markdown where a name is emphasised); NaN inputs give a sentence
saying what cannot be computed rather than a misleading number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Formatter = Callable[[float], str]


def number(fmt: str = ".3f") -> Formatter:
    """A formatter for ``format(value, fmt)``: ``number(".1%")(0.213) == "21.3%"``."""
    return lambda value: format(value, fmt)


def points(value: float) -> str:
    """A difference of shares in percentage points: ``points(-0.052) == "-5.2 points"``."""
    return f"{value * 100:.1f} points"


def sentence(text: str) -> str:
    """``text`` with its first letter upper-cased (names may start a sentence)."""
    return text[:1].upper() + text[1:]


def _missing(*values: float) -> bool:
    return any(value is None or (isinstance(value, float) and math.isnan(value))
               for value in values)


def interval(estimate: float, low: float, high: float, fmt: Formatter | str = ".3f") -> str:
    """``"0.412 (95% CI 0.401 to 0.423)"``; ``"not computable"`` when a value is missing."""
    show = number(fmt) if isinstance(fmt, str) else fmt
    if _missing(estimate):
        return "not computable"
    if _missing(low, high):
        return show(estimate)
    return f"{show(estimate)} (95% CI {show(low)} to {show(high)})"


def direction(low: float, high: float, null: float = 0.0) -> int:
    """+1 when the interval lies above ``null``, -1 below it, 0 when it holds it (or is NaN)."""
    if _missing(low, high):
        return 0
    if low > null:
        return 1
    if high < null:
        return -1
    return 0


def compare(first: str, second: str, difference: float, low: float, high: float,
            measure: str, fmt: Formatter | str = ".3f", verb: str = "beat") -> str:
    """Which of two scores is higher, from ``difference = first - second`` and its interval.

    ``"PLM-CA beat the frequency prior by 0.210 micro F1 (95% CI 0.180 to 0.240)."``, the
    reverse when the interval lies below zero, and ``"The data cannot tell ... apart"`` when it
    holds zero.
    """
    show = number(fmt) if isinstance(fmt, str) else fmt
    if _missing(difference):
        return f"The {measure} of {first} and {second} cannot be compared here."
    if _missing(low, high):
        return sentence(f"{first} and {second} differ by {show(abs(difference))} {measure}, "
                        "without an interval, so the data cannot tell which is better.")
    span = f"95% CI {show(low)} to {show(high)}"
    sign = direction(low, high)
    if sign > 0:
        return sentence(f"{first} {verb} {second} by {show(difference)} {measure} ({span}).")
    if sign < 0:
        return sentence(f"{second} {verb} {first} by {show(-difference)} {measure} (difference "
                        f"{show(difference)}, {span}).")
    return (f"The data cannot tell {first} and {second} apart on {measure} (difference "
            f"{show(difference)}, {span}, which includes no difference).")


def against(name: str, estimate: float, low: float, high: float, reference: float,
            reference_name: str, fmt: Formatter | str = ".1%") -> str:
    """An estimate with its interval against a fixed value (the study's number).

    ``"Ours, 64.0% (95% CI 55.0% to 72.0%), is above the study's 50.0%."``; "consistent with"
    when the interval holds the reference.
    """
    show = number(fmt) if isinstance(fmt, str) else fmt
    if _missing(estimate):
        return sentence(f"{name} cannot be computed here, so it cannot be set beside "
                        f"{reference_name}.")
    if _missing(reference):
        return sentence(f"{name} is {interval(estimate, low, high, show)}; {reference_name} has "
                        "no value.")
    sign = direction(low, high, null=reference)
    relation = {1: "above", -1: "below", 0: "consistent with"}[sign]
    return sentence(f"{name}, {interval(estimate, low, high, show)}, is {relation} "
                    f"{reference_name} ({show(reference)}).")


def association(outcome: str, factor: str, slope: float, low: float, high: float,
                unit: str = "", fmt: Formatter | str = ".3f") -> str:
    """Whether ``outcome`` rises or falls with ``factor``, from a slope and its interval.

    ``"Department F1 falls as the secondary share rises: -0.40 per unit (95% CI -0.60 to
    -0.20)."``; "The data cannot tell whether ..." when the interval holds zero.
    """
    show = number(fmt) if isinstance(fmt, str) else fmt
    per = f" per {unit}" if unit else ""
    if _missing(slope):
        return f"The association of {outcome} with {factor} cannot be estimated here."
    if _missing(low, high):
        return (f"The slope of {outcome} on {factor} is {show(slope)}{per}, without an interval: "
                "the data cannot tell its direction.")
    span = f"{show(slope)}{per}, 95% CI {show(low)} to {show(high)}"
    sign = direction(low, high)
    if sign > 0:
        return sentence(f"{outcome} rises with {factor} ({span}).")
    if sign < 0:
        return sentence(f"{outcome} falls as {factor} rises ({span}).")
    return (f"The data cannot tell whether {outcome} rises or falls with {factor} ({span}, "
            "which includes no association).")


def majority(name: str, share: float, low: float, high: float) -> str:
    """Whether most of a group is something: a share against one half, with its interval."""
    if _missing(share):
        return f"There are no cases to count for {name}."
    shown = interval(share, low, high, ".0%")
    sign = direction(low, high, null=0.5)
    if sign > 0:
        return f"Most of {name} are real: {shown}."
    if sign < 0:
        return f"Most of {name} are false alarms: only {shown} are real."
    return f"The data cannot tell whether most of {name} are real: {shown} are."


def glue(name: str, text) -> None:
    """Glue ``text`` (a string or number) for myst-nb without showing it in the cell output.

    A markdown cell of the same notebook shows it with ``{glue:text}`name```; a page of the book
    with ``{glue:text}`notebooks/NB::name```.
    """
    from myst_nb import glue as myst_glue

    myst_glue(name, text, display=False)
