"""metrics/_pricing_views2.py: the tests of "does discount buy wins?", the discount cap summed
per band in the engine, and the deals of one heatmap cell. Expected numbers come from hand
calculations (in the comments), scipy, or pandas on the raw sample files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import DISCOUNT_BANDS, discount_cap_what_if
from salesops_widgets.metrics._price_views import discount_band_tests, discount_cell_deals


@pytest.fixture(scope="module")
def opps(sample_dirs):
    """The raw opportunities, with the per-deal discount computed here in pandas."""
    o = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    priced = o["list_amount"] > 0
    o["disc"] = np.where(priced, 1 - o["amount"] / o["list_amount"].where(priced), np.nan)
    return o


def _tiny() -> pd.DataFrame:
    """Six deals: (amount, list, stage).

    a: 90 / 100 won (10% off)    b: 70 / 100 won (30%)     c: 60 / 100 lost (40%)
    d: 50 / 100 won (50%)        e: 95 / 100 lost (5%)     f: 80 / 100 open (20%)
    """
    won, lost = "Closed Won", "Closed Lost"
    return pd.DataFrame(
        {
            "opportunity_id": list("abcdef"),
            "stage": [won, won, lost, won, lost, "Proposal"],
            "created_date": pd.to_datetime(["2025-01-02"] * 6),
            "amount": [90.0, 70.0, 60.0, 50.0, 95.0, 80.0],
            "list_amount": [100.0] * 6,
        }
    )


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


# ------------------------------------------------------------------------------ the cap


def test_cap_recovery_by_hand_on_six_deals():
    data = load({"opportunities": _tiny()})
    # bands [0, .25) and [.25, 1]: closed a, e in band 0 (1 won of 2 -> 0.5); b, c, d in band 1
    # (2 won of 3 -> 2/3). Cap 0.25 falls in band 1, so the deals over it (b 30%, d 50%) keep
    # r = min(1, (2/3) / (2/3)) = 1: re-priced at 75 each, recovering (75 - 70) + (75 - 50) = 30.
    got = discount_cap_what_if(data, cap=0.25, bands=(0, 0.25, 1.0)).iloc[0]
    assert got["deals_over_cap"] == 2
    assert got["gross_recovered"] == pytest.approx(30.0)
    assert got["net_recovered"] == pytest.approx(30.0)
    assert got["net_recovered_share"] == pytest.approx(30.0 / (90 + 70 + 50))
    # cap 0.1 falls in band 0 (win rate 0.5): a (10%) is not over it; b and d (band 1) keep
    # r = 0.5 / (2/3) = 0.75 of list × 0.9 = 90: net = 0.75 * 90 * 2 - (70 + 50) = 15.
    low = discount_cap_what_if(data, cap=0.1, bands=(0, 0.25, 1.0))
    row = low.iloc[0]
    assert row["gross_recovered"] == pytest.approx((90 - 70) + (90 - 50))
    assert row["expected_lost_deals"] == pytest.approx(0.5)
    assert row["expected_lost_bookings"] == pytest.approx(0.25 * 90 * 2)
    assert row["net_recovered"] == pytest.approx(15.0)
    by_band = low.attrs["by_band"]
    assert by_band["band"].tolist() == ["25-100%"]
    assert by_band["kept"].tolist() == pytest.approx([0.75])
    assert len(low.attrs["assumptions"]) == 3


@pytest.mark.parametrize("cap", [0.0, 0.12, 0.2, 0.3, 0.6])
def test_cap_matches_a_deal_by_deal_estimate_in_pandas(sample, opps, cap):
    """The engine sums per band; here every deal is re-priced one by one in pandas."""
    got = discount_cap_what_if(sample, cap=cap).iloc[0]
    edges = np.array(DISCOUNT_BANDS)
    d = opps["disc"].round(9)
    in_bands = (d >= 0) & (d <= 1)
    band = np.clip(np.searchsorted(edges[:-1], d, side="right") - 1, 0, len(edges) - 2)
    closed = opps[opps["is_closed"] & in_bands]
    rates = closed.groupby(band[closed.index])["is_won"].mean()  # won / closed per band
    cap_band = int(np.clip(np.searchsorted(edges[:-1], cap, side="right") - 1, 0, None))
    over = opps[opps["is_won"] & (d > cap)]
    keep = np.minimum(1.0, rates[cap_band] / rates.reindex(band[over.index]).to_numpy())
    capped = over["list_amount"] * (1 - cap)
    assert got["deals_over_cap"] == len(over)
    assert got["gross_recovered"] == pytest.approx((capped - over["amount"]).sum())
    assert got["net_recovered"] == pytest.approx((keep * capped - over["amount"]).sum())
    assert got["expected_lost_deals"] == pytest.approx((1 - keep).sum(), abs=1e-9)


def test_cap_recovery_needs_list_prices_and_a_sane_cap(sample):
    bare = load({"opportunities": _tiny().drop(columns="list_amount")})
    with pytest.raises(MissingDataError, match="list_amount"):
        discount_cap_what_if(bare)
    with pytest.raises(ParameterError, match="cap="):
        discount_cap_what_if(sample, cap=1.5)
    with pytest.raises(ParameterError, match="cap="):
        discount_cap_what_if(sample, cap="lots")


# ------------------------------------------------------------------------------ a heatmap cell


def test_cell_deals_are_the_deals_of_that_size_and_discount(sample, opps):
    # size band 2 of the default edges is 25k-50k of list; the bin from 0.30 is [30%, 35%)
    got = discount_cell_deals(sample, size_index=2, discount_low=0.30, top_n=1000)
    won = opps[opps["is_won"]]
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
