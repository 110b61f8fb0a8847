"""The deals view and selections (salesops_widgets.metrics._deals) and the shared statistics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import deals, select_deals, wilson_interval
from salesops_widgets.metrics._deals import NOT_SET, available_dimensions


@pytest.fixture(scope="module")
def tiny():
    opportunities = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O4"],
            "created_date": ["2025-01-01", "2025-01-10", "2025-02-01", "2025-03-01"],
            "close_date": ["2025-01-31", "2025-03-01", "2025-04-30", "2025-03-20"],
            "amount": ["80", "50", "100", "30"],
            "list_amount": ["100", "", "100", "0"],
            "stage": ["Closed Won", "Closed Lost", "Proposal", "Closed Won"],
            "account_id": ["A1", "A2", "A1", "A9"],
            "owner_id": ["R1", "R1", "R2", "R2"],
        }
    )
    accounts = pd.DataFrame(
        {"account_id": ["A1", "A2"], "industry": ["Retail", "Tech"], "region": ["EMEA", "NA"]}
    )
    reps = pd.DataFrame({"owner_id": ["R1", "R2"], "team": ["T1", "T2"], "region": ["X", "Y"]})
    return load(
        {"opportunities": opportunities, "accounts": accounts, "reps": reps}, as_of="2025-03-31"
    )


def _by_id(table) -> dict:
    return table.to_pandas().set_index("opportunity_id").to_dict("index")


def test_dimensions_are_joined_once_and_unmatched_keys_show_not_set(tiny):
    rows = _by_id(deals(tiny))
    assert rows["O1"]["industry"] == "Retail" and rows["O1"]["region"] == "EMEA"
    assert rows["O2"]["industry"] == "Tech" and rows["O2"]["team"] == "T1"
    assert rows["O4"]["industry"] == NOT_SET  # account A9 is not in accounts
    assert rows["O4"]["rep_region"] == "Y"  # the rep's own region stays separate
    assert "product_family" not in rows["O1"]  # no products table: no such dimension
    assert deals(tiny) is deals(tiny)  # built once per SalesData


def test_per_deal_measures(tiny):
    rows = _by_id(deals(tiny))
    assert rows["O1"]["cycle_days"] == 30  # 2025-01-01 -> 2025-01-31
    assert rows["O2"]["cycle_days"] == 50  # 2025-01-10 -> 2025-03-01: 21 + 28 + 1
    assert pd.isna(rows["O3"]["cycle_days"])  # open
    assert rows["O3"]["age_days"] == 58  # 2025-02-01 -> as-of 2025-03-31: 27 + 31
    assert rows["O3"]["duration_days"] == 58  # open: censored at its age
    assert rows["O1"]["duration_days"] == 30
    assert rows["O1"]["discount"] == pytest.approx(0.2)  # 1 - 80/100
    assert pd.isna(rows["O2"]["discount"])  # no list price
    assert pd.isna(rows["O4"]["discount"])  # list price 0: no discount, not -inf


def test_filters_and_period(tiny):
    assert select_deals(tiny, {"region": ["EMEA"]}).count().execute() == 2  # O1, O3
    assert select_deals(tiny, {"region": "EMEA", "team": ["T2"]}).count().execute() == 1
    assert select_deals(tiny, {"region": []}).count().execute() == 4  # empty list: no filter
    assert select_deals(tiny, {"region": "All"}).count().execute() == 4
    created = select_deals(tiny, period=("2025-01-05", "2025-02-01"))
    assert sorted(created.to_pandas()["opportunity_id"]) == ["O2", "O3"]  # inclusive bounds
    closed = select_deals(
        tiny, period=(dt.date(2025, 2, 1), dt.date(2025, 3, 31)), date_field="closed_date"
    )
    assert sorted(closed.to_pandas()["opportunity_id"]) == ["O2", "O4"]  # O3 is open
    assert select_deals(tiny, {"region": ["Mars"]}).count().execute() == 0


def test_bad_selection_parameters_name_the_fix(tiny):
    with pytest.raises(ParameterError, match="not a dimension"):
        select_deals(tiny, {"regoin": ["EMEA"]})
    with pytest.raises(MissingDataError, match="products"):
        select_deals(tiny, {"product_family": ["X"]})
    with pytest.raises(ParameterError, match="YYYY-MM-DD"):
        select_deals(tiny, period=("01/02/2025", None))
    with pytest.raises(ParameterError, match="after its end"):
        select_deals(tiny, period=("2025-03-01", "2025-01-01"))
    with pytest.raises(ParameterError, match="date_field"):
        select_deals(tiny, date_field="close")


def test_available_dimensions(tiny):
    dims = available_dimensions(tiny)
    assert {"industry", "region", "team", "rep_region", "owner_id"} <= set(dims)
    assert "product_family" not in dims and "size_band" not in dims


def test_wilson_matches_statsmodels_and_hand_value():
    # k=8, n=10, z=1.96: centre (8 + 1.92)/13.84 = 0.7168, half 1.96*sqrt(1.6 + 0.96)/13.84
    # = 0.2266 -> (0.4902, 0.9433)
    low, high = wilson_interval(8, 10)
    assert (round(float(low), 4), round(float(high), 4)) == (0.4902, 0.9433)
    k = np.array([0, 1, 5, 30, 99, 100])
    n = np.array([10, 10, 50, 30, 100, 100])
    ref_low, ref_high = proportion_confint(k, n, method="wilson")
    low, high = wilson_interval(k, n)
    np.testing.assert_allclose(low, ref_low, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, rtol=1e-10, atol=1e-12)
    low, high = wilson_interval(np.array([0]), np.array([0]))
    assert np.isnan(low[0]) and np.isnan(high[0])  # no closed deals: no interval
