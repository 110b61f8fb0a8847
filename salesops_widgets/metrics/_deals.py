"""The deal-level view every KPI starts from: opportunities plus their dimensions.

``deals(data)`` joins each opportunity to its account, rep and product once (and, on the
embedded engine, keeps the result as a table), adds per-deal measures (cycle days, age,
discount), and ``select_deals`` applies filters and a period. KPI functions group and aggregate
the result in the engine.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis

from ..data import SalesData
from ..errors import MissingDataError, ParameterError

__all__ = [
    "DIMENSIONS",
    "NOT_SET",
    "Selection",
    "deals",
    "select_deals",
    "check_dimensions",
    "available_dimensions",
]

NOT_SET = "(not set)"

# dimension name -> (table, column). Account region wins over the rep's region for "region".
DIMENSIONS: dict[str, tuple[str, str]] = {
    "industry": ("accounts", "industry"),
    "size_band": ("accounts", "size_band"),
    "region": ("accounts", "region"),
    "country": ("accounts", "country"),
    "account": ("accounts", "account_name"),
    "team": ("reps", "team"),
    "manager": ("reps", "manager"),
    "owner": ("reps", "owner_name"),
    "rep_region": ("reps", "region"),
    "product_family": ("products", "family"),
    "product": ("products", "product_name"),
    "deal_type": ("opportunities", "deal_type"),
    "lead_source": ("opportunities", "lead_source"),
    "stage": ("opportunities", "stage"),
    "pipeline": ("opportunities", "pipeline"),
    "loss_reason": ("opportunities", "loss_reason"),
    "account_id": ("opportunities", "account_id"),
    "owner_id": ("opportunities", "owner_id"),
    "product_id": ("opportunities", "product_id"),
}

_KEYS = {"accounts": "account_id", "reps": "owner_id", "products": "product_id"}


def _source_column(data: SalesData, dim: str) -> tuple[str, str] | None:
    table, column = DIMENSIONS[dim]
    if dim == "region" and not data.has("accounts", "region") and data.has("reps", "region"):
        return ("reps", "region")
    if table != "opportunities" and not data.has("opportunities", _KEYS[table]):
        return None
    return (table, column) if data.has(table, column) else None


def available_dimensions(data: SalesData) -> list[str]:
    """The dimensions this data can be grouped or filtered by."""
    return [d for d in DIMENSIONS if _source_column(data, d) is not None]


def check_dimensions(data: SalesData, dims: Iterable[str], *, parameter: str = "by") -> list[str]:
    """Validate dimension names; raise a ParameterError/MissingDataError that says what to do."""
    dims = list(dims)
    for dim in dims:
        if dim not in DIMENSIONS:
            raise ParameterError(
                f"{parameter}={dim!r} is not a dimension. Known dimensions: "
                f"{', '.join(DIMENSIONS)}."
            )
        if _source_column(data, dim) is None:
            table, column = DIMENSIONS[dim]
            raise MissingDataError(
                f"{parameter}={dim!r} needs column {column} of the {table} table, which this "
                f"data does not have (available: {', '.join(available_dimensions(data))}). "
                f"Map it in the mapping under tables.{table}.columns.{column}."
            )
    return dims


def deals(data: SalesData) -> ibis.Table:
    """Every used opportunity with its dimensions and per-deal measures.

    Added columns: one per available dimension (NULLs shown as ``"(not set)"``), ``closed_date``
    (close_date of closed deals), ``cycle_days`` (closed deals: close − created),
    ``age_days`` (open deals: as-of − created), ``duration_days`` (cycle_days, or age_days for
    open deals: the time-to-close observation with open deals censored), and ``discount``
    (1 − amount / list_amount where list_amount > 0, rounded to 9 decimals).
    """
    cached = data._cache.get("deals")
    if cached is not None:
        return cached
    o = data.opportunities
    t = o
    for table, key in _KEYS.items():
        other = data.tables.get(table)
        if other is None or key not in o.columns:
            continue
        wanted = {
            dim: col
            for dim, (tab, col) in DIMENSIONS.items()
            if tab == table and _source_column(data, dim) == (table, col)
        }
        if not wanted:
            continue
        right = other.select(_k=other[key], **{f"_d_{d}": other[c] for d, c in wanted.items()})
        t = t.left_join(right, t[key] == right._k).drop("_k")
        t = t.rename({d: f"_d_{d}" for d in wanted})
    if "region" not in t.columns and _source_column(data, "region") == ("reps", "region"):
        reps = data.reps
        right = reps.select(_k=reps.owner_id, region=reps.region)
        t = t.left_join(right, t.owner_id == right._k).drop("_k")
    dims = {
        dim: t[col if tab == "opportunities" else dim].cast("string").fill_null(NOT_SET)
        for dim, (tab, col) in DIMENSIONS.items()
        if _source_column(data, dim) is not None
        and (col if tab == "opportunities" else dim) in t.columns
    }
    as_of = ibis.literal(data.as_of)
    measures: dict[str, Any] = {}
    if "close_date" in t.columns:
        closed_date = ibis.ifelse(t.is_closed, t.close_date, ibis.null("date"))
        cycle = closed_date.delta(t.created_date, unit="day")
        measures["closed_date"] = closed_date
        measures["cycle_days"] = cycle
    else:
        cycle = ibis.null("int64")
    age = ibis.ifelse(t.is_closed, ibis.null("int64"), as_of.delta(t.created_date, unit="day"))
    measures["age_days"] = age
    measures["duration_days"] = ibis.ifelse(t.is_closed, cycle, age)
    if "list_amount" in t.columns:
        # rounded to 9 decimals once here, so that a deal at exactly 10% off (1 - 0.9 is
        # 0.0999... in floating point) is 0.1 for every band and threshold downstream
        measures["discount"] = ibis.ifelse(
            t.list_amount > 0, (1 - t.amount / t.list_amount).round(9), ibis.null("float64")
        )
    keep = [c for c in o.columns if c not in dims]
    out = t.select(*keep, **dims, **measures)
    if data.engine_owned:
        out = data.con.create_table("_deals", out, overwrite=True)
    data._cache["deals"] = out
    return out


@dataclass(frozen=True)
class Selection:
    """Which deals a KPI looks at: dimension filters and a period on one date field.

    ``filters`` maps a dimension to the values kept (an empty list keeps everything).
    ``start``/``end`` (inclusive) bound ``date_field`` (``created_date`` or ``closed_date``).
    """

    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    start: _dt.date | None = None
    end: _dt.date | None = None
    date_field: str = "created_date"


def _date(value: Any, name: str) -> _dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise ParameterError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD.") from None


def make_selection(
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> Selection:
    """Normalise user-facing filter arguments into a Selection."""
    if date_field not in ("created_date", "closed_date"):
        raise ParameterError(
            f"date_field={date_field!r} must be 'created_date' (deals created in the period) "
            f"or 'closed_date' (deals closed in the period)."
        )
    clean: dict[str, tuple[str, ...]] = {}
    for dim, values in (filters or {}).items():
        if values is None or values == "" or values == "All":
            continue
        if isinstance(values, str):
            values = [values]
        clean[dim] = tuple(str(v) for v in values)
    start, end = period or (None, None)
    start, end = _date(start, "period start"), _date(end, "period end")
    if start and end and start > end:
        raise ParameterError(f"period start {start} is after its end {end}; swap them.")
    return Selection(clean, start, end, date_field)


def select_deals(
    data: SalesData,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    *,
    date_field: str = "created_date",
) -> ibis.Table:
    """deals(data) with the filters and the period applied (in the engine)."""
    sel = make_selection(filters, period, date_field)
    check_dimensions(data, sel.filters, parameter="filters")
    t = deals(data)
    for dim, values in sel.filters.items():
        if values:
            t = t.filter(t[dim].isin(values))
    if sel.date_field == "closed_date" and "closed_date" not in t.columns:
        raise MissingDataError(
            "date_field='closed_date' needs close_date on opportunities; map "
            "tables.opportunities.columns.close_date."
        )
    col = t[sel.date_field]
    if sel.start:
        t = t.filter(col >= sel.start)
    if sel.end:
        t = t.filter(col <= sel.end)
    return t
