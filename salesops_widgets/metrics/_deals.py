"""What a deal is: the deal-level view every KPI starts from, and the deal predicates.

``deals(data)`` joins each opportunity to its account, rep and product once (and, on the
embedded engine, keeps the result as a table), adds per-deal measures (cycle days, age,
duration, discount), and ``select_deals`` applies filters and a period. KPI functions group and
aggregate the result in the engine. The deal predicates (:func:`outcomes`: open, won, lost,
closed; :func:`priced`: has a list price; :func:`won_duration`) are defined here once.

On the embedded engine the kept table also stores small-integer keys (:mod:`._codes`): a
dictionary code per dimension, ``_outcome``, ``_won_duration`` and ``_discount_band``, which
the engine filters and groups by faster than text or computed keys (see :mod:`._engine`).
The public tables (``deals``, ``select_deals``) do not show them; KPI modules that group by
them use :func:`select_coded_deals` and pass ``labels=dimension_labels(data)`` to
``_measures.aggregate``. On other engines nothing is coded and everything uses labels.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis

from .._dates import date_parameter
from ..data import SalesData, store_when_prepared
from ..data._populations import outcomes, priced
from ..errors import MissingDataError, ParameterError
from ._codes import (
    KEY_COLUMNS,
    NOT_SET,
    band_index,
    code_column,
    label,
    labels_of,
    outcome_code,
    with_code,
)
from ._engine import code_filter, keep_table, keep_view, keeps_tables, kept_tables

__all__ = [
    "DIMENSIONS",
    "DISCOUNT_BANDS",
    "NOT_SET",
    "Selection",
    "available_dimensions",
    "check_dimensions",
    "deals",
    "dimension_labels",
    "make_selection",
    "outcomes",
    "priced",
    "select_coded_deals",
    "select_deals",
    "selection_key",
    "source_column",
    "won_duration",
]

# The default discount bands [low, high) of discount_bands; the last band is closed.
DISCOUNT_BANDS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 1.0)

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


# --------------------------------------------------------------------------------------------------
# Deal predicates: outcomes (open, won, lost, closed) and priced (a list price and an amount
# above 0) are defined once with the KPI populations, in data/_populations.py.


def won_duration(t: ibis.Table) -> ibis.Value:
    """``duration_days`` of the won deals, NULL for the others, named ``duration_days``.

    A key for ``_measures.outcome_sums`` when ``combine`` needs the won deals' median cycle but
    nothing else per duration: the same median from fewer rows than ``duration_days`` itself
    (which the Kaplan–Meier counts need) gives. The kept deals table stores it
    (``_won_duration``, built by this function), which lets the engine group by it faster.
    """
    if "_won_duration" in t.columns:
        return t._won_duration.name("duration_days")
    days = t.duration_days
    return ibis.ifelse(outcomes(t)["won"], days, ibis.null(days.type())).name("duration_days")


# --------------------------------------------------------------------------------------------------
# Dimensions


def source_column(data: SalesData, dim: str) -> tuple[str, str] | None:
    """(table, column) a dimension comes from in this data, or None when it has none.

    "region" comes from the accounts, else from the reps (docs/mappings.md).
    """
    table, column = DIMENSIONS[dim]
    if dim == "region" and not data.has("accounts", "region") and data.has("reps", "region"):
        return ("reps", "region")
    if table != "opportunities" and not data.has("opportunities", _KEYS[table]):
        return None
    return (table, column) if data.has(table, column) else None


def available_dimensions(data: SalesData) -> list[str]:
    """The dimensions this data can be grouped or filtered by."""
    return [d for d in DIMENSIONS if source_column(data, d) is not None]


def check_dimensions(
    data: SalesData, dims: Iterable[str] | str, *, parameter: str = "by"
) -> list[str]:
    """Validate dimension names (a single name may be given as a string); raise a
    ParameterError/MissingDataError that says what to do."""
    dims = [dims] if isinstance(dims, str) else list(dims)
    for dim in dims:
        if dim not in DIMENSIONS:
            raise ParameterError(
                f"{parameter}={dim!r} is not a dimension. Known dimensions: "
                f"{', '.join(DIMENSIONS)}."
            )
        if source_column(data, dim) is None:
            table, column = DIMENSIONS[dim]
            raise MissingDataError(
                f"{parameter}={dim!r} needs column {column} of the {table} table, which this "
                f"data does not have (available: {', '.join(available_dimensions(data))}). "
                f"Map it in the mapping under tables.{table}.columns.{column}."
            )
    return dims


# --------------------------------------------------------------------------------------------------
# The deals view


def deals(data: SalesData) -> ibis.Table:
    """Every used opportunity with its dimensions and per-deal measures.

    Added columns: one per available dimension (NULLs shown as ``"(not set)"``), ``closed_date``
    (close_date of closed deals), ``cycle_days`` (closed deals: close − created),
    ``age_days`` (open deals: as-of − created), ``duration_days`` (cycle_days, or age_days for
    open deals: the time-to-close observation with open deals censored), and ``discount``
    (1 − amount / list_amount where both are above 0, rounded to 9 decimals: a lost deal at $0
    has no discount). A closed deal whose close date is before its created date has no
    ``cycle_days`` (it is flagged in the quality report).
    """

    def build() -> ibis.Table:
        kept, hidden = _kept(data).table, _hidden_columns(data)
        # on the embedded engine: a view of the kept table without its code and key columns
        return keep_view(data, "_deals_labels", kept.drop(*hidden)) if hidden else kept

    return data.derived("deals", build)


def _hidden_columns(data: SalesData) -> list[str]:
    """The kept table's code and key columns, which the public tables do not show."""
    kept = _kept(data)
    codes = [code_column(d) for d in kept.labels]
    return [*codes, *(c for c in KEY_COLUMNS if c in kept.table.columns)]


def dimension_labels(data: SalesData) -> dict[str, tuple[str, ...]]:
    """Per coded dimension, its labels in code order (code i is ``labels[i]``); sorted.

    Empty when the engine is not the embedded DuckDB: nothing is coded there.
    """
    return _kept(data).labels


@dataclass(frozen=True)
class _Kept:
    """The kept deals table, and per coded dimension its labels and label -> code."""

    table: ibis.Table
    labels: dict[str, tuple[str, ...]]
    codes: dict[str, dict[str, int]]


def _kept(data: SalesData) -> _Kept:
    """The deals table with its code and key columns: built once per SalesData."""
    return data.derived("kept_deals", lambda: _build_kept(data))


class _Coder:
    """Adds a dimension's code column to a table, and collects the labels of each dimension
    coded (only where the engine keeps tables: codes are worth building only there)."""

    def __init__(self, coded: bool) -> None:
        self.coded = coded
        self.labels: dict[str, tuple[str, ...]] = {}

    def add(
        self, t: ibis.Table, dim: str, source: ibis.Table, column: str, value: ibis.Value
    ) -> ibis.Table:
        found = labels_of(source, column) if self.coded else None
        if found is None:
            return t
        self.labels[dim] = found
        return with_code(t, value, code_column(dim), found)


def _build_kept(data: SalesData) -> _Kept:
    coder = _Coder(keeps_tables(data))
    t = _joined_dimensions(data, coder)
    dims = {
        dim: label(t[col if tab == "opportunities" else dim])
        for dim, (tab, col) in DIMENSIONS.items()
        if source_column(data, dim) is not None
        and (col if tab == "opportunities" else dim) in t.columns
    }
    # a deal without a match in the dimension's table has no code from the join: NOT_SET's
    codes = {
        code_column(d): t[code_column(d)].fill_null(
            ibis.literal(found.index(NOT_SET), type=t[code_column(d)].type())
        )
        for d, found in coder.labels.items()
    }
    keep = [c for c in data.opportunities.columns if c not in dims]
    out = t.select(*keep, **dims, **_deal_measures(t, data.as_of), **codes)
    if coder.coded:
        out = out.mutate(**_key_columns(out))
    out = keep_table(data, "_deals", out)
    codes_of = {d: {v: i for i, v in enumerate(f)} for d, f in coder.labels.items()}
    return _Kept(out, coder.labels, codes_of)


def _joined_dimensions(data: SalesData, coder: _Coder) -> ibis.Table:
    """The opportunities with the columns of the other tables' dimensions (``_d_<dim>``, or
    ``region`` from the reps) and the code columns ``coder`` adds."""
    o = data.opportunities
    t = o
    for dim, (table, col) in DIMENSIONS.items():
        if table == "opportunities" and source_column(data, dim) == (table, col):
            t = coder.add(t, dim, o, col, label(t[col]))
    for table, key in _KEYS.items():
        other = data.tables.get(table)
        wanted = {
            dim: col
            for dim, (tab, col) in DIMENSIONS.items()
            if tab == table and source_column(data, dim) == (table, col)
        }
        if other is None or key not in o.columns or not wanted:
            continue
        right = other.select(_k=other[key], **{f"_d_{d}": other[c] for d, c in wanted.items()})
        for d, c in wanted.items():
            right = coder.add(right, d, other, c, label(right[f"_d_{d}"]))
        t = t.left_join(right, t[key] == right._k).drop("_k")
        t = t.rename({d: f"_d_{d}" for d in wanted})
    if "region" not in t.columns and source_column(data, "region") == ("reps", "region"):
        reps = data.reps
        right = reps.select(_k=reps.owner_id, region=reps.region)
        right = coder.add(right, "region", reps, "region", label(right.region))
        t = t.left_join(right, t.owner_id == right._k).drop("_k")
    return t


def _deal_measures(t: ibis.Table, as_of: _dt.date) -> dict[str, ibis.Value]:
    """The per-deal measures of :func:`deals`: closed_date, cycle, age, duration, discount."""
    measures: dict[str, ibis.Value] = {}
    if "close_date" in t.columns:
        closed_date = ibis.ifelse(t.is_closed, t.close_date, ibis.null("date"))
        days = closed_date.delta(t.created_date, unit="day")
        # a close date before the created date is kept (flagged), but has no cycle
        cycle = ibis.ifelse(days >= 0, days, ibis.null("int64"))
        measures["closed_date"] = closed_date
        measures["cycle_days"] = cycle
    else:
        cycle = ibis.null("int64")
    age = ibis.ifelse(
        t.is_closed, ibis.null("int64"), ibis.literal(as_of).delta(t.created_date, unit="day")
    )
    measures["age_days"] = age
    measures["duration_days"] = ibis.ifelse(t.is_closed, cycle, age)
    if "list_amount" in t.columns:
        # rounded to 9 decimals once here, so that a deal at exactly 10% off (1 - 0.9 is
        # 0.0999... in floating point) is 0.1 for every band and threshold downstream
        measures["discount"] = ibis.ifelse(
            priced(t), (1 - t.amount / t.list_amount).round(9), ibis.null("float64")
        )
    return measures


def _key_columns(t: ibis.Table) -> dict[str, ibis.Value]:
    """The stored keys (``_codes.KEY_COLUMNS``) that ``t``, the deals with their measures,
    supports: the packed outcome, the won deals' duration and the default discount band."""
    keys: dict[str, ibis.Value] = {}
    if {"is_closed", "is_won"} <= set(t.columns):
        has_list = priced(t) if "list_amount" in t.columns else ibis.null("boolean")
        keys["_outcome"] = outcome_code(t.is_closed, t.is_won, has_list)
        if "duration_days" in t.columns:
            keys["_won_duration"] = won_duration(t)
    if "discount" in t.columns:
        keys["_discount_band"] = band_index(t.discount, DISCOUNT_BANDS).cast("uint8")
    return keys


# --------------------------------------------------------------------------------------------------
# Selections


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
    start, end = date_parameter(start, "period start"), date_parameter(end, "period end")
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
    t = select_coded_deals(data, filters, period, date_field=date_field)
    hidden = _hidden_columns(data)
    return t.drop(*hidden) if hidden else t


def select_coded_deals(
    data: SalesData,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    *,
    date_field: str = "created_date",
    columns: Sequence[str] | None = None,
) -> ibis.Table:
    """:func:`select_deals` with the code columns kept, for KPIs that group by them.

    Pass ``labels=dimension_labels(data)`` to :func:`._measures.aggregate` to group by the
    codes and get labels back. ``columns``: keep only these (those the table has; with a
    dimension, its code too; and the key columns), which makes a smaller query for Ibis to
    compile.
    """
    sel = make_selection(filters, period, date_field)
    check_dimensions(data, sel.filters, parameter="filters")
    kept = _kept(data)
    t = kept.table
    if columns is not None:
        wanted = [*columns, *sel.filters, sel.date_field]
        wanted += [code_column(c) for c in wanted if c in kept.labels]
        wanted += KEY_COLUMNS
        t = t.select(*(c for c in dict.fromkeys(wanted) if c in t.columns))
    for dim, values in sel.filters.items():
        if values:
            t = t.filter(_is_in(t, dim, values, kept.codes.get(dim)))
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


def _is_in(
    t: ibis.Table, dim: str, values: Sequence[str], codes: Mapping[str, int] | None
) -> ibis.BooleanValue:
    """Deals whose ``dim`` is one of ``values``; tested on the dimension's codes when it has them
    (a value that is no label matches nothing)."""
    if codes is None:
        return t[dim].isin(values)
    wanted = [codes[v] for v in values if v in codes]
    return code_filter(t[code_column(dim)], wanted, len(codes))


def selection_key(
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> tuple:
    """A hashable key for the deals :func:`select_deals` picks with these arguments (part of
    a ``_engine.run_query`` key); raises on the arguments it rejects."""
    sel = make_selection(filters, period, date_field)
    return (tuple(sel.filters.items()), sel.start, sel.end, sel.date_field)


# --------------------------------------------------------------------------------------------------
# Prepared data


def prepared_tables(data: SalesData) -> dict[str, ibis.Table]:
    """The kept deals table (codes and stored keys included), for a prepared file to keep:
    data opened from that file reads it instead of joining and coding the deals again."""
    _kept(data)
    return kept_tables(data)


store_when_prepared(prepared_tables)
