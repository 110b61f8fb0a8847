"""Export: formula neutralization, CSV/XLSX bytes, and the download links of ExportBar."""

from __future__ import annotations

import base64
import csv
import io

import altair as alt
import ipywidgets
import numpy as np
import openpyxl
import pandas as pd
import pytest

from salesops_widgets.widgets import (
    ChartView,
    DataTable,
    ExportBar,
    neutralize_formulas,
    to_csv_bytes,
    to_xlsx_bytes,
)

EVIL = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "plain", "a=b"]
SAFE = ["'=cmd|' /C calc'!A0", "'+1", "'-2", "'@SUM(A1:A9)", "'\t=1+1", "'\r=1+1", "plain", "a=b"]


def _frame():
    return pd.DataFrame(
        {"name": EVIL, "amount": [-2.0, -1.5, 0.0, 3.0, 1e6, -7.0, np.nan, 2.0], "n": range(8)}
    )


def test_neutralize_formulas_prefixes_text_only():
    frame = _frame()
    before = frame.copy()
    out = neutralize_formulas(frame)
    assert out["name"].tolist() == SAFE
    pd.testing.assert_series_equal(out["amount"], frame["amount"])  # negative numbers untouched
    pd.testing.assert_series_equal(out["n"], frame["n"])
    pd.testing.assert_frame_equal(frame, before)  # the input is not changed


def test_neutralize_formulas_on_missing_categories_and_headers():
    frame = pd.DataFrame(
        {"=HYPERLINK(x)": ["a", None], "tier": pd.Categorical(["-top", "mid"], ordered=True)}
    )
    out = neutralize_formulas(frame)
    assert list(out.columns) == ["'=HYPERLINK(x)", "tier"]
    assert pd.isna(out.iloc[1, 0])
    assert out["tier"].tolist() == ["'-top", "mid"]


def test_csv_bytes_read_back():
    data = to_csv_bytes(_frame())
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(rows) == 9  # the CR inside a cell did not split a row
    assert rows[0] == ["name", "amount", "n"]
    assert [r[0] for r in rows[1:]] == SAFE
    assert rows[1][1] == "-2.0"


def test_xlsx_round_trip_shows_the_neutralized_text():
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx_bytes(_frame())))
    sheet = book.active
    names = [sheet.cell(row=r, column=1) for r in range(2, 10)]
    # XML turns a CR into a LF on reading; what matters is the apostrophe in front
    assert [c.value.replace("\n", "\r") for c in names] == SAFE
    assert all(c.data_type == "s" for c in names)  # text, never a formula ("f")
    assert sheet.cell(row=2, column=2).value == -2  # numbers stay numbers
    assert sheet.cell(row=2, column=2).data_type == "n"


def _decode(href: str) -> bytes:
    return base64.b64decode(href.split(",", 1)[1])


def _chart_view():
    frame = pd.DataFrame({"region": ["EMEA", "APAC"], "n": [1, 2]})
    return ChartView(alt.Chart(frame).mark_bar().encode(x="region", y="n"))


def test_export_bar_links_hold_the_current_table_and_chart():
    table = DataTable(_frame(), sort_by="n", ascending=False)
    bar = ExportBar(table, _chart_view(), name="Deals <EMEA>")
    assert bar.prepare("csv") == "Deals-EMEA.csv"
    bar.prepare("xlsx")
    bar.prepare("png")
    bar.prepare("svg")
    links = bar.links
    assert links["Deals-EMEA.csv"].startswith("data:text/csv;charset=utf-8;base64,")
    assert _decode(links["Deals-EMEA.csv"]) == to_csv_bytes(table.sorted_data())
    rows = list(csv.reader(io.StringIO(_decode(links["Deals-EMEA.csv"]).decode("utf-8-sig"))))
    assert rows[1][2] == "7"  # in the table's order: largest n first
    assert _decode(links["Deals-EMEA.png"]).startswith(b"\x89PNG")
    assert _decode(links["Deals-EMEA.svg"]).startswith(b"<svg")
    assert _decode(links["Deals-EMEA.xlsx"]).startswith(b"PK")
    html = bar._links.value
    assert 'download="Deals-EMEA.csv"' in html and 'href="data:text/csv' in html


def test_links_are_cleared_when_what_they_hold_changes():
    table, chart = DataTable(_frame()), _chart_view()
    bar = ExportBar(table, chart)
    bar.prepare("csv")
    assert bar.links
    table.sort_by = "amount"
    assert bar.links == {} and bar._links.value == ""
    bar.prepare("svg")
    chart.chart = chart.chart.properties(title="new")
    assert bar.links == {}


def test_only_the_buttons_that_apply_are_shown():
    bar = ExportBar(table=DataTable(_frame()))
    labels = [c.description for c in bar._row.children if isinstance(c, ipywidgets.Button)]
    assert labels == ["CSV", "Excel"]


def test_no_chart_is_a_friendly_message():
    bar = ExportBar(chart=ChartView(None))
    bar.prepare("png")
    assert "no chart to export" in bar._links.value and bar.links == {}


def test_unknown_format():
    from salesops_widgets.errors import ParameterError

    with pytest.raises(ParameterError, match="csv"):
        ExportBar(DataTable(_frame())).payload("pdf")
