"""Tests for salesops_widgets/metrics/_whatif.py: velocity levers and what-ifs, discount cap."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest

from salesops_widgets import load
from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics import (
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
