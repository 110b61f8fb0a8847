"""The segment KPI table: pipeline, cycle and discount KPIs side by side, and sales velocity.

``segment_kpis`` asks the engine for every per-group sum in one query, using the one
definitions of ``_measures`` and the pipeline module's columns, so it gives the same numbers as
``pipeline_kpis``, ``cycle_summary``, ``time_to_close`` and ``deal_discounts`` (a test checks
it) in fewer queries; it adds ``velocity``, whose only definition is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ._cycle import time_to_close
from ._deals import check_dimensions, select_deals
from ._measures import aggregate, aggregates, median_cycle_days_won, portfolio_discount
from ._pipeline import PIPELINE_AGGREGATES, PIPELINE_COLUMNS, pipeline_frame
from ._stats import MIN_CLOSED

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

    ``cycle_days`` is the Kaplan–Meier median days to close (open deals censored), so slow
    open deals lengthen it instead of being ignored. NaN where any factor is undefined or the
    cycle is not positive.

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
    t = select_deals(data, filters, period, date_field=date_field)
    # one engine query for every per-group sum (the definitions in _measures), as a
    # hand-written query would; the same numbers as pipeline_kpis, cycle_summary and
    # deal_discounts, which each run their own query
    metrics = aggregates(t, *PIPELINE_AGGREGATES)
    if "cycle_days" in t.columns:
        metrics["median_cycle_days_won"] = median_cycle_days_won(t)
    if "list_amount" in t.columns:
        metrics.update(aggregates(t, "net_priced", "list_priced"))
    raw = aggregate(t, by, metrics)
    out = pipeline_frame(raw, by, min_closed)
    if "median_cycle_days_won" in raw:
        out["median_cycle_days_won"] = raw["median_cycle_days_won"].astype(float).to_numpy()
    if "list_priced" in raw:
        out["portfolio_discount"] = portfolio_discount(raw["net_priced"], raw["list_priced"])
    if "close_date" in t.columns:
        km = time_to_close(data, by=by, filters=filters, period=period, date_field=date_field)
        km = km[[*by, "km_median_days_to_close", "km_median_low", "km_median_high"]]
        out = out.merge(km, on=by, how="left") if by else pd.concat([out, km], axis=1)
    for col in SEGMENT_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out["velocity"] = velocity(
        out["open"], out["win_rate"], out["asp"], out["km_median_days_to_close"]
    )
    return out[[*by, *SEGMENT_COLUMNS]]
