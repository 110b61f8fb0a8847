"""Every file in tests/fixtures/bad/ gives either a SalesOpsError whose message names the file and
the fix, or a quality report with counted exclusions: never another exception type.

New files dropped into the folder are covered by the parametrized tests automatically; the
specific tests below pin the hand-counted outcome of each known file.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from _helpers import (
    BAD,
    as_date,
    assert_invariant,
    excluded,
    flagged,
    rows_by_id,
    status_summary,
    to_pandas,
)

from salesops_widgets import load, validate
from salesops_widgets.errors import (
    DataSourceError,
    NoUsableDataError,
    SalesOpsError,
    SchemaError,
)

BAD_INPUTS = sorted(p for p in BAD.iterdir() if not p.name.startswith("."))


def _outcome(func, path):
    """Run func(path); return the result or the SalesOpsError. Any other exception fails."""
    try:
        return func(path)
    except SalesOpsError as err:
        return err
    except Exception as err:  # pragma: no cover - the failure message is the point
        pytest.fail(
            f"{func.__name__}({path.name}) raised {type(err).__name__}, not a SalesOpsError: {err}"
        )


def _check_error(err: SalesOpsError, path) -> None:
    message = str(err)
    assert path.name in message, f"message does not name the file: {message!r}"
    # a message that only names the file says nothing about the fix
    assert len(message) > len(path.name) + 30, message
    assert "Traceback" not in message


@pytest.mark.parametrize("path", BAD_INPUTS, ids=lambda p: p.name)
def test_validate_gives_report_or_sales_ops_error(path):
    result = _outcome(validate, path)
    if isinstance(result, SalesOpsError):
        _check_error(result, path)
        return
    assert_invariant(result)
    assert "opportunities" in result.tables
    if not result.usable:
        return
    t = result.tables["opportunities"]
    assert t.rows_used > 0


@pytest.mark.parametrize("path", BAD_INPUTS, ids=lambda p: p.name)
def test_load_gives_data_or_sales_ops_error(path):
    result = _outcome(load, path)
    if isinstance(result, SalesOpsError):
        _check_error(result, path)
        return
    assert result.report.usable
    assert_invariant(result.report)
    assert len(to_pandas(result.opportunities)) == result.report.tables["opportunities"].rows_used


# -------------------------------------------------------------------------------------------------
# Fatal inputs
# -------------------------------------------------------------------------------------------------


def test_empty_file():
    for func in (load, validate):
        with pytest.raises(DataSourceError) as err:
            func(BAD / "empty.csv")
        assert "empty.csv" in str(err.value)
        assert "empty" in str(err.value).replace("empty.csv", "").lower()


def test_header_only():
    with pytest.raises(NoUsableDataError) as err:
        load(BAD / "header_only.csv")
    assert "header_only.csv" in str(err.value)
    report = validate(BAD / "header_only.csv")
    assert report.usable is False
    t = report.tables["opportunities"]
    assert (t.rows_read, t.rows_used, t.rows_excluded) == (0, 0, 0)


def test_missing_required_column():
    # the amount column is called "value" in this file
    for func in (load, validate):
        with pytest.raises(SchemaError) as err:
            func(BAD / "missing_column.csv")
        message = str(err.value)
        assert "missing_column.csv" in message
        assert "amount" in message
        assert "tables.opportunities.columns.amount" in message
        assert "value" in message  # the columns found are listed


def test_wrong_delimiter_reads_as_one_column():
    # a semicolon export re-saved by Excel in a comma locale: the lines with a decimal comma were
    # quoted whole, so every reader (DuckDB's sniffer included) sees a single column
    for func in (load, validate):
        with pytest.raises(SchemaError) as err:
            func(BAD / "wrong_delimiter.csv")
        message = str(err.value)
        assert "wrong_delimiter.csv" in message
        assert "delimiter" in message.lower()


def test_header_and_rows_with_different_delimiters():
    # header separated by "|", rows by ",": no column is named opportunity_id
    with pytest.raises(SchemaError) as err:
        validate(BAD / "header_delimiter_mismatch.csv")
    assert "header_delimiter_mismatch.csv" in str(err.value)
    assert "opportunity_id" in str(err.value)


# -------------------------------------------------------------------------------------------------
# Inputs that load, with counted problems
# -------------------------------------------------------------------------------------------------


def test_semicolon_file_is_sniffed():
    # a plain semicolon-delimited file: DuckDB's sniffer finds the delimiter. A reader without a
    # sniffer must instead raise a SchemaError that names the delimiter.
    try:
        data = load(BAD / "semicolon.csv")
    except SchemaError as err:
        assert "delimiter" in str(err).lower() and "semicolon.csv" in str(err)
        return
    t = data.report.tables["opportunities"]
    assert (t.rows_read, t.rows_used) == (4, 4)
    counts, amounts = status_summary(data)
    assert counts == {"won": 2, "lost": 1, "open": 1}
    assert amounts == pytest.approx({"won": 9500.0, "lost": 9000.0, "open": 20000.0})
    assert rows_by_id(data.opportunities)["S-2"]["opportunity_name"] == "Müller Logistik, Hamburg"


def test_utf8_bom_and_crlf():
    data = load(BAD / "utf8_bom.csv")
    t = data.report.tables["opportunities"]
    assert (t.rows_read, t.rows_used) == (3, 3)
    assert set(rows_by_id(data.opportunities)) == {"B-1", "B-2", "B-3"}
    assert rows_by_id(data.opportunities)["B-3"]["stage"] == "open"  # no trailing \r


def test_latin1_file_is_read_with_a_warning():
    data = load(BAD / "latin1.csv")
    names = {k: r["opportunity_name"] for k, r in rows_by_id(data.opportunities).items()}
    assert names == {
        "L-1": "Société Générale",
        "L-2": "Müller Logistik GmbH",
        "L-3": "Ørsted A/S",
        "L-4": "Café Crème SARL",
    }
    warnings = " ".join(data.report.warnings)
    assert "latin1.csv" in warnings
    assert "latin" in warnings.lower()
    assert data.report.tables["opportunities"].rows_used == 4


def test_text_amounts():
    report = validate(BAD / "text_amount.csv")
    # T-4 "TBD" and T-5 "ten thousand" do not parse; T-6 is empty
    assert excluded(report, "opportunities") == {"unparseable_number": 2, "missing_required": 1}
    t = report.tables["opportunities"]
    assert (t.rows_read, t.rows_used) == (7, 4)
    examples = " ".join(t.examples["unparseable_number"])
    assert "TBD" in examples or "T-4" in examples
    rows = rows_by_id(load(BAD / "text_amount.csv").opportunities)
    assert {k: float(r["amount"]) for k, r in rows.items()} == {
        "T-1": 1234.5,  # "$1,234.50"
        "T-2": 2000.0,  # "€2,000"
        "T-3": 3000.0,  # " 3000 "
        "T-7": 500.0,  # "£500"
    }


def test_mixed_dates_with_iso_only():
    # the canonical mapping has no date_formats: only ISO parses.
    # created_date (required): D-2 "03/15/2025", D-3 "15.03.2025", D-7 "2025-13-45" -> excluded
    # close_date (optional): D-5 "04/30/2025", D-6 "30.04.2025" -> set empty, flagged
    report = validate(BAD / "mixed_dates.csv")
    assert excluded(report, "opportunities") == {"unparseable_date": 3}
    assert flagged(report, "opportunities") == {"unparseable_date": 2}
    data = load(BAD / "mixed_dates.csv")
    rows = rows_by_id(data.opportunities)
    assert set(rows) == {"D-1", "D-4", "D-5", "D-6"}
    assert as_date(rows["D-4"]["created_date"]) == dt.date(2025, 2, 1)  # ISO timestamp
    assert as_date(rows["D-5"]["close_date"]) is None


def test_duplicate_ids():
    report = validate(BAD / "duplicate_ids.csv")
    # X-1 twice, X-3 three times: 1 + 2 rows dropped
    assert excluded(report, "opportunities") == {"duplicate_id": 3}
    data = load(BAD / "duplicate_ids.csv")
    rows = rows_by_id(data.opportunities)
    # the copy with the earliest created_date is kept: X-1 150 (2025-01-05), X-3 300 (2025-01-08)
    assert {k: float(r["amount"]) for k, r in rows.items()} == {
        "X-1": 150.0,
        "X-2": 200.0,
        "X-3": 300.0,
    }


def test_formula_text():
    report = validate(BAD / "formula_text.csv")
    # F-5's amount is a formula: not a number -> excluded
    assert excluded(report, "opportunities") == {"unparseable_number": 1}
    # F-1 "=HYPERLINK(...)", F-2 "+cmd...", F-3 "@SUM(...)", F-4 "-2 seats downgrade" (any text
    # starting with = + - @, the OWASP CSV-injection rule); F-6 "Plain name" is fine
    assert flagged(report, "opportunities") == {"formula_text": 4}
    rows = rows_by_id(load(BAD / "formula_text.csv").opportunities)
    # kept as text, not evaluated
    assert rows["F-1"]["opportunity_name"].startswith("=HYPERLINK(")


@pytest.mark.parametrize(
    ("error", "says", "not_says"),
    [
        (duckdb.OutOfMemoryException("could not allocate block"), "ran out of memory", "Fix that"),
        (
            duckdb.InvalidInputException("Invalid unicode detected in segment statistics update"),
            "engine error",
            "Fix that line",
        ),
        (
            duckdb.ConversionException("Could not convert string 'x' to INT64 on line 12"),
            "Fix that line",
            "engine error",
        ),
    ],
)
def test_engine_errors_are_not_blamed_on_the_file(sample_dirs, monkeypatch, error, says, not_says):
    from salesops_widgets.data import _load

    real = _load._load_table

    def fail(table, ctx):  # the engine fails on the line items, as it did on 107M rows
        if table == "line_items":
            raise error
        real(table, ctx)

    monkeypatch.setattr(_load, "_load_table", fail)
    with pytest.raises(DataSourceError) as info:
        load(sample_dirs["default"])
    message = str(info.value)
    assert says in message and not_says not in message
    assert "line_items" in message  # the table being validated
    if says != "Fix that line":  # an engine problem names the setting to change
        assert "SALESOPS_DUCKDB_MEMORY" in message
