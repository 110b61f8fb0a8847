"""Loading: source + mapping -> canonical Ibis tables, with a data-quality report.

Every raw row ends up either used or excluded under exactly one rule (the first it fails, in
``EXCLUDE_RULES`` order), so rows read = rows used + rows excluded for every table. All work is
done by the engine; only counts and a few example values come back to Python.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import ibis

from .._dates import date_parameter
from ..errors import (
    DataSourceError,
    MissingDataError,
    NoUsableDataError,
    SchemaError,
)
from ._lookups import apply_lookups, fill_report
from ._mapping import Mapping, TableMapping, norm_label, resolve_mapping
from ._populations import outcomes, population_counts, starved_warnings
from ._quality import ColumnCounts, MetricExclusion, QualityReport, TableReport
from ._rules import ALWAYS, Annotated, annotate, derive, exclusions
from ._schema import EXCLUDE_RULES, KEYS, TABLES
from ._sources import Source, _csv_problem, open_source

__all__ = ["SalesData", "load", "validate"]

LOAD_ORDER = (
    "currency_rates",
    "accounts",
    "reps",
    "products",
    "opportunities",
    "stage_history",
    "line_items",
)
_UNMATCHED = {
    "unmatched_account": ("account_id", "accounts"),
    "unmatched_owner": ("owner_id", "reps"),
    "unmatched_product": ("product_id", "products"),
}
_MISSING = object()


class SalesData:
    """Canonical sales tables on one engine, with the report of how they were loaded.

    Attributes are Ibis tables holding only the rows that passed validation, or None when the
    source has no such table. Build one with :func:`load`.
    """

    def __init__(
        self,
        tables: dict[str, ibis.Table],
        report: QualityReport,
        *,
        con: Any,
        as_of: _dt.date,
        base_currency: str | None,
        mapping: Mapping,
        engine_owned: bool = False,
        stored: dict[str, ibis.Table] | None = None,
    ) -> None:
        self._tables = dict(tables)
        self.report = report
        self.con = con
        self.as_of = as_of
        self.base_currency = base_currency
        self.mapping = mapping
        # True when the engine is our embedded DuckDB, where derived tables may be cached
        self.engine_owned = engine_owned
        self._derived: dict[str, Any] = {}
        # derived tables read from a prepared file (data/_prepared.py), by name
        self._stored = dict(stored or {})

    @property
    def tables(self) -> dict[str, ibis.Table]:
        """The tables present, by canonical name."""
        return dict(self._tables)

    def __getattr__(self, name: str) -> ibis.Table | None:
        if name in TABLES:
            return self._tables.get(name)
        raise AttributeError(name)

    def has(self, table: str, column: str | None = None) -> bool:
        """True when the table (and the column, if given) is present."""
        t = self._tables.get(table)
        return t is not None and (column is None or column in t.columns)

    def require(
        self, analysis: str, table: str, columns: tuple[str, ...] | list[str] = ()
    ) -> ibis.Table:
        """The table, or a MissingDataError that says what ``analysis`` needs and how to add it."""
        t = self._tables.get(table)
        if t is None:
            raise MissingDataError(
                f"{analysis} needs the {table} table, which {self.report.source} does not have. "
                f"Add a {table} file/sheet/table, or point tables.{table}.source in the mapping "
                f"({self.mapping.origin}) at it. See docs/data-model.md."
            )
        missing = [c for c in columns if c not in t.columns]
        if missing:
            keys = ", ".join(f"tables.{table}.columns.{c}" for c in missing)
            raise MissingDataError(
                f"{analysis} needs column(s) {', '.join(missing)} in {table}, which "
                f"{self.report.source} does not have. Map them in the mapping ({keys})."
            )
        return t

    def derived(self, key: str, build: Callable[[], Any]) -> Any:
        """A value derived from these tables (a kept table, labels, compiled queries), built
        by ``build()`` on first use and kept for the life of this object under ``key``.

        The tables never change after :func:`load`, so what is derived from them stays true.
        """
        found = self._derived.get(key, _MISSING)
        if found is _MISSING:
            found = self._derived[key] = build()
        return found

    def stored_table(self, name: str) -> ibis.Table | None:
        """The derived table ``name`` as a prepared file keeps it (built from these same
        tables when the file was written), or None when these tables were loaded fresh."""
        return self._stored.get(name)

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={self.report.tables[name].rows_used:,}" for name in self._tables)
        return f"SalesData(as_of={self.as_of}, {parts})"


@dataclass
class _Context:
    source: Source
    mapping: Mapping
    as_of: _dt.date | None
    report: QualityReport
    annotated: dict[str, ibis.Table]
    columns: dict[str, list[str]]
    base_currency: str | None = None


def _parse_as_of(as_of: Any) -> _dt.date | None:
    hint = (
        "write it as YYYY-MM-DD, e.g. as_of='2026-09-30', or leave it empty to use the latest "
        "date in the data"
    )
    return date_parameter(as_of, "as_of", hint=hint)


def _resolve_columns(raw: ibis.Table, tmap: TableMapping) -> dict[str, str]:
    """canonical name -> raw column name, matching case- and space-insensitively."""
    by_norm: dict[str, str] = {}
    for c in raw.columns:
        by_norm.setdefault(norm_label(c), c)
    found = {}
    for col in TABLES[tmap.table]:
        hit = by_norm.get(norm_label(tmap.columns.get(col.name, col.name)))
        if hit is None and col.name in tmap.columns:
            hit = by_norm.get(norm_label(col.name))
        if hit is not None:
            found[col.name] = hit
    return found


def _schema_error(
    table: str, label: str, raw: ibis.Table, missing: list[str], ctx: _Context, tmap: TableMapping
) -> SchemaError:
    cols = list(raw.columns)
    hint = ""
    if len(cols) == 1 and any(d in cols[0] for d in ";|\t,"):
        hint = (
            f" The file reads as a single column named {cols[0][:60]!r}: its delimiter was not "
            f"recognised. Save it as a comma-separated CSV (or semicolon/tab with one header row)."
        )
    wanted = ", ".join(f"{c} (looked for {tmap.columns.get(c, c)!r})" for c in missing)
    keys = ", ".join(ctx.mapping.key(table, "columns", c) for c in missing)
    shown = ", ".join(map(repr, cols[:25])) + (" ..." if len(cols) > 25 else "")
    return SchemaError(
        f"{label}: required column(s) missing for {table}: {wanted}. Columns found: {shown}. "
        f"Rename the column in the file, or map it in the mapping ({ctx.mapping.origin}) under "
        f"{keys}.{hint}"
    )


def _materialize(ctx: _Context, table: str, expr: ibis.Table) -> ibis.Table:
    if not ctx.source.owned:
        return cached(expr)
    # a table of our private engine database (a temporary file, deleted with the connection)
    return ctx.source.con.create_table(f"_annotated_{table}", expr, overwrite=True)


def cached(expr: ibis.Table) -> ibis.Table:
    """``expr`` kept by the engine for this connection's session (Ibis ``cache()``: a temporary
    table on a server database, a persisted DataFrame on Spark), so later queries read the
    rows computed once instead of computing them again; ``expr`` itself on an engine that
    cannot cache. Nothing is written to the database's own schemas.

    PostgreSQL gathers no statistics on a temporary table by itself (autovacuum skips them),
    and without them it plans a join of a million deals with a small table as a nested loop:
    so the table is analysed once, here.
    """
    try:
        kept = expr.cache()
    except NotImplementedError:
        return expr
    backend = ibis.get_backend(kept)
    if backend.name == "postgres":
        backend.raw_sql(f'ANALYZE "{kept.op().name}"').close()
    return kept


def _find_table(table: str, ctx: _Context) -> str | None:
    tmap, source = ctx.mapping.tables[table], ctx.source
    if source.single:
        return source.available()[0] if table == "opportunities" else None
    name = source.find(tmap.source)
    if name is None and table == "opportunities":
        raise DataSourceError(
            f"{source.label}: no opportunities table found. Looked for "
            f"{', '.join(map(repr, tmap.source))}; available: "
            f"{', '.join(source.available()) or 'nothing'}. Name the file/sheet/table in "
            f"the mapping ({ctx.mapping.origin}) under {ctx.mapping.key(table, 'source')}."
        )
    return name


def _missing_columns(table: str, found: dict[str, str]) -> list[str]:
    required = [c.name for c in TABLES[table] if c.required]
    missing = [c for c in required if c not in found]
    if table == "opportunities" and not ({"is_closed", "is_won"} & set(found) or "stage" in found):
        missing.append("stage")
    return missing


def _absent_notes(table: str, found: dict[str, str]) -> list[str]:
    """Notes for the columns a table always has but this source lacks (left empty)."""
    needs = {
        "amount": "bookings, ASP, pipeline value, velocity and discount need it",
        "created_date": "time to close, cycle days and created-date periods need it",
    }
    return [
        f"no {c} column: every {table} row is kept without one; {needs[c]}"
        for c in ALWAYS.get(table, {})
        if c not in found
    ]


def _most_common_currency(t: ibis.Table) -> str | None:
    cur = t.currency.upper()
    top = (
        t.filter(cur.notnull())
        .group_by(currency=cur)
        .aggregate(n=lambda x: x.count())
        .order_by([ibis.desc("n"), "currency"])
        .limit(1)
        .execute()
    )
    return str(top["currency"].iloc[0]) if len(top) else None


def _annotated(table: str, ctx: _Context, rawt: Any, notes: list[str]) -> tuple[Annotated, list]:
    """The table parsed, derived and ruled (an expression), and its lookups' reports."""
    tmap = ctx.mapping.tables[table]
    column_of = {norm_label(v): k for k, v in _resolve_columns(rawt.table, tmap).items()}
    raw, filled, lookups = apply_lookups(
        rawt.table, tmap, ctx.mapping, ctx.source, rawt.label, column_of, notes
    )
    found = {**_resolve_columns(raw, tmap), **filled}
    missing = _missing_columns(table, found)
    if missing:
        raise _schema_error(table, rawt.label, raw, missing, ctx, tmap)
    notes.extend(_absent_notes(table, found))
    a = annotate(table, raw, found, tmap, ctx.mapping)
    if table == "opportunities" and ctx.base_currency is None and "currency" in a.table.columns:
        ctx.base_currency = _most_common_currency(a.table)
    derive(table, a, base_currency=ctx.base_currency, annotated=ctx.annotated)
    return a, lookups


def _load_table(table: str, ctx: _Context) -> None:
    name = _find_table(table, ctx)
    if name is None:
        ctx.report.missing_tables.append(table)
        return
    rawt = ctx.source.read(name)
    notes: list[str] = []
    a, lookups = _annotated(table, ctx, rawt, notes)
    annotated = _materialize(ctx, table, exclusions(table, a))
    ctx.annotated[table] = annotated
    ctx.columns[table] = a.names
    rep = TableReport(table=table, source=rawt.label, notes=notes)
    _count_rows(rep, annotated)
    if rep.rows_read == 0 and table == "opportunities":
        ctx.report.fatal = (
            f"{rawt.label}: the opportunities table has a header but no rows. Export it again "
            f"with its data."
        )
    _exclusion_examples(rep, annotated)
    rep.columns = _column_counts(annotated)
    rep.lookups = [fill_report(r, i, annotated, known) for i, (r, known) in enumerate(lookups)]
    rep.notes.extend(r.note() for r in rep.lookups)
    ctx.report.tables[table] = rep


def _count_rows(rep: TableReport, annotated: ibis.Table) -> None:
    """Rows used, and excluded by rule (in EXCLUDE_RULES order): rows read is their sum."""
    counts = annotated.group_by("_excluded").aggregate(n=lambda x: x.count()).execute()
    for rule, n in zip(counts["_excluded"], counts["n"], strict=True):
        if rule is None or rule != rule:  # None or NaN: used rows
            rep.rows_used = int(n)
        else:
            rep.excluded[str(rule)] = int(n)
    rep.rows_read = rep.rows_used + rep.rows_excluded
    rep.excluded = {r: rep.excluded[r] for r in EXCLUDE_RULES if r in rep.excluded}


def _exclusion_examples(rep: TableReport, annotated: ibis.Table) -> None:
    for rule in rep.excluded:
        ex = annotated.filter(annotated._excluded == rule).select("_example").distinct()
        rep.examples[rule] = sorted(str(v) for v in ex.limit(3).execute()["_example"].tolist())
    if "unmatched_opportunity" in rep.excluded:
        rep.unmatched["unmatched_opportunity"] = _top_values(
            annotated.filter(annotated._excluded == "unmatched_opportunity"), "_example"
        )


def _column_counts(annotated: ibis.Table) -> dict[str, ColumnCounts]:
    """Per canonical column: empty and unparseable values among the rows read (one query)."""
    t = annotated
    flags = [c for c in t.columns if c.startswith(("_q_blank__", "_q_fail__"))]
    if not flags:
        return {}
    row = t.aggregate(**{c: t[c].sum() for c in flags}).execute().iloc[0]
    out: dict[str, ColumnCounts] = {}
    for c in flags:
        kind, column = c[3:].split("__", 1)
        counts = out.setdefault(column, ColumnCounts())
        setattr(counts, "blank" if kind == "blank" else "unparseable", int(row[c] or 0))
    return out


def _top_values(t: ibis.Table, col: str, n: int = 20) -> dict[str, int]:
    """The n most frequent values of a column with their counts."""
    top = (
        t.group_by(col)
        .aggregate(n=lambda x: x.count())
        .order_by([ibis.desc("n"), col])
        .limit(n)
        .execute()
    )
    return {str(k): int(c) for k, c in zip(top[col], top["n"], strict=True)}


def _used(ctx: _Context, table: str) -> ibis.Table:
    t = ctx.annotated[table]
    return t.filter(t._excluded.isnull())


def _default_as_of(ctx: _Context) -> _dt.date:
    used = _used(ctx, "opportunities")
    latest = [used.created_date.max()]
    if "close_date" in used.columns:
        latest.append(used.close_date.max(where=used.is_closed))
    row = used.aggregate(**{f"m{i}": e for i, e in enumerate(latest)}).execute().iloc[0]
    dates = [v for v in row.tolist() if v is not None and v == v]
    if not dates:
        return _dt.date.today()
    return max(_to_date(d) for d in dates)


def _to_date(value: Any) -> _dt.date:
    if hasattr(value, "date") and callable(value.date):
        return value.date()
    return value


def _opportunity_flags(t: ibis.Table, as_of: _dt.date) -> dict[str, Any]:
    """Flags of used opportunities: kept, and left out of the KPIs the problem touches."""
    flags: dict[str, Any] = {
        "currency_without_rate": t._no_rate,
        "negative_amount": t._neg_amount,
        "mixed_currencies": t._cur_other & ~t._no_rate,
    }
    if "list_amount" in t.columns:
        flags["net_above_list"] = t.amount > t.list_amount + 0.005
    if "close_date" in t.columns:
        flags["close_before_created"] = t.is_closed & (t.close_date < t.created_date)
        flags["open_close_date_past"] = outcomes(t)["open"] & (t.close_date < as_of)
    return flags


def _flags(table: str, ctx: _Context) -> dict[str, Any]:
    """Flag conditions (rows still used) for one table."""
    t = _used(ctx, table)
    flags: dict[str, Any] = {
        "unparseable_number": t._bad_number,
        "unparseable_date": t._bad_date,
        "formula_text": t._formula,
    }
    if table == "opportunities":
        flags.update(_opportunity_flags(t, ctx.as_of))
    if table == "line_items":
        flags["net_above_list"] = t.invoice_price > t.list_price + 0.005
    for rule, (col, other) in _UNMATCHED.items():
        if col in t.columns and other in ctx.annotated and table in ("opportunities", "line_items"):
            keys = _used(ctx, other)[KEYS[other]]
            flags[rule] = t[col].notnull() & ~t[col].isin(keys)
    return flags


def _flag_report(table: str, ctx: _Context) -> None:
    rep = ctx.report.tables[table]
    t = _used(ctx, table)
    flags = _flags(table, ctx)
    sums = t.aggregate(**{r: c.fill_null(False).sum() for r, c in flags.items()})
    row = sums.execute().iloc[0]
    rep.flagged = {r: int(row[r] or 0) for r in flags if int(row[r] or 0) > 0}
    examples = {
        "unparseable_number": t._bad_number_ex,
        "unparseable_date": t._bad_date_ex,
        "formula_text": t._formula_ex,
    }
    for rule in rep.flagged:
        if rule in _UNMATCHED:
            rep.unmatched[rule] = _top_values(t.filter(flags[rule]), _UNMATCHED[rule][0])
            rep.examples[f"flag:{rule}"] = list(rep.unmatched[rule])[:3]
            continue
        ex = examples.get(rule)
        if ex is None:
            key = KEYS[table] or t.columns[0]
            ex = t[key].cast("string")
        vals = t.filter(flags[rule].fill_null(False)).select(v=ex).distinct().limit(3)
        rep.examples[f"flag:{rule}"] = sorted(str(v) for v in vals.execute()["v"].tolist())


def _populations(ctx: _Context) -> None:
    """Per KPI, the used opportunities it counts and those it leaves out, by reason; the KPIs
    left out of some rows for a data reason (not their status) as metric exclusions; and a
    warning for every view that has nothing to count."""
    rep, report = ctx.report.tables["opportunities"], ctx.report
    t = _used(ctx, "opportunities")
    status = t.group_by("status").aggregate(n=lambda x: x.count()).execute()
    by_status = {str(k): int(n) for k, n in zip(status["status"], status["n"], strict=True)}
    counts = population_counts(t)
    report.populations = [
        {
            "kpi": c["population"].name,
            "counts": c["population"].counts,
            "rows_used": rep.rows_used,
            "rows_in": c["rows_in"],
            "left_out": c["left_out"],
        }
        for c in counts
    ]
    for c in counts:
        status_only = {r.words for r in c["population"].reasons if r.status}
        for reason, n in c["left_out"].items():
            if reason not in status_only:
                rep.metric_exclusions.append(MetricExclusion(c["population"].name, n, reason))
    report.view_warnings = starved_warnings(by_status, counts)


def _engine_error(label: str, table: str, exc: Exception) -> DataSourceError:
    """The message for an engine error while loading ``table``.

    A parse or conversion error is a problem in the file: say which line to fix. Running out
    of engine memory, or an engine failure, is not: say so, and which setting to change.
    """
    text = str(exc)
    memory = os.environ.get("SALESOPS_DUCKDB_MEMORY", "1GB")
    if isinstance(exc, duckdb.OutOfMemoryException) or "out of memory" in text.lower():
        return DataSourceError(
            f"{label}: the engine ran out of memory while validating the {table} data (memory "
            f"limit {memory}, SALESOPS_DUCKDB_MEMORY). Raise the limit (e.g. "
            f"SALESOPS_DUCKDB_MEMORY=8GB) or free disk space in {tempfile.gettempdir()} for "
            f"spill files, and retry."
        )
    in_file = isinstance(exc, duckdb.ConversionException) or re.search(
        r"\bCSV\b|\bline \d+|sniff", text, flags=re.IGNORECASE
    )
    if in_file:
        return DataSourceError(
            f"{label}: the {table} data could not be read: {_csv_problem(exc)}. Fix that "
            f"line in the file (or export it again) and retry."
        )
    return DataSourceError(
        f"{label}: the engine failed while validating the {table} data: {_csv_problem(exc)}. "
        f"This is an engine error (DuckDB {duckdb.__version__}), not a value in the file. "
        f"Retry with a larger memory limit (SALESOPS_DUCKDB_MEMORY, now {memory}), and if it "
        f"persists, report it with this message."
    )


def _run(source: Any, mapping: Any, as_of: Any) -> _Context:
    as_of_date = _parse_as_of(as_of)
    mapping_obj = resolve_mapping(mapping)
    src = open_source(source)
    report = QualityReport(source=src.label, mapping=mapping_obj.name)
    ctx = _Context(src, mapping_obj, as_of_date, report, {}, {}, mapping_obj.base_currency)
    for table in LOAD_ORDER:
        try:
            _load_table(table, ctx)
        except duckdb.Error as exc:
            raise _engine_error(src.label, table, exc) from exc
    rep = report.tables["opportunities"]
    if rep.rows_used == 0:
        reasons = ", ".join(f"{n:,} {r}" for r, n in rep.excluded.items())
        report.fatal = report.fatal or (
            f"{rep.source}: none of the {rep.rows_read:,} opportunities is usable ({reasons}). "
            f"See the examples in the report and fix the mapping or the export."
        )
        report.warnings = list(src.warnings)
        return ctx
    ctx.as_of = as_of_date or _default_as_of(ctx)
    report.as_of = ctx.as_of.isoformat()
    report.base_currency = ctx.base_currency
    for table in report.tables:
        _flag_report(table, ctx)
    _populations(ctx)
    report.warnings = list(src.warnings)
    return ctx


def validate(
    source: Any,
    *,
    mapping: Any = "canonical",
    as_of: Any = None,
    cache: bool | None = None,
    cache_dir: Any = None,
) -> QualityReport:
    """Validate a source against a mapping and return the data-quality report.

    Unlike :func:`load`, returns a report (with ``usable`` False) when no opportunity is
    usable. Raises :class:`~salesops_widgets.errors.SalesOpsError` for a missing file, a bad
    mapping or a missing required column. ``cache`` and ``cache_dir`` as for :func:`load`: the
    report of a prepared file is returned as it was kept, and a usable fresh one is prepared.
    """
    from . import _prepared

    key = _prepared.prepared_key(source, mapping, _parse_as_of(as_of))
    if key is None or not _prepared.cache_enabled(cache):
        return _run(source, mapping, as_of).report
    report = _prepared.report_through_cache(key, cache_dir)
    if report is not None:
        return report
    ctx = _run(source, mapping, as_of)
    if not ctx.report.fatal:
        _prepared.load_through_cache(key, cache_dir, lambda: _data(ctx))
    return ctx.report


def load(
    source: Any,
    *,
    mapping: Any = "canonical",
    as_of: Any = None,
    cache: bool | None = None,
    cache_dir: Any = None,
) -> SalesData:
    """Open a source, map it onto the canonical tables and validate every row.

    Parameters
    ----------
    source
        A folder of CSV/Parquet files, a single .csv/.parquet file (the opportunities), an .xlsx
        workbook, a .duckdb file, a database URL Ibis supports, a DataFrame (opportunities) or
        a dict of DataFrames keyed by table name.
    mapping
        ``"canonical"``, ``"salesforce"``, ``"hubspot"``, a mapping YAML path or a dict.
    as_of
        The as-of date (``"YYYY-MM-DD"``). Default: the latest created or close date in the data.
    cache
        Use the prepared file of a folder/file/workbook source (see docs/deploy.md, "Prepared
        data"): open it when the files, mapping and as-of date are unchanged, else load fresh
        and write it. Default: on, unless ``SALESOPS_NO_CACHE=1``. Never for DataFrames, DuckDB
        files or database URLs.
    cache_dir
        Where prepared files go (default ``$SALESOPS_CACHE_DIR``, else ``.salesops-cache``
        beside the data, else the user cache folder).

    Returns
    -------
    SalesData
        Canonical Ibis tables (used rows only) and ``report``, the data-quality report.

    Examples
    --------
    >>> from salesops_widgets import load
    >>> data = load("data/samples/default")  # doctest: +SKIP
    >>> data.report.summary_frame()  # doctest: +SKIP
    """
    from . import _prepared

    key = _prepared.prepared_key(source, mapping, _parse_as_of(as_of))
    if key is None or not _prepared.cache_enabled(cache):
        return _data(_run(source, mapping, as_of))
    return _prepared.load_through_cache(key, cache_dir, lambda: _data(_run(source, mapping, as_of)))


def _data(ctx: _Context) -> SalesData:
    """The SalesData of a fresh run; a NoUsableDataError when no opportunity is usable."""
    if ctx.report.fatal:
        raise NoUsableDataError(ctx.report.fatal)
    tables = {}
    for name, annotated in ctx.annotated.items():
        tables[name] = annotated.filter(annotated._excluded.isnull()).select(*ctx.columns[name])
    return SalesData(
        tables,
        ctx.report,
        con=ctx.source.con,
        as_of=ctx.as_of,
        base_currency=ctx.base_currency,
        mapping=ctx.mapping,
        engine_owned=ctx.source.owned,
    )
