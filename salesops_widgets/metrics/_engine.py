"""How KPI queries run: the one place that knows which engine is underneath.

Everything else in ``metrics/`` writes portable Ibis expressions. This module holds what
depends on the engine:

- **Keeping tables.** On the embedded DuckDB (a :class:`~salesops_widgets.data.SalesData`
  whose ``engine_owned`` is True) derived tables such as the deals view are stored once
  (:func:`keep_table`), with the codes of :mod:`._codes`; on any other engine nothing is
  written and the expressions stay lazy (:func:`keeps_tables`).
- **Perfect-hash aggregation.** DuckDB keeps min/max statistics of stored columns and runs a
  GROUP BY whose stored integer keys fit in ``perfect_ht_threshold`` bits as a direct array
  lookup; :func:`perfect_hash_bits` sets that limit by the number of deals.
- **Filters on codes** (:func:`code_filter`): a range of codes is tested inside DuckDB's scan.
- **Compiled queries** (:func:`run_query`): the SQL of a KPI query is compiled once per
  dataset and selection and run again without Ibis.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import ibis
import ibis.expr.operations as ops
import numpy as np
import pandas as pd

from ..data import SalesData, cached

__all__ = [
    "MAX_QUERIES",
    "code_filter",
    "compiled_queries",
    "keep_table",
    "keep_view",
    "keeps_tables",
    "kept_tables",
    "perfect_hash_bits",
    "run_query",
]

# How many compiled queries run_query keeps per SalesData (the oldest goes first).
MAX_QUERIES = 256


def keeps_tables(data: SalesData) -> bool:
    """True when derived tables are stored on the engine: our embedded DuckDB only."""
    return bool(data.engine_owned)


def keep_table(data: SalesData, name: str, expr: ibis.Table) -> ibis.Table:
    """``expr`` stored as the table ``name`` on the embedded engine (and the engine tuned for
    grouping a table of that size); on any other engine, ``expr`` cached for the connection's
    session (``data.cached``: a temporary table, a persisted Spark DataFrame). Data opened from
    a prepared file that keeps ``name`` (with the same columns) reads that table instead."""
    if not keeps_tables(data):
        return cached(expr)
    kept = data.stored_table(name)  # kept in a prepared file: built from these same tables
    if kept is None or kept.schema() != expr.schema():
        kept = data.con.create_table(name, expr, overwrite=True)
    data.derived("kept_tables", dict)[name] = kept
    rows = int(kept.count().execute())
    data.con.con.execute(f"SET perfect_ht_threshold = {perfect_hash_bits(rows)}")
    return kept


def kept_tables(data: SalesData) -> dict[str, ibis.Table]:
    """The tables :func:`keep_table` stored for ``data`` so far, by name (what a prepared file
    keeps besides the canonical tables)."""
    return dict(data.derived("kept_tables", dict))


def keep_view(data: SalesData, name: str, expr: ibis.Table) -> ibis.Table:
    """``expr`` as the view ``name`` on the embedded engine; ``expr`` itself elsewhere."""
    if not keeps_tables(data):
        return expr
    return data.con.create_view(name, expr, overwrite=True)


def perfect_hash_bits(rows: int) -> int:
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


def code_filter(column: ibis.Value, wanted: Sequence[int], n_codes: int) -> ibis.BooleanValue:
    """Rows whose code ``column`` is one of ``wanted`` (codes of a dimension with ``n_codes``).

    Comparisons with constants are checked inside DuckDB's scan, on compressed data: a range of
    codes without a few holes is the cheapest test. DuckDB also tests IN on a cast in the scan,
    but rewrites IN on the small-integer column itself into ORs after it (twice as slow).
    """
    wanted = sorted(set(wanted))
    if len(wanted) == n_codes:
        return ibis.literal(True)
    if not wanted:
        return ibis.literal(False)
    holes = sorted(set(range(wanted[0], wanted[-1] + 1)) - set(wanted))
    if len(holes) > 2:
        return column.cast("int32").isin(wanted)
    if wanted[0] == wanted[-1]:
        return column == wanted[0]
    keep = (column >= wanted[0]) & (column <= wanted[-1])
    for hole in holes:
        keep &= column != hole
    return keep


def compiled_queries(data: SalesData) -> dict[Hashable, tuple]:
    """The compiled queries :func:`run_query` keeps for ``data`` (key -> SQL, schema, finish),
    oldest first; empty when the engine is not the embedded one."""
    return data.derived("queries", dict)


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
    (the KPI, its dimensions, the selection, its other arguments). The rows come as
    ``expr.execute()`` gives them.
    """
    if not keeps_tables(data):
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
