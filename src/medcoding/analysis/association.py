"""A correlation with a bootstrap interval: the association behind a 'rises with' sentence."""

from __future__ import annotations

import numpy as np


def correlation(x, y, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Pearson correlation of ``x`` and ``y`` with a 95% percentile bootstrap interval (pairs
    drawn with replacement). Pairs with a missing value are left out.

    Returns ``n, correlation, low, high``; NaN with fewer than three pairs or a constant side.
    """
    data = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    data = data[np.isfinite(data).all(axis=1)]  # [pairs, 2]
    n = len(data)
    result = {"n": n, "correlation": np.nan, "low": np.nan, "high": np.nan}
    if n < 3 or data[:, 0].std() == 0 or data[:, 1].std() == 0:
        return result
    result["correlation"] = float(np.corrcoef(data[:, 0], data[:, 1])[0, 1])
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    samples = data[draws]  # [resamples, pairs, 2]
    centred = samples - samples.mean(axis=1, keepdims=True)
    spread = np.sqrt((centred**2).sum(axis=1))  # [resamples, 2]
    valid = (spread > 0).all(axis=1)
    values = (centred[..., 0] * centred[..., 1]).sum(axis=1)[valid] / spread[valid].prod(axis=1)
    if len(values):
        result["low"], result["high"] = (float(v) for v in np.quantile(values, [0.025, 0.975]))
    return result
