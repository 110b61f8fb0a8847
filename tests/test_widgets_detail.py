"""DetailView: exactly the deals pandas finds for a segment; empty and error states."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from salesops_widgets.widgets import ChartView, DetailView, EmptyState
from salesops_widgets.widgets._detail import merge_filters


@pytest.fixture(scope="module")
def raw(sample):
    opps = sample.opportunities.to_pandas()
    accounts = sample.accounts.to_pandas()[["account_id", "region", "industry"]]
    frame = opps.merge(accounts, on="account_id", how="left")
    frame["created"] = pd.to_datetime(frame["created_date"]).dt.date
    return frame


def _top(frame: pd.DataFrame, n: int) -> list[str]:
    """Largest amount first, ties by id: the order deal_list documents."""
    ordered = frame.sort_values(["amount", "opportunity_id"], ascending=[False, True])
    return ordered["opportunity_id"].head(n).tolist()


def test_shows_exactly_the_deals_of_the_segment(sample, raw):
    selection = {
        "filters": {"industry": ["Healthcare"]},
        "period": ("2025-01-01", "2025-12-31"),
        "date_field": "created_date",
    }
    view = DetailView(
        sample, selection=selection, extra_filters={"region": ["EMEA"]}, top_n=20, debounce=0
    )
    expected = raw[
        (raw["industry"] == "Healthcare")
        & (raw["region"] == "EMEA")
        & (raw["created"] >= pd.Timestamp("2025-01-01").date())
        & (raw["created"] <= pd.Timestamp("2025-12-31").date())
    ]
    assert view.deals["opportunity_id"].tolist() == _top(expected, 20)
    assert {"owner", "amount", "discount", "region"} <= set(view.deals.columns)
    assert view.table.data["opportunity_id"].tolist() == _top(expected, 20)
    assert "Deals behind: industry = Healthcare, region = EMEA" in view._header.value
    assert "(top 20 by amount)" in view._header.value


def test_status_and_top_n(sample, raw):
    view = DetailView(sample, extra_filters={"region": "APAC"}, status="open", top_n=5, debounce=0)
    expected = raw[(raw["region"] == "APAC") & (raw["status"] == "open")]
    assert view.deals["opportunity_id"].tolist() == _top(expected, 5)
    assert view.deals["age_days"].notna().all()


def test_a_click_outside_the_filters_matches_nothing(sample):
    view = DetailView(sample, selection={"filters": {"region": ["APAC"]}}, debounce=0)
    assert len(view.deals) == 50
    view.extra_filters = {"region": ["EMEA"]}
    assert view.deals.empty
    assert isinstance(view.table.children[-1], EmptyState)
    assert "No deals match" in view.to_static_html()


def test_an_empty_selection_shows_the_empty_state(sample):
    view = DetailView(sample, selection={"period": ("1990-01-01", "1990-12-31")}, debounce=0)
    assert view.deals.empty
    assert any(isinstance(c, EmptyState) for c in view.table.children)


def test_a_bad_click_shows_a_friendly_message(sample):
    view = DetailView(sample, debounce=0)
    view.extra_filters = {"tier": ["Q1"]}  # a field that is no dimension
    assert "Could not update this view" in view.refresher.message
    assert "tier" in view.refresher.message
    assert not view.refresher.busy
    assert "Traceback" not in view.to_static_html()


def test_follows_a_chart_click(sample, raw):
    frame = pd.DataFrame({"region": ["EMEA", "LATAM"], "n": [1, 2]})
    pick = alt.selection_point(name="pick", fields=["region"])
    chart = ChartView(alt.Chart(frame).mark_bar().encode(x="region", y="n").add_params(pick))
    view = DetailView(sample, top_n=10, debounce=0)
    view.follow(chart)
    chart.widget._vl_selections = {
        "pick": {"value": {"vlPoint": {"or": [{"region": "LATAM"}]}}, "store": []}
    }
    assert view.deals["opportunity_id"].tolist() == _top(raw[raw["region"] == "LATAM"], 10)


def test_merge_filters():
    assert merge_filters({}, {}) == {}
    assert merge_filters({"region": []}, {"team": ["T"]}) == {"team": ["T"]}
    assert merge_filters({"region": ["A", "B"]}, {"region": ["B", "C"]}) == {"region": ["B"]}
    assert merge_filters({"region": ["A"]}, {"region": ["C"]}) is None
