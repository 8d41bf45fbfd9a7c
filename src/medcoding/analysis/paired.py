"""Two ratios of sums on the same units and their difference, with a paired bootstrap interval.

Many of the book's comparisons are a ratio of per-course sums: the share of flagged uncoded cases
that are truly present (truly present flagged / flagged), Recall@k of a role (mean over courses
with a code of that role), the mean department F1. When two such ratios come from the same courses
(primary and secondary codes of one model; PLM-CA and a baseline on one test set), each resample
draws the units (patients, departments) once and recomputes both on that draw, so the interval of
the difference is not the overlap of two intervals. The interval is the percentile one, as in
:func:`medcoding.analysis.association.correlation`.
"""

from __future__ import annotations

import numpy as np

Ratio = tuple[np.ndarray, np.ndarray]  # (numerator [rows], denominator [rows])


def unit_weights(units, n_resamples: int, seed: int) -> np.ndarray:
    """How often each row is drawn per resample ``[resamples, rows]``: units (e.g. the rows'
    patient ids) are drawn with replacement and every row of a drawn unit counts once per draw.
    """
    _, unit_of_row = np.unique(np.asarray(units).astype(str), return_inverse=True)
    n_units = int(unit_of_row.max()) + 1 if len(unit_of_row) else 0
    draws = np.random.default_rng(seed).integers(0, max(n_units, 1),
                                                 size=(n_resamples, n_units))
    counts = np.stack([np.bincount(draw, minlength=n_units) for draw in draws]) if n_units \
        else np.zeros((n_resamples, 0))  # [resamples, units]
    return counts[:, unit_of_row].astype(float)  # [resamples, rows]


def ratio(ratio_sums: Ratio, weights: np.ndarray) -> np.ndarray:
    """Weighted ``sum(numerator) / sum(denominator)`` per row of ``weights`` ``[resamples]``;
    NaN where the denominator sums to zero."""
    numerator, denominator = (np.asarray(side, dtype=float) for side in ratio_sums)
    top, bottom = weights @ numerator, weights @ denominator  # [resamples]
    return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def ratio_difference(first: Ratio, second: Ratio, units, n_resamples: int = 1000,
                     seed: int = 0) -> dict:
    """``first - second`` of two ratios over the same rows, with a paired 95% interval.

    Returns ``first, second, difference, low, high`` (floats; NaN where a ratio has no
    denominator, and an interval of NaN when no resample gives both).
    """
    ones = np.ones((1, len(np.asarray(first[0]))))  # [1, rows]
    estimate_first, estimate_second = ratio(first, ones)[0], ratio(second, ones)[0]
    weights = unit_weights(units, n_resamples, seed)  # [resamples, rows]
    samples = ratio(first, weights) - ratio(second, weights)  # [resamples]
    samples = samples[np.isfinite(samples)]
    low, high = np.quantile(samples, [0.025, 0.975]) if len(samples) else (np.nan, np.nan)
    return {"first": float(estimate_first), "second": float(estimate_second),
            "difference": float(estimate_first - estimate_second),
            "low": float(low), "high": float(high)}
