"""Tests for salesops_widgets/metrics/_price_views.py: discount vs size and the deals of one of
its cells, guidance, realization over time, losses on price, and the tests of "does discount buy
wins?". Hand calculations on tiny data (in the comments), scipy, or pandas on the sample."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import (
    discount_band_tests,
    discount_cell_deals,
    discount_outliers,
    discount_vs_size,
    lost_on_price,
    pricing_guidance,
    realization_over_time,
)

approx = pytest.approx
_IDS = itertools.count(1)


def deal(status, list_amount, discount, reason=None, close="2025-02-01"):
    return {
        "opportunity_id": f"O-{next(_IDS):03d}",
        "created_date": pd.Timestamp("2025-01-01"),
        "close_date": pd.Timestamp(close),
        "amount": list_amount * (1 - discount),
        "list_amount": float(list_amount),
        "is_closed": status != "open",
        "is_won": status == "won",
        "loss_reason": reason,
    }


def test_discount_vs_size_by_hand():
    # size edges (0, 100): band 0 = [0, 100), band 1 = 100+; discount step 0.1
    # won: list 50 at 5% and 15%; list 200 at 10%, 12%, 30%; a lost deal is not counted
    rows = [deal("won", 50, 0.05), deal("won", 50, 0.15)]
    rows += [deal("won", 200, d) for d in (0.10, 0.12, 0.30)] + [deal("lost", 200, 0.5)]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    out = discount_vs_size(data, size_edges=(0, 100), discount_step=0.1, corridor=(0.25, 0.75))
    cells = {(r.size_index, round(r.discount_low, 2)): r.deals for r in out.itertuples()}
    assert cells == {(0, 0.0): 1, (0, 0.1): 1, (1, 0.1): 2, (1, 0.3): 1}
    band = out.attrs["corridor"].set_index("size_index")
    # band 1 discounts 0.10, 0.12, 0.30: p75 (linear) = 0.12 + 0.5 x (0.30 - 0.12) = 0.21
    assert band.loc[1, "corridor_high"] == approx(0.21)
    assert band.loc[1, "outliers"] == 1  # the 30% deal
    # band 0: 0.05, 0.15: p75 = 0.05 + 0.75 x 0.10 = 0.125 -> the 15% deal is over
    assert band.loc[0, "corridor_high"] == approx(0.125)
    assert out["deal_size"].tolist()[0] == "0–100" and band.loc[1, "deal_size"] == "100+"
    top = discount_outliers(data, size_edges=(0, 100), corridor=(0.25, 0.75))
    # excess: (0.30 - 0.21) x 200 = 18 first, then (0.15 - 0.125) x 50 = 1.25
    assert top["excess"].tolist() == approx([18.0, 1.25])


def test_pricing_guidance_matches_pandas(sample, sample_deals):
    out = pricing_guidance(sample, by=["size_band"]).set_index("size_band")
    won = sample_deals[(sample_deals["status"] == "won") & (sample_deals["list_amount"] > 0)]
    r = won["amount"] / won["list_amount"]
    for band, row in out.iterrows():
        part = r[won["size_band"] == band]
        assert row["floor_pct_of_list"] == approx(part.quantile(0.25))
        assert row["target_pct_of_list"] == approx(part.median())
        assert row["stretch_pct_of_list"] == approx(part.quantile(0.75))
        assert row["max_discount"] == approx(1 - part.quantile(0.25))


def test_realization_over_time_is_dollar_weighted(sample, sample_deals):
    out = realization_over_time(sample, freq="year")
    won = sample_deals[(sample_deals["status"] == "won") & (sample_deals["list_amount"] > 0)]
    year = pd.to_datetime(won["close_date"]).dt.year
    for _, row in out.iterrows():
        part = won[year == pd.Timestamp(row["period"]).year]
        assert row["price_realization"] == approx(part["amount"].sum() / part["list_amount"].sum())
        assert row["won_deals"] == len(part)


def test_lost_on_price_by_hand():
    # band [0, 0.2): 2 won, 2 lost (one "Price too high", one "Timing") -> 1 of 4 on price
    # band [0.2, 1]: 1 won, 1 lost on "price" -> 1 of 2; open deals are not counted
    rows = [deal("won", 100, 0.1), deal("won", 100, 0.0)]
    rows += [deal("lost", 100, 0.1, "Price too high"), deal("lost", 100, 0.05, "Timing")]
    rows += [deal("won", 100, 0.3), deal("lost", 100, 0.25, "price"), deal("open", 100, 0.3)]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    out = lost_on_price(data, bands=(0, 0.2, 1))
    assert out["closed"].tolist() == [4, 2]
    assert out["lost_on_price"].tolist() == [1, 1]
    assert out["share_lost_on_price"].tolist() == approx([0.25, 0.5])
    assert out["price_share_of_losses"].tolist() == approx([0.5, 1.0])


def test_price_views_need_their_columns_and_sane_parameters(sample):
    rows = [{k: v for k, v in deal("won", 100, 0.1).items() if k != "loss_reason"}]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    with pytest.raises(MissingDataError, match="loss_reason"):
        lost_on_price(data)
    with pytest.raises(ParameterError, match="corridor"):
        discount_vs_size(sample, corridor=(0.8, 0.2))
    with pytest.raises(ParameterError, match="freq='week'"):
        realization_over_time(sample, freq="week")
    with pytest.raises(ParameterError, match="floor <= target <= stretch"):
        pricing_guidance(sample, floor=0.9, target=0.5)
    empty = discount_vs_size(sample, filters={"region": ["Atlantis"]})
    assert empty.empty and np.all(empty.attrs["corridor"]["deals"] == 0)


# ------------------------------------------------------------------------------ band tests


def test_band_tests_match_scipy_on_a_hand_table():
    bands = pd.DataFrame(
        {
            "band": ["0-10%", "10-20%", "20-100%"],
            "won": [30, 45, 10],
            "lost": [70, 55, 40],
            "closed": [100, 100, 50],
        }
    )
    got = discount_band_tests(bands)
    ref = stats.chi2_contingency([[30, 70], [45, 55], [10, 40]], correction=False)
    assert got.loc[0, "statistic"] == pytest.approx(ref.statistic)
    assert got.loc[0, "p_value"] == pytest.approx(ref.pvalue)
    assert got.loc[0, "df"] == 2
    # deepest (10/50 = 0.2) against the next (45/100 = 0.45): difference -0.25
    assert got.loc[1, "effect_size"] == pytest.approx(0.2 - 0.45)
    assert "20-100%" in got.loc[1, "comparison"] and "10-20%" in got.loc[1, "comparison"]
    # pooled p = 55/150; z = -0.25 / sqrt(p(1-p)(1/50 + 1/100))
    p = 55 / 150
    z = -0.25 / np.sqrt(p * (1 - p) * (1 / 50 + 1 / 100))
    assert got.loc[1, "statistic"] == pytest.approx(z)
    assert got.loc[1, "p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_band_tests_skip_empty_bands_and_say_why_they_cannot_run():
    bands = pd.DataFrame(
        {"band": ["a", "b", "c"], "won": [5, 3, 0], "lost": [5, 7, 0], "closed": [10, 10, 0]}
    )
    got = discount_band_tests(bands)  # the empty deepest band is skipped: b against a
    assert got.loc[1, "effect_size"] == pytest.approx(0.3 - 0.5)
    one = discount_band_tests(bands.iloc[:1])
    assert one["reason"].notna().all()
    assert np.isnan(one["p_value"]).all()
    with pytest.raises(ParameterError, match="discount_bands"):
        discount_band_tests(pd.DataFrame({"band": ["a"]}))


# ------------------------------------------------------------------------------ a heatmap cell


def test_cell_deals_are_the_deals_of_that_size_and_discount(sample, sample_opportunities):
    # size band 2 of the default edges is 25k-50k of list; the bin from 0.30 is [30%, 35%)
    got = discount_cell_deals(sample, size_index=2, discount_low=0.30, top_n=1000)
    won = sample_opportunities[sample_opportunities["is_won"]]
    cell = won[
        (won["list_amount"] >= 25_000)
        & (won["list_amount"] < 50_000)
        & (won["disc"].round(9) >= 0.30)
        & (won["disc"].round(9) < 0.35)
    ]
    assert sorted(got["opportunity_id"]) == sorted(cell["opportunity_id"])
    assert set(got["deal_size"]) == {"25k–50k"}
    given = (cell["list_amount"] - cell["amount"]).sort_values(ascending=False)
    assert got["discount_given"].tolist() == pytest.approx(given.tolist())
    top = discount_cell_deals(sample, size_index=2, discount_low=0.30, top_n=3)
    assert top["opportunity_id"].tolist() == got["opportunity_id"].head(3).tolist()


def test_cell_deals_check_their_arguments(sample):
    with pytest.raises(ParameterError, match="size_index"):
        discount_cell_deals(sample, size_index=99, discount_low=0.1)
    with pytest.raises(ParameterError, match="top_n"):
        discount_cell_deals(sample, size_index=1, discount_low=0.1, top_n=0)
