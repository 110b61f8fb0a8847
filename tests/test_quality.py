"""Data-quality rules: each exclusion and flag rule of _schema triggered by a tiny hand-made frame,
first-rule attribution, metric exclusions, the report API, and the rows-read invariant on every
fixture and sample.

Each case says in a comment which rows trigger the rule; the expected count is that hand count.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _helpers import (
    BAD,
    CUSTOM,
    HUBSPOT,
    SALESFORCE,
    assert_invariant,
    excluded,
    flagged,
    metric_exclusion_rows,
    rows_by_id,
    small_frames,
    to_pandas,
)

from salesops_widgets import load, validate
from salesops_widgets.data._schema import EXCLUDE_RULES, FLAG_RULES
from salesops_widgets.errors import SalesOpsError

AS_OF = "2025-06-30"
OPP_COLS = ["opportunity_id", "created_date", "close_date", "amount", "stage"]


def opps(*rows: dict) -> pd.DataFrame:
    """Opportunities as strings; every row starts from a valid won deal and overrides some cells."""
    base = {
        "opportunity_id": None,
        "created_date": "2025-01-10",
        "close_date": "2025-02-10",
        "amount": "100",
        "stage": "won",
    }
    records = []
    for i, row in enumerate(rows, start=1):
        record = {**base, "opportunity_id": f"O-{i}", **row}
        records.append(record)
    columns = list(dict.fromkeys(OPP_COLS + [k for r in records for k in r]))
    return pd.DataFrame(records, columns=columns).astype(object)


def frame(columns: list[str], *rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns).astype(object)


def history(*rows) -> pd.DataFrame:
    return frame(["opportunity_id", "stage", "entered_at"], *rows)


def items(*rows) -> pd.DataFrame:
    return frame(["opportunity_id", "product_id", "quantity", "list_price", "invoice_price"], *rows)


# -------------------------------------------------------------------------------------------------
# One case per rule: (source, table, expected count)
# -------------------------------------------------------------------------------------------------

EXCLUDE_CASES = {
    # O-1 no id, O-2 no created_date, O-3 no amount; O-4 fine -> 3
    "missing_required": (
        {
            "opportunities": opps(
                {"opportunity_id": None}, {"created_date": None}, {"amount": None}, {}
            )
        },
        "opportunities",
        3,
    ),
    # O-1 "abc", O-2 "1.2.3"; O-3 fine -> 2
    "unparseable_number": (
        {"opportunities": opps({"amount": "abc"}, {"amount": "1.2.3"}, {})},
        "opportunities",
        2,
    ),
    # O-1 "yesterday", O-2 "2025-02-30" (no such day); O-3 fine -> 2
    "unparseable_date": (
        {"opportunities": opps({"created_date": "yesterday"}, {"created_date": "2025-02-30"}, {})},
        "opportunities",
        2,
    ),
    # O-1 "on hold", O-2 "Closed - Duplicate": not in the canonical stage map, and no
    # is_closed/is_won -> 2; O-3 "Negotiation" is in the map
    "unknown_stage": (
        {
            "opportunities": opps(
                {"stage": "on hold"}, {"stage": "Closed - Duplicate"}, {"stage": "Negotiation"}
            )
        },
        "opportunities",
        2,
    ),
    # base currency USD (3 of 5 rows); O-4 EUR and O-5 GBP, no currency_rates table -> 2
    "currency_without_rate": (
        {
            "opportunities": opps(
                {"currency": "USD"},
                {"currency": "USD"},
                {"currency": "USD"},
                {"currency": "EUR"},
                {"currency": "GBP"},
            )
        },
        "opportunities",
        2,
    ),
    # O-1 amount -100; O-2 amount 0 is not negative -> 1
    "negative_amount": (
        {"opportunities": opps({"amount": "-100"}, {"amount": "0"}, {})},
        "opportunities",
        1,
    ),
    # O-1 closes 2025-02-01, created 2025-03-01; O-2 closes the day it was created (fine) -> 1
    "close_before_created": (
        {
            "opportunities": opps(
                {"created_date": "2025-03-01", "close_date": "2025-02-01"},
                {"created_date": "2025-03-01", "close_date": "2025-03-01"},
            )
        },
        "opportunities",
        1,
    ),
    # O-2 is excluded (amount "abc"); its 2 stage-history rows -> 2
    "parent_excluded": (
        {
            "opportunities": opps({}, {"amount": "abc"}),
            "stage_history": history(
                ("O-1", "won", "2025-01-10"),
                ("O-2", "prospecting", "2025-01-10"),
                ("O-2", "won", "2025-02-10"),
            ),
        },
        "stage_history",
        2,
    ),
    # line items of O-404 and O-405, which are in no opportunity row -> 2
    "unmatched_opportunity": (
        {
            "opportunities": opps({}),
            "line_items": items(
                ("O-1", "P-1", "1", "10", "9"),
                ("O-404", "P-1", "1", "10", "9"),
                ("O-405", "P-1", "2", "10", "9"),
            ),
        },
        "line_items",
        2,
    ),
    # O-1 three times: two of them excluded; O-2 once -> 2
    "duplicate_id": (
        {
            "opportunities": opps(
                {"opportunity_id": "O-1", "created_date": "2025-01-10"},
                {"opportunity_id": "O-1", "created_date": "2025-01-05"},
                {"opportunity_id": "O-1", "created_date": "2025-01-20"},
                {"opportunity_id": "O-2"},
            )
        },
        "opportunities",
        2,
    ),
}

FLAG_CASES = {
    # O-1 list_amount "lots", O-2 probability "high" (optional: set empty, row kept) -> 2
    "unparseable_number": (
        {
            "opportunities": opps(
                {"list_amount": "lots", "probability": "0.5"},
                {"list_amount": "100", "probability": "high"},
                {"list_amount": "100", "probability": "0.5"},
            )
        },
        "opportunities",
        2,
    ),
    # O-1 close_date "someday" (optional: set empty, row kept) -> 1
    "unparseable_date": (
        {"opportunities": opps({"close_date": "someday"}, {})},
        "opportunities",
        1,
    ),
    # O-1 amount 120 > list 100; O-2 100 = 100 is fine -> 1
    "net_above_list": (
        {
            "opportunities": opps(
                {"amount": "120", "list_amount": "100"}, {"amount": "100", "list_amount": "100"}
            )
        },
        "opportunities",
        1,
    ),
    # accounts has A-1 only: O-1 and O-2, O-3 (A-3) -> 3; O-5 has no account (not unmatched)
    "unmatched_account": (
        {
            "opportunities": opps(
                {"account_id": "A-2"},
                {"account_id": "A-2"},
                {"account_id": "A-3"},
                {"account_id": "A-1"},
                {"account_id": None},
            ),
            "accounts": frame(["account_id", "account_name"], ("A-1", "Acme")),
        },
        "opportunities",
        3,
    ),
    # reps has R-1 only: O-2 (R-9) -> 1
    "unmatched_owner": (
        {
            "opportunities": opps({"owner_id": "R-1"}, {"owner_id": "R-9"}),
            "reps": frame(["owner_id", "owner_name"], ("R-1", "Ada")),
        },
        "opportunities",
        1,
    ),
    # products has P-1 only: line items with P-8 twice -> 2
    "unmatched_product": (
        {
            "opportunities": opps({}),
            "line_items": items(
                ("O-1", "P-1", "1", "10", "9"),
                ("O-1", "P-8", "1", "10", "9"),
                ("O-1", "P-8", "1", "10", "9"),
            ),
            "products": frame(["product_id", "product_name"], ("P-1", "Platform")),
        },
        "line_items",
        2,
    ),
    # as_of 2025-06-30: O-1 open closing 2025-05-01 -> 1; O-2 open closing later, O-3 open with no
    # close date, O-4 won in the past are fine
    "open_close_date_past": (
        {
            "opportunities": opps(
                {"stage": "open", "close_date": "2025-05-01"},
                {"stage": "open", "close_date": "2025-07-01"},
                {"stage": "open", "close_date": None},
                {"stage": "won", "close_date": "2025-05-01"},
            )
        },
        "opportunities",
        1,
    ),
    # text starting with =, @, + or - (the OWASP CSV-injection rule, digits after the sign
    # included: "-2+3+cmd|..." runs too): O-1..O-6 -> 6; "Acme = Globex" does not start with one
    "formula_text": (
        {
            "opportunities": opps(
                {"opportunity_name": '=HYPERLINK("http://x","y")'},
                {"opportunity_name": "@SUM(A1:A2)"},
                {"opportunity_name": "+cmd|' /C calc'!A0"},
                {"opportunity_name": "-drop"},
                {"opportunity_name": "-5% promo"},
                {"opportunity_name": "+44 20 7946 0958"},
                {"opportunity_name": "Acme = Globex"},
            )
        },
        "opportunities",
        6,
    ),
    # base USD; O-3 in EUR converted with the EUR rate -> 1
    "mixed_currencies": (
        {
            "opportunities": opps(
                {"currency": "USD"}, {"currency": "USD"}, {"currency": "EUR", "amount": "90"}
            ),
            "currency_rates": frame(["currency", "rate"], ("USD", "1"), ("EUR", "0.9")),
        },
        "opportunities",
        1,
    ),
}


def test_every_rule_has_a_case():
    assert set(EXCLUDE_CASES) == set(EXCLUDE_RULES)
    assert set(FLAG_CASES) == set(FLAG_RULES)


@pytest.mark.parametrize("rule", list(EXCLUDE_RULES))
def test_exclude_rule(rule):
    source, table, expected = EXCLUDE_CASES[rule]
    report = validate(source, as_of=AS_OF)
    assert excluded(report, table) == {rule: expected}
    t = report.tables[table]
    assert t.rows_read == len(source[table])
    assert t.rows_used == t.rows_read - expected
    assert 1 <= len(t.examples.get(rule, [])) <= 3
    assert_invariant(report)


@pytest.mark.parametrize("rule", list(FLAG_RULES))
def test_flag_rule(rule):
    source, table, expected = FLAG_CASES[rule]
    report = validate(source, as_of=AS_OF)
    assert flagged(report, table) == {rule: expected}
    assert excluded(report, table) == {}
    t = report.tables[table]
    assert t.rows_used == t.rows_read == len(source[table])
    assert_invariant(report)


def test_unmatched_values_and_counts():
    source, _, _ = FLAG_CASES["unmatched_account"]
    report = validate(source, as_of=AS_OF)
    assert report.tables["opportunities"].unmatched["unmatched_account"] == {"A-2": 2, "A-3": 1}
    source, _, _ = FLAG_CASES["unmatched_product"]
    report = validate(source, as_of=AS_OF)
    assert report.tables["line_items"].unmatched["unmatched_product"] == {"P-8": 2}
    source, _, _ = EXCLUDE_CASES["unmatched_opportunity"]
    report = validate(source, as_of=AS_OF)
    assert report.tables["line_items"].unmatched["unmatched_opportunity"] == {
        "O-404": 1,
        "O-405": 1,
    }


def test_flag_rules_on_child_tables():
    # line item invoice 12 above list 10 -> net_above_list 1
    source = {
        "opportunities": opps({}),
        "line_items": items(("O-1", "P-1", "1", "10", "12"), ("O-1", "P-1", "1", "10", "10")),
    }
    report = validate(source, as_of=AS_OF)
    assert flagged(report, "line_items") == {"net_above_list": 1}
    # negative quantity on a line item -> negative_amount 1
    source["line_items"] = items(("O-1", "P-1", "-2", "10", "9"), ("O-1", "P-1", "2", "10", "9"))
    assert excluded(validate(source, as_of=AS_OF), "line_items") == {"negative_amount": 1}


def test_duplicate_id_on_accounts():
    # A-1 twice -> 1 excluded, 1 kept
    source = {
        "opportunities": opps({"account_id": "A-1"}),
        "accounts": frame(["account_id", "account_name"], ("A-1", "Acme"), ("A-1", "Acme Inc")),
    }
    report = validate(source, as_of=AS_OF)
    assert excluded(report, "accounts") == {"duplicate_id": 1}
    assert flagged(report, "opportunities") == {}


def test_duplicate_keeps_earliest_created():
    source, _, _ = EXCLUDE_CASES["duplicate_id"]
    frames = {"opportunities": source["opportunities"].assign(amount=["10", "20", "30", "40"])}
    rows = rows_by_id(load(frames, as_of=AS_OF).opportunities)
    assert float(rows["O-1"]["amount"]) == 20.0  # the copy created 2025-01-05
    assert len(rows) == 2


def test_excluded_values_are_examples():
    source, _, _ = EXCLUDE_CASES["unparseable_number"]
    examples = validate(source, as_of=AS_OF).tables["opportunities"].examples
    joined = " ".join(examples["unparseable_number"])
    assert "abc" in joined or "O-1" in joined


def test_optional_unparseable_values_become_null():
    source, _, _ = FLAG_CASES["unparseable_number"]
    rows = rows_by_id(load(source, as_of=AS_OF).opportunities)
    assert pd.isna(rows["O-1"]["list_amount"]) and float(rows["O-1"]["probability"]) == 0.5
    assert pd.isna(rows["O-2"]["probability"]) and float(rows["O-2"]["list_amount"]) == 100.0
    source, _, _ = FLAG_CASES["unparseable_date"]
    rows = rows_by_id(load(source, as_of=AS_OF).opportunities)
    assert pd.isna(rows["O-1"]["close_date"])


def test_mixed_currency_amounts_are_converted():
    source, _, _ = FLAG_CASES["mixed_currencies"]
    data = load(source, as_of=AS_OF)
    assert data.base_currency == "USD"
    # rate = units of EUR per 1 USD = 0.9, so 90 EUR = 100 USD
    assert float(rows_by_id(data.opportunities)["O-3"]["amount"]) == pytest.approx(100.0)


def test_base_currency_from_mapping():
    # mapping says EUR: the two USD rows have no rate -> excluded; EUR row used
    source, _, _ = FLAG_CASES["mixed_currencies"]
    source = {"opportunities": source["opportunities"]}
    mapping = {"name": "eur", "extends": "canonical", "base_currency": "EUR"}
    report = validate(source, mapping=mapping, as_of=AS_OF)
    assert excluded(report, "opportunities") == {"currency_without_rate": 2}


# -------------------------------------------------------------------------------------------------
# First failing rule wins
# -------------------------------------------------------------------------------------------------


def test_first_failing_rule_is_counted():
    source = {
        "opportunities": opps(
            # O-1 no id and a bad amount -> missing_required
            {"opportunity_id": None, "amount": "abc", "currency": "USD"},
            # O-2 bad amount and a bad date -> unparseable_number
            {"amount": "abc", "created_date": "nope", "currency": "USD"},
            # O-3 bad date and an unknown stage -> unparseable_date
            {"created_date": "nope", "stage": "on hold", "currency": "USD"},
            # O-4 unknown stage and negative -> unknown_stage
            {"stage": "on hold", "amount": "-5", "currency": "USD"},
            # O-5 EUR without rate and negative -> currency_without_rate
            {"currency": "EUR", "amount": "-5"},
            # O-6 negative and closed before created -> negative_amount
            {
                "amount": "-5",
                "created_date": "2025-03-01",
                "close_date": "2025-02-01",
                "currency": "USD",
            },
            # O-7 closed before created -> close_before_created
            {"created_date": "2025-03-01", "close_date": "2025-02-01", "currency": "USD"},
            # O-8, O-9, O-10 fine
            {"currency": "USD"},
            {"currency": "USD"},
            {"currency": "USD"},
        ),
        "stage_history": history(
            # O-2 is excluded, but entered_at is missing, an earlier rule -> missing_required
            ("O-2", "won", None),
            # O-2 excluded -> parent_excluded
            ("O-2", "won", "2025-01-10"),
            # O-404 does not exist, but the date is unparseable first -> unparseable_date
            ("O-404", "won", "nope"),
            # O-404 does not exist -> unmatched_opportunity
            ("O-404", "won", "2025-01-10"),
            ("O-8", "won", "2025-01-10"),
        ),
    }
    report = validate(source, as_of=AS_OF)
    assert excluded(report, "opportunities") == {
        "missing_required": 1,
        "unparseable_number": 1,
        "unparseable_date": 1,
        "unknown_stage": 1,
        "currency_without_rate": 1,
        "negative_amount": 1,
        "close_before_created": 1,
    }
    assert report.tables["opportunities"].rows_used == 3
    assert excluded(report, "stage_history") == {
        "missing_required": 1,
        "parent_excluded": 1,
        "unparseable_date": 1,
        "unmatched_opportunity": 1,
    }
    assert_invariant(report)


def test_duplicate_of_an_excluded_row_is_not_a_duplicate():
    # the earliest O-1 is excluded (closes before it was created); the other O-1 is then the
    # only usable copy and is kept
    source = {
        "opportunities": opps(
            {"opportunity_id": "O-1", "created_date": "2025-03-01", "close_date": "2025-02-01"},
            {"opportunity_id": "O-1", "created_date": "2025-03-05", "close_date": "2025-04-01"},
        )
    }
    report = validate(source, as_of=AS_OF)
    assert excluded(report, "opportunities") == {"close_before_created": 1}
    assert report.tables["opportunities"].rows_used == 1


def test_flags_count_only_used_rows():
    # formula text in an excluded row (bad amount) is not flagged
    source = {
        "opportunities": opps(
            {"opportunity_name": "=evil()", "amount": "abc"}, {"opportunity_name": "=evil()"}
        )
    }
    report = validate(source, as_of=AS_OF)
    assert excluded(report, "opportunities") == {"unparseable_number": 1}
    assert flagged(report, "opportunities") == {"formula_text": 1}


def test_empty_stage_without_status_columns():
    # no stage and no is_closed/is_won: nothing to decide the status from. The loader counts it
    # as missing_required (its example says "stage and is_closed empty"), not unknown_stage.
    source = {"opportunities": opps({"stage": None}, {"stage": ""}, {})}
    report = validate(source, as_of=AS_OF)
    assert excluded(report, "opportunities") == {"missing_required": 2}


def test_blank_required_cells_are_missing():
    # "" and whitespace-only are empty, like a missing value
    source = {"opportunities": opps({"amount": ""}, {"amount": "   "}, {"opportunity_id": " "}, {})}
    report = validate(source, as_of=AS_OF)
    assert excluded(report, "opportunities") == {"missing_required": 3}


# -------------------------------------------------------------------------------------------------
# Parsing details that decide counts
# -------------------------------------------------------------------------------------------------


def test_number_formats():
    source = {
        "opportunities": opps(
            {"amount": "$1,234.50"},  # 1234.5
            {"amount": " 2000 "},  # 2000
            {"amount": "€3,000"},  # 3000
            {"amount": "£1,000,000.25"},  # 1000000.25
        )
    }
    rows = rows_by_id(load(source, as_of=AS_OF).opportunities)
    assert {k: float(r["amount"]) for k, r in rows.items()} == {
        "O-1": 1234.5,
        "O-2": 2000.0,
        "O-3": 3000.0,
        "O-4": 1000000.25,
    }


def test_decimal_comma():
    source = {"opportunities": opps({"amount": "1.234,50"}, {"amount": "99,9"})}
    mapping = {"name": "eu", "extends": "canonical", "decimal_comma": True}
    rows = rows_by_id(load(source, mapping=mapping, as_of=AS_OF).opportunities)
    assert float(rows["O-1"]["amount"]) == 1234.5
    assert float(rows["O-2"]["amount"]) == pytest.approx(99.9)


def test_probability_in_percent_is_rescaled():
    # one value above 1 -> the whole column is in percent
    source = {
        "opportunities": opps({"probability": "50"}, {"probability": "1"}, {"probability": "0"})
    }
    rows = rows_by_id(load(source, as_of=AS_OF).opportunities)
    assert [float(rows[k]["probability"]) for k in ("O-1", "O-2", "O-3")] == [0.5, 0.01, 0.0]
    source = {"opportunities": opps({"probability": "0.5"}, {"probability": "1"})}
    rows = rows_by_id(load(source, as_of=AS_OF).opportunities)
    assert [float(rows[k]["probability"]) for k in ("O-1", "O-2")] == [0.5, 1.0]


def test_default_as_of_is_latest_created_or_closed():
    # latest created 2025-03-01; latest close of a closed deal 2025-04-15; the open deal's
    # expected close 2025-09-30 does not count
    source = {
        "opportunities": opps(
            {"created_date": "2025-03-01", "close_date": "2025-04-15", "stage": "won"},
            {"created_date": "2025-02-01", "close_date": "2025-03-01", "stage": "lost"},
            {"created_date": "2025-02-15", "close_date": "2025-09-30", "stage": "open"},
        )
    }
    assert load(source).as_of.isoformat() == "2025-04-15"


# -------------------------------------------------------------------------------------------------
# Metric exclusions
# -------------------------------------------------------------------------------------------------


def test_metric_exclusions():
    source = {
        "opportunities": opps(
            {"list_amount": "100", "probability": "1"},
            # O-2 won without close date -> cycle time
            {"close_date": None, "list_amount": "100", "probability": "1"},
            # O-3 no list amount -> discount
            {"stage": "lost", "list_amount": None, "probability": "0"},
            # O-4 open without probability -> weighted pipeline; list 0 -> discount
            {"stage": "open", "close_date": "2025-09-01", "list_amount": "0", "probability": None},
            {
                "stage": "open",
                "close_date": "2025-09-01",
                "list_amount": "50",
                "probability": "0.5",
            },
        )
    }
    report = validate(source, as_of=AS_OF)
    assert metric_exclusion_rows(report, "opportunities", "discount") == 2
    assert metric_exclusion_rows(report, "opportunities", "cycle") == 1
    assert metric_exclusion_rows(report, "opportunities", "weighted") == 1
    for m in report.tables["opportunities"].metric_exclusions:
        assert isinstance(m.metric, str) and isinstance(m.rows, int) and m.reason
    table = report.metric_exclusions_frame()
    assert isinstance(table, pd.DataFrame)
    assert {"metric", "rows", "reason"} <= set(table.columns)


def test_no_metric_exclusion_without_the_column():
    # no list_amount and no probability column: nothing to exclude from those metrics
    report = validate({"opportunities": opps({}, {"stage": "open", "close_date": "2025-09-01"})})
    assert metric_exclusion_rows(report, "opportunities", "discount") == 0
    assert metric_exclusion_rows(report, "opportunities", "weighted") == 0


# -------------------------------------------------------------------------------------------------
# The report object
# -------------------------------------------------------------------------------------------------


def test_report_frames_and_dict():
    report = load(small_frames()).report
    assert report.usable
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json
    summary = report.summary_frame()
    assert isinstance(summary, pd.DataFrame) and len(summary) == len(report.tables)
    issues = report.issues_frame()
    assert isinstance(issues, pd.DataFrame)
    # missing_required, unknown_stage, unmatched_account, parent_excluded: at least 4 rows
    assert len(issues) >= 4
    assert isinstance(report.warnings, list)


def test_header_only_is_unusable():
    report = validate(BAD / "header_only.csv")
    assert report.usable is False
    assert report.tables["opportunities"].rows_read == 0
    assert_invariant(report)


def test_all_rows_excluded_is_unusable():
    report = validate({"opportunities": opps({"amount": "abc"}, {"amount": None})})
    assert report.usable is False
    assert excluded(report, "opportunities") == {"unparseable_number": 1, "missing_required": 1}


# -------------------------------------------------------------------------------------------------
# The invariant on every fixture and sample
# -------------------------------------------------------------------------------------------------


def _fixture_sources():
    cases = [
        pytest.param(SALESFORCE, "salesforce", id="salesforce"),
        pytest.param(HUBSPOT, "hubspot", id="hubspot"),
        pytest.param(CUSTOM, str(CUSTOM / "mapping.yaml"), id="custom"),
    ]
    cases += [
        pytest.param(p, "canonical", id=f"bad/{p.name}")
        for p in sorted(BAD.iterdir())
        if p.is_file()
    ]
    return cases


@pytest.mark.parametrize(("source", "mapping"), _fixture_sources())
def test_invariant_on_every_fixture(source, mapping):
    try:
        report = validate(source, mapping=mapping)
    except SalesOpsError:
        return  # fatal inputs are covered by test_bad_inputs.py
    assert report.tables
    assert_invariant(report)
    json.dumps(report.to_dict())


@pytest.mark.parametrize("name", ["default", "messy"])
def test_invariant_on_samples(name, sample_dirs):
    folder = sample_dirs[name]
    mapping = "canonical"
    for candidate in ("mapping.yaml", "mapping.yml"):
        if (folder / candidate).exists():
            mapping = str(folder / candidate)
    report = validate(folder, mapping=mapping)
    assert report.usable
    assert_invariant(report)
    json.dumps(report.to_dict())


def test_invariant_on_small_dataset_and_table_columns():
    data = load(small_frames())
    assert_invariant(data.report)
    opps_frame = to_pandas(data.opportunities)
    assert {"status", "is_closed", "is_won"} <= set(opps_frame.columns)
    assert set(opps_frame["status"]) <= {"open", "won", "lost"}
    closed = opps_frame["status"] != "open"
    assert (opps_frame["is_closed"] == closed).all()
    assert (opps_frame["is_won"] == (opps_frame["status"] == "won")).all()


def test_examples_are_distinct_values():
    # three rows with an empty created_date: one example text, shown once
    frame = pd.DataFrame(
        {
            "opportunity_id": ["O-1", "O-2", "O-3", "O-4"],
            "created_date": ["", "", "", "2025-01-01"],
            "amount": ["1", "2", "3", "4"],
            "stage": ["Closed Won"] * 4,
        }
    )
    rep = validate({"opportunities": frame}).tables["opportunities"]
    assert rep.excluded == {"missing_required": 3}
    assert rep.examples["missing_required"] == ["created_date empty"]


def test_display_tables_format_counts_and_explain_empty_ones():
    source, _, _ = EXCLUDE_CASES["duplicate_id"]
    report = validate(source, as_of=AS_OF)
    html = report.table("summary").to_html()
    assert "opportunities" in html and "rows_read" in html
    clean = validate(
        {
            "opportunities": pd.DataFrame(
                {
                    "opportunity_id": [f"O-{i}" for i in range(1200)],
                    "created_date": ["2025-01-01"] * 1200,
                    "amount": ["5"] * 1200,
                    "stage": ["Closed Won"] * 1200,
                }
            )
        }
    )
    assert "1,200" in clean.table("summary").to_html()  # thousands separator
    assert "Every rule passed" in clean.table("issues").to_html()
    with pytest.raises(SalesOpsError, match="overview"):
        clean.table("nope")
