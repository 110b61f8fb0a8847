"""The deals behind a number: the drill-down list of a segment, a band or a tier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._deals import select_deals

__all__ = ["DEAL_LIST_COLUMNS", "deal_list"]

# shown when the data has them, in this order
DEAL_LIST_COLUMNS = (
    "opportunity_id",
    "opportunity_name",
    "account",
    "owner",
    "stage",
    "status",
    "amount",
    "list_amount",
    "discount",
    "created_date",
    "close_date",
    "cycle_days",
    "age_days",
)
_SORTS = {
    "amount": ("amount", True),
    "discount": ("discount", True),
    "age_days": ("age_days", True),
    "cycle_days": ("cycle_days", True),
    "created_date": ("created_date", True),
    "close_date": ("close_date", True),
}


def deal_list(
    data: SalesData,
    *,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str | None = None,
    extra: tuple[str, ...] = (),
    sort: str = "amount",
    top_n: int | None = 50,
) -> pd.DataFrame:
    """The selected deals, largest first: the rows behind a segment's KPIs.

    Parameters
    ----------
    filters, period, date_field
        The selection, as in every KPI function (a drill-down adds the clicked segment to the
        filters).
    status
        ``"open"``, ``"won"``, ``"lost"`` or ``"closed"`` to keep only those deals.
    extra
        More columns of the deals view to show (e.g. the dimensions grouped by).
    sort
        A column of ``DEAL_LIST_COLUMNS`` that sorts largest (or latest) first; ties by
        ``opportunity_id``. NULLs go last.
    top_n
        At most this many rows (None: all).

    Returns
    -------
    pandas.DataFrame
        The columns of ``DEAL_LIST_COLUMNS`` that the data has, then ``extra``; an empty frame
        with those columns when nothing matches.
    """
    if sort not in _SORTS:
        raise ParameterError(f"sort={sort!r} must be one of {', '.join(_SORTS)}.")
    if top_n is not None and top_n < 1:
        raise ParameterError(f"top_n={top_n!r} must be a positive number of rows, or None.")
    statuses = ("open", "won", "lost", "closed")
    if status is not None and status not in statuses:
        raise ParameterError(f"status={status!r} must be one of {', '.join(statuses)}, or None.")
    t = select_deals(data, filters, period, date_field=date_field)
    if status == "closed":
        t = t.filter(t.is_closed)
    elif status is not None:
        t = t.filter(t.status == status)
    columns = [c for c in DEAL_LIST_COLUMNS if c in t.columns]
    columns += [c for c in extra if c in t.columns and c not in columns]
    key, descending = _SORTS[sort]
    order = [t.opportunity_id]  # ties, and the whole order when the data lacks the sort column
    if key in t.columns:
        order.insert(0, ibis.desc(t[key], nulls_first=False) if descending else t[key])
    t = t.select(*columns).order_by(order)
    if top_n is not None:
        t = t.limit(top_n)
    return t.to_pandas().reset_index(drop=True)
