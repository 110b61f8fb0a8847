"""DataTable: sorting on raw values, formatting, escaping, small-n rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import NO_DEALS, DataTable, EmptyState


def _frame():
    return pd.DataFrame(
        {
            "segment": ["A", "B", "C", "D", "E"],
            "amount": [9.0, 10.0, 100.0, 2.0, np.nan],
            "win_rate": [0.3, 0.5, 0.25, 0.1, 0.4],
            "win_rate_low": [0.2, 0.4, 0.1, 0.01, 0.3],
            "small_n": [False, False, True, False, False],
        }
    )


def _order(html: str, texts: list[str]) -> list[int]:
    return [html.index(f">{t}<") for t in texts]


def test_sorts_on_raw_values_not_formatted_text():
    table = DataTable(_frame(), currency="USD", sort_by="amount")
    # as text, "$9" > "$2" > "$100" > "$10"; as numbers 100 > 10 > 9 > 2, NaN last
    assert table.view()["amount"].tolist()[:4] == [100.0, 10.0, 9.0, 2.0]
    assert np.isnan(table.view()["amount"].iloc[4])
    html = table._table.value
    positions = _order(html, ["$100", "$10", "$9", "$2", "–"])
    assert positions == sorted(positions)
    table.ascending = True
    assert table.view()["amount"].tolist()[:4] == [2.0, 9.0, 10.0, 100.0]
    assert np.isnan(table.view()["amount"].iloc[4])  # missing stays last


def test_formats_percent_money_and_missing():
    html = DataTable(_frame(), currency="USD").to_static_html()
    for text in ("$9", "$10", "30.0%", "50.0%", "20.0%", ">–<"):
        assert text in html
    assert ">small n<" not in html and ">small_n<" not in html  # marking column hidden


def test_explicit_formats_win_over_guesses():
    frame = pd.DataFrame({"x": [0.5]})
    assert ">0.5<" in DataTable(frame).to_static_html()
    assert ">50.0%<" in DataTable(frame, formats={"x": "percent"}).to_static_html()


def test_small_n_rows_are_greyed_and_their_rates_hidden():
    table = DataTable(_frame(), currency="USD")
    rows = table._table.value.split("<tr")[2:]  # skip the header row
    small = rows[2]  # segment C
    assert 'class="salesops-small-n"' in small
    assert "too few to say" in small and ">25.0%<" not in small
    assert ">10.0%<" in small  # the interval bound is still shown
    assert "$100" in small  # not a rate: shown
    assert all("salesops-small-n" not in r for i, r in enumerate(rows) if i != 2)


def test_user_data_is_escaped():
    frame = pd.DataFrame({"<th>name": ["<script>alert(1)</script>", 'a"b']})
    html = DataTable(frame, title="<img src=x onerror=alert(1)>").to_static_html()
    assert "<script>" not in html and "<img" not in html and "<th>name" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&quot;b" in html


def test_controls_sort_the_table():
    table = DataTable(_frame())
    table._sort.value = "win_rate"
    assert table.sort_by == "win_rate"
    assert table.view()["segment"].tolist() == ["B", "E", "A", "C", "D"]
    table._order.value = True
    assert table.ascending and table.view()["segment"].tolist() == ["D", "C", "A", "E", "B"]


def test_sort_by_must_be_a_column_and_follows_new_data():
    table = DataTable(_frame(), sort_by="amount")
    with pytest.raises(ParameterError, match="not a column"):
        table.sort_by = "price"
    table.data = pd.DataFrame({"other": [1, 2]})
    assert table.sort_by is None


def test_empty_frame_shows_the_empty_state():
    table = DataTable(_frame().iloc[:0])
    empty = [c for c in table.children if isinstance(c, EmptyState)]
    assert empty and empty[0].message == NO_DEALS
    assert "No deals match" in table.to_static_html()


def test_max_rows_limits_the_view_not_the_export():
    table = DataTable(_frame(), max_rows=2, sort_by="win_rate")
    assert len(table.view()) == 2 and len(table.sorted_data()) == 5
    assert "Showing 2 of 5 rows" in table._table.value


def test_data_is_not_changed():
    frame = _frame()
    before = frame.copy()
    DataTable(frame, sort_by="amount", ascending=True)
    pd.testing.assert_frame_equal(frame, before)
