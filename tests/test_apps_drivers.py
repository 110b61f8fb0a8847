"""The Driver Tree dashboard, driven without a browser: build it, click and filter as a browser
would, and check its views against the KPI layer and the raw deals."""

from __future__ import annotations

import pytest

from salesops_widgets import metrics
from salesops_widgets.apps import DriverTree
from salesops_widgets.errors import ParameterError

A, B = ("2024-10-01", "2025-09-30"), ("2025-10-01", "2026-09-30")


@pytest.fixture(scope="module")
def app(sample):
    return DriverTree(sample, debounce=0)


def _click(view, name, points):
    """What the browser sends when points of selection ``name`` are clicked."""
    view.widget._vl_selections = {name: {"value": {"vlPoint": {"or": points}}, "store": []}}


def test_period_b_is_the_last_12_months_and_a_the_year_before(app, sample_deals):
    d = sample_deals
    won = d[d["status"] == "won"]
    in_b = won[(won["close_date"] >= B[0]) & (won["close_date"] <= B[1])]["amount"].sum()
    in_a = won[(won["close_date"] >= A[0]) & (won["close_date"] <= A[1])]["amount"].sum()
    assert f"${in_a:,.0f}" in app.bridge_note.value and f"${in_b:,.0f}" in app.bridge_note.value


def test_the_drill_follows_the_largest_contributor_and_lists_its_deals(app, sample):
    path = app.path_table.data
    assert path["dimension"].tolist() == ["size_band", "owner"]
    assert path["segment"].iloc[0] == "Enterprise"
    expected = metrics.drill_path(sample, period_a=A, period_b=B, path=("size_band", "owner"))
    assert path["change"].tolist() == pytest.approx(expected["change"].tolist())
    assert app.detail.extra_filters == expected["filters"].iloc[-1]
    assert "Level 1, Company size: Enterprise" in app.drill_note.value


def test_the_discounters_lead_who_pulls_the_price_down(app):
    # data/samples/README.md: REP-013 (Avery Larsen), REP-008 and REP-003 discount habitually
    assert app.discount_note.value.startswith('<p style="max-width: 900px; color: #1f2933">Rep')
    assert any(
        n in app.discount_note.value for n in ("Avery Larsen", "Mateo Kowalski", "Zoe Weber")
    )


def test_a_click_on_a_rep_lists_that_reps_deals(app):
    _click(app.discount_chart, "pick", [{"owner": "Zoe Weber"}])
    assert app.drill == {"owner": ["Zoe Weber"]}
    assert app.detail.extra_filters == {"owner": ["Zoe Weber"]}
    assert set(app.detail.table.data["owner"]) == {"Zoe Weber"}


def test_bad_parameters_stop_with_a_sentence(sample):
    with pytest.raises(ParameterError, match="period_a='2025-13-01' is not a date"):
        DriverTree(sample, period_a="2025-13-01..2025-12-31", debounce=0)
    with pytest.raises(ParameterError, match="path="):
        DriverTree(sample, path=["owner", "owner"], debounce=0)
    with pytest.raises(ParameterError, match="period is 'all'"):
        DriverTree(sample, period="all", debounce=0)


def test_a_click_on_a_rep_of_the_drill_keeps_the_segment_above(app):
    level2 = app.levels.children[1]
    rep = app.path_table.data["segment"].iloc[1]
    _click(level2, "pick", [{"owner": rep}])
    assert app.drill == {"size_band": ["Enterprise"], "owner": [rep]}
    assert set(app.detail.table.data["owner"]) == {rep}
