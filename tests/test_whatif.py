"""Tests for salesops_widgets/metrics/_whatif.py: velocity levers and what-ifs, discount cap."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import (
    DISCOUNT_BANDS,
    discount_cap_what_if,
    segment_kpis,
    velocity_levers,
    velocity_what_if,
)

approx = pytest.approx
_IDS = itertools.count(1)


def test_velocity_what_if_arithmetic(sample):
    base = segment_kpis(sample, by=["size_band"])
    out = velocity_what_if(
        sample, by=["size_band"], cycle_cut=0.1, win_rate_points=0.02, asp_lift=0.05
    )
    # open x (win rate + 0.02) x ASP x 1.05 / (KM median days x 0.9), per segment
    expected = (
        base["open"]
        * (base["win_rate"] + 0.02)
        * base["asp"]
        * 1.05
        / (base["km_median_days_to_close"] * 0.9)
    )
    assert out["velocity_what_if"].to_numpy() == approx(expected.to_numpy())
    assert out["extra_bookings"].to_numpy() == approx((expected - base["velocity"]).to_numpy() * 91)
    assert any("replenished" in a for a in out.attrs["assumptions"])


def test_velocity_what_if_no_change_is_no_gain(sample):
    out = velocity_what_if(sample)
    assert out["velocity_change"].iloc[0] == approx(0.0)
    assert out["extra_bookings"].iloc[0] == approx(0.0)


def test_velocity_levers_add_up(sample):
    out = velocity_levers(sample, by=["region"])
    shares = out[[c for c in out.columns if c.endswith("_share")]].sum(axis=1)
    assert shares.to_numpy() == approx(np.ones(len(out)))
    # the product of the lever ratios is the velocity ratio (cycle enters inverted)
    ratios = out[[c for c in out.columns if c.endswith("_ratio") and c != "velocity_ratio"]]
    assert ratios.prod(axis=1).to_numpy() == approx(out["velocity_ratio"].to_numpy())


def deal(status, discount, list_amount=100.0):
    closed = status != "open"
    return {
        "opportunity_id": f"O-{next(_IDS)}",
        "created_date": pd.Timestamp("2025-01-01"),
        "close_date": pd.Timestamp(dt.date(2025, 2, 1)),
        "amount": list_amount * (1 - discount),
        "list_amount": list_amount,
        "is_closed": closed,
        "is_won": status == "won",
    }


def test_discount_cap_by_hand():
    # bands [0, 0.2) and [0.2, 1]; list 100 everywhere
    # band A: won at 0% (100) and 10% (90), lost at 0% and 5%  -> win rate 2/4 = 0.5
    # band B: won 3 at 30% (70) and 3 at 40% (60), lost 2 at 30% -> win rate 6/8 = 0.75
    # cap 10% (in band A): the six band-B wins are re-priced at 90 each and stay won with
    # r = min(1, 0.5 / 0.75) = 2/3 (the 10% deal is not over the cap)
    # gross = 3 x (90 - 70) + 3 x (90 - 60) = 150; net = 6 x (2/3 x 90) - (210 + 180) = -30
    # lost deals = 6 x 1/3 = 2; lost bookings = 6 x 1/3 x 90 = 180; all bookings = 580
    rows = [deal("won", 0.0), deal("won", 0.1), deal("lost", 0.0), deal("lost", 0.05)]
    rows += [deal("won", 0.3) for _ in range(3)] + [deal("won", 0.4) for _ in range(3)]
    rows += [deal("lost", 0.3) for _ in range(2)]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    out = discount_cap_what_if(data, cap=0.1, bands=(0.0, 0.2, 1.0)).iloc[0]
    assert out["deals_over_cap"] == 6
    assert out["bookings_over_cap"] == approx(390.0)
    assert out["gross_recovered"] == approx(150.0)
    assert out["expected_lost_deals"] == approx(2.0)
    assert out["expected_lost_bookings"] == approx(180.0)
    assert out["net_recovered"] == approx(-30.0)
    assert out["net_recovered_share"] == approx(-30 / 580)


def test_discount_cap_on_the_sample_recovers_money(sample):
    # planted: discounts above 20% do not win more, so capping them loses nothing
    out = discount_cap_what_if(sample, cap=0.2).iloc[0]
    assert out["expected_lost_deals"] == approx(0.0)
    assert out["net_recovered"] == approx(out["gross_recovered"]) and out["net_recovered"] > 0


def test_bad_what_if_parameters(sample):
    with pytest.raises(ParameterError, match="cycle_cut"):
        velocity_what_if(sample, cycle_cut=1.5)
    with pytest.raises(ParameterError, match="cap='lots' must be a number"):
        discount_cap_what_if(sample, cap="lots")


# ------------------------------------------------------------------------------ the cap, per band


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
def test_cap_matches_a_deal_by_deal_estimate_in_pandas(sample, sample_opportunities, cap):
    """The engine sums per band; here every deal is re-priced one by one in pandas."""
    got = discount_cap_what_if(sample, cap=cap).iloc[0]
    edges = np.array(DISCOUNT_BANDS)
    d = sample_opportunities["disc"].round(9)
    in_bands = (d >= 0) & (d <= 1)
    band = np.clip(np.searchsorted(edges[:-1], d, side="right") - 1, 0, len(edges) - 2)
    closed = sample_opportunities[sample_opportunities["is_closed"] & in_bands]
    rates = closed.groupby(band[closed.index])["is_won"].mean()  # won / closed per band
    cap_band = int(np.clip(np.searchsorted(edges[:-1], cap, side="right") - 1, 0, None))
    over = sample_opportunities[sample_opportunities["is_won"] & (d > cap)]
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
