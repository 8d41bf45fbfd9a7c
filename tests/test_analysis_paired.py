"""medcoding.analysis.paired: two ratios on the same units, with a paired bootstrap interval."""

import numpy as np
import pytest

from medcoding.analysis import paired


def test_unit_weights_draw_whole_units():
    units = np.array(["a", "a", "b", "c"])  # a has two rows
    weights = paired.unit_weights(units, n_resamples=200, seed=3)  # [resamples, rows]
    assert weights.shape == (200, 4)
    assert np.array_equal(weights[:, 0], weights[:, 1])  # rows of one unit are drawn together
    assert np.all(weights[:, 1:].sum(axis=1) == 3)  # three units drawn per resample


def test_ratio_difference_by_hand_and_paired():
    hits = np.array([1.0, 0.0, 1.0, 1.0])
    has = np.ones(4)
    same = paired.ratio_difference((hits, has), (hits, has), np.arange(4), 100, 0)
    assert same["difference"] == 0 and same["low"] == 0 and same["high"] == 0  # paired draws
    found = paired.ratio_difference((hits, has), (np.zeros(4), has), np.arange(4), 500, 0)
    assert (found["first"], found["second"], found["difference"]) == pytest.approx((0.75, 0, 0.75))
    assert 0 < found["low"] < 0.75 < found["high"] <= 1


def test_ratio_without_denominator_is_nan():
    empty = (np.zeros(3), np.zeros(3))
    found = paired.ratio_difference(empty, (np.ones(3), np.ones(3)), ["p0", "p1", "p2"], 50, 1)
    assert np.isnan(found["first"]) and np.isnan(found["low"]) and found["second"] == 1
