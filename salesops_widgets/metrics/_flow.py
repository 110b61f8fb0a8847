"""Pipeline flow between two dates: what was open, what came in, what closed, what slipped.

The open pipeline on the later date is the open pipeline on the earlier one, plus the deals
created in between, minus the deals won and lost in between. Of the deals open on both dates,
those whose expected close date moved later were pushed, and earlier, pulled in (this needs
stage_history with close_date).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .._dates import date_parameter
from ..data import SalesData
from ..errors import ParameterError
from ._deals import check_dimensions, outcomes, select_deals
from ._measures import aggregate

__all__ = ["FLOW_MOVEMENTS", "pipeline_flow"]

# in bridge order: open_at_start + new - won - lost = open_at_end
FLOW_MOVEMENTS = ("open_at_start", "new", "won", "lost", "open_at_end", "pushed", "pulled_in")
_SIGN = {"open_at_start": 1, "new": 1, "won": -1, "lost": -1, "open_at_end": 0}


def _expected_close(sh: ibis.Table, day: _dt.date) -> ibis.Table:
    """Per opportunity, the expected close date as known at the end of ``day``."""
    upto = ibis.literal(day + _dt.timedelta(days=1)).cast("timestamp")
    h = sh.filter((sh.entered_at < upto) & sh.close_date.notnull())
    return h.group_by("opportunity_id").aggregate(_expected=h.close_date.argmax(h.entered_at))


def _slips(data: SalesData, t: ibis.Table, start: _dt.date, end: _dt.date) -> ibis.Table | None:
    """Deals open on both dates with their expected close on each, or None without history."""
    sh = data.tables.get("stage_history")
    if sh is None or not {"close_date", "entered_at"} <= set(sh.columns):
        return None
    a = _expected_close(sh, start).rename(_a="_expected")
    b = _expected_close(sh, end).rename(_b="_expected")
    both = t.filter(_open_on(t, start) & _open_on(t, end))
    return both.inner_join(a, "opportunity_id").inner_join(b, "opportunity_id")


def _open_on(t: ibis.Table, day: _dt.date) -> ibis.BooleanValue:
    """Created on or before ``day`` and not yet closed at its end (closed later, or open)."""
    still_open = outcomes(t)["open"] | (t.close_date > day)
    return ((t.created_date <= day) & still_open).fill_null(False)


def _between(t: ibis.Table, column: str, start: _dt.date, end: _dt.date) -> ibis.BooleanValue:
    return ((t[column] > start) & (t[column] <= end)).fill_null(False)


def _measures(t: ibis.Table, start: _dt.date, end: _dt.date) -> dict[str, ibis.Value]:
    is_ = outcomes(t)
    closed_in = _between(t, "close_date", start, end)
    where = {
        "open_at_start": _open_on(t, start),
        "new": _between(t, "created_date", start, end),
        "won": closed_in & is_["won"],
        "lost": closed_in & is_["lost"],
        "open_at_end": _open_on(t, end),
        "_unknown": is_["closed"] & t.close_date.isnull(),
    }
    out: dict[str, ibis.Value] = {}
    for name, cond in where.items():
        out[f"{name}__deals"] = t.count(where=cond)
        out[f"{name}__amount"] = t.amount.sum(where=cond)
    return out


def _check_dates(start: Any, end: Any, as_of: _dt.date) -> tuple[_dt.date, _dt.date]:
    a, b = date_parameter(start, "start"), date_parameter(end, "end")
    if a is None or b is None:
        raise ParameterError("pipeline_flow needs start and end dates (YYYY-MM-DD).")
    if a >= b:
        raise ParameterError(f"start {a} must be before end {b}; swap them.")
    if b > as_of:
        raise ParameterError(f"end {b} is after the as-of date {as_of}: the data cannot say yet.")
    return a, b


def _long(wide: pd.DataFrame, keys: list[str], names: Sequence[str]) -> pd.DataFrame:
    rows = []
    for _, row in wide.iterrows():
        for name in names:
            deals = row.get(f"{name}__deals", np.nan)
            amount = row.get(f"{name}__amount", np.nan)
            rows.append(
                {
                    **{k: row[k] for k in keys},
                    "movement": name,
                    "deals": 0 if pd.isna(deals) else int(deals),
                    "amount": 0.0 if pd.isna(amount) else float(amount),
                    "sign": _SIGN.get(name, 0),
                }
            )
    return pd.DataFrame(rows, columns=[*keys, "movement", "deals", "amount", "sign"])


def pipeline_flow(
    data: SalesData,
    *,
    start: Any,
    end: Any,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """How the open pipeline moved from ``start`` to ``end`` (both end-of-day, ≤ as-of).

    Movements, each as ``deals`` (count) and ``amount`` (Σ current deal amount):

    - ``open_at_start``: created on or before ``start`` and not closed by its end;
    - ``new``: created after ``start``, up to ``end``;
    - ``won`` / ``lost``: closed after ``start``, up to ``end`` (whenever created);
    - ``open_at_end``: open at the end of ``end``. open_at_start + new − won − lost =
      open_at_end, deal for deal (``sign`` gives each movement's sign in that bridge);
    - ``pushed`` / ``pulled_in``: deals open on both dates whose expected close date (the
      latest stage_history close_date entered by that day) is later / earlier at ``end`` than
      at ``start``. Not part of the bridge; zero rows when stage_history has no close_date
      (``attrs["note"]`` says so).

    Returns
    -------
    pandas.DataFrame
        One row per group and movement: the ``by`` columns, ``movement``, ``deals``,
        ``amount``, ``sign``. ``attrs["unknown_close"]`` counts closed deals without a close
        date, which cannot be placed in time and are left out of every movement.
    """
    keys = check_dimensions(data, by)
    a, b = _check_dates(start, end, data.as_of)
    t = select_deals(data, filters)
    wide = aggregate(t, keys, _measures(t, a, b))
    names = list(FLOW_MOVEMENTS[:5])
    note = ""
    slips = _slips(data, t, a, b)
    if slips is None:
        note = "pushed and pulled_in need stage_history with close_date and entered_at"
    else:
        moved = {
            "pushed": slips._b > slips._a,
            "pulled_in": slips._b < slips._a,
        }
        metrics = {}
        for name, cond in moved.items():
            metrics[f"{name}__deals"] = slips.count(where=cond)
            metrics[f"{name}__amount"] = slips.amount.sum(where=cond)
        moves = aggregate(slips, keys, metrics)
        wide = wide.merge(moves, on=keys, how="left") if keys else pd.concat([wide, moves], axis=1)
        names += ["pushed", "pulled_in"]
    out = _long(wide, keys, names)
    out.attrs["unknown_close"] = int(wide["_unknown__deals"].fillna(0).sum()) if len(wide) else 0
    out.attrs["note"] = note
    return out
