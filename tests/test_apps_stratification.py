"""The Stratification Comparisons dashboard, driven without a browser, checked against pandas."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_widgets import load
from salesops_widgets.apps import StratificationComparisons
from salesops_widgets.errors import ParameterError


@pytest.fixture
def app(sample):
    return StratificationComparisons(sample, debounce=0)


def _rows(spec):
    """Every inline data row of a chart spec (data values, datasets), wherever it sits."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key in ("values",) and isinstance(value, list):
                yield from (v for v in value if isinstance(v, dict))
            elif key == "datasets":
                for rows in value.values():
                    yield from rows
            else:
                yield from _rows(value)
    elif isinstance(spec, list):
        for item in spec:
            yield from _rows(item)


def _click(view, name, points):
    value = {"vlPoint": {"or": points}} if points else None
    view.widget._vl_selections = {name: {"value": value, "store": []}}


def test_tiers_are_quartiles_of_rep_bookings(app, sample_deals):
    won = sample_deals[sample_deals["status"] == "won"]
    bookings = won.groupby("owner_id")["amount"].sum()
    ranked = app.entities.data.set_index("entity")
    assert ranked["value"].to_dict() == pytest.approx(bookings.to_dict())
    # the top tier holds the reps with the largest bookings: its lowest is above Q2's highest
    tiers = app.tiers.data.set_index("tier")
    assert tiers.loc["Q1", "lowest"] > tiers.loc["Q2", "highest"]
    assert tiers["entities"].sum() == sample_deals["owner_id"].nunique()


def test_win_rate_per_tier_matches_pandas(app, sample_deals):
    strata = app.entities.data[["entity", "tier"]].rename(columns={"entity": "owner_id"})
    closed = sample_deals[sample_deals["status"] != "open"].merge(strata, on="owner_id")
    ref = closed.groupby("tier", observed=True)["is_won"].mean()
    chart = app.comparisons.children[0].chart.to_dict()
    values = {row["tier"]: row["win_rate"] for row in _rows(chart) if "win_rate" in row}
    assert values == pytest.approx({str(k): v for k, v in ref.items()})


def test_tests_table_names_each_test_and_outcome(app):
    tests = app.tests.data
    assert set(tests["outcome"]) == {
        "Win rate",
        "Discount on won deals (dollar-weighted)",
        "Median days to win",
        "ASP (average won deal)",
    }
    assert set(tests["comparison"]) == {"across tiers", "Q1 vs Q4"}
    row = tests[(tests["outcome"] == "Win rate") & (tests["comparison"] == "Q1 vs Q4")].iloc[0]
    assert row["test"] == "two-proportion z" and row["significant"] == "yes"


def test_clicking_a_tier_lists_its_reps_deals(app, sample_deals):
    view = app.comparisons.children[0]
    _click(view, "tier", [{"tier": "Q4"}])
    q4 = set(app.entities.data.loc[app.entities.data["tier"].astype(str) == "Q4", "entity"])
    got = app.detail.deals
    ref = sample_deals[sample_deals["owner_id"].isin(q4)].sort_values(
        ["amount", "opportunity_id"], ascending=[False, True]
    )
    assert got["opportunity_id"].tolist() == ref["opportunity_id"].head(50).tolist()


def test_changing_method_and_entity_recomputes(app):
    app.method = "abc"
    assert set(app.tiers.data["tier"].astype(str)) <= {"A", "B", "C"}
    app.entity = "product_id"
    assert app.tiers.data["entities"].sum() <= 14  # the sample has 14 products
    assert "products" in str(app.migration.chart.to_dict()["title"])


def test_mix_and_migration_views(app):
    mix = app.mix_table.data
    assert {"crude_rate", "adjusted_rate", "overall_rate"} <= set(mix.columns)
    assert "layer" in app.migration.chart.to_dict() or "mark" in app.migration.chart.to_dict()


def test_filter_that_matches_nothing_is_calm(app):
    app.filter_bar.period = ("2000-01-01", "2000-03-31")
    assert app.status.message == ""
    assert app.tiers.data.empty
    assert app.detail.deals.empty


def test_bad_parameters_get_a_clear_message(sample):
    with pytest.raises(ParameterError, match="method='median'"):
        StratificationComparisons(sample, method="median", debounce=0)
    with pytest.raises(ParameterError, match="outcomes='speed'"):
        StratificationComparisons(sample, outcomes=["speed"], debounce=0)
    with pytest.raises(ParameterError, match="mix_outcome"):
        StratificationComparisons(sample, mix_outcome="discount", debounce=0)
    assert isinstance(sample, object) and pd is not None


def test_an_outcome_the_data_cannot_give_says_so_and_the_rest_shows():
    from _helpers import SALESFORCE

    data = load(SALESFORCE, mapping="salesforce")  # no list prices in this export
    app = StratificationComparisons(data, debounce=0)
    views = dict(zip(app.outcomes, app.comparisons.children, strict=True))
    assert "list_amount" in views["discount"].children[0].message
    assert "Win rate" in str(views["win_rate"].chart.to_dict()["title"])
    assert "Discount on won deals (dollar-weighted)" not in set(app.tests.data["outcome"])
