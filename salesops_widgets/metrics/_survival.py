"""Survival statistics on aggregated counts: Kaplan–Meier and Aalen–Johansen.

Every function takes counts per distinct duration, which is what the engine returns from a
``group_by(duration, event type).count()``, so the cost grows with the number of distinct
durations, never with the number of rows. No Ibis here: plain numpy, pandas and statsmodels.

- Kaplan–Meier: ``statsmodels.duration.survfunc.SurvfuncRight`` with ``freq_weights``. With
  frequency weights statsmodels switches its standard error to Tsiatis' formula (Σ d/n²), so the
  Greenwood variance (Σ d/(n(n−d)), the same as on unaggregated rows) is computed here and
  handed to ``SurvfuncRight.quantile_ci`` for the median's interval.
- Competing risks: ``statsmodels.duration.survfunc.CumIncidenceRight`` with ``freq_weights``
  (point estimates; statsmodels gives no standard error with weights).

Conventions (documented in docs/metrics.md, "Cycle"):

- An observation censored at t was still at risk at t (ties: events before censoring).
- S(t) is right-continuous: events at t are included in S(t).
- A quantile q_p is ½(inf{t: S(t) ≤ 1−p} + sup{t: S(t) ≥ 1−p}) (R ``survival``, SAS LIFETEST): the
  first time S falls to 1−p, or the midpoint with the next event time when S stays exactly at
  1−p. With no censoring it equals the ordinary sample quantile. Not reached → NaN, never inf.
- Beyond the longest observation the curve is unknown (unless it already fell to 0): values
  asked for past it are NaN, and the restricted mean stops there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.duration.survfunc import CumIncidenceRight, SurvfuncRight

__all__ = [
    "KM_COLUMNS",
    "CIF_COLUMNS",
    "km_from_counts",
    "km_summary",
    "cumulative_incidence_from_counts",
    "grouped_quantile_from_counts",
    "quantile_from_counts",
]

KM_COLUMNS = ["time", "at_risk", "events", "survival", "se", "ci_low", "ci_high"]
CIF_COLUMNS = [
    "time",
    "at_risk",
    "won",
    "lost",
    "censored",
    "share_won",
    "share_lost",
    "share_open",
]

# S within this of a level counts as exactly on it (floating error of the product-limit).
_TOL = 1e-9


def _collapse(durations: Any, *counts: Any) -> tuple[np.ndarray, ...]:
    """Sum counts per distinct duration, sorted; drop durations with no count at all."""
    t = np.asarray(durations, dtype=float).ravel()
    cs = [np.asarray(c, dtype=float).ravel() for c in counts]
    if any(len(c) != len(t) for c in cs):
        raise ValueError("durations and every count array must have the same length")
    keep = np.isfinite(t)
    for c in cs:
        keep &= np.isfinite(c)
        if np.any(c[keep] < 0):
            raise ValueError("counts must not be negative")
    t, cs = t[keep], [c[keep] for c in cs]
    times, inverse = np.unique(t, return_inverse=True)
    sums = [np.bincount(inverse, weights=c, minlength=len(times)) for c in cs]
    total = np.sum(sums, axis=0) if sums else np.zeros(len(times))
    nz = total > 0
    return (times[nz], *(s[nz] for s in sums))


@dataclass
class KMFit:
    """A Kaplan–Meier fit on counts: the curve at event times plus what a summary needs."""

    times: np.ndarray  # distinct event times
    at_risk: np.ndarray
    events: np.ndarray
    survival: np.ndarray
    se: np.ndarray  # Greenwood
    n: float
    n_events: float
    max_time: float  # longest observation (event or censored); NaN when there is none
    _sf: SurvfuncRight | None = field(default=None, repr=False)

    @classmethod
    def from_counts(cls, durations: Any, events: Any, censored: Any) -> KMFit:
        t, d, c = _collapse(durations, events, censored)
        n = float(d.sum() + c.sum())
        max_time = float(t.max()) if len(t) else float("nan")
        if d.sum() == 0:
            empty = np.array([], dtype=float)
            return cls(empty, empty, empty, empty, empty, n, 0.0, max_time)
        time = np.r_[t, t]
        status = np.r_[np.ones(len(t)), np.zeros(len(t))]
        weights = np.r_[d, c]
        pos = weights > 0
        sf = SurvfuncRight(time[pos], status[pos], freq_weights=weights[pos])
        at_risk = np.asarray(sf.n_risk, dtype=float)
        ev = np.asarray(sf.n_events, dtype=float)
        surv = np.asarray(sf.surv_prob, dtype=float)
        se = _greenwood_se(surv, at_risk, ev)
        sf.surv_prob_se = se  # Greenwood, so that quantile_ci matches unaggregated rows
        return cls(
            np.asarray(sf.surv_times, dtype=float), at_risk, ev, surv, se, n, ev.sum(), max_time, sf
        )

    # -- the curve ------------------------------------------------------------------------------

    def arrays(self, confidence: float = 0.95) -> dict[str, np.ndarray]:
        """The curve at event times as arrays (the columns of :data:`KM_COLUMNS`)."""
        low, high = _loglog_ci(self.survival, self.se, confidence)
        return {
            "time": self.times,
            "at_risk": self.at_risk,
            "events": self.events,
            "survival": self.survival,
            "se": self.se,
            "ci_low": low,
            "ci_high": high,
        }

    def table(self, confidence: float = 0.95) -> pd.DataFrame:
        """The curve at event times, with pointwise log-log (exponential Greenwood) limits."""
        return pd.DataFrame(self.arrays(confidence), columns=KM_COLUMNS)

    def at(self, day: float) -> float:
        """S(day); NaN past the longest observation unless the curve already fell to 0."""
        if np.isnan(self.max_time) or day < 0:
            return float("nan")
        i = np.searchsorted(self.times, day, side="right")
        s = 1.0 if i == 0 else float(self.survival[i - 1])
        if day > self.max_time and s > _TOL:
            return float("nan")
        return s

    def quantile(self, p: float) -> float:
        """Time by which a share p has had the event; NaN when the curve never falls to 1−p."""
        level = 1.0 - p
        hit = np.flatnonzero(self.survival <= level + _TOL)
        if len(hit) == 0:
            return float("nan")
        i = hit[0]
        if abs(self.survival[i] - level) <= _TOL and i + 1 < len(self.times):
            return float((self.times[i] + self.times[i + 1]) / 2)
        return float(self.times[i])

    def quantile_ci(self, p: float, confidence: float = 0.95) -> tuple[float, float]:
        """Brookmeyer–Crowley interval (statsmodels, cloglog); an infinite limit becomes NaN."""
        if self._sf is None:
            return float("nan"), float("nan")
        with np.errstate(all="ignore"):
            low, high = self._sf.quantile_ci(p, alpha=1 - confidence, method="cloglog")
        return _finite(low), _finite(high)

    def restricted_mean(self, horizon: float) -> tuple[float, float]:
        """(∫₀^h S(t) dt, h) with h = min(horizon, longest observation).

        When the curve has fallen to 0 it is known past the longest observation, so h = horizon
        (or the day it reached 0, for an infinite horizon: the plain Kaplan–Meier mean).
        """
        if np.isnan(self.max_time):
            return float("nan"), float("nan")
        h = float(min(horizon, self.max_time))
        upper = h
        if len(self.times) and self.survival[-1] <= _TOL:  # 0 from times[-1] on
            h = float(horizon) if np.isfinite(horizon) else float(self.times[-1])
            upper = min(h, float(self.times[-1]))  # nothing to add past it
        inside = self.times <= upper
        knots = np.r_[0.0, self.times[inside]]
        values = np.r_[1.0, self.survival[inside]]
        widths = np.diff(np.r_[knots, upper])
        return float(np.sum(values * widths)), h


def _finite(x: float) -> float:
    x = float(x)
    return x if np.isfinite(x) else float("nan")


def _greenwood_se(surv: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Greenwood: S(t)·sqrt(Σ d/(n(n−d))); NaN from the point where n = d (S = 0) on."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = d / (n * (n - d))
    term[n <= d] = np.nan
    var = np.cumsum(term)
    se = surv * np.sqrt(var)
    se[~(surv > 0)] = np.nan
    return se


def _loglog_ci(surv: np.ndarray, se: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """S^exp(±z·σ/|log S|) with σ² the Greenwood sum: always inside [0, 1]."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = se / surv / np.abs(np.log(surv))
        low = surv ** np.exp(z * sigma)
        high = surv ** np.exp(-z * sigma)
    ok = (surv > 0) & (surv < 1) & np.isfinite(sigma)
    low = np.where(ok, low, np.where(surv >= 1, 1.0, np.nan))
    high = np.where(ok, high, np.where(surv >= 1, 1.0, np.nan))
    return low, high


def km_from_counts(
    durations: Sequence[float] | np.ndarray | pd.Series,
    events: Sequence[float] | np.ndarray | pd.Series,
    censored: Sequence[float] | np.ndarray | pd.Series,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Kaplan–Meier curve from counts per distinct duration.

    Parameters
    ----------
    durations
        Distinct (or repeated: they are summed) durations.
    events, censored
        Number of events and of censored observations at each duration.
    confidence
        Level of the pointwise interval.

    Returns
    -------
    pandas.DataFrame
        One row per event time: ``time``, ``at_risk`` (observations with duration ≥ time),
        ``events``, ``survival`` (S(time), product-limit), ``se`` (Greenwood), ``ci_low`` /
        ``ci_high`` (log-log). Empty when there is no event.

    Examples
    --------
    >>> km_from_counts([2, 3, 5, 8], [1, 0, 2, 1], [0, 1, 0, 0])[["time", "survival"]]
       time  survival
    0   2.0  0.800000
    1   5.0  0.266667
    2   8.0  0.000000
    """
    return KMFit.from_counts(durations, events, censored).table(confidence)


def km_summary(
    durations: Sequence[float] | np.ndarray | pd.Series,
    events: Sequence[float] | np.ndarray | pd.Series,
    censored: Sequence[float] | np.ndarray | pd.Series,
    *,
    by_day: Iterable[float] = (30, 90, 180, 365),
    horizon: float = 365,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Median with its interval, share with the event by given days, and the restricted mean.

    Returns
    -------
    dict
        ``median`` (NaN when the curve never falls to 0.5), ``median_low``, ``median_high``
        (Brookmeyer–Crowley; NaN when a limit lies beyond the follow-up), ``reached`` (bool),
        ``share_closed_by`` ({day: 1 − S(day)}, NaN past the longest observation),
        ``restricted_mean`` (∫₀^h S, h = min(horizon, longest observation)), ``horizon`` (h),
        ``n``, ``n_events``, ``max_time``.
    """
    fit = KMFit.from_counts(durations, events, censored)
    median = fit.quantile(0.5)
    low, high = fit.quantile_ci(0.5, confidence)
    rmst, h = fit.restricted_mean(horizon)
    return {
        "median": median,
        "median_low": low,
        "median_high": high,
        "reached": bool(np.isfinite(median)),
        "share_closed_by": {d: 1.0 - fit.at(d) for d in by_day},
        "restricted_mean": rmst,
        "horizon": h,
        "n": fit.n,
        "n_events": fit.n_events,
        "max_time": fit.max_time,
    }


def cumulative_incidence_from_counts(
    durations: Sequence[float] | np.ndarray | pd.Series,
    won: Sequence[float] | np.ndarray | pd.Series,
    lost: Sequence[float] | np.ndarray | pd.Series,
    censored: Sequence[float] | np.ndarray | pd.Series,
) -> pd.DataFrame:
    """Aalen–Johansen cumulative incidence of two competing outcomes, from counts.

    ``share_won(t)`` = Σ_{s≤t} S(s−)·won(s)/n(s), the same for lost, with S the all-cause
    Kaplan–Meier; ``share_open`` = S(t) = 1 − share_won − share_lost.

    Returns
    -------
    pandas.DataFrame
        One row per distinct duration: ``time``, ``at_risk``, ``won``, ``lost``, ``censored``,
        ``share_won``, ``share_lost``, ``share_open``.

    Examples
    --------
    Four deals: won on day 1, lost on day 2, won on day 3, open at day 3. Day 1: 1/4 won. Day 2:
    S = 3/4, 3 at risk, one lost: 3/4·1/3 = 1/4 lost. Day 3: S = 1/2, 2 at risk, one won:
    1/4 + 1/2·1/2 = 1/2 won.

    >>> cif = cumulative_incidence_from_counts([1, 2, 3], [1, 0, 1], [0, 1, 0], [0, 0, 1])
    >>> cif[["time", "share_won", "share_lost"]].round(4)
       time  share_won  share_lost
    0   1.0       0.25        0.00
    1   2.0       0.25        0.25
    2   3.0       0.50        0.25
    """
    return pd.DataFrame(cif_arrays(durations, won, lost, censored), columns=CIF_COLUMNS)


def cif_arrays(durations: Any, won: Any, lost: Any, censored: Any) -> dict[str, np.ndarray]:
    """:func:`cumulative_incidence_from_counts` as a dict of arrays."""
    t, w, lo, c = _collapse(durations, won, lost, censored)
    at_risk = np.cumsum((w + lo + c)[::-1])[::-1]
    share_won = np.zeros(len(t))
    share_lost = np.zeros(len(t))
    if w.sum() + lo.sum() > 0:
        time = np.r_[t, t, t]
        status = np.r_[np.ones(len(t)), np.full(len(t), 2.0), np.zeros(len(t))]
        weights = np.r_[w, lo, c]
        pos = weights > 0
        ci = CumIncidenceRight(time[pos], status[pos], freq_weights=weights[pos])
        # statsmodels estimates at every distinct time; ours are those with a count
        idx = np.searchsorted(np.asarray(ci.times, dtype=float), t)
        share_won = np.asarray(ci.cinc[0], dtype=float)[idx]
        if len(ci.cinc) > 1:  # no cause-2 column when nobody was lost
            share_lost = np.asarray(ci.cinc[1], dtype=float)[idx]
    return {
        "time": t,
        "at_risk": at_risk,
        "won": w,
        "lost": lo,
        "censored": c,
        "share_won": share_won,
        "share_lost": share_lost,
        "share_open": np.clip(1.0 - share_won - share_lost, 0.0, 1.0),
    }


def quantile_from_counts(values: Any, counts: Any, p: float) -> float:
    """Linear-interpolation quantile (as pandas ``quantile`` and SQL ``percentile_cont``) of
    ``values``, each repeated ``counts`` times; NaN when there is none.

    Examples
    --------
    >>> quantile_from_counts([2, 5, 8], [1, 2, 1], 0.5)  # 2 5 5 8 -> (5 + 5) / 2
    5.0
    """
    values = np.asarray(values, dtype=float).ravel()
    return float(grouped_quantile_from_counts(np.zeros(len(values), int), values, counts, p, 1)[0])


def grouped_quantile_from_counts(
    groups: Any, values: Any, counts: Any, p: float, n_groups: int
) -> np.ndarray:
    """:func:`quantile_from_counts` of each group at once: ``groups`` holds each row's group
    number (0 … n_groups − 1). NaN for a group without a counted value.

    Examples
    --------
    >>> grouped_quantile_from_counts([0, 0, 1, 0], [2, 5, 7, 8], [1, 2, 3, 1], 0.5, 3).tolist()
    [5.0, 7.0, nan]
    """
    groups = np.asarray(groups, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=float).ravel()
    counts = np.asarray(counts, dtype=float).ravel()
    keep = (counts > 0) & np.isfinite(values)
    groups, values, counts = groups[keep], values[keep], counts[keep]
    order = np.lexsort((values, groups))
    groups, values, cum = groups[order], values[order], np.cumsum(counts[order])
    total = np.bincount(groups, weights=counts[order], minlength=n_groups)
    before = np.r_[0.0, np.cumsum(total)[:-1]]  # deals of the groups sorted before
    h = (total - 1) * p
    lo, hi = np.floor(h), np.ceil(h)
    has = total > 0
    # the row holding the k-th deal (from 0) of a group: the first whose running count > k
    last = max(len(values) - 1, 0)
    at_lo = np.minimum(np.searchsorted(cum, before + lo, side="right"), last)
    at_hi = np.minimum(np.searchsorted(cum, before + hi, side="right"), last)
    if not len(values):
        return np.full(n_groups, np.nan)
    v_lo, v_hi = values[at_lo], values[at_hi]
    return np.where(has, v_lo + (h - lo) * (v_hi - v_lo), np.nan)


def step_at(times: np.ndarray, values: np.ndarray, day: float, start: float = 0.0) -> float:
    """Value of a right-continuous step function at ``day`` (``start`` before the first time)."""
    i = np.searchsorted(times, day, side="right")
    return float(start if i == 0 else values[i - 1])
