"""Pipeline KPIs: deal counts, win rate with a Wilson interval, bookings, ASP, pipeline, coverage.

Documented one by one in docs/metrics.md (section "Pipeline"). The engine groups and sums; only
one row per group comes back, and the rates are computed on those rows.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ._codes import label
from ._deals import (
    check_dimensions,
    dimension_labels,
    make_selection,
    select_coded_deals,
    selection_key,
    source_column,
)
from ._engine import run_query
from ._measures import (
    OUTCOME_COLUMNS,
    aggregate,
    aggregates,
    asp,
    combine,
    outcome_sums_query,
    ratio,
    value_win_rate,
    win_rate_columns,
)
from ._stats import MIN_CLOSED

__all__ = ["REP_DIMENSIONS", "coverage_window", "pipeline_kpis", "win_rate_columns"]

# Dimensions that are attributes of the rep, so that a rep's quota can be summed over them.
REP_DIMENSIONS = ("owner", "owner_id", "team", "manager", "rep_region")

PIPELINE_COLUMNS = [
    "opportunities",
    "open",
    "open_with_amount",
    "won",
    "lost",
    "closed",
    "win_rate",
    "win_rate_low",
    "win_rate_high",
    "value_win_rate",
    "bookings",
    "asp",
    "open_pipeline",
    "weighted_pipeline",
    "small_n",
]
COVERAGE_COLUMNS = ["quota", "quota_remaining", "coverage"]


_COUNTS = ("opportunities", "open", "open_with_amount", "won", "won_with_amount", "lost")
# What the table aggregates in the engine (weighted_pipeline only where probability exists).
PIPELINE_AGGREGATES = (*_COUNTS, "bookings", "lost_amount", "open_pipeline", "weighted_pipeline")


def _money(total: pd.Series, deals: pd.Series, with_amount: pd.Series) -> np.ndarray:
    """A sum of amounts: 0 where there are no such deals, NaN (cannot be computed) where there
    are some but none has an amount (open deals often have none)."""
    total = total.astype(float).to_numpy()
    return np.where(deals == 0, 0.0, np.where(with_amount == 0, np.nan, np.nan_to_num(total)))


def pipeline_frame(raw: pd.DataFrame, by: list[str], min_closed: int) -> pd.DataFrame:
    """The pipeline KPI columns from the aggregated counts and sums."""
    counts = raw[list(_COUNTS)].fillna(0).astype("int64")
    bookings = _money(raw["bookings"], counts["won"], counts["won_with_amount"])
    open_pipeline = _money(raw["open_pipeline"], counts["open"], counts["open_with_amount"])
    rates = win_rate_columns(counts["won"], counts["lost"], min_closed=min_closed)
    weighted = np.full(len(raw), np.nan)
    if "weighted_pipeline" in raw:  # 0 where nothing is open; NaN where no open deal has one
        weighted = np.where(counts["open"] == 0, 0.0, raw["weighted_pipeline"].astype(float))
    columns: dict[str, Any] = {b: raw[b].reset_index(drop=True) for b in by}
    columns.update({c: counts[c].to_numpy() for c in _COUNTS if c != "won_with_amount"})
    columns["closed"] = rates.pop("closed")
    small = rates.pop("small_n")
    columns.update(rates)
    columns["value_win_rate"] = value_win_rate(bookings, raw["lost_amount"], counts["lost"])
    columns["bookings"] = bookings
    columns["asp"] = asp(bookings, counts["won_with_amount"])
    columns["open_pipeline"] = open_pipeline
    columns["weighted_pipeline"] = weighted
    columns["small_n"] = small
    return pd.DataFrame(columns)[[*by, *PIPELINE_COLUMNS]]  # built at once, then ordered


def pipeline_kpis(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    min_closed: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Pipeline KPIs per group: counts, win rate with a Wilson interval, bookings, ASP, pipeline.

    Parameters
    ----------
    data
        Loaded sales data.
    by
        Dimensions to group by (see ``DIMENSIONS``); empty for one row over everything.
    filters
        Dimension -> kept values. ``period`` (start, end), inclusive, bounds ``date_field``
        (``"created_date"`` or ``"closed_date"``).
    min_closed
        Groups with fewer closed deals are flagged ``small_n`` (too few to say).

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, then ``opportunities``, ``open``, ``won``, ``lost``, ``closed``,
        ``win_rate``, ``win_rate_low``, ``win_rate_high``, ``value_win_rate``, ``bookings``,
        ``asp``, ``open_pipeline``, ``weighted_pipeline``, ``small_n``; and ``quota``,
        ``quota_remaining``, ``coverage`` when the reps table has a quota and every ``by``
        dimension is an attribute of the rep. See docs/metrics.md for each formula.

    Examples
    --------
    >>> import pandas as pd
    >>> from salesops_widgets import load
    >>> opps = pd.DataFrame({
    ...     "opportunity_id": ["a", "b", "c", "d"], "amount": [100.0, 300.0, 50.0, 80.0],
    ...     "created_date": pd.to_datetime(["2025-01-02"] * 4),
    ...     "stage": ["Closed Won", "Closed Won", "Closed Lost", "Proposal"]})
    >>> kpis = pipeline_kpis(load({"opportunities": opps}))
    >>> row = kpis.iloc[0]
    >>> int(row.won), int(row.lost), round(float(row.win_rate), 4), float(row.asp)
    (2, 1, 0.6667, 200.0)
    """
    by = check_dimensions(data, by)

    def query():
        columns = [*by, *OUTCOME_COLUMNS]
        t = select_coded_deals(data, filters, period, date_field=date_field, columns=columns)
        return outcome_sums_query(t, by, *PIPELINE_AGGREGATES, labels=dimension_labels(data))

    key = ("pipeline_kpis", tuple(by), selection_key(filters, period, date_field))
    parts = run_query(data, key, query)
    out = pipeline_frame(combine(parts, by, *PIPELINE_AGGREGATES), by, min_closed)
    if data.has("reps", "quota") and all(_rep_column(data, d) for d in by):
        out = _with_coverage(out, data, by, filters, period)
    return out


# ------------------------------------------------------------------------------------------
# Quota coverage


def _rep_column(data: SalesData, dim: str) -> str | None:
    """The reps-table column behind a rep-level dimension, or None for any other dimension."""
    if dim == "owner_id":
        return "owner_id"
    source = source_column(data, dim) if dim in REP_DIMENSIONS or dim == "region" else None
    return source[1] if source and source[0] == "reps" else None


def coverage_window(
    as_of: _dt.date, period: tuple[Any, Any] | None = None
) -> tuple[_dt.date, _dt.date, float]:
    """(start, end, years): the quota window and its length in (calendar) years.

    No period: the calendar year of ``as_of`` (exactly 1 year). A period without an end ends
    on ``as_of`` (or on its start, if that is later); one without a start starts on January 1
    of its end's year. The length adds, for each calendar year it overlaps, the days of the
    window in that year / the days of that year.

    Examples
    --------
    >>> coverage_window(_dt.date(2026, 9, 30), ("2026-01-01", "2026-03-31"))[2]  # 90/365
    0.2465753424657534
    """
    sel = make_selection(period=period)
    if sel.start is None and sel.end is None:
        start, end = _dt.date(as_of.year, 1, 1), _dt.date(as_of.year, 12, 31)
    else:
        end = sel.end or max(as_of, sel.start)
        start = sel.start or _dt.date(end.year, 1, 1)
    years = 0.0
    for y in range(start.year, end.year + 1):
        first, last = max(start, _dt.date(y, 1, 1)), min(end, _dt.date(y, 12, 31))
        days_in_year = (_dt.date(y + 1, 1, 1) - _dt.date(y, 1, 1)).days
        years += max(0, (last - first).days + 1) / days_in_year
    return start, end, years


def _rep_filters(data: SalesData, filters: Mapping[str, Any] | None) -> dict | None:
    """Filters as reps-table column -> values; None when one is not rep-level (e.g. industry)."""
    out = {}
    for dim, values in make_selection(filters).filters.items():
        column = _rep_column(data, dim)
        if column is None:
            return None
        if values:
            out[column] = values
    return out


def _quota(data: SalesData, by: list[str], rep_filters: dict) -> pd.DataFrame:
    """Annual quota summed over the reps of each group (reps kept by the rep-level filters)."""
    reps = data.reps
    for column, values in rep_filters.items():
        reps = reps.filter(label(reps[column]).isin(values))
    dims = {d: label(reps[_rep_column(data, d)]) for d in by}
    reps = reps.select(quota=reps.quota, **dims)
    return aggregate(reps, by, {"_quota": reps.quota.sum()})


def _window_bookings(
    data: SalesData, by: list[str], filters: Mapping[str, Any] | None, window: tuple
) -> pd.DataFrame:
    """Won amount of the deals closed in the quota window, per group."""
    t = select_coded_deals(data, filters, window, date_field="closed_date")
    return aggregate(t, by, aggregates(t, "bookings"), labels=dimension_labels(data))


def _lookup(out: pd.DataFrame, by: list[str], frame: pd.DataFrame, column: str) -> np.ndarray:
    """frame[column] aligned to the rows of ``out`` (NaN for groups frame does not have)."""
    if not by:
        value = frame[column].astype(float).iloc[0] if len(frame) else np.nan
        return np.full(len(out), value)
    return out[by].merge(frame, on=by, how="left")[column].astype(float).to_numpy()


def _with_coverage(
    out: pd.DataFrame,
    data: SalesData,
    by: list[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
) -> pd.DataFrame:
    """Add quota (annual, prorated to the window), quota_remaining and coverage."""
    start, end, years = coverage_window(data.as_of, period)
    out = out.copy()
    nan = np.full(len(out), np.nan)
    rep_filters = _rep_filters(data, filters)
    quota = (
        nan if rep_filters is None else _lookup(out, by, _quota(data, by, rep_filters), "_quota")
    )
    remaining = nan
    if data.has("opportunities", "close_date"):  # else bookings in the window are unknown
        booked = _window_bookings(data, by, filters, (start, end))
        remaining = quota * years - np.nan_to_num(_lookup(out, by, booked, "bookings"))
    out["quota"] = quota * years
    out["quota_remaining"] = remaining
    out["coverage"] = ratio(out["open_pipeline"], remaining)
    return out
