"""The deals view and selections (salesops_widgets/metrics/_deals.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import _codes, deals, select_deals
from salesops_widgets.metrics._codes import NOT_SET
from salesops_widgets.metrics._deals import (
    available_dimensions,
    dimension_labels,
    select_coded_deals,
)


@pytest.fixture(scope="module")
def tiny_dimensions():
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


def test_dimensions_are_joined_once_and_unmatched_keys_show_not_set(tiny_dimensions):
    rows = _by_id(deals(tiny_dimensions))
    assert rows["O1"]["industry"] == "Retail" and rows["O1"]["region"] == "EMEA"
    assert rows["O2"]["industry"] == "Tech" and rows["O2"]["team"] == "T1"
    assert rows["O4"]["industry"] == NOT_SET  # account A9 is not in accounts
    assert rows["O4"]["rep_region"] == "Y"  # the rep's own region stays separate
    assert "product_family" not in rows["O1"]  # no products table: no such dimension
    assert deals(tiny_dimensions) is deals(tiny_dimensions)  # built once per SalesData


def test_per_deal_measures(tiny_dimensions):
    rows = _by_id(deals(tiny_dimensions))
    assert rows["O1"]["cycle_days"] == 30  # 2025-01-01 -> 2025-01-31
    assert rows["O2"]["cycle_days"] == 50  # 2025-01-10 -> 2025-03-01: 21 + 28 + 1
    assert pd.isna(rows["O3"]["cycle_days"])  # open
    assert rows["O3"]["age_days"] == 58  # 2025-02-01 -> as-of 2025-03-31: 27 + 31
    assert rows["O3"]["duration_days"] == 58  # open: censored at its age
    assert rows["O1"]["duration_days"] == 30
    assert rows["O1"]["discount"] == pytest.approx(0.2)  # 1 - 80/100
    assert pd.isna(rows["O2"]["discount"])  # no list price
    assert pd.isna(rows["O4"]["discount"])  # list price 0: no discount, not -inf


def test_filters_and_period(tiny_dimensions):
    assert select_deals(tiny_dimensions, {"region": ["EMEA"]}).count().execute() == 2  # O1, O3
    assert select_deals(tiny_dimensions, {"region": "EMEA", "team": ["T2"]}).count().execute() == 1
    assert (
        select_deals(tiny_dimensions, {"region": []}).count().execute() == 4
    )  # empty list: no filter
    assert select_deals(tiny_dimensions, {"region": "All"}).count().execute() == 4
    created = select_deals(tiny_dimensions, period=("2025-01-05", "2025-02-01"))
    assert sorted(created.to_pandas()["opportunity_id"]) == ["O2", "O3"]  # inclusive bounds
    closed = select_deals(
        tiny_dimensions,
        period=(dt.date(2025, 2, 1), dt.date(2025, 3, 31)),
        date_field="closed_date",
    )
    assert sorted(closed.to_pandas()["opportunity_id"]) == ["O2", "O4"]  # O3 is open
    assert select_deals(tiny_dimensions, {"region": ["Mars"]}).count().execute() == 0


def test_bad_selection_parameters_name_the_fix(tiny_dimensions):
    with pytest.raises(ParameterError, match="not a dimension"):
        select_deals(tiny_dimensions, {"regoin": ["EMEA"]})
    with pytest.raises(MissingDataError, match="products"):
        select_deals(tiny_dimensions, {"product_family": ["X"]})
    with pytest.raises(ParameterError, match="YYYY-MM-DD"):
        select_deals(tiny_dimensions, period=("01/02/2025", None))
    with pytest.raises(ParameterError, match="after its end"):
        select_deals(tiny_dimensions, period=("2025-03-01", "2025-01-01"))
    with pytest.raises(ParameterError, match="date_field"):
        select_deals(tiny_dimensions, date_field="close")


def test_dimensions_get_dictionary_codes_in_label_order(tiny_dimensions):
    labels = dimension_labels(tiny_dimensions)
    # every label a deal can show, NOT_SET always among them: "(" sorts before letters
    assert labels["industry"] == (NOT_SET, "Retail", "Tech")
    assert labels["team"] == (NOT_SET, "T1", "T2")
    assert labels["stage"] == (NOT_SET, "Closed Lost", "Closed Won", "Proposal")
    kept = select_coded_deals(tiny_dimensions).to_pandas().set_index("opportunity_id")
    # O1, O3: account A1 (Retail); O2: A2 (Tech); O4: account A9 is not in accounts
    assert kept["_c_industry"].to_dict() == {"O1": 1, "O2": 2, "O3": 1, "O4": 0}
    assert kept["_c_team"].to_dict() == {"O1": 1, "O2": 1, "O3": 2, "O4": 2}  # R1: T1, R2: T2
    assert kept["_c_stage"].to_dict() == {"O1": 2, "O2": 1, "O3": 3, "O4": 2}
    # the public tables show labels only
    assert not [c for c in deals(tiny_dimensions).columns if c.startswith("_c_")]
    assert not [
        c for c in select_deals(tiny_dimensions, {"region": "NA"}).columns if c.startswith("_c_")
    ]


def test_kept_keys_pack_the_outcome_and_hold_won_days_and_default_band(tiny_dimensions):
    kept = select_coded_deals(tiny_dimensions).to_pandas().set_index("opportunity_id")
    # _outcome = 9 x (list price > 0: True 0, False 1, NULL 2) + (open 0, lost 1, won 2)
    # O1 won, list 100: 0 + 2 = 2; O2 lost, no list: 18 + 1 = 19
    # O3 open, list 100: 0 + 0 = 0; O4 won, list 0: 9 + 2 = 11
    assert kept["_outcome"].to_dict() == {"O1": 2, "O2": 19, "O3": 0, "O4": 11}
    # won deals' days: O1 Jan 1 -> Jan 31 = 30; O4 Mar 1 -> Mar 20 = 19; the others none
    won_days = kept["_won_duration"].astype(float).fillna(-1).to_dict()
    assert won_days == {"O1": 30, "O2": -1, "O3": -1, "O4": 19}
    # default bands 0-5-10-15-20-25-30-100%: O1 80 of 100 is 20% off: band 4 [20, 25); O3 100
    # of 100, 0% off: band 0; no discount (no band) without a list price > 0
    bands = kept["_discount_band"].astype(float).fillna(-1).to_dict()
    assert bands == {"O1": 4, "O2": -1, "O3": 0, "O4": -1}
    # the public tables do not show them
    for public in (deals(tiny_dimensions), select_deals(tiny_dimensions)):
        assert not {"_outcome", "_won_duration", "_discount_band"} & set(public.columns)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"industry": ["Retail"]}, ["O1", "O3"]),  # one code
        ({"industry": ["Retail", "Tech"]}, ["O1", "O2", "O3"]),  # a run of codes (1, 2)
        ({"industry": [NOT_SET, "Tech"]}, ["O2", "O4"]),  # codes 0 and 2: a range with a hole
        ({"industry": [NOT_SET, "Retail", "Tech"]}, ["O1", "O2", "O3", "O4"]),  # every label
        ({"industry": ["Tech", "Mars"]}, ["O2"]),  # a value that is no label matches nothing
        ({"industry": ["Mars"]}, []),
        ({"industry": "Retail", "stage": ["Proposal", "Closed Lost"]}, ["O3"]),
    ],
)
def test_filters_on_codes_keep_the_same_deals(tiny_dimensions, filters, expected):
    assert sorted(select_deals(tiny_dimensions, filters).to_pandas()["opportunity_id"]) == expected


def test_filters_on_many_scattered_codes():
    # deal types A..H: codes 1..8 after NOT_SET; A, E, H leave 5 holes in their range
    frame = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(9)],
            "created_date": ["2025-01-01"] * 9,
            "amount": ["10"] * 9,
            "stage": ["Proposal"] * 9,
            "deal_type": [*"ABCDEFGH", None],
        }
    )
    data = load({"opportunities": frame}, as_of="2025-03-31")
    assert dimension_labels(data)["deal_type"] == (NOT_SET, *"ABCDEFGH")
    picked = select_deals(data, {"deal_type": ["A", "E", "H", NOT_SET]}).to_pandas()
    assert sorted(picked["opportunity_id"]) == ["O0", "O4", "O7", "O8"]
    sql = str(data.con.compile(select_deals(data, {"deal_type": ["A", "E"]})))
    assert "_c_deal_type" in sql and "'A'" not in sql  # tested on the codes, not the text


def _three_deals():
    frame = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3"],
            "created_date": ["2025-01-01"] * 3,
            "amount": ["10", "20", "30"],
            "stage": ["Closed Won", "Proposal", "Closed Lost"],
            "deal_type": ["New", "New", "Renewal"],
        }
    )
    return load({"opportunities": frame}, as_of="2025-03-31")


def test_engines_we_do_not_own_use_the_labels():
    data = _three_deals()
    data.engine_owned = False  # as for a database that is not our embedded engine
    assert dimension_labels(data) == {}
    assert "_c_deal_type" not in select_coded_deals(data).columns
    picked = select_deals(data, {"deal_type": ["Renewal", "Mars"]}).to_pandas()
    assert picked["opportunity_id"].tolist() == ["O3"]


def test_dimensions_with_too_many_labels_keep_only_the_text(monkeypatch):
    monkeypatch.setattr(_codes, "MAX_CODES", 3)  # industry has 3 labels, stage 4
    data = _three_deals()
    labels = dimension_labels(data)
    assert labels["deal_type"] == (NOT_SET, "New", "Renewal") and "stage" not in labels
    picked = select_deals(data, {"stage": ["Proposal"], "deal_type": "New"}).to_pandas()
    assert picked["opportunity_id"].tolist() == ["O2"]


def test_available_dimensions(tiny_dimensions):
    dims = available_dimensions(tiny_dimensions)
    assert {"industry", "region", "team", "rep_region", "owner_id"} <= set(dims)
    assert "product_family" not in dims and "size_band" not in dims
