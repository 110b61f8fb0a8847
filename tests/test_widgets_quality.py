"""QualityPanel on the small canonical dataset, whose exclusions are known by hand
(tests/_helpers.py): 10 opportunities read, 8 used, 1 missing_required (O-10, no stage),
1 unknown_stage (O-9), 1 flagged unmatched_account (O-7); O-8 is kept without an amount."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import SAMPLES_DIR

from salesops_widgets import validate
from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import QualityPanel


def test_collapsed_with_a_one_line_summary(small_canonical):
    panel = QualityPanel(small_canonical)
    assert panel.selected_index is None
    # every view has deals to count, so the title names no view that cannot be computed
    assert panel.get_title(0) == "Data quality: 8 of 10 opportunities used, 2 excluded, 1 flagged"


def test_rows_by_table_and_by_rule(small_canonical):
    html = QualityPanel(small_canonical).body_html()
    assert "missing_required" in html and "unknown_stage" in html
    assert "unmatched_account" in html
    assert "parent_excluded" in html  # the line item of the excluded opportunity O-10
    # the opportunities row: read 10, used 8, excluded 2, flagged 1
    row = html.split(">opportunities<", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("<", 1)[0] for c in row.split(">")[1:] if c and c[0].isdigit()]
    assert cells == ["10", "8", "2", "1"]


def test_populations_and_columns_are_shown(small_canonical):
    html = QualityPanel(small_canonical).body_html()
    assert "Which deals each KPI counts" in html
    # O-8, open without an amount, is left out of open pipeline and velocity
    assert "1 open without an amount" in html
    assert "Empty or unparseable values per column (of the rows read)" in html
    # the canonical mapping has no lookup: the lookups section is left out
    assert "Lookups" not in html


def test_a_starved_view_is_named_in_the_title_and_the_body():
    # O-1 won at 100, O-2 lost at 50, both with a created date and a later close date; no open
    # deal, and no list_amount column. By hand (docs/metrics.md), three views cannot be computed:
    # time to close cannot censor (no open deal), and both discount views lack list_amount.
    # Bookings, value win rate and days to win each count a deal, so they do not warn.
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["O-1", "O-2"],
            "stage": ["Closed Won", "Closed Lost"],
            "amount": ["100", "50"],
            "created_date": ["2025-01-01", "2025-01-01"],
            "close_date": ["2025-02-01", "2025-02-01"],
        }
    )
    report = validate({"opportunities": opportunities})
    messages = [w.message for w in report.view_warnings]
    assert len(messages) == 3
    assert messages[0].startswith("no open deals: time to close cannot be censored")
    assert messages[1:] == [
        "no list_amount column in the data: portfolio discount cannot be computed",
        "no list_amount column in the data: win rate by discount band cannot be computed",
    ]
    panel = QualityPanel(report)
    assert panel.title() == (
        "Data quality: 2 of 2 opportunities used, 0 excluded; 3 view(s) cannot be computed"
    )
    body = panel.body_html()
    for message in messages:
        assert message in body


def test_static_rendering_is_a_closed_details_element(small_canonical):
    html = QualityPanel(small_canonical).to_static_html()
    assert html.startswith('<details class="salesops-quality"><summary>Data quality: 8 of 10')
    assert "<details open" not in html


def test_accepts_a_report_and_refuses_other_things(small_canonical):
    assert QualityPanel(small_canonical.report).report is small_canonical.report
    with pytest.raises(ParameterError, match="load"):
        QualityPanel(str(SAMPLES_DIR / "default"))  # a path, not loaded data
