"""Value parsing as Ibis expressions: raw column -> (typed value, "could not parse" flag).

Typed source columns (Parquet, databases, DataFrames) are cast; text columns are parsed with
``try_cast`` so that a bad value becomes NULL and is counted, never an error.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

__all__ = ["blank", "parse_text", "parse_number", "parse_date", "parse_bool", "strip"]

_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")
# Tried after ISO when the mapping gives no formats: unambiguous shapes only.
_DEFAULT_FORMATS = ("%Y/%m/%d", "%Y-%m-%d %H:%M", "%Y%m%d")


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.timestamp:  # pragma: no cover - engine builtin
    """DuckDB's TRY_STRPTIME: NULL instead of an error when the text does not fit the format."""


def strip(col: ibis.StringValue) -> ibis.StringValue:
    """``col`` without leading and trailing whitespace, the same on every engine.

    Ibis 12 compiles ``strip()`` for Spark as ``TRIM(' \\t\\n\\r\\v\\f' FROM ...)``, and Spark
    SQL reads ``\\v`` and ``\\f`` as the letters v and f: "Dimitrov" lost its last letter.
    On Spark the whitespace is removed with a regular expression instead; every other engine
    keeps its own TRIM (the cheaper test).
    """
    if ibis.get_backend(col).name == "pyspark":
        return col.re_replace(r"^\s+|\s+$", "")
    return col.strip()


def blank(col: ibis.Value) -> ibis.BooleanValue:
    """True where a raw value is missing: NULL, or text that is empty after trimming."""
    if col.type().is_string():
        return col.isnull() | (strip(col) == "")
    if col.type().is_floating():
        return col.isnull() | col.isnan()
    return col.isnull()


def _text(col: ibis.Value) -> ibis.StringValue:
    return strip(col.cast("string")).nullif("")


def parse_text(col: ibis.Value) -> tuple[ibis.Value, ibis.BooleanValue]:
    """Trimmed text, empty as NULL. Never fails."""
    return _text(col), ibis.literal(False)


def parse_number(
    col: ibis.Value, *, decimal_comma: bool = False
) -> tuple[ibis.Value, ibis.BooleanValue]:
    """A float64; text may carry currency symbols, spaces and thousands separators."""
    typ = col.type()
    if typ.is_numeric() or typ.is_boolean():
        value = col.cast("float64")
        return value, ibis.literal(False)
    s = _text(col)
    cleaned = s.re_replace("[\\s$€£¥\u00a0]", "")
    if decimal_comma:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    value = cleaned.try_cast("float64")
    # inf and nan parse as floats but are not amounts
    value = ibis.ifelse(value.isinf() | value.isnan(), ibis.null("float64"), value)
    return value, s.notnull() & value.isnull()


def parse_date(
    col: ibis.Value, formats: tuple[str, ...] = (), *, timestamp: bool = False
) -> tuple[ibis.Value, ibis.BooleanValue]:
    """A date (or timestamp): ISO first, then each format in order."""
    typ = col.type()
    target = "timestamp" if timestamp else "date"
    if typ.is_timestamp() or typ.is_date():
        value = col.cast("timestamp").cast(target) if timestamp else col.cast("date")
        return value, ibis.literal(False)
    s = _text(col)
    # ISO: '2024-01-05', '2024-01-05 10:00', '2024-01-05T10:00:00.000Z', '...+0000'
    iso = s.re_replace(r"(Z|[+-]\d\d:?\d\d)$", "").replace("T", " ").try_cast("timestamp")
    candidates = [iso] + [_try_strptime(s, fmt) for fmt in (*formats, *_DEFAULT_FORMATS)]
    ts = ibis.coalesce(*candidates) if len(candidates) > 1 else iso
    value = ts if timestamp else ts.cast("date")
    return value, s.notnull() & value.isnull()


def parse_bool(col: ibis.Value) -> tuple[ibis.Value, ibis.BooleanValue]:
    """A boolean from true/false, yes/no, 1/0, t/f (any case)."""
    typ = col.type()
    if typ.is_boolean():
        return col, ibis.literal(False)
    if typ.is_numeric():
        return ibis.ifelse(col.isnull(), ibis.null("boolean"), col != 0), ibis.literal(False)
    s = _text(col).lower()
    value = ibis.cases((s.isin(_TRUE), True), (s.isin(_FALSE), False), else_=ibis.null("boolean"))
    return value, s.notnull() & value.isnull()
