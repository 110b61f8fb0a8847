"""The deal-level view every KPI starts from: opportunities plus their dimensions.

``deals(data)`` joins each opportunity to its account, rep and product once (and, on the
embedded engine, keeps the result as a table), adds per-deal measures (cycle days, age,
discount), and ``select_deals`` applies filters and a period. KPI functions group and aggregate
the result in the engine.

Dictionary codes: on the embedded engine the kept table also has, for each dimension with at
most ``MAX_CODES`` labels, a small integer column ``_c_<dim>``: the position of the deal's label
in the dimension's sorted labels (:func:`dimension_labels`). Comparing and grouping small
integers is several times faster than text, so ``select_deals`` filters on the codes and
:func:`._measures.aggregate` groups by them and turns them back into labels on the aggregated
rows. The public tables (``deals``, ``select_deals``) do not show the code columns; KPI modules
use :func:`select_coded_deals`. On other engines nothing is coded and everything uses labels.

Keys kept with the codes: the kept table also holds, as small integers, the other keys the
KPI queries group by. ``_outcome`` packs ``is_closed``, ``is_won`` and whether the deal has a
list price (:func:`outcome_code`), ``_won_duration`` is ``duration_days`` of the won deals
(``_measures.won_duration``) and ``_discount_band`` the index of the deal's band among
:data:`DISCOUNT_BANDS` (:func:`band_index`). DuckDB keeps min/max statistics of stored
columns, and runs a GROUP BY on stored integer keys whose ranges fit in a few bits as a
perfect hash aggregate: a direct array lookup instead of hashing. Keys computed in the query
have no statistics. The array has an entry per possible key and costs its size at every query,
so it pays only on many deals; :func:`_perfect_hash_bits` sets DuckDB's limit by the number
of deals. On 10M deals the KPI queries run about 25% faster.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.operations as ops
import numpy as np
import pandas as pd

from .._dates import date_parameter
from ..data import SalesData
from ..errors import MissingDataError, ParameterError

__all__ = [
    "DIMENSIONS",
    "DISCOUNT_BANDS",
    "band_index",
    "decode_outcome",
    "outcome_code",
    "MAX_CODES",
    "NOT_SET",
    "Selection",
    "code_column",
    "deals",
    "dimension_labels",
    "run_query",
    "select_coded_deals",
    "selection_key",
    "select_deals",
    "check_dimensions",
    "available_dimensions",
]

NOT_SET = "(not set)"
# A dimension with more labels than this (e.g. account names) keeps only its label column.
MAX_CODES = 65_536
# How many compiled queries run_query keeps per SalesData (the oldest goes first).
MAX_QUERIES = 256
# The default discount bands [low, high) of discount_bands; the last band is closed.
DISCOUNT_BANDS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 1.0)
# The kept deals table's keys besides the dimension codes (see the module docstring).
_KEY_COLUMNS = ("_outcome", "_won_duration", "_discount_band")

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


def code_column(dim: str) -> str:
    """The name of a dimension's dictionary-code column in the kept deals table."""
    return f"_c_{dim}"


def _label(value: ibis.Value) -> ibis.StringValue:
    """A dimension value as deals() shows it: text, with NULL as NOT_SET."""
    return value.cast("string").fill_null(NOT_SET)


def _labels(table: ibis.Table, column: str) -> tuple[str, ...] | None:
    """Every label a column can show (NOT_SET always among them), in the engine's order; None
    when there are more than MAX_CODES."""
    values = table.select(_label=_label(table[column]))
    values = values.union(ibis.memtable({"_label": [NOT_SET]}), distinct=True)
    found = values.order_by("_label").limit(MAX_CODES + 1).execute()["_label"]
    return tuple(found) if len(found) <= MAX_CODES else None


def _with_code(t: ibis.Table, label: ibis.Value, name: str, labels: Sequence[str]) -> ibis.Table:
    """``t`` plus the column ``name``: the position of ``label`` (on ``t``) in ``labels``."""
    codes = np.arange(len(labels), dtype=np.uint8 if len(labels) <= 256 else np.uint16)
    book = ibis.memtable(pd.DataFrame({"_label": list(labels), "_code": codes}))
    joined = t.left_join(book, label == book._label)
    return joined.select(*t.columns, **{name: joined._code})


def band_index(discount: ibis.Value, bands: Sequence[float]) -> ibis.Value:
    """Index of the band [bands[i], bands[i+1]) holding the discount; the last band is closed.

    NULL outside the bands (e.g. a negative discount: net above list)."""
    # one comparison per band, in order, once the deals outside every band are set aside
    outside = discount.isnull() | (discount < bands[0]) | (discount > bands[-1])
    cases = [(discount < high, i) for i, high in enumerate(bands[1:-1])]
    return ibis.cases((outside, ibis.null("int64")), *cases, else_=len(bands) - 2)


# The (is_closed, is_won) pairs in :func:`outcome_code`'s order (None: NULL): open, lost and
# won first, so that the usual data spans codes 0 to 2.
_OUTCOME_PAIRS = (
    (False, False),
    (True, False),
    (True, True),
    (False, True),
    (None, False),
    (None, True),
    (False, None),
    (True, None),
    (None, None),
)
# list_amount > 0: True, False, NULL (no list price), in that order
_PRICED_FLAGS = (True, False, None)


def outcome_code(
    is_closed: ibis.BooleanValue, is_won: ibis.BooleanValue, priced: ibis.BooleanValue
) -> ibis.Value:
    """Three deal flags packed into one small integer, NULLs included: 9 × the position of
    ``priced`` (list_amount > 0) in True, False, NULL + the position of (is_closed, is_won) in
    ``_OUTCOME_PAIRS``. Lossless: grouping by it and :func:`decode_outcome` give back the three
    flags. Deals that are open, lost or won, all with a list price, are codes 0, 1 and 2: a
    key of 2 bits for the engine."""

    def is_(flag: ibis.BooleanValue, value: bool | None) -> ibis.BooleanValue:
        return flag.isnull() if value is None else flag.fill_null(not value) == value

    pair = ibis.cases(
        *[(is_(is_closed, c) & is_(is_won, w), i) for i, (c, w) in enumerate(_OUTCOME_PAIRS)]
    )
    listed = ibis.cases(*[(is_(priced, v), i) for i, v in enumerate(_PRICED_FLAGS)])
    return (listed * 9 + pair).cast("uint8")


def _flag_table(values: Sequence[bool | None]) -> tuple[np.ndarray, np.ndarray]:
    """(is True, is NULL) for each position of ``values``, to decode by indexing."""
    return np.array([v is True for v in values]), np.array([v is None for v in values])


_DECODE = (
    _flag_table([c for c, _ in _OUTCOME_PAIRS]),
    _flag_table([w for _, w in _OUTCOME_PAIRS]),
    _flag_table(_PRICED_FLAGS),
)


def decode_outcome(codes: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(is_closed, is_won, priced) from :func:`outcome_code` values: each of bool dtype when
    it has no NULL, else object with None, as the engine's boolean columns come."""
    values = codes.to_numpy(dtype=np.int64)
    positions = (values % 9, values % 9, values // 9)
    flags = []
    for (truth, null), at in zip(_DECODE, positions, strict=True):
        flag, unknown = truth[at], null[at]
        if unknown.any():
            flag = flag.astype(object)
            flag[unknown] = None
        flags.append(pd.Series(flag, index=codes.index))
    return flags[0], flags[1], flags[2]


def deals(data: SalesData) -> ibis.Table:
    """Every used opportunity with its dimensions and per-deal measures.

    Added columns: one per available dimension (NULLs shown as ``"(not set)"``), ``closed_date``
    (close_date of closed deals), ``cycle_days`` (closed deals: close − created),
    ``age_days`` (open deals: as-of − created), ``duration_days`` (cycle_days, or age_days for
    open deals: the time-to-close observation with open deals censored), and ``discount``
    (1 − amount / list_amount where list_amount > 0, rounded to 9 decimals).
    """

    def build() -> ibis.Table:
        kept, hidden = _kept_deals(data), _hidden_columns(data)
        if hidden:  # only on the embedded engine: a view of the kept table without them
            return data.con.create_view("_deals_labels", kept.drop(*hidden), overwrite=True)
        return kept

    return data.derived("deals", build)


def _hidden_columns(data: SalesData) -> list[str]:
    """The kept table's code and key columns, which the public tables do not show."""
    kept = _kept_deals(data).columns
    codes = [code_column(d) for d in dimension_labels(data)]
    return [*codes, *(c for c in _KEY_COLUMNS if c in kept)]


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
    return data.derived("kept_deals", lambda: _build_kept(data))


def _kept_deals(data: SalesData) -> ibis.Table:
    """The deals table with its code columns: built once, and kept on the embedded engine."""
    return _kept(data).table


def _build_kept(data: SalesData) -> _Kept:
    coded = data.engine_owned  # codes are worth building only where the table is kept
    labels: dict[str, tuple[str, ...]] = {}

    def add_code(t: ibis.Table, dim: str, source: ibis.Table, column: str, label: ibis.Value):
        found = _labels(source, column) if coded else None
        if found is None:
            return t
        labels[dim] = found
        return _with_code(t, label, code_column(dim), found)

    o = data.opportunities
    t = o
    for dim, (table, col) in DIMENSIONS.items():
        if table == "opportunities" and _source_column(data, dim) == (table, col):
            t = add_code(t, dim, o, col, _label(t[col]))
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
        for d, c in wanted.items():
            right = add_code(right, d, other, c, _label(right[f"_d_{d}"]))
        t = t.left_join(right, t[key] == right._k).drop("_k")
        t = t.rename({d: f"_d_{d}" for d in wanted})
    if "region" not in t.columns and _source_column(data, "region") == ("reps", "region"):
        reps = data.reps
        right = reps.select(_k=reps.owner_id, region=reps.region)
        right = add_code(right, "region", reps, "region", _label(right.region))
        t = t.left_join(right, t.owner_id == right._k).drop("_k")
    dims = {
        dim: _label(t[col if tab == "opportunities" else dim])
        for dim, (tab, col) in DIMENSIONS.items()
        if _source_column(data, dim) is not None
        and (col if tab == "opportunities" else dim) in t.columns
    }
    # a deal without a match in the dimension's table has no code from the join: NOT_SET's
    codes = {
        code_column(d): t[code_column(d)].fill_null(
            ibis.literal(found.index(NOT_SET), type=t[code_column(d)].type())
        )
        for d, found in labels.items()
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
    out = t.select(*keep, **dims, **measures, **codes)
    if coded:
        out = out.mutate(**_keys(out))
    if data.engine_owned:
        out = data.con.create_table("_deals", out, overwrite=True)
        rows = int(out.count().execute())
        data.con.con.execute(f"SET perfect_ht_threshold = {_perfect_hash_bits(rows)}")
    codes_of = {d: {v: i for i, v in enumerate(f)} for d, f in labels.items()}
    return _Kept(out, labels, codes_of)


def _perfect_hash_bits(rows: int) -> int:
    """DuckDB's ``perfect_ht_threshold`` for a deals table of ``rows``: the most key bits for
    which a GROUP BY runs as a perfect hash aggregate.

    The aggregate allocates and reads back an entry per possible key, whatever the rows, so it
    beats hashing only when the rows outnumber the entries. Measured on 2 cores with the
    segment table's keys (industry, day, outcome: 19 bits with DuckDB's NULL bits) and the
    benchmark's filter: hashing took 18 ms on 1M deals and 102 ms on 10M; the perfect hash
    30 ms and 75 ms, and the two crossed between 2M and 5M deals. So at most 2^bits entries
    per 8 deals, between DuckDB's default of 12 bits and 20 (a million entries).
    """
    return int(np.clip(int(np.log2(max(rows, 1))) - 3, 12, 20))


def _keys(t: ibis.Table) -> dict[str, ibis.Value]:
    """The key columns (``_KEY_COLUMNS``) that ``t``, the deals with their measures, supports."""
    from ._measures import _priced, won_duration  # _measures builds on this module

    keys: dict[str, ibis.Value] = {}
    if {"is_closed", "is_won"} <= set(t.columns):
        priced = _priced(t) if "list_amount" in t.columns else ibis.null("boolean")
        keys["_outcome"] = outcome_code(t.is_closed, t.is_won, priced)
        if "duration_days" in t.columns:
            keys["_won_duration"] = won_duration(t)
    if "discount" in t.columns:
        keys["_discount_band"] = band_index(t.discount, DISCOUNT_BANDS).cast("uint8")
    return keys


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
        wanted += _KEY_COLUMNS
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
    wanted = sorted({codes[v] for v in values if v in codes})
    column = t[code_column(dim)]
    if len(wanted) == len(codes):
        return ibis.literal(True)
    if not wanted:
        return ibis.literal(False)
    # Comparisons with constants are checked inside DuckDB's scan, on compressed data: a range
    # of codes without a few holes is the cheapest test. DuckDB also tests IN on a cast in the
    # scan, but rewrites IN on the small-integer column itself into ORs after it (twice as slow).
    holes = sorted(set(range(wanted[0], wanted[-1] + 1)) - set(wanted))
    if len(holes) > 2:
        return column.cast("int32").isin(wanted)
    if wanted[0] == wanted[-1]:
        return column == wanted[0]
    keep = (column >= wanted[0]) & (column <= wanted[-1])
    for hole in holes:
        keep &= column != hole
    return keep


def selection_key(
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> tuple:
    """A hashable key for the deals :func:`select_deals` picks with these arguments (part of
    a :func:`run_query` key); raises on the arguments it rejects."""
    sel = make_selection(filters, period, date_field)
    return (tuple(sel.filters.items()), sel.start, sel.end, sel.date_field)


def run_query(
    data: SalesData,
    key: Hashable,
    build: Callable[[], tuple[ibis.Table, Callable[[pd.DataFrame], pd.DataFrame]]],
) -> pd.DataFrame:
    """Run the query ``build()`` returns and pass its rows to the function returned with it.

    On the embedded engine the compiled SQL is kept under ``key`` (with the query's schema and
    that function), and the next call with the same key runs it without building the Ibis
    expression or compiling it again: at a dashboard refresh those cost more than the engine
    on a million deals. ``key`` must name everything the query depends on besides ``data``
    (the KPI, its dimensions, :func:`selection_key`, its other arguments). The rows come as
    ``expr.execute()`` gives them.
    """
    if not data.engine_owned:
        query, finish = build()
        return finish(query.execute())
    plans = compiled_queries(data)
    plan = plans.get(key)
    if plan is None:
        query, finish = build()
        if query.op().find(ops.InMemoryTable):
            # Ibis registers in-memory tables with the engine when it runs the query
            return finish(query.execute())
        plan = (data.con.compile(query), query.schema(), finish)
        while len(plans) >= MAX_QUERIES:  # the oldest first (another thread may drop it too)
            plans.pop(next(iter(plans), None), None)
        plans[key] = plan
    sql, schema, finish = plan
    return finish(_fetch(data.con, sql, schema))


def compiled_queries(data: SalesData) -> dict[Hashable, tuple]:
    """The compiled queries :func:`run_query` keeps for ``data`` (key -> SQL, schema, finish),
    oldest first; empty when the engine is not the embedded one."""
    return data.derived("queries", dict)


def _fetch(backend: Any, sql: str, schema: ibis.Schema) -> pd.DataFrame:
    """The rows of ``sql`` on the DuckDB backend, converted as its ``execute`` converts them."""
    import pyarrow.types as pat
    from ibis.backends.duckdb.converter import DuckDBPandasData

    table = backend.con.sql(sql).to_arrow_table()
    columns = {
        name: col.to_pylist()
        if pat.is_nested(col.type) or pat.is_dictionary(col.type) or col.null_count
        else col.to_pandas()
        for name, col in zip(table.column_names, table.columns, strict=True)
    }
    return DuckDBPandasData.convert_table(pd.DataFrame(columns), schema)
