"""Value formatting: the one place numbers become text."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import format_delta, format_value
from salesops_widgets.widgets._format import guess_kind


@pytest.mark.parametrize(
    ("value", "kind", "kwargs", "expected"),
    [
        (0.3021, "percent", {}, "30.2%"),
        (1234567.4, "money", {"currency": "USD"}, "$1,234,567"),
        (1234567.4, "money", {"currency": "USD", "compact": True}, "$1.2M"),
        (-950.0, "money", {"currency": "EUR"}, "-€950"),
        (1500, "money", {"currency": "CHF"}, "CHF 1,500"),
        (1500, "money", {}, "1,500"),
        (1, "days", {}, "1 day"),
        (45.4, "days", {}, "45 days"),
        (20000, "count", {}, "20,000"),
        (1.234, "ratio", {}, "1.23"),
        (dt.date(2025, 3, 1), "date", {}, "2025-03-01"),
        (pd.Timestamp("2025-03-01 12:00"), "date", {}, "2025-03-01"),
        ("<b>", "text", {}, "<b>"),  # escaping is the HTML layer's job
    ],
)
def test_format_value(value, kind, kwargs, expected):
    assert format_value(value, kind, **kwargs) == expected


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, pd.NaT])
@pytest.mark.parametrize("kind", ["money", "percent", "days", "count", "ratio", "date", "text"])
def test_missing_is_a_dash(missing, kind):
    assert format_value(missing, kind) == "–"


def test_format_delta():
    assert format_delta(0.015, "percent") == "+1.5 pts"
    assert format_delta(-12_000, "money", currency="USD") == "-$12.0K"
    assert format_delta(3, "days") == "+3 days"
    assert format_delta(0, "count") == "±0"
    assert format_delta(None, "count") == "–"


def test_unknown_kind():
    with pytest.raises(ParameterError, match="percent"):
        format_value(1, "furlongs")


def test_guess_kind():
    assert guess_kind("win_rate_low") == "percent"
    assert guess_kind("km_median_low") == "days"
    assert guess_kind("median_cycle_days_won") == "days"
    assert guess_kind("weighted_pipeline") == "money"
    assert guess_kind("created_date") == "date"
    assert guess_kind("whatever", np.dtype("int64")) == "count"
    assert guess_kind("flag", np.dtype("bool")) == "text"
