"""QualityPanel on the small canonical dataset, whose exclusions are known by hand
(tests/_helpers.py): 9 opportunities read, 7 used, 1 missing_required, 1 unknown_stage,
1 flagged unmatched_account."""

from __future__ import annotations

import pytest
from conftest import SAMPLES_DIR

from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import QualityPanel


def test_collapsed_with_a_one_line_summary(small_canonical):
    panel = QualityPanel(small_canonical)
    assert panel.selected_index is None
    assert panel.get_title(0) == "Data quality: 7 of 9 opportunities used, 2 excluded, 1 flagged"


def test_rows_by_table_and_by_rule(small_canonical):
    html = QualityPanel(small_canonical).body_html()
    assert "missing_required" in html and "unknown_stage" in html
    assert "unmatched_account" in html
    assert "parent_excluded" in html  # the line item of the excluded opportunity
    # the opportunities row: read 9, used 7, excluded 2, flagged 1
    row = html.split(">opportunities<", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("<", 1)[0] for c in row.split(">")[1:] if c and c[0].isdigit()]
    assert cells == ["9", "7", "2", "1"]


def test_static_rendering_is_a_closed_details_element(small_canonical):
    html = QualityPanel(small_canonical).to_static_html()
    assert html.startswith('<details class="salesops-quality"><summary>Data quality: 7 of 9')
    assert "<details open" not in html


def test_accepts_a_report_and_refuses_other_things(small_canonical):
    assert QualityPanel(small_canonical.report).report is small_canonical.report
    with pytest.raises(ParameterError, match="load"):
        QualityPanel(str(SAMPLES_DIR / "default"))  # a path, not loaded data
