"""Time to close and time to win (salesops_widgets/metrics/_time_to_close.py): Kaplan–Meier with
open deals censored, and won and lost as competing outcomes.

Expected numbers are derived by hand from the tiny pipeline of tests/_helpers.py (its comment
gives every duration), or computed independently on unaggregated rows with statsmodels'
SurvfuncRight. The planted effects of data/samples/default are checked at the end.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import HISTORY_AS_OF, deal_rows, history_frames
from statsmodels.duration.survfunc import SurvfuncRight

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics._cycle import cycle_stats
from salesops_widgets.metrics._time_to_close import (
    time_to_close,
    time_to_close_curves,
    time_to_win,
    time_to_win_curves,
)


def test_time_to_close_hand(tiny_history):
    r = time_to_close(tiny_history).iloc[0]
    assert (r["n"], r["n_closed"], r["n_open"]) == (6, 4, 2)
    # closed on days 25, 30, 40, 67; open at 89, 89.
    # S(25) = 5/6, S(30) = 5/6·4/5 = 4/6, S(40) = 4/6·3/4 = 3/6 exactly, S(67) = 3/6·2/3 = 2/6
    # S sits at 1/2 from day 40 to 67: median = (40 + 67)/2 = 53.5
    assert r["km_median_days_to_close"] == 53.5 and r["km_median_reached"]
    # closed deals only: 25 30 40 67 → (30 + 40)/2 = 35, lower than the censored median
    assert r["naive_median_days_closed_only"] == 35
    # share closed by day 30 = 1 − 4/6; by day 90: past the longest follow-up (89) → NaN
    assert r["share_closed_by_day_30"] == pytest.approx(1 / 3)
    assert math.isnan(r["share_closed_by_day_90"])
    # RMST up to day 89: 25·1 + 5·5/6 + 10·4/6 + 27·3/6 + 22·2/6 = 56.666…
    assert r["restricted_mean_days"] == pytest.approx(25 + 25 / 6 + 40 / 6 + 81 / 6 + 44 / 6)
    assert r["restricted_mean_horizon_days"] == 89
    assert "longest follow-up" in r["note"]


def test_time_to_close_by_group_hand(tiny_history):
    got = time_to_close(tiny_history, by=["deal_type"], by_day=(30,)).set_index("deal_type")
    # New: 25 lost, 40 won, 89 open: S(25) = 2/3, S(40) = 1/3 → median 40; naive (25+40)/2
    assert got.loc["New", "km_median_days_to_close"] == 40
    assert got.loc["New", "naive_median_days_closed_only"] == 32.5
    # Renewal: 30 lost, 67 won, 89 open: S(30) = 2/3, S(67) = 1/3 → median 67; naive 48.5
    assert got.loc["Renewal", "km_median_days_to_close"] == 67
    assert got.loc["Renewal", "naive_median_days_closed_only"] == 48.5
    assert got.loc["Renewal", "share_closed_by_day_30"] == pytest.approx(1 / 3)


def test_time_to_close_matches_statsmodels_ondeal_rows(tiny_history):
    r = time_to_close(tiny_history).iloc[0]
    time = np.array([40, 25, 89, 30, 89, 67])
    closed = np.array([1, 1, 0, 1, 0, 1])
    with np.errstate(all="ignore"):
        low, high = SurvfuncRight(time, closed).quantile_ci(0.5)
    assert r["km_median_low"] == low
    assert (math.isnan(r["km_median_high"]) and math.isinf(high)) or r["km_median_high"] == high


def test_time_to_close_curves_hand(tiny_history):
    c = time_to_close_curves(tiny_history)
    # day 0 start, the four closing days, and the end of follow-up (89)
    assert c["day"].tolist() == [0, 25, 30, 40, 67, 89]
    assert c["survival"].tolist() == pytest.approx([1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 2 / 6])
    assert c["at_risk"].tolist() == [6, 6, 5, 4, 3, 2]
    assert c["share_closed"].tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 4 / 6])
    assert (c["ci_low"] <= c["survival"] + 1e-12).all()
    assert (c["share_closed_low"] <= c["share_closed"] + 1e-12).all()
    assert time_to_close_curves(tiny_history, max_day=30)["day"].tolist() == [0, 25, 30]


def test_time_to_close_no_closed_deals(tiny_history):
    # only the open deals d3 and d5, both 89 days old: the curve never leaves 1
    r = time_to_close(tiny_history, filters={"stage": ["Prospecting", "Negotiation"]}).iloc[0]
    assert r["n_closed"] == 0 and not r["km_median_reached"]
    assert math.isnan(r["km_median_days_to_close"])
    assert math.isnan(r["naive_median_days_closed_only"])
    assert r["restricted_mean_days"] == 89 and r["share_closed_by_day_30"] == 0
    assert "no closed deals" in r["note"]


def test_time_to_close_all_closed(tiny_history):
    # only closed deals: 25, 30, 40, 67. With no censoring KM and naive medians agree: 35.
    r = time_to_close(tiny_history, filters={"stage": ["Closed Won", "Closed Lost"]}).iloc[0]
    assert r["km_median_days_to_close"] == r["naive_median_days_closed_only"] == 35
    # the curve falls to 0 on day 67, so day 90 and day 365 are known: all closed
    assert r["share_closed_by_day_365"] == 1
    # mean of 25 30 40 67 = 40.5 (the restricted mean over a horizon past the last close)
    assert r["restricted_mean_days"] == pytest.approx(40.5)


def test_time_to_close_one_deal(tiny_history):
    r = time_to_close(tiny_history, filters={"stage": "Closed Lost", "deal_type": "New"}).iloc[0]
    assert r["n"] == 1 and r["km_median_days_to_close"] == 25
    assert math.isnan(r["km_median_low"]) and "too few" in r["note"]


def test_time_to_close_filter_matching_nothing(tiny_history):
    r = time_to_close(tiny_history, filters={"deal_type": "Expansion"})
    assert len(r) == 1 and r["n"].iloc[0] == 0
    assert math.isnan(r["km_median_days_to_close"].iloc[0])
    assert "no deals match" in r["note"].iloc[0]
    grouped = time_to_close(tiny_history, by=["deal_type"], filters={"deal_type": "Expansion"})
    assert grouped.empty and "deal_type" in grouped.columns
    assert "no deals match" in grouped.attrs["note"]
    assert time_to_close_curves(tiny_history, filters={"deal_type": "Expansion"}).empty
    empty = cycle_stats(tiny_history, filters={"deal_type": "Expansion"})
    assert empty["deals"].tolist() == [0, 0] and empty["median_cycle_days"].isna().all()
    assert time_to_win(tiny_history, filters={"deal_type": "Expansion"})["n"].tolist() == [0]


def test_time_to_close_needs_close_date():
    frames = history_frames(history=False)
    frames["opportunities"] = frames["opportunities"].drop(columns="close_date")
    data = load(frames, as_of=HISTORY_AS_OF)
    with pytest.raises(MissingDataError, match=r"tables\.opportunities\.columns\.close_date"):
        time_to_close(data)


def test_bad_parameters(tiny_history):
    with pytest.raises(ParameterError):
        time_to_close(tiny_history, by=["nope"])


def test_time_to_win_hand(tiny_history):
    r = time_to_win(tiny_history, by_day=(30, 60, 90)).iloc[0]
    assert (r["n_won"], r["n_lost"], r["n_open"]) == (2, 2, 2)
    # day 25: 6 at risk, lost 1/6. day 30: S = 5/6, 5 at risk: lost += 5/6·1/5 → 2/6.
    # day 40: S = 4/6, 4 at risk: won 4/6·1/4 = 1/6. day 67: S = 3/6, 3 at risk: won → 2/6.
    assert r["share_won_by_day_30"] == 0 and r["share_lost_by_day_30"] == pytest.approx(2 / 6)
    assert r["share_won_by_day_60"] == pytest.approx(1 / 6)
    assert math.isnan(r["share_won_by_day_90"])  # past the follow-up (89), deals still open
    c = time_to_win_curves(tiny_history)
    last = c.iloc[-1]
    assert last["day"] == 89
    assert [last["share_won"], last["share_lost"], last["share_open"]] == pytest.approx(
        [2 / 6, 2 / 6, 2 / 6]
    )
    assert c["day"].iloc[0] == 0 and c["share_open"].iloc[0] == 1


# ------------------------------------------------------------------------------------------
# The default sample: independent references on rows, and the planted effects


def test_sample_time_to_close_matches_statsmodels_ondeal_rows(sample):
    got = time_to_close(sample, by=["size_band"]).set_index("size_band")
    rows = deal_rows(sample, "size_band", "duration_days", "is_closed")
    for band, g in rows.groupby("size_band"):
        sf = SurvfuncRight(g["duration_days"].to_numpy(), g["is_closed"].astype(int).to_numpy())
        with np.errstate(all="ignore"):
            low, high = sf.quantile_ci(0.5)
        r = got.loc[band]
        assert r["n"] == len(g) and r["n_closed"] == g["is_closed"].sum()
        assert r["km_median_days_to_close"] == sf.quantile(0.5)  # S never sits at exactly ½
        assert (r["km_median_low"], r["km_median_high"]) == (low, high)
        naive = g.loc[g["is_closed"], "duration_days"].median()
        assert r["naive_median_days_closed_only"] == naive
        i = np.searchsorted(sf.surv_times, 90, side="right")
        assert r["share_closed_by_day_90"] == pytest.approx(1 - sf.surv_prob[i - 1])


def test_sample_naive_median_is_biased_low(sample):
    # planted: slow deals are over-represented among the open ones
    r = time_to_close(sample).iloc[0]
    assert r["naive_median_days_closed_only"] < r["km_median_days_to_close"]
    recent = time_to_close(sample, period=("2025-10-01", "2026-09-30")).iloc[0]
    gap = recent["km_median_days_to_close"] - recent["naive_median_days_closed_only"]
    assert gap > r["km_median_days_to_close"] - r["naive_median_days_closed_only"]
    assert recent["km_median_reached"] and recent["km_median_low"] < recent["km_median_high"]


def test_sample_top_tier_reps_close_faster(sample):
    from salesops_widgets.metrics._deals import deals

    t = deals(sample)
    bookings = (
        t.filter(t.is_won).group_by("owner_id").aggregate(bookings=t.amount.sum()).to_pandas()
    )
    top = bookings.loc[bookings["bookings"] >= bookings["bookings"].quantile(0.75), "owner_id"]
    others = sorted(set(bookings["owner_id"]) - set(top))
    fast = time_to_close(sample, filters={"owner_id": sorted(top)}).iloc[0]
    slow = time_to_close(sample, filters={"owner_id": others}).iloc[0]
    assert fast["km_median_days_to_close"] < slow["km_median_days_to_close"]
    assert fast["km_median_high"] < slow["km_median_low"]  # the intervals do not overlap


def test_sample_time_to_win_adds_up_to_time_to_close(sample):
    win = time_to_win(sample, by=["size_band"]).set_index("size_band")
    close = time_to_close(sample, by=["size_band"]).set_index("size_band")
    for d in (30, 90, 180, 365):
        total = win[f"share_won_by_day_{d}"] + win[f"share_lost_by_day_{d}"]
        np.testing.assert_allclose(total, close[f"share_closed_by_day_{d}"], atol=1e-9)
