"""Dates given as parameters: the one parser every layer uses (notebooks, widgets, KPIs, CLI).

A leaf module: it imports nothing of the package but the exception family.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .errors import ParameterError

__all__ = ["date_parameter"]

_HINT = "write it as YYYY-MM-DD"


def date_parameter(value: Any, name: str, *, hint: str = _HINT) -> _dt.date | None:
    """A date parameter as a ``datetime.date``; None when it is empty.

    Accepts a date, a datetime or pandas Timestamp (its date), an ISO ``YYYY-MM-DD`` string
    (surrounding spaces ignored), and ``None``, ``""``, NaN or NaT for "not given".

    Raises
    ------
    ParameterError
        ``"{name}={value!r} is not a date; {hint}."`` for anything else.

    Examples
    --------
    >>> date_parameter(" 2026-09-30 ", "as_of")
    datetime.date(2026, 9, 30)
    >>> date_parameter("", "period start") is None
    True
    """
    if value is None or (isinstance(value, str) and not value.strip()) or _is_nat(value):
        return None
    if isinstance(value, _dt.datetime):  # also pandas.Timestamp
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ParameterError(f"{name}={value!r} is not a date; {hint}.") from None


def _is_nat(value: Any) -> bool:
    """True for float NaN and pandas' NaT (both unequal to themselves)."""
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False
