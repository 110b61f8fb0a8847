"""The segment KPI table: pipeline, cycle and discount KPIs side by side, and sales velocity.

``segment_kpis`` asks the engine one query: deals counted and amounts summed per segment, deal
outcome and duration (``_measures.outcome_sums``). The per-segment sums, the won deals' median
cycle and the Kaplan–Meier counts all add up from those rows, using the one definitions of
``_measures`` and the pipeline and cycle modules, so it gives the same numbers as
``pipeline_kpis``, ``cycle_summary``, ``time_to_close`` and ``deal_discounts`` (a test checks
it) in one query instead of four; it adds ``velocity``, whose only definition is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ._deals import (
    check_dimensions,
    deals,
    dimension_labels,
    select_coded_deals,
    selection_key,
)
from ._engine import run_query
from ._measures import (
    MEDIAN_WON,
    OUTCOME_COLUMNS,
    combine,
    outcome_sums_query,
    portfolio_discount,
)
from ._pipeline import PIPELINE_AGGREGATES, PIPELINE_COLUMNS, pipeline_frame
from ._stats import MIN_CLOSED
from ._time_to_close import km_medians

__all__ = ["SEGMENT_COLUMNS", "segment_kpis", "velocity"]

SEGMENT_COLUMNS = (
    *(c for c in PIPELINE_COLUMNS if c != "small_n"),
    "median_cycle_days_won",
    "km_median_days_to_close",
    "km_median_low",
    "km_median_high",
    "portfolio_discount",
    "velocity",
    "small_n",
)


def velocity(open_deals: Any, win_rate: Any, asp: Any, cycle_days: Any) -> np.ndarray:
    """Sales velocity in money per day: open opportunities × win rate × ASP / cycle days.

    ``open_deals`` counts the open deals with an amount (the qualified pipeline: open deals
    without one are left out; ``segment_kpis`` gives NaN where there are open deals but none
    has one); ``cycle_days`` is the Kaplan–Meier median days to close (open deals censored), so
    slow open deals lengthen it instead of being ignored. NaN where any factor is undefined or
    the cycle is not positive.

    Examples
    --------
    >>> float(velocity(10, 0.3, 5000, 60)[0])  # 10 x 0.3 x 5,000 / 60
    250.0
    """
    n, w, a, c = (
        np.atleast_1d(np.asarray(x, dtype=float)) for x in (open_deals, win_rate, asp, cycle_days)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, n * w * a / c, np.nan)


def segment_kpis(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    min_closed: int = MIN_CLOSED,
) -> pd.DataFrame:
    """The KPI table of docs/metrics.md, one row per segment of ``by`` (one row when empty).

    Columns: the ``by`` dimensions, then ``SEGMENT_COLUMNS``. ``portfolio_discount`` is NaN
    when the data has no list prices; ``median_cycle_days_won`` and the Kaplan–Meier columns
    are NaN without close dates.

    Examples
    --------
    >>> from salesops_widgets import load  # doctest: +SKIP
    >>> segment_kpis(load("data/samples/default"), by=["size_band"])  # doctest: +SKIP
    """
    by = check_dimensions(data, by)
    have = deals(data).columns
    median = [MEDIAN_WON] if "cycle_days" in have else []
    names = [*PIPELINE_AGGREGATES, "net_realized", "list_realized", *median]

    def query():
        used = [*by, *OUTCOME_COLUMNS, "duration_days"]
        t = select_coded_deals(data, filters, period, date_field=date_field, columns=used)
        return outcome_sums_query(t, [*by, "duration_days"], *names, labels=dimension_labels(data))

    key = ("segment_kpis", tuple(by), selection_key(filters, period, date_field), tuple(names))
    parts = run_query(data, key, query)
    raw = combine(parts, by, *names)
    out = pipeline_frame(raw, by, min_closed)
    if "list_realized" in raw:  # on the won deals: the price realized
        out["portfolio_discount"] = portfolio_discount(raw["net_realized"], raw["list_realized"])
    if median:
        out[MEDIAN_WON] = raw[MEDIAN_WON].to_numpy()
    if "close_date" in have:  # km_medians sums the counts per duration and event
        out = _joined(out, km_medians(parts.rename(columns={"_n": "n"}), by), by)
    for col in SEGMENT_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out["velocity"] = velocity(
        out["open_with_amount"], out["win_rate"], out["asp"], out["km_median_days_to_close"]
    )
    starved = (out["open"] > 0) & (out["open_with_amount"] == 0)
    out.loc[starved, "velocity"] = np.nan  # open deals, none with an amount: cannot say
    return out[[*by, *SEGMENT_COLUMNS]]


def _joined(out: pd.DataFrame, extra: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """``out`` with the columns of ``extra`` (one row per group of ``by``, or one row)."""
    if not by or out[by].reset_index(drop=True).equals(extra[by].reset_index(drop=True)):
        extra = extra.drop(columns=by).reset_index(drop=True)
        return pd.concat([out.reset_index(drop=True), extra], axis=1)
    return out.merge(extra, on=by, how="left")
