"""Time to close and time to win, with open deals censored: Kaplan–Meier and competing risks.

An open deal is a censored observation at its age on the as-of date. Medians over closed deals
only are biased low (the slowest deals are the ones still open); they are shown only to explain
the gap. Counts come from one engine query per call (deals per group, distinct duration and
outcome); curves are computed by :mod:`._survival` from those counts, so the cost grows with
the number of distinct durations, not with rows. Formulas: docs/metrics.md, "Cycle".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._cycle import cycle_deals
from ._deals import dimension_labels
from ._groups import NO_DEALS, frame, long_frame, notes, split_counts
from ._measures import aggregate
from ._stats import MIN_CLOSED
from ._survival import KMFit, cif_arrays, quantile_from_counts, step_at

__all__ = [
    "BY_DAY",
    "km_medians",
    "time_to_close",
    "time_to_close_curves",
    "time_to_win",
    "time_to_win_curves",
]

BY_DAY = (30, 90, 180, 365)
_TOL = 1e-9


def _days(by_day: Sequence[float]) -> list[int]:
    days = [int(d) for d in by_day]
    if any(d < 0 for d in days):
        raise ParameterError(f"by_day={tuple(by_day)!r} must be whole days ≥ 0, e.g. (30, 90).")
    return days


# -- time to close (Kaplan–Meier) ---------------------------------------------------------------


def _duration_counts(
    data: SalesData,
    analysis: str,
    by: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    split: str,
) -> tuple[pd.DataFrame, list[str]]:
    """One engine query: deals per (group, duration_days, ``split``)."""
    t, keys = cycle_deals(data, analysis, by, filters, period, date_field)
    groups = [*keys, "duration_days", split]
    counts = aggregate(t, groups, {"n": t.count()}, labels=dimension_labels(data))
    return counts, keys


def _share_columns(prefix: str, days: Sequence[int]) -> list[str]:
    return [f"{prefix}{d}" for d in days]


def time_to_close(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    horizon_days: float = 365,
    by_day: Sequence[float] = BY_DAY,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Days from creation to close by Kaplan–Meier, open deals censored at the as-of date.

    Counts come from one engine query, ``group_by(by + duration_days + is_closed).count()``.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n`` (deals with a duration), ``n_closed`` (events), ``n_open``
        (censored), ``km_median_days_to_close`` (NaN when fewer than half closed within the
        follow-up, never inf), ``km_median_low`` / ``km_median_high`` (Brookmeyer–Crowley 95%
        interval; NaN when a limit lies beyond the follow-up), ``km_median_reached``,
        ``naive_median_days_closed_only`` (closed deals only: biased low, shown to explain the
        gap), ``restricted_mean_days`` (mean days to close capped at the horizon: ∫₀^h S(t) dt),
        ``restricted_mean_horizon_days`` (h = min(horizon_days, longest follow-up)),
        ``share_closed_by_day_<d>`` (1 − S(d); NaN past the longest follow-up), ``small_n``
        (fewer than ``MIN_CLOSED`` closed deals) and ``note`` (why a value is missing).
    """
    days = _days(by_day)
    counts, keys = _duration_counts(
        data, "time to close", by, filters, period, date_field, "is_closed"
    )
    share_cols = _share_columns("share_closed_by_day_", days)
    columns = [
        *keys,
        "n",
        "n_closed",
        "n_open",
        "km_median_days_to_close",
        "km_median_low",
        "km_median_high",
        "km_median_reached",
        "naive_median_days_closed_only",
        "restricted_mean_days",
        "restricted_mean_horizon_days",
        *share_cols,
        "small_n",
        "note",
    ]
    rows = [
        _ttc_row(dict(zip(keys, g, strict=True)), a, days, horizon_days, confidence)
        for g, a in split_counts(counts, keys, "duration_days", "is_closed")
    ]
    return frame(rows, columns, NO_DEALS)


def km_medians(counts: pd.DataFrame, keys: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """:func:`time_to_close`'s ``km_median_days_to_close``, ``km_median_low`` and
    ``km_median_high`` per group of ``keys``, from deals counted (column ``n``) per group,
    ``duration_days`` and ``is_closed``. With no keys: one row, even without deals."""
    columns = [*keys, "km_median_days_to_close", "km_median_low", "km_median_high"]
    rows = []
    for g, a in split_counts(counts, keys, "duration_days", "is_closed"):
        fit = KMFit.from_counts(*_event_split(a)[:3])
        rows.append((*g, fit.quantile(0.5), *fit.quantile_ci(0.5, confidence)))
    return pd.DataFrame(rows, columns=columns)


def _event_split(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(durations, events, censored, deals without a duration) from one group's arrays."""
    known = ~np.isnan(a["t"])
    closed = a["kind"][known] == True  # noqa: E712 (object array of booleans)
    n = a["n"][known]
    return a["t"][known], n * closed, n * ~closed, int(a["n"][~known].sum())


def _ttc_row(
    row: dict, a: dict[str, np.ndarray], days: list[int], horizon: float, confidence: float
) -> dict:
    durations, events, censored, unknown = _event_split(a)
    fit = KMFit.from_counts(durations, events, censored)
    median = fit.quantile(0.5)
    low, high = fit.quantile_ci(0.5, confidence)
    rmst, h = fit.restricted_mean(horizon)
    n, n_closed = int(fit.n), int(fit.n_events)
    row.update(
        n=n,
        n_closed=n_closed,
        n_open=n - n_closed,
        km_median_days_to_close=median,
        km_median_low=low,
        km_median_high=high,
        km_median_reached=bool(np.isfinite(median)),
        naive_median_days_closed_only=quantile_from_counts(durations, events, 0.5),
        restricted_mean_days=rmst,
        restricted_mean_horizon_days=h,
        small_n=n_closed < MIN_CLOSED,
    )
    for d in days:
        row[f"share_closed_by_day_{d}"] = 1.0 - fit.at(d)
    row["note"] = _ttc_note(
        n, n_closed, (median, low, high), h, horizon, fit.max_time, days, unknown
    )
    return row


def _ttc_note(
    n: int,
    n_closed: int,
    median_ci: tuple[float, float, float],
    h: float,
    horizon: float,
    max_time: float,
    days: list[int],
    unknown: int,
) -> str:
    if n == 0:
        return notes(NO_DEALS, _unknown_note(unknown))
    median, low, high = median_ci
    interval = ""
    if np.isfinite(median) and not np.isfinite(low):
        interval = "too few closed deals for an interval around the median"
    elif np.isfinite(median) and not np.isfinite(high):
        interval = "upper limit of the median's interval lies beyond the follow-up"
    not_reached = ""
    if n_closed == 0:
        not_reached = "no closed deals yet: median not reached; see share_closed_by_day_*"
    elif not np.isfinite(median):
        not_reached = (
            f"fewer than half the deals closed within the follow-up ({max_time:.0f} days): "
            "median not reached; see share_closed_by_day_* and restricted_mean_days"
        )
    return notes(
        not_reached,
        "too few closed deals to say" if 0 < n_closed < MIN_CLOSED else "",
        interval,
        f"restricted mean up to day {h:.0f}, the longest follow-up" if h < horizon else "",
        f"share closed by day {', '.join(str(d) for d in days if d > max_time)} is past the "
        "longest follow-up"
        if any(d > max_time for d in days) and h < horizon
        else "",
        _unknown_note(unknown),
    )


def _unknown_note(unknown: int) -> str:
    return f"{unknown} closed deal(s) without close_date left out" if unknown else ""


_CURVE_COLUMNS = [
    "day",
    "at_risk",
    "events",
    "survival",
    "ci_low",
    "ci_high",
    "share_closed",
    "share_closed_low",
    "share_closed_high",
]


def time_to_close_curves(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    max_day: float | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Kaplan–Meier curves of time to close, long form for charts (draw as steps, "step-after").

    Returns
    -------
    pandas.DataFrame
        Per group, one row at day 0 (survival 1, unless deals closed on day 0), one per day on
        which deals closed, and one at the longest follow-up: ``day``, ``at_risk``, ``events``,
        ``survival`` (share still open), ``ci_low`` / ``ci_high`` (pointwise log-log),
        ``share_closed`` = 1 − survival with ``share_closed_low`` / ``share_closed_high``.
        ``max_day`` drops rows after that day.
    """
    counts, keys = _duration_counts(
        data, "time to close", by, filters, period, date_field, "is_closed"
    )
    parts = []
    for g, a in split_counts(counts, keys, "duration_days", "is_closed"):
        durations, events, censored, _ = _event_split(a)
        fit = KMFit.from_counts(durations, events, censored)
        if np.isnan(fit.max_time):
            continue
        c = _with_ends(fit.arrays(confidence), durations, events + censored, fit.max_time)
        c["day"] = c.pop("time")
        c["share_closed"] = 1 - c["survival"]
        c["share_closed_low"] = 1 - c["ci_high"]
        c["share_closed_high"] = 1 - c["ci_low"]
        if max_day is not None:
            keep = c["day"] <= max_day
            c = {k: v[keep] for k, v in c.items()}
        parts.append((g, c))
    return long_frame(keys, parts, _CURVE_COLUMNS)


def _with_ends(
    c: dict[str, np.ndarray], durations: np.ndarray, n: np.ndarray, max_time: float
) -> dict[str, np.ndarray]:
    """Add the day-0 start and the end of follow-up to a curve at event times."""
    c = dict(c)
    if len(c["time"]) == 0 or c["time"][0] > 0:
        start = {"time": 0.0, "at_risk": n.sum(), "events": 0.0, "survival": 1.0, "se": 0.0,
                 "ci_low": 1.0, "ci_high": 1.0}  # fmt: skip
        c = {k: np.r_[start[k], v] for k, v in c.items()}
    if c["time"][-1] < max_time:
        end = {k: v[-1] for k, v in c.items()}
        end.update(time=max_time, at_risk=n[durations >= max_time].sum(), events=0.0)
        c = {k: np.r_[v, end[k]] for k, v in c.items()}
    return c


# -- time to win (competing risks) ---------------------------------------------------------------


def _status_split(a: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(durations, won, lost, open) counts from one group's arrays."""
    known = ~np.isnan(a["t"])
    n, status = a["n"][known], a["kind"][known]
    return a["t"][known], n * (status == "won"), n * (status == "lost"), n * (status == "open")


def time_to_win(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    by_day: Sequence[float] = BY_DAY,
) -> pd.DataFrame:
    """Share of deals won, and lost, by day X: competing risks (Aalen–Johansen).

    Losing is a competing outcome for winning, so 1 − KM(time to win) would overstate the share
    won; the cumulative incidence does not. Open deals are censored at the as-of date.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``n_won``, ``n_lost``, ``n_open``, ``share_won_by_day_<d>``,
        ``share_lost_by_day_<d>`` (NaN past the longest follow-up) and ``note``.
        :func:`time_to_win_curves` has the curves.
    """
    days = _days(by_day)
    counts, keys = _duration_counts(data, "time to win", by, filters, period, date_field, "status")
    won_cols = _share_columns("share_won_by_day_", days)
    lost_cols = _share_columns("share_lost_by_day_", days)
    columns = [*keys, "n", "n_won", "n_lost", "n_open", *won_cols, *lost_cols, "note"]
    rows = []
    for g, a in split_counts(counts, keys, "duration_days", "status"):
        durations, won, lost, open_ = _status_split(a)
        cif = cif_arrays(durations, won, lost, open_)
        row = dict(zip(keys, g, strict=True))
        row.update(n=int(won.sum() + lost.sum() + open_.sum()), n_won=int(won.sum()))
        row.update(n_lost=int(lost.sum()), n_open=int(open_.sum()))
        t = cif["time"]
        max_time = float(t[-1]) if len(t) else float("nan")
        ended = len(t) > 0 and cif["share_open"][-1] <= _TOL
        past = []
        for d in days:
            known = len(t) > 0 and (d <= max_time or ended)
            if not known and len(t):
                past.append(str(d))
            row[f"share_won_by_day_{d}"] = step_at(t, cif["share_won"], d) if known else np.nan
            row[f"share_lost_by_day_{d}"] = step_at(t, cif["share_lost"], d) if known else np.nan
        row["note"] = notes(
            NO_DEALS if row["n"] == 0 else "",
            f"day {', '.join(past)} is past the longest follow-up ({max_time:.0f} days)"
            if past
            else "",
        )
        rows.append(row)
    return frame(rows, columns, NO_DEALS)


_CIF_CURVE_COLUMNS = ["day", "at_risk", "won", "lost", "share_won", "share_lost", "share_open"]


def time_to_win_curves(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    max_day: float | None = None,
) -> pd.DataFrame:
    """Cumulative incidence of won and of lost deals by day, long form for charts.

    Returns
    -------
    pandas.DataFrame
        Per group, one row per distinct duration (plus day 0): ``day``, ``at_risk``, ``won``,
        ``lost`` (deals won/lost that day), ``share_won``, ``share_lost``, ``share_open``
        (the three add up to 1).
    """
    counts, keys = _duration_counts(data, "time to win", by, filters, period, date_field, "status")
    parts = []
    for g, a in split_counts(counts, keys, "duration_days", "status"):
        c = cif_arrays(*_status_split(a))
        if len(c["time"]) == 0:
            continue
        if c["time"][0] > 0:
            start = {"time": 0.0, "at_risk": c["at_risk"][0], "share_open": 1.0}
            c = {k: np.r_[start.get(k, 0.0), v] for k, v in c.items()}
        c["day"] = c.pop("time")
        if max_day is not None:
            keep = c["day"] <= max_day
            c = {k: v[keep] for k, v in c.items()}
        parts.append((g, c))
    return long_frame(keys, parts, _CIF_CURVE_COLUMNS)
