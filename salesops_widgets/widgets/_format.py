"""Value formatting for every widget and static rendering: the one place a number becomes text.

Kinds: ``money``, ``percent`` (a fraction: 0.25 is "25.0%"), ``days``, ``count``, ``ratio``,
``number``, ``date`` and ``text``. A missing value (None, NaN, NA, NaT) is always ``MISSING``.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import pandas as pd

from .._catalog import TOO_FEW  # the one "too few to say" text
from ..errors import ParameterError

__all__ = [
    "KINDS",
    "MISSING",
    "TOO_FEW",
    "format_value",
    "format_delta",
    "guess_kind",
    "is_missing",
]

MISSING = "–"
KINDS = ("money", "percent", "days", "count", "ratio", "number", "date", "text")
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}

# column name -> kind, for tables given no explicit formats (exact names first, then suffixes)
_EXACT = {
    "opportunities": "count",
    "open": "count",
    "won": "count",
    "lost": "count",
    "closed": "count",
    "entities": "count",
    "rows": "count",
    "n": "count",
    "n_outcome": "count",
    "amount": "money",
    "list_amount": "money",
    "bookings": "money",
    "asp": "money",
    "velocity": "money",
    "open_pipeline": "money",
    "weighted_pipeline": "money",
    "quota": "money",
    "quota_remaining": "money",
    "discount": "percent",
    "share": "percent",
    "cumulative_share": "percent",
    "coverage": "ratio",
    "close_ratio": "ratio",
    "km_median_low": "days",
    "km_median_high": "days",
}
_SUFFIXES = (
    ("_rate", "percent"),
    ("_rate_low", "percent"),
    ("_rate_high", "percent"),
    ("_share", "percent"),
    ("_discount", "percent"),
    ("_days", "days"),
    ("_days_won", "days"),
    ("_days_to_close", "days"),
    ("_amount", "money"),
    ("_pipeline", "money"),
    ("_date", "date"),
)


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas NA and NaT."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays
        return False


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParameterError(f"format kind {kind!r} is not one of {', '.join(KINDS)}.")


def _compact(x: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= size:
            return f"{x / size:,.1f}{suffix}"
    return f"{x:,.0f}"


def _money(x: float, currency: str | None, compact: bool) -> str:
    sign = "-" if x < 0 else ""
    digits = _compact(abs(x)) if compact else f"{abs(x):,.0f}"
    if currency is None:
        return f"{sign}{digits}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{currency.upper()} {digits}"


def format_value(
    value: Any, kind: str = "text", *, currency: str | None = None, compact: bool = False
) -> str:
    """``value`` as display text of the given kind (``MISSING`` when it is missing).

    Parameters
    ----------
    kind
        One of ``KINDS``.
    currency
        ISO code for money ("USD" gives "$1,234"; an unknown code is written out:
        "CHF 1,234"); None: no symbol.
    compact
        Money as "$1.2M" instead of "$1,234,567" (for cards).

    Examples
    --------
    >>> format_value(0.3021, "percent"), format_value(1234567, "money", currency="USD")
    ('30.2%', '$1,234,567')
    >>> format_value(float("nan"), "days"), format_value(1, "days"), format_value(45.2, "days")
    ('–', '1 day', '45 days')
    """
    _check_kind(kind)
    if is_missing(value):
        return MISSING
    if kind in ("text", "date"):
        return _date_text(value) if kind == "date" else str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if kind == "money":
        return _money(x, currency, compact)
    return _NUMBERS[kind](x)


def _date_text(value: Any) -> str:
    if isinstance(value, _dt.datetime | pd.Timestamp):
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, _dt.date) else str(value)


def _days_text(x: float) -> str:
    days = f"{x:,.0f}"
    return f"{days} day" if days == "1" else f"{days} days"


# kind -> the text of a finite number of that kind (money has its own, with the currency)
_NUMBERS = {
    "percent": lambda x: f"{x * 100:,.1f}%",
    "days": _days_text,
    "count": lambda x: f"{x:,.0f}",
    "ratio": lambda x: f"{x:,.2f}",
    "number": lambda x: f"{x:,.2f}".rstrip("0").rstrip(".") if x != int(x) else f"{x:,.0f}",
}


def format_delta(delta: Any, kind: str, *, currency: str | None = None) -> str:
    """A signed change: "+1.5 pts" for percent, "-$12.0K" for money, "+3 days", "+12".

    A change of a percentage is in percentage points, never a relative change.

    Examples
    --------
    >>> format_delta(0.015, "percent"), format_delta(-12000, "money", currency="USD")
    ('+1.5 pts', '-$12.0K')
    """
    _check_kind(kind)
    if is_missing(delta):
        return MISSING
    x = float(delta)
    sign = "+" if x > 0 else "-" if x < 0 else "±"
    if kind == "percent":
        return f"{sign}{abs(x) * 100:,.1f} pts"
    if kind == "money":
        return sign + _money(abs(x), currency, compact=True)
    return sign + format_value(abs(x), kind if kind in ("days", "count", "ratio") else "number")


def guess_kind(column: str, dtype: Any = None) -> str:
    """The display kind a column probably has, from its name, else its dtype.

    Examples
    --------
    >>> guess_kind("win_rate"), guess_kind("bookings"), guess_kind("age_days"), guess_kind("x")
    ('percent', 'money', 'days', 'text')
    """
    name = str(column).lower()
    if name in _EXACT:
        return _EXACT[name]
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            return kind
    if dtype is not None:
        if pd.api.types.is_bool_dtype(dtype):
            return "text"
        if pd.api.types.is_integer_dtype(dtype):
            return "count"
        if pd.api.types.is_float_dtype(dtype):
            return "number"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "date"
    return "text"
