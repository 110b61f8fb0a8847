"""Row rules: a raw table -> parsed canonical columns, one flag column per rule, the rule that
excludes each row (or none), and what the report counts per column.

A row is excluded only when no KPI can use it. For opportunities that is a row without an id,
without a status (no stage and no is_closed), with a stage no stage map knows, or a repeated id.
Everything else a CRM export may lack or get wrong (no amount, no created date, an amount that
does not parse, is negative or is in a currency without a rate, a close date before the created
date) keeps the row, is flagged, and leaves it out of the KPIs that need that field only
(``_populations``).

All of it is Ibis expressions; ``_load`` materialises the result once and counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis

from ._mapping import Mapping, TableMapping, norm_label
from ._parse import blank, parse_bool, parse_date, parse_number, parse_text, strip
from ._schema import EXCLUDE_RULES, KEYS, SIZE_BANDS, TABLES, Column

__all__ = [
    "ALWAYS",
    "Annotated",
    "CHILD_MONEY",
    "annotate",
    "derive",
    "exclusions",
    "norm_expr",
]

_FORMULA = r"^[=+\-@]"
CHILD_MONEY = {
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
# Columns every loaded table of this name has: empty when the source lacks them.
ALWAYS: dict[str, dict[str, str]] = {
    "opportunities": {"amount": "float64", "created_date": "date"},
}
# Column prefixes the annotated table keeps next to the canonical columns (for flags and counts)
META_PREFIXES = ("_bad", "_formula", "_cur_other", "_rate", "_no_rate", "_neg_amount", "_q_", "_lk")

# A rule: (condition column, rule name, example builder: final table -> text expression)
_Rule = tuple[str, str, Any]


@dataclass
class Annotated:
    """A table on its way to being loaded: its columns so far, and its rules."""

    table: ibis.Table
    names: list[str]  # canonical columns, in order
    rules: list[_Rule]

    def add_rule(self, cond: Any, rule: str, example: Any) -> None:
        """One more row rule, as a boolean column; ``example`` builds its text from the table."""
        col = f"_c{len(self.rules)}"
        self.rules.append((col, rule, example))
        self.table = self.table.mutate(**{col: cond.fill_null(False)})


def norm_expr(value: ibis.StringValue) -> ibis.StringValue:
    """A label as maps compare it (trimmed, lower case, single spaces), in the engine."""
    return strip(value.lower().re_replace(r"\s+", " "))


def _lit(text: str) -> Any:
    return lambda t: ibis.literal(text)


def _any(exprs: list[ibis.BooleanValue]) -> ibis.BooleanValue:
    out = ibis.literal(False)
    for e in exprs:
        out = out | e.fill_null(False)
    return out


def _first_true(pairs: list[tuple[ibis.BooleanValue, Any]], else_: Any) -> Any:
    if not pairs:
        return else_
    return ibis.cases(*[(c.fill_null(False), v) for c, v in pairs], else_=else_)


# --------------------------------------------------------------------------------------------------
# Parsing


def _parse_one(rc: ibis.Value, col: Column, tmap: TableMapping, mapping: Mapping) -> tuple:
    """(value, could not parse) of one canonical column from its raw column."""
    formats = tmap.date_formats.get(col.name, ()) + mapping.date_formats
    if col.kind in ("id", "text"):
        v, f = parse_text(rc)
        vmap = tmap.values.get(col.name)
        if vmap:
            v = norm_expr(v).substitute({norm_label(k): x for k, x in vmap.items()}, else_=v)
        return v, f
    if col.kind == "number":
        return parse_number(rc, decimal_comma=mapping.decimal_comma)
    if col.kind in ("date", "timestamp"):
        return parse_date(rc, formats, timestamp=col.kind == "timestamp")
    return parse_bool(rc)


def _parse_columns(raw: ibis.Table, found: dict[str, str], tmap: TableMapping, mapping: Mapping):
    """Parsed values, parse-failure flags and blank flags for each present canonical column."""
    values, fails, blanks = {}, {}, {}
    for col in TABLES[tmap.table]:
        if col.name in found:
            rc = raw[found[col.name]]
            blanks[col.name] = blank(rc)
            values[col.name], fails[col.name] = _parse_one(rc, col, tmap, mapping)
    return values, fails, blanks


def _status(values: dict, blanks: dict, tmap: TableMapping) -> tuple[Any, Any]:
    """(status expression, "no status field filled" flag) for opportunities."""
    nul = ibis.null("string")
    stage_status = nul
    if "stage" in values and tmap.stages:
        stage_status = norm_expr(values["stage"]).substitute(tmap.stages, else_=nul)
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


def _column_counts(cols: list[Column], values: dict, fails: dict, blanks: dict) -> dict:
    """``_q_blank__<col>`` and ``_q_fail__<col>``: per column, empty and unparseable values."""
    out = {f"_q_blank__{c.name}": blanks[c.name].fill_null(True) for c in cols}
    out.update(
        {f"_q_fail__{c.name}": fails[c.name].fill_null(False) for c in cols if _parses(c, fails)}
    )
    return out


def _parses(col: Column, fails: dict) -> bool:
    """True for a column whose values can fail to parse (a number, date or bool from text)."""
    return col.kind not in ("id", "text") and not _is_constant(fails[col.name])


def _is_constant(expr: Any) -> bool:
    return isinstance(expr.op(), ibis.expr.operations.Literal)


def _helpers(raw: ibis.Table, cols: list[Column], found: dict, values: dict, fails: dict) -> dict:
    """Flag helpers of used rows: any optional number/date that failed (and an example), and
    text a spreadsheet would run as a formula."""
    helper: dict[str, Any] = {}
    for kind, kinds in (("number", ("number", "bool")), ("date", ("date", "timestamp"))):
        bucket = [c for c in cols if not c.required and c.kind in kinds]
        helper[f"_bad_{kind}"] = _any([fails[c.name] for c in bucket])
        helper[f"_bad_{kind}_ex"] = _first_true(
            [(fails[c.name], raw[found[c.name]].cast("string")) for c in bucket],
            ibis.null("string"),
        )
    formula = [
        (values[c.name].re_search(_FORMULA), values[c.name])
        for c in cols
        if c.kind in ("id", "text")
    ]
    helper["_formula"] = _any([f for f, _ in formula])
    helper["_formula_ex"] = _first_true(formula, ibis.null("string"))
    return helper


def annotate(
    table: str, raw: ibis.Table, found: dict[str, str], tmap: TableMapping, mapping: Mapping
) -> Annotated:
    """Parsed canonical columns, flag helpers, per-column counts and one boolean per row rule."""
    values, fails, blanks = _parse_columns(raw, found, tmap, mapping)
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
    for c in cols:
        if c.required and c.kind in ("number", "date", "timestamp") and _parses(c, fails):
            rule = "unparseable_number" if c.kind == "number" else "unparseable_date"
            checks.append((fails[c.name], rule, raw_example(c.name)))
    always = {n: ibis.null(typ) for n, typ in ALWAYS.get(table, {}).items() if n not in values}
    carried = [c for c in raw.columns if c.startswith("_lk") and not c.endswith("_value")]
    conds = {f"_c{i}": cond.fill_null(False) for i, (cond, _, _) in enumerate(checks)}
    t = raw.select(
        *carried,
        **values,
        **always,
        **extra,
        **_helpers(raw, cols, found, values, fails),
        **_column_counts(cols, values, fails, blanks),
        **raw_text,
        **conds,
    )
    names = [c.name for c in TABLES[table] if c.name in values or c.name in always]
    rules = [(f"_c{i}", rule, ex) for i, (_, rule, ex) in enumerate(checks)]
    return Annotated(t, [*names, *extra], rules)


# --------------------------------------------------------------------------------------------------
# Derived columns


def _currency(t: ibis.Table, base: str | None, rates: ibis.Table | None) -> ibis.Table:
    """Amounts converted to the base currency; ``_rate`` is NULL (and so are the amounts) where
    no rate applies, ``_cur_other`` True for a row in another currency."""
    if "currency" not in t.columns:
        return t.mutate(_rate=ibis.literal(1.0), _cur_other=ibis.literal(False))
    t = t.mutate(currency=t.currency.upper())
    other = t.currency.notnull() & (t.currency != base) if base else ibis.literal(False)
    t = t.mutate(_cur_other=other)
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


def _opportunities(a: Annotated, base: str | None, rates: ibis.Table | None) -> None:
    """Status flags, probability as a share, amounts in the base currency; an amount that is
    negative or cannot be converted is left empty (the row is kept and flagged)."""
    # negative as written, before a missing rate leaves the amount empty
    t = _currency(a.table.mutate(_neg_amount=(a.table.amount < 0).fill_null(False)), base, rates)
    if "probability" in t.columns:
        scale = ibis.ifelse(t.probability.max().over() > 1, 100.0, 1.0)
        t = t.mutate(probability=t.probability / scale)
    t = t.mutate(is_closed=t.status != "open", is_won=t.status == "won")
    t = t.mutate(_no_rate=t._rate.isnull())
    a.table = t.mutate(amount=ibis.ifelse(t._neg_amount, ibis.null("float64"), t.amount))
    a.names = [*a.names, *(c for c in ("is_closed", "is_won") if c not in a.names)]


def _line_items(a: Annotated) -> None:
    t = a.table
    neg = (t.quantity < 0) | (t.list_price < 0) | (t.invoice_price < 0)
    a.add_rule(
        neg,
        "negative_amount",
        lambda x: x.quantity.cast("string") + " x " + x.invoice_price.cast("string"),
    )
    if "discount_percent" in a.table.columns:
        # folded into invoice_price here, and dropped so that nothing applies it twice
        t = a.table
        a.table = t.mutate(
            invoice_price=t.invoice_price * (1 - t.discount_percent.fill_null(0) / 100)
        )
        a.names = [n for n in a.names if n != "discount_percent"]


def _size_band(t: ibis.Table) -> ibis.Table:
    e = t.employee_count
    cases = [(e < upper, label) for upper, label in SIZE_BANDS if upper is not None]
    derived = ibis.ifelse(
        e.isnull(), ibis.null("string"), ibis.cases(*cases, else_=SIZE_BANDS[-1][1])
    )
    if "size_band" in t.columns:
        return t.mutate(size_band=ibis.coalesce(t.size_band, derived))
    return t.mutate(size_band=derived)


def _children(a: Annotated, table: str, opportunities: ibis.Table) -> None:
    """A child row's opportunity: its amounts in that opportunity's currency are converted the
    same way; a row whose opportunity was excluded, or is not there, is excluded. When no rate
    converts the opportunity's currency, the child's amounts are left empty too: a stage
    history row still counts for its stage, a line item (all money) is excluded."""
    opp = opportunities
    parents = opp.group_by(_pid="opportunity_id").aggregate(
        _parent_ok=opp._excluded.isnull().any(),
        _parent_rate=opp._rate.max(where=opp._excluded.isnull()),
    )
    t = a.table.left_join(parents, a.table.opportunity_id == parents._pid).drop("_pid")
    money = CHILD_MONEY[table]
    # the parent's rate: NULL when no rate converts its currency (its amounts are empty then)
    rate = ibis.ifelse(t._parent_ok.fill_null(False), t._parent_rate, 1.0)
    a.table = t.mutate(**{c: t[c] / rate for c in money if c in t.columns})
    t = a.table
    if table == "line_items":
        no_rate = t._parent_ok.fill_null(False) & t._parent_rate.isnull()
        a.add_rule(no_rate, "currency_without_rate", lambda x: x.opportunity_id)
    a.add_rule(
        t._parent_ok.notnull() & ~t._parent_ok, "parent_excluded", lambda x: x.opportunity_id
    )
    a.add_rule(t._parent_ok.isnull(), "unmatched_opportunity", lambda x: x.opportunity_id)


def derive(
    table: str,
    a: Annotated,
    *,
    base_currency: str | None = None,
    annotated: dict[str, ibis.Table],
) -> None:
    """Table-specific derived columns and the rules that need them (``a`` is changed)."""
    if table == "opportunities":
        _opportunities(a, base_currency, annotated.get("currency_rates"))
    if table == "line_items":
        _line_items(a)
    if table == "accounts" and "employee_count" in a.table.columns:
        a.table = _size_band(a.table)
        a.names = [*a.names, *(["size_band"] if "size_band" not in a.names else [])]
    if table in CHILD_MONEY and "opportunities" in annotated:
        _children(a, table, annotated["opportunities"])


# --------------------------------------------------------------------------------------------------
# Exclusions


def exclusions(table: str, a: Annotated) -> ibis.Table:
    """_excluded = the first failing rule in EXCLUDE_RULES order; then repeated keys.

    Among valid rows sharing a key, one is kept: the first by the table's leading canonical
    columns (for opportunities: earliest created_date, then smallest amount), so the choice
    does not depend on file order.
    """
    t, names = a.table, a.names
    order = {r: i for i, r in enumerate(EXCLUDE_RULES)}
    ranked = sorted(a.rules, key=lambda r: order[r[1]])
    excluded = _first_true([(t[c], rule) for c, rule, _ in ranked], ibis.null("string"))
    example = _first_true(
        [(t[c], ex(t).cast("string")) for c, _, ex in ranked], ibis.null("string")
    )
    meta = [c for c in t.columns if c.startswith(META_PREFIXES)]
    t = t.select(*names, *meta, _excluded=excluded, _example=example)
    key = KEYS[table]
    if key is None or key not in t.columns:
        return t
    ok = t._excluded.isnull()
    w = ibis.window(group_by=[t[key], ok], order_by=[t[c] for c in names[:6]])
    t = t.mutate(_dup=ok & (ibis.row_number().over(w) > 0))
    return t.select(
        *names,
        *meta,
        _excluded=ibis.ifelse(t._dup, "duplicate_id", t._excluded),
        _example=ibis.ifelse(t._dup, t[key], t._example),
    )
