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
from ._mapping import Mapping, TableMapping, norm_label, resolve_mapping
from ._parse import blank, parse_bool, parse_date, parse_number, parse_text
from ._quality import MetricExclusion, QualityReport, TableReport
from ._schema import EXCLUDE_RULES, KEYS, SIZE_BANDS, TABLES, Column
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
_FORMULA = r"^[=+\-@]"
_CHILD_MONEY = {
    "stage_history": ("amount",),
    "line_items": (
        "list_price",
        "invoice_price",
        "rebate",
        "freight",
        "payment_terms_cost",
        "unit_cost",
    ),
}
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


def _norm_expr(value: ibis.StringValue) -> ibis.StringValue:
    return value.lower().re_replace(r"\s+", " ").strip()


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


def _apply_lookups(
    raw: ibis.Table, tmap: TableMapping, ctx: _Context, label: str, notes: list[str]
) -> tuple[ibis.Table, dict[str, str]]:
    """Join looked-up columns onto the raw table; returns it and canonical -> joined column."""
    filled: dict[str, str] = {}
    for i, lk in enumerate(tmap.lookups):
        where = f"{ctx.mapping.key(tmap.table, 'lookups')}[{i}]"
        name = ctx.source.find(lk.source)
        if name is None:
            if lk.optional:
                notes.append(f"lookup {where}: source {list(lk.source)} not found; skipped")
                continue
            raise DataSourceError(
                f"{ctx.source.label}: lookup {where} needs source {list(lk.source)}, which is not "
                f"there (available: {', '.join(ctx.source.available()) or 'nothing'}). Add the "
                f"file/sheet/table or fix {where}.source."
            )
        lraw = ctx.source.read(name)
        raw_cols = {norm_label(c): c for c in raw.columns}
        l_cols = {norm_label(c): c for c in lraw.table.columns}
        for what, cols, col, lab in (
            ("key", raw_cols, lk.key, label),
            ("lookup_key", l_cols, lk.lookup_key, lraw.label),
            ("value", l_cols, lk.value, lraw.label),
        ):
            if norm_label(col) not in cols:
                raise SchemaError(
                    f"{lab}: lookup {where}.{what} names column {col!r}, which is not there. "
                    f"Columns found: {', '.join(map(repr, list(cols.values())[:25]))}."
                )
        lt = lraw.table
        lkey = lt[l_cols[norm_label(lk.lookup_key)]].cast("string").strip()
        right = (
            lt.mutate(_k=lkey, _v=lt[l_cols[norm_label(lk.value)]])
            .group_by("_k")
            .aggregate(_v=lambda t: t._v.arbitrary())
            .rename({f"_lk{i}_key": "_k", f"_lk{i}_value": "_v"})
        )
        key_expr = raw[raw_cols[norm_label(lk.key)]].cast("string").strip()
        raw = raw.left_join(right, key_expr == right[f"_lk{i}_key"]).drop(f"_lk{i}_key")
        filled[lk.column] = f"_lk{i}_value"
        missed = raw.filter(raw[f"_lk{i}_value"].isnull()).count().execute()
        if missed:
            notes.append(f"lookup {lk.column} from {lraw.label}: {missed:,} rows found no match")
    return raw, filled


def _parse_columns(
    raw: ibis.Table, found: dict[str, str], tmap: TableMapping, mapping: Mapping
) -> tuple[dict, dict, dict]:
    """Parsed values, parse-failure flags and blank flags for each present canonical column."""
    values, fails, blanks = {}, {}, {}
    for col in TABLES[tmap.table]:
        if col.name not in found:
            continue
        rc = raw[found[col.name]]
        blanks[col.name] = blank(rc)
        formats = tmap.date_formats.get(col.name, ()) + mapping.date_formats
        if col.kind in ("id", "text"):
            v, f = parse_text(rc)
            vmap = tmap.values.get(col.name)
            if vmap:
                v = _norm_expr(v).substitute({norm_label(k): x for k, x in vmap.items()}, else_=v)
        elif col.kind == "number":
            v, f = parse_number(rc, decimal_comma=mapping.decimal_comma)
        elif col.kind == "date":
            v, f = parse_date(rc, formats)
        elif col.kind == "timestamp":
            v, f = parse_date(rc, formats, timestamp=True)
        else:
            v, f = parse_bool(rc)
        values[col.name], fails[col.name] = v, f
    return values, fails, blanks


def _any(exprs: list[ibis.BooleanValue]) -> ibis.BooleanValue:
    out = ibis.literal(False)
    for e in exprs:
        out = out | e.fill_null(False)
    return out


def _first_true(pairs: list[tuple[ibis.BooleanValue, Any]], else_: Any) -> Any:
    if not pairs:
        return else_
    return ibis.cases(*[(c.fill_null(False), v) for c, v in pairs], else_=else_)


def _status(values: dict, blanks: dict, tmap: TableMapping) -> tuple[Any, Any]:
    """(status expression, "no status field filled" flag) for opportunities."""
    nul = ibis.null("string")
    stage_status = nul
    if "stage" in values and tmap.stages:
        stage_status = _norm_expr(values["stage"]).substitute(tmap.stages, else_=nul)
    flag_status = nul
    if "is_closed" in values:
        closed, won = values["is_closed"], values.get("is_won", ibis.null("boolean"))
        flag_status = ibis.cases(
            (won.fill_null(False), "won"),
            (closed.isnull(), nul),
            (closed, "lost"),
            else_="open",
        )
    elif "is_won" in values:
        flag_status = ibis.ifelse(values["is_won"].fill_null(False), "won", nul)
    status = ibis.coalesce(flag_status, stage_status)
    empty = ibis.literal(True)
    for c in ("is_closed", "stage"):
        if c in blanks:
            empty = empty & blanks[c]
    return status, empty


def _currency(ctx: _Context, raw_parsed: ibis.Table) -> ibis.Table:
    """Convert amounts to the base currency; adds _rate (NULL when no rate applies)."""
    t = raw_parsed
    if "currency" not in t.columns:
        return t.mutate(_rate=ibis.literal(1.0), _cur_other=ibis.literal(False))
    t = t.mutate(currency=t.currency.upper())
    if ctx.base_currency is None:
        top = (
            t.filter(t.currency.notnull())
            .group_by("currency")
            .aggregate(n=lambda x: x.count())
            .order_by([ibis.desc("n"), "currency"])
            .limit(1)
            .execute()
        )
        ctx.base_currency = str(top["currency"].iloc[0]) if len(top) else None
    base = ctx.base_currency
    other = t.currency.notnull() & (t.currency != base) if base else ibis.literal(False)
    t = t.mutate(_cur_other=other)
    rates = ctx.annotated.get("currency_rates")
    if rates is not None:
        r = rates.filter(rates._excluded.isnull() & (rates.rate > 0)).select(
            _rc=rates.currency.upper(), _rr=rates.rate
        )
        t = t.left_join(r, t.currency == r._rc).drop("_rc")
        t = t.mutate(_rate=ibis.ifelse(t._cur_other, t._rr, 1.0)).drop("_rr")
    else:
        t = t.mutate(_rate=ibis.ifelse(t._cur_other, ibis.null("float64"), 1.0))
    conv = {c: t[c] / t._rate for c in ("amount", "list_amount") if c in t.columns}
    return t.mutate(**conv)


# A rule: (condition column, rule name, example builder: final table -> text expression)
_Rule = tuple[str, str, Any]


def _annotate(
    table: str, raw: ibis.Table, found: dict[str, str], tmap: TableMapping, ctx: _Context
) -> tuple[ibis.Table, list[str], list[_Rule]]:
    """Parsed canonical columns, flag helpers, and one boolean column per row-level rule."""
    values, fails, blanks = _parse_columns(raw, found, tmap, ctx.mapping)
    cols: list[Column] = [c for c in TABLES[table] if c.name in values]
    checks: list[tuple[Any, str, Any]] = []  # (condition, rule, example builder)
    raw_text: dict[str, Any] = {}  # raw text kept only to show examples of failures

    def raw_example(name: str) -> Any:
        raw_text[f"_raw_{name}"] = raw[found[name]].cast("string")
        return lambda t: t[f"_raw_{name}"]

    for c in cols:
        if c.required:
            checks.append((blanks[c.name], "missing_required", _lit(f"{c.name} empty")))
    extra: dict[str, Any] = {}
    if table == "opportunities":
        status, empty = _status(values, blanks, tmap)
        checks.append((empty, "missing_required", _lit("stage and is_closed empty")))
        stage_ex = raw_example("stage") if "stage" in found else _lit("no status")
        checks.append((status.isnull(), "unknown_stage", stage_ex))
        extra["status"] = status
    parsed_text = [
        c
        for c in cols
        if c.required
        and c.kind in ("number", "date", "timestamp")
        and raw[found[c.name]].type().is_string()
    ]
    for c in parsed_text:
        rule = "unparseable_number" if c.kind == "number" else "unparseable_date"
        checks.append((fails[c.name], rule, raw_example(c.name)))
    helper: dict[str, Any] = {}
    for kind, kinds in (("number", ("number", "bool")), ("date", ("date", "timestamp"))):
        bucket = [c for c in cols if not c.required and c.kind in kinds]
        helper[f"_bad_{kind}"] = _any([fails[c.name] for c in bucket])
        helper[f"_bad_{kind}_ex"] = _first_true(
            [(fails[c.name], raw[found[c.name]].cast("string")) for c in bucket],
            ibis.null("string"),
        )
    formula = [
        (
            values[c.name].re_search(_FORMULA),
            values[c.name],
        )
        for c in cols
        if c.kind in ("id", "text")
    ]
    helper["_formula"] = _any([f for f, _ in formula])
    helper["_formula_ex"] = _first_true(formula, ibis.null("string"))
    conds = {f"_c{i}": cond.fill_null(False) for i, (cond, _, _) in enumerate(checks)}
    rules = [(f"_c{i}", rule, ex) for i, (_, rule, ex) in enumerate(checks)]
    t = raw.select(**values, **extra, **helper, **raw_text, **conds)
    return t, [c.name for c in cols] + list(extra), rules


def _lit(text: str) -> Any:
    return lambda t: ibis.literal(text)


def _add_rule(t: ibis.Table, rules: list[_Rule], cond: Any, rule: str, example: Any) -> ibis.Table:
    """Add one derived rule as a boolean column; ``example`` builds its text from the table."""
    col = f"_c{len(rules)}"
    rules.append((col, rule, example))
    return t.mutate(**{col: cond.fill_null(False)})


def _derive(
    table: str, t: ibis.Table, names: list[str], rules: list[_Rule], ctx: _Context
) -> tuple[ibis.Table, list[str]]:
    """Table-specific derived columns and the rules that need them."""
    if table == "opportunities":
        t = _currency(ctx, t)
        if "probability" in t.columns:
            scale = ibis.ifelse(t.probability.max().over() > 1, 100.0, 1.0)
            t = t.mutate(probability=t.probability / scale)
        t = t.mutate(is_closed=t.status != "open", is_won=t.status == "won")
        names = [*names, *(c for c in ("is_closed", "is_won") if c not in names)]
        cur = (lambda x: x.currency) if "currency" in t.columns else _lit("")
        t = _add_rule(t, rules, t._rate.isnull(), "currency_without_rate", cur)
        t = _add_rule(t, rules, t.amount < 0, "negative_amount", lambda x: x.amount)
        if "close_date" in t.columns:
            t = _add_rule(
                t,
                rules,
                t.close_date < t.created_date,
                "close_before_created",
                lambda x: x.created_date.cast("string") + " > " + x.close_date.cast("string"),
            )
    if table == "line_items":
        neg = (t.quantity < 0) | (t.list_price < 0) | (t.invoice_price < 0)
        t = _add_rule(
            t,
            rules,
            neg,
            "negative_amount",
            lambda x: x.quantity.cast("string") + " x " + x.invoice_price.cast("string"),
        )
        if "discount_percent" in t.columns:
            # folded into invoice_price here, and dropped so that nothing applies it twice
            t = t.mutate(
                invoice_price=t.invoice_price * (1 - t.discount_percent.fill_null(0) / 100)
            )
            names = [n for n in names if n != "discount_percent"]
    if table == "accounts" and "employee_count" in t.columns:
        t = _size_band(t)
        names = [*names, *(["size_band"] if "size_band" not in names else [])]
    if table in ("stage_history", "line_items") and "opportunities" in ctx.annotated:
        opp = ctx.annotated["opportunities"]
        parents = opp.group_by(_pid="opportunity_id").aggregate(
            _parent_ok=opp._excluded.isnull().any(),
            _parent_rate=opp._rate.max(where=opp._excluded.isnull()),
        )
        t = t.left_join(parents, t.opportunity_id == parents._pid).drop("_pid")
        # child amounts are in their opportunity's currency: convert them the same way
        money = _CHILD_MONEY[table]
        t = t.mutate(**{c: t[c] / t._parent_rate.fill_null(1.0) for c in money if c in t.columns})
        t = _add_rule(
            t,
            rules,
            t._parent_ok.notnull() & ~t._parent_ok,
            "parent_excluded",
            lambda x: x.opportunity_id,
        )
        t = _add_rule(
            t, rules, t._parent_ok.isnull(), "unmatched_opportunity", lambda x: x.opportunity_id
        )
    return t, names


def _exclusions(table: str, t: ibis.Table, names: list[str], rules: list[_Rule]) -> ibis.Table:
    """_excluded = the first failing rule in EXCLUDE_RULES order; then repeated keys.

    Among valid rows sharing a key, one is kept: the first by the table's leading canonical
    columns (for opportunities: earliest created_date, then smallest amount), so the choice
    does not depend on file order.
    """
    order = {r: i for i, r in enumerate(EXCLUDE_RULES)}
    ranked = sorted(rules, key=lambda r: order[r[1]])
    excluded = _first_true([(t[c], rule) for c, rule, _ in ranked], ibis.null("string"))
    example = _first_true(
        [(t[c], ex(t).cast("string")) for c, _, ex in ranked], ibis.null("string")
    )
    meta = [c for c in t.columns if c.startswith(("_bad", "_formula", "_cur_other", "_rate"))]
    t = t.select(*names, *meta, _excluded=excluded, _example=example)
    key = KEYS[table]
    if key is not None and key in t.columns:
        ok = t._excluded.isnull()
        w = ibis.window(group_by=[t[key], ok], order_by=[t[c] for c in names[:6]])
        t = t.mutate(_dup=ok & (ibis.row_number().over(w) > 0))
        t = t.select(
            *names,
            *meta,
            _excluded=ibis.ifelse(t._dup, "duplicate_id", t._excluded),
            _example=ibis.ifelse(t._dup, t[key], t._example),
        )
    return t


def _size_band(t: ibis.Table) -> ibis.Table:
    e = t.employee_count
    cases = [(e < upper, label) for upper, label in SIZE_BANDS if upper is not None]
    derived = ibis.ifelse(
        e.isnull(), ibis.null("string"), ibis.cases(*cases, else_=SIZE_BANDS[-1][1])
    )
    if "size_band" in t.columns:
        return t.mutate(size_band=ibis.coalesce(t.size_band, derived))
    return t.mutate(size_band=derived)


def _materialize(ctx: _Context, table: str, expr: ibis.Table) -> ibis.Table:
    if not ctx.source.owned:
        return expr
    # a table of our private engine database (a temporary file, deleted with the connection)
    return ctx.source.con.create_table(f"_annotated_{table}", expr, overwrite=True)


def _load_table(table: str, ctx: _Context) -> None:
    tmap = ctx.mapping.tables[table]
    source = ctx.source
    if source.single:
        name = source.available()[0] if table == "opportunities" else None
    else:
        name = source.find(tmap.source)
    if name is None:
        if table == "opportunities":
            raise DataSourceError(
                f"{source.label}: no opportunities table found. Looked for "
                f"{', '.join(map(repr, tmap.source))}; available: "
                f"{', '.join(source.available()) or 'nothing'}. Name the file/sheet/table in "
                f"the mapping ({ctx.mapping.origin}) under {ctx.mapping.key(table, 'source')}."
            )
        ctx.report.missing_tables.append(table)
        return
    rawt = source.read(name)
    notes: list[str] = []
    raw, filled = _apply_lookups(rawt.table, tmap, ctx, rawt.label, notes)
    found = {**_resolve_columns(raw, tmap), **filled}
    required = [c.name for c in TABLES[table] if c.required]
    missing = [c for c in required if c not in found]
    if table == "opportunities" and not ({"is_closed", "is_won"} & set(found) or "stage" in found):
        missing.append("stage")
    if missing:
        raise _schema_error(table, rawt.label, raw, missing, ctx, tmap)
    t, names, rules = _annotate(table, raw, found, tmap, ctx)
    t, names = _derive(table, t, names, rules, ctx)
    annotated = _materialize(ctx, table, _exclusions(table, t, names, rules))
    ctx.annotated[table] = annotated
    ctx.columns[table] = names
    rep = TableReport(table=table, source=rawt.label, notes=notes)
    counts = annotated.group_by("_excluded").aggregate(n=lambda x: x.count()).execute()
    for rule, n in zip(counts["_excluded"], counts["n"], strict=True):
        if rule is None or rule != rule:  # None or NaN: used rows
            rep.rows_used = int(n)
        else:
            rep.excluded[str(rule)] = int(n)
    rep.rows_read = rep.rows_used + rep.rows_excluded
    if rep.rows_read == 0 and table == "opportunities":
        ctx.report.fatal = (
            f"{rawt.label}: the opportunities table has a header but no rows. Export it again "
            f"with its data."
        )
    rep.excluded = {r: rep.excluded[r] for r in EXCLUDE_RULES if r in rep.excluded}
    for rule in rep.excluded:
        ex = annotated.filter(annotated._excluded == rule).select("_example").distinct()
        rep.examples[rule] = sorted(str(v) for v in ex.limit(3).execute()["_example"].tolist())
    if "unmatched_opportunity" in rep.excluded:
        rep.unmatched["unmatched_opportunity"] = _top_values(
            annotated.filter(annotated._excluded == "unmatched_opportunity"), "_example"
        )
    ctx.report.tables[table] = rep


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


def _flags(table: str, ctx: _Context) -> dict[str, Any]:
    """Flag conditions (rows still used) for one table."""
    t = _used(ctx, table)
    flags: dict[str, Any] = {
        "unparseable_number": t._bad_number,
        "unparseable_date": t._bad_date,
        "formula_text": t._formula,
    }
    if table == "opportunities":
        if "list_amount" in t.columns:
            flags["net_above_list"] = t.amount > t.list_amount + 0.005
        flags["mixed_currencies"] = t._cur_other
        if "close_date" in t.columns:
            flags["open_close_date_past"] = (t.status == "open") & (t.close_date < ctx.as_of)
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
    sums = t.aggregate(**{r: c.fill_null(False).cast("int64").sum() for r, c in flags.items()})
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


def _metric_exclusions(ctx: _Context) -> None:
    rep = ctx.report.tables["opportunities"]
    t = _used(ctx, "opportunities")
    checks = {}
    if "list_amount" in t.columns:
        checks["discount"] = (~(t.list_amount > 0), "no list_amount above 0")
    else:
        rep.notes.append("no list_amount column: discount metrics need it (or line_items)")
    if "close_date" in t.columns:
        checks["cycle time"] = (t.is_closed & t.close_date.isnull(), "closed without a close_date")
    else:
        rep.notes.append("no close_date column: cycle-time metrics need it")
    if "probability" in t.columns:
        checks["weighted pipeline"] = (
            ~t.is_closed & t.probability.isnull(),
            "open without probability",
        )
    if not checks:
        return
    row = t.aggregate(**{k: c.fill_null(True).cast("int64").sum() for k, (c, _) in checks.items()})
    row = row.execute().iloc[0]
    for metric, (_, reason) in checks.items():
        n = int(row[metric] or 0)
        if n:
            rep.metric_exclusions.append(MetricExclusion(metric, n, reason))


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
    _metric_exclusions(ctx)
    report.warnings = list(src.warnings)
    return ctx


def validate(source: Any, *, mapping: Any = "canonical", as_of: Any = None) -> QualityReport:
    """Validate a source against a mapping and return the data-quality report.

    Unlike :func:`load`, returns a report (with ``usable`` False) when no opportunity is
    usable. Raises :class:`~salesops_widgets.errors.SalesOpsError` for a missing file, a bad
    mapping or a missing required column.
    """
    return _run(source, mapping, as_of).report


def load(source: Any, *, mapping: Any = "canonical", as_of: Any = None) -> SalesData:
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
    ctx = _run(source, mapping, as_of)
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
