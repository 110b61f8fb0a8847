"""Shared statistics (salesops_widgets/metrics/_stats.py): the Wilson interval, against a hand
value and statsmodels."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets.metrics import wilson_interval


def test_wilson_matches_statsmodels_and_hand_value():
    # k=8, n=10, z=1.96: centre (8 + 1.92)/13.84 = 0.7168, half 1.96*sqrt(1.6 + 0.96)/13.84
    # = 0.2266 -> (0.4902, 0.9433)
    low, high = wilson_interval(8, 10)
    assert (round(float(low), 4), round(float(high), 4)) == (0.4902, 0.9433)
    k = np.array([0, 1, 5, 30, 99, 100])
    n = np.array([10, 10, 50, 30, 100, 100])
    ref_low, ref_high = proportion_confint(k, n, method="wilson")
    low, high = wilson_interval(k, n)
    np.testing.assert_allclose(low, ref_low, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, rtol=1e-10, atol=1e-12)
    low, high = wilson_interval(np.array([0]), np.array([0]))
    assert np.isnan(low[0]) and np.isnan(high[0])  # no closed deals: no interval
