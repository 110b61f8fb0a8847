"""The segment KPI table: pipeline, cycle and discount KPIs side by side, and sales velocity.

``segment_kpis`` composes the one-definition functions of the other modules (it computes no
rate itself) and adds ``velocity``, whose only definition is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ._cycle import cycle_summary, time_to_close
from ._deals import check_dimensions
from ._pipeline import pipeline_kpis
from ._pricing import deal_discounts
from ._stats import MIN_CLOSED

__all__ = ["SEGMENT_COLUMNS", "segment_kpis", "velocity"]

SEGMENT_COLUMNS = (
    "opportunities",
    "open",
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
    opts = {"by": by, "filters": filters, "period": period, "date_field": date_field}
    out = pipeline_kpis(data, min_closed=min_closed, **opts)
    parts = []
    if data.has("opportunities", "close_date"):
        parts.append(cycle_summary(data, **opts)[[*by, "median_cycle_days_won"]])
        km = time_to_close(data, **opts)
        parts.append(km[[*by, "km_median_days_to_close", "km_median_low", "km_median_high"]])
    if data.has("opportunities", "list_amount"):
        parts.append(deal_discounts(data, **opts)[[*by, "portfolio_discount"]])
    for part in parts:
        out = out.merge(part, on=by, how="left") if by else pd.concat([out, part], axis=1)
    for col in SEGMENT_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out["velocity"] = velocity(
        out["open"], out["win_rate"], out["asp"], out["km_median_days_to_close"]
    )
    return out[[*by, *SEGMENT_COLUMNS]]
