"""Shared statistics for KPIs: intervals and the small-sample rule.

Computed on counts the engine has aggregated, never on rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from .._catalog import TOO_FEW

__all__ = ["MIN_CLOSED", "TOO_FEW", "wilson_interval", "small_n"]

# Fewer closed deals than this: a rate is shown as "too few to say" (TOO_FEW), not as a number.
MIN_CLOSED = 30


def wilson_interval(
    successes: np.ndarray | pd.Series | float,
    trials: np.ndarray | pd.Series | float,
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion, vectorised; NaN where trials is 0.

    Same formula as ``statsmodels.stats.proportion.proportion_confint(method="wilson")``:
    centre (k + z²/2) / (n + z²), half-width z·sqrt(k(n−k)/n + z²/4) / (n + z²).

    Examples
    --------
    >>> low, high = wilson_interval(8, 10)
    >>> round(float(low), 4), round(float(high), 4)
    (0.4902, 0.9433)
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = norm.ppf(1 - (1 - confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = n + z**2
        centre = (k + z**2 / 2) / denom
        half = z * np.sqrt(k * (n - k) / n + z**2 / 4) / denom
        low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def small_n(closed: np.ndarray | pd.Series, *, minimum: int = MIN_CLOSED) -> np.ndarray:
    """True where there are fewer closed deals than ``minimum``: too few to say."""
    return np.asarray(closed, dtype=float) < minimum
