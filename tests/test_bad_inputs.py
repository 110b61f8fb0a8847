"""Every file in tests/fixtures/bad/ gives either a SalesOpsError whose message names the file and
the fix, or a quality report with counted exclusions: never another exception type.

New files dropped into the folder are covered by the parametrized tests automatically; the
specific tests below pin the hand-counted outcome of each known file.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from _helpers import (
    BAD,
    as_date,
    assert_invariant,
    assert_populations_add_up,
    column_counts,
    excluded,
    flagged,
    populations,
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


def test_missing_amount_column_loads_with_a_note_and_warnings():
    # the amount column is called "value" in this file, so there is no amount column. Amount is
    # not required: both rows (N-1 won, N-2 lost) are kept without an amount, and the report
    # says what cannot be computed without one.
    for func in (load, validate):
        result = func(BAD / "missing_column.csv")
        report = result if func is validate else result.report
        t = report.tables["opportunities"]
        assert (t.rows_read, t.rows_used, t.excluded) == (2, 2, {})
        note = " ".join(t.notes)
        assert "no amount column" in note and "kept" in note
        assert "bookings" in note and "velocity" in note  # what needs it
        # the one won deal has no amount: bookings and ASP cannot be computed
        assert report.warnings_for(["bookings", "asp"]) == [
            "the only won deal has no amount: bookings and ASP cannot be computed"
        ]
        assert report.warnings_for("bookings")[0] in report.all_warnings
        pops = populations(report)
        assert pops["bookings and ASP"] == (0, {"not won": 1, "won without an amount": 1})
        assert pops["win rate"] == (2, {})  # the win rate needs no amount
        assert_populations_add_up(report)
    counts, _ = status_summary(load(BAD / "missing_column.csv"))
    assert counts == {"won": 1, "lost": 1}
    rows = rows_by_id(load(BAD / "missing_column.csv").opportunities)
    assert all(pd.isna(r["amount"]) for r in rows.values())  # empty, not 0


def _without_column(tmp_path, drop: str, rename: str | None = None):
    """missing_column.csv (amount as "value") with one more column dropped or renamed."""
    frame = pd.read_csv(BAD / "missing_column.csv", dtype=str)
    frame = frame.rename(columns={drop: rename}) if rename else frame.drop(columns=drop)
    path = tmp_path / f"no_{drop}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("drop", "rename"),
    [("opportunity_id", "deal_id"), ("stage", None)],
    ids=["no opportunity_id", "no stage and no is_closed"],
)
def test_missing_required_column(tmp_path, drop, rename):
    # an opportunity_id column is still required, and so is a status: a stage column or
    # is_closed/is_won. Without one, no row can be used: a SchemaError that names the column,
    # the mapping key and the columns found.
    path = _without_column(tmp_path, drop, rename)
    for func in (load, validate):
        with pytest.raises(SchemaError) as err:
            func(path)
        message = str(err.value)
        assert path.name in message
        assert drop in message
        assert f"tables.opportunities.columns.{drop}" in message
        assert "value" in message  # the columns found are listed


def test_missing_required_column_of_line_items(tmp_path):
    # line_items still require quantity: a folder whose line items have none is a SchemaError
    folder = tmp_path / "crm"
    folder.mkdir()
    pd.read_csv(BAD / "missing_column.csv", dtype=str).rename(columns={"value": "amount"}).to_csv(
        folder / "opportunities.csv", index=False
    )
    pd.DataFrame(
        {"opportunity_id": ["N-1"], "product_id": ["P-1"], "list_price": ["10"], "price": ["9"]}
    ).to_csv(folder / "line_items.csv", index=False)
    with pytest.raises(SchemaError) as err:
        validate(folder)
    message = str(err.value)
    assert "line_items" in message and "quantity" in message and "invoice_price" in message
    assert "tables.line_items.columns.quantity" in message


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
    # T-4 "TBD" and T-5 "ten thousand" do not parse and T-6 is empty: amount is not required,
    # so all 7 rows are kept; the two unparseable ones are flagged and left empty
    assert excluded(report, "opportunities") == {}
    assert flagged(report, "opportunities") == {"unparseable_number": 2}
    t = report.tables["opportunities"]
    assert (t.rows_read, t.rows_used) == (7, 7)
    assert t.examples["flag:unparseable_number"] == ["TBD", "ten thousand"]
    # per column, of the 7 rows read: amount empty once (T-6), unparseable twice (T-4, T-5)
    assert column_counts(report) == {("opportunities", "amount"): (1, 2)}
    pops = populations(report)
    # open: T-3 (3000), T-4 and T-5 (no amount) -> the open pipeline counts T-3 only
    assert pops["open pipeline and velocity"] == (
        1,
        {"closed": 4, "open without an amount": 2},
    )
    # won: T-1 and T-7, both with an amount; T-6 (lost, empty) is out of the value win rate
    assert pops["bookings and ASP"] == (2, {"not won": 5})
    assert pops["value win rate"] == (
        3,
        {"open": 3, "closed with no amount, or $0 (lost deals often are)": 1},
    )
    assert_populations_add_up(report)
    rows = rows_by_id(load(BAD / "text_amount.csv").opportunities)
    amounts = {k: float(r["amount"]) for k, r in rows.items()}
    assert {k: v for k, v in amounts.items() if not pd.isna(v)} == {
        "T-1": 1234.5,  # "$1,234.50"
        "T-2": 2000.0,  # "€2,000"
        "T-3": 3000.0,  # " 3000 "
        "T-7": 500.0,  # "£500"
    }
    assert sorted(k for k, v in amounts.items() if pd.isna(v)) == ["T-4", "T-5", "T-6"]


def test_mixed_dates_with_iso_only():
    # the canonical mapping has no date_formats: only ISO parses. No date is required now:
    # created_date: D-2 "03/15/2025", D-3 "15.03.2025", D-7 "2025-13-45" -> set empty, flagged
    # close_date: D-5 "04/30/2025", D-6 "30.04.2025" -> set empty, flagged
    # five distinct rows -> unparseable_date 5, and every row is kept
    report = validate(BAD / "mixed_dates.csv")
    assert excluded(report, "opportunities") == {}
    assert flagged(report, "opportunities") == {"unparseable_date": 5}
    # per column, of the 7 rows read (D-7 has an empty close_date)
    assert column_counts(report) == {
        ("opportunities", "created_date"): (0, 3),
        ("opportunities", "close_date"): (1, 2),
    }
    # time to close counts D-1, D-4 and D-6 (open, censored); D-2, D-3, D-7 have no created
    # date; D-5 is won without a close date
    assert populations(report)["time to close"] == (
        3,
        {"no created date": 3, "closed without a close date": 1},
    )
    data = load(BAD / "mixed_dates.csv")
    rows = rows_by_id(data.opportunities)
    assert set(rows) == {f"D-{i}" for i in range(1, 8)}
    assert as_date(rows["D-4"]["created_date"]) == dt.date(2025, 2, 1)  # ISO timestamp
    assert as_date(rows["D-5"]["close_date"]) is None
    assert as_date(rows["D-2"]["created_date"]) is None
    assert as_date(rows["D-2"]["close_date"]) == dt.date(2025, 4, 1)  # its other date is kept


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
    # F-5's amount is a formula: not a number -> kept without an amount, flagged
    assert excluded(report, "opportunities") == {}
    # F-1 "=HYPERLINK(...)", F-2 "+cmd...", F-3 "@SUM(...)", F-4 "-2 seats downgrade" (any text
    # starting with = + - @, the OWASP CSV-injection rule); F-6 "Plain name" is fine. F-5's
    # formula is in a number column: unparseable, not formula text
    assert flagged(report, "opportunities") == {"unparseable_number": 1, "formula_text": 4}
    examples = report.tables["opportunities"].examples["flag:unparseable_number"]
    assert len(examples) == 1 and examples[0].startswith("=HYPERLINK(")
    rows = rows_by_id(load(BAD / "formula_text.csv").opportunities)
    # kept as text, not evaluated
    assert rows["F-1"]["opportunity_name"].startswith("=HYPERLINK(")
    assert pd.isna(rows["F-5"]["amount"])


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
