"""Tests for salesops_widgets/metrics/_detail.py: the deals behind a number (drill-down)."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_widgets import load
from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics import DEAL_LIST_COLUMNS, deal_list


def test_deal_list_is_the_segment_largest_first(sample, sample_deals):
    got = deal_list(sample, filters={"region": ["EMEA"], "size_band": "Enterprise"}, top_n=20)
    ref = sample_deals[
        (sample_deals["region"] == "EMEA") & (sample_deals["size_band"] == "Enterprise")
    ]
    ref = ref.sort_values(["amount", "opportunity_id"], ascending=[False, True]).head(20)
    assert got["opportunity_id"].tolist() == ref["opportunity_id"].tolist()
    assert list(got.columns) == [c for c in DEAL_LIST_COLUMNS if c in sample_deals.columns]


def test_deal_list_status_and_sort(sample, sample_deals):
    got = deal_list(sample, status="open", sort="age_days", top_n=None)
    ref = sample_deals[sample_deals["status"] == "open"]
    assert len(got) == len(ref)
    assert got["age_days"].is_monotonic_decreasing
    won = deal_list(sample, status="won", top_n=5, extra=("region",))
    assert (won["status"] == "won").all() and "region" in won.columns


def test_deal_list_nulls_last(sample):
    # closed deals have no age: sorted by age, every open deal comes first
    got = deal_list(sample, sort="age_days", top_n=None)
    first_null = got["age_days"].isna().idxmax()
    assert got["age_days"].iloc[first_null:].isna().all()


def test_deal_list_empty_selection_keeps_columns(sample):
    got = deal_list(sample, filters={"region": ["Atlantis"]})
    assert got.empty and "amount" in got.columns


def test_deal_list_bad_parameters(sample):
    with pytest.raises(ParameterError, match="sort='size' must be one of"):
        deal_list(sample, sort="size")
    with pytest.raises(ParameterError, match="top_n=0"):
        deal_list(sample, top_n=0)
    with pytest.raises(ParameterError, match="status='pending'"):
        deal_list(sample, status="pending")
    assert isinstance(deal_list(sample, top_n=1), pd.DataFrame)


def test_deal_list_sorted_on_a_column_the_data_lacks_falls_back_to_ids():
    rows = pd.DataFrame(
        {
            "opportunity_id": ["O-2", "O-1"],
            "created_date": pd.to_datetime(["2025-01-01", "2025-01-02"]),
            "amount": [5.0, 7.0],
            "is_closed": [False, False],
            "is_won": [False, False],
        }
    )
    data = load({"opportunities": rows}, as_of="2025-06-30")
    got = deal_list(data, sort="discount")  # no list_amount, so no discount
    assert got["opportunity_id"].tolist() == ["O-1", "O-2"]
