"""Cycle KPIs (salesops_widgets/metrics/_cycle.py).

Expected numbers are derived by hand from the tiny frames below (arithmetic in the comments), or
computed independently in the test on unaggregated rows with pandas and statsmodels'
SurvfuncRight. The planted effects of data/samples/default are checked at the end.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics._cycle import cycle_stats, cycle_summary
from salesops_widgets.metrics._stages import close_date_pushes, stage_durations, stuck_deals
from salesops_widgets.metrics._time_to_close import (
    time_to_close,
    time_to_close_curves,
    time_to_win,
    time_to_win_curves,
)

# ------------------------------------------------------------------------------------------
# A tiny pipeline, as of 2025-03-31. Every deal was created on 2025-01-01.
# Stages: P = Prospecting, Q = Qualification, N = Negotiation, then Closed Won / Closed Lost.
#
#  id  type     stage now    amount  history (entered date: stage, expected close date)
#  d1  New      Closed Won    100   01-01 P 01-31 | 01-11 Q 02-15 | 01-31 N 02-15 | 02-10 Won 02-10
#  d2  New      Closed Lost   200   01-01 P 01-31 | 01-06 Q 01-31 | 01-26 Lost 01-26
#  d3  New      Negotiation   300   01-01 P 02-28 | 01-21 Q 03-15 | 02-20 N 04-15
#  d4  Renewal  Closed Lost   400   01-01 P 01-31 | 01-31 Lost 01-31
#  d5  Renewal  Prospecting   500   01-01 P 02-28
#  d6  Renewal  Closed Won    600   01-01 P 01-31 | 01-03 Q 01-31 | 01-08 N 02-28 | 03-09 Won 03-09
#
# Days to close (created → close, or age at as-of for open deals):
#   d1 40 won, d2 25 lost, d3 89 open, d4 30 lost, d5 89 open, d6 67 won
#   (Jan 1 → Mar 31 = 31 + 28 + 31 − 1 = 89; Jan 1 → Mar 9 = 31 + 28 + 8 = 67)
# Days in stage (calendar days to the next stage; open deals' current stage to 03-31):
#   P: d1 10 →Q, d2 5 →Q, d3 20 →Q, d4 30 →lost, d5 89 (still there), d6 2 →Q
#   Q: d1 20 →N, d2 20 →lost, d3 30 →N, d6 5 →N
#   N: d1 10 →won, d3 39 (still there: Feb 20 → Mar 31 = 8 + 31), d6 60 →won
#   (a closed deal's stays add up to its cycle: d1 10 + 20 + 10 = 40, d6 2 + 5 + 60 = 67)
# ------------------------------------------------------------------------------------------

AS_OF = "2025-03-31"
_OPPS = [
    ("d1", "New", "Closed Won", 100, "2025-02-10"),
    ("d2", "New", "Closed Lost", 200, "2025-01-26"),
    ("d3", "New", "Negotiation", 300, "2025-04-15"),
    ("d4", "Renewal", "Closed Lost", 400, "2025-01-31"),
    ("d5", "Renewal", "Prospecting", 500, "2025-02-28"),
    ("d6", "Renewal", "Closed Won", 600, "2025-03-09"),
]
_HISTORY = [
    ("d1", "Prospecting", "2025-01-01 09:00", "2025-01-31"),
    ("d1", "Qualification", "2025-01-11 17:30", "2025-02-15"),
    ("d1", "Negotiation", "2025-01-31 08:00", "2025-02-15"),
    ("d1", "Closed Won", "2025-02-10 12:00", "2025-02-10"),
    ("d2", "Prospecting", "2025-01-01 10:00", "2025-01-31"),
    ("d2", "Qualification", "2025-01-06 23:59", "2025-01-31"),
    ("d2", "Closed Lost", "2025-01-26 00:01", "2025-01-26"),
    ("d3", "Prospecting", "2025-01-01 11:00", "2025-02-28"),
    ("d3", "Qualification", "2025-01-21 11:00", "2025-03-15"),
    ("d3", "Negotiation", "2025-02-20 17:30", "2025-04-15"),
    ("d4", "Prospecting", "2025-01-01 12:00", "2025-01-31"),
    ("d4", "Closed Lost", "2025-01-31 12:00", "2025-01-31"),
    ("d5", "Prospecting", "2025-01-01 13:00", "2025-02-28"),
    ("d6", "Prospecting", "2025-01-01 14:00", "2025-01-31"),
    ("d6", "Qualification", "2025-01-03 14:00", "2025-01-31"),
    ("d6", "Negotiation", "2025-01-08 14:00", "2025-02-28"),
    ("d6", "Closed Won", "2025-03-09 14:00", "2025-03-09"),
]


def _frames(history: bool = True, history_close_date: bool = True) -> dict:
    opps = pd.DataFrame(
        _OPPS, columns=["opportunity_id", "deal_type", "stage", "amount", "close_date"]
    ).assign(created_date="2025-01-01")
    frames = {"opportunities": opps}
    if history:
        sh = pd.DataFrame(_HISTORY, columns=["opportunity_id", "stage", "entered_at", "close_date"])
        frames["stage_history"] = sh if history_close_date else sh.drop(columns="close_date")
    return frames


@pytest.fixture(scope="module")
def tiny_history():
    return load(_frames(), as_of=AS_OF)


# ------------------------------------------------------------------------------------------
# Cycle days of closed deals


def test_cycle_stats_hand(tiny_history):
    got = cycle_stats(tiny_history).set_index("outcome")
    # won: 40, 67 → mean = median = 53.5; p90 = 40 + 0.9·(67 − 40) = 64.3
    assert got.loc["won", "deals"] == 2
    assert got.loc["won", ["mean_cycle_days", "median_cycle_days"]].tolist() == [53.5, 53.5]
    assert got.loc["won", "p90_cycle_days"] == pytest.approx(64.3)
    # lost: 25, 30 → 27.5; p90 = 25 + 0.9·5 = 29.5
    assert got.loc["lost", "median_cycle_days"] == 27.5
    assert got.loc["lost", "p90_cycle_days"] == pytest.approx(29.5)
    assert got["small_n"].all()


def test_cycle_summary_is_wide(tiny_history):
    got = cycle_summary(tiny_history, by=["deal_type"]).set_index("deal_type")
    # New: won d1 40; lost d2 25. Renewal: won d6 67; lost d4 30.
    assert got.loc["New", "median_cycle_days_won"] == 40
    assert got.loc["Renewal", "median_cycle_days_won"] == 67
    assert got.loc["Renewal", "mean_cycle_days_lost"] == 30
    assert got.loc["New", "deals_lost"] == 1


# ------------------------------------------------------------------------------------------
# Time to close


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


def test_time_to_close_matches_statsmodels_on_rows(tiny_history):
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
    frames = _frames(history=False)
    frames["opportunities"] = frames["opportunities"].drop(columns="close_date")
    data = load(frames, as_of=AS_OF)
    with pytest.raises(MissingDataError, match=r"tables\.opportunities\.columns\.close_date"):
        time_to_close(data)


def test_bad_parameters(tiny_history):
    with pytest.raises(ParameterError):
        time_to_close(tiny_history, by=["nope"])
    with pytest.raises(ParameterError):
        stuck_deals(tiny_history, threshold="p900")
    with pytest.raises(ParameterError):
        stuck_deals(tiny_history, sort="size")
    with pytest.raises(ParameterError):
        stage_durations(tiny_history, by=["stage"])
    with pytest.raises(ParameterError):
        close_date_pushes(tiny_history, statuses="open")


# ------------------------------------------------------------------------------------------
# Time to win (competing risks)


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
# Stages


def test_stage_durations_hand(tiny_history):
    got = stage_durations(tiny_history, min_entered=1).set_index("stage")
    assert got.index.tolist() == ["Prospecting", "Qualification", "Negotiation"]  # inferred
    p, q, n = got.loc["Prospecting"], got.loc["Qualification"], got.loc["Negotiation"]
    # P: 6 entered; to Q: d1 d2 d3 d6; lost d4; d5 still there
    assert (p["entered"], p["moved_to_next"], p["lost"], p["still_in_stage"]) == (6, 4, 1, 1)
    assert p["conversion_to_next"] == pytest.approx(4 / 6)
    assert p["conversion_to_next_of_exits"] == pytest.approx(4 / 5)
    # P stays 2 5 10 20 30 and 89 censored: S(2) = 5/6, S(5) = 4/6, S(10) = 3/6 exactly,
    # S(20) = 2/6, S(30) = 1/6 → median (10 + 20)/2 = 15; S never ≤ 0.1 → p90 not reached
    assert p["median_days_in_stage"] == 15 and math.isnan(p["p90_days_in_stage"])
    # KM mean up to the longest stay (89): 2 + 3·5/6 + 5·4/6 + 10·3/6 + 10·2/6 + 59·1/6 = 26
    assert p["mean_days_in_stage"] == pytest.approx(26)
    # Q: 5 →N, 20 →N, 20 →lost, 30 →N: S(5) = 3/4, S(20) = 3/4·1/3 = 1/4, S(30) = 0
    assert (q["entered"], q["moved_to_next"], q["lost"]) == (4, 3, 1)
    assert q["median_days_in_stage"] == 20 and q["p90_days_in_stage"] == 30
    assert q["mean_days_in_stage"] == pytest.approx(5 + 15 * 0.75 + 10 * 0.25)
    # N (the last open stage: moving on = winning): 10 won, 39 censored, 60 won
    # S(10) = 2/3, S(60) = 0 → median 60
    assert (n["entered"], n["moved_to_next"], n["won"], n["still_in_stage"]) == (3, 2, 2, 1)
    assert n["median_days_in_stage"] == 60
    assert got["is_bottleneck"].tolist() == [False, False, True]
    # with the default minimum of 30 stays no stage here can be called the bottleneck
    assert not stage_durations(tiny_history)["is_bottleneck"].any()


def test_stage_order_argument(tiny_history):
    # names are matched ignoring case; closing stages are dropped
    order = ["prospecting", "QUALIFICATION", "Negotiation", "Closed Won"]
    got = stage_durations(tiny_history, stage_order=order, min_entered=1)
    assert got["stage"].tolist() == ["Prospecting", "Qualification", "Negotiation"]
    # Another order changes what "next" means: with P, N, Q, every P → Q move is "other"
    odd = stage_durations(tiny_history, stage_order=["Prospecting", "Negotiation", "Qualification"])
    p = odd.set_index("stage").loc["Prospecting"]
    assert (p["moved_to_next"], p["moved_other"]) == (0, 4)
    # a stage nobody entered gets a row of zeros and does not break "next"
    demo = stage_durations(tiny_history, stage_order=["Prospecting", "Demo", "Qualification"])
    demo = demo.set_index("stage")
    assert demo.index.tolist() == ["Prospecting", "Demo", "Qualification", "Negotiation"]
    assert demo.loc["Demo", "entered"] == 0 and demo.loc["Prospecting", "moved_to_next"] == 4


def test_stage_durations_by_group(tiny_history):
    got = stage_durations(tiny_history, by=["deal_type"], min_entered=1)
    new = got[got["deal_type"] == "New"].set_index("stage")
    # New P stays: d1 10, d2 5, d3 20 → S(5) = 2/3, S(10) = 1/3 → median 10
    assert new.loc["Prospecting", "median_days_in_stage"] == 10
    assert got.groupby("deal_type")["is_bottleneck"].sum().tolist() == [1, 1]


def test_stage_durations_need_stage_history():
    data = load(_frames(history=False), as_of=AS_OF)
    with pytest.raises(MissingDataError, match=r"stage_history.*tables\.stage_history\.source"):
        stage_durations(data)
    with pytest.raises(MissingDataError, match="stage_history"):
        stuck_deals(data)
    with pytest.raises(MissingDataError, match="stage_history"):
        close_date_pushes(data)


def test_stage_durations_filter_matching_nothing(tiny_history):
    got = stage_durations(tiny_history, filters={"deal_type": "Expansion"})
    assert got["entered"].tolist() == [0, 0, 0]
    assert got["median_days_in_stage"].isna().all() and not got["is_bottleneck"].any()


# ------------------------------------------------------------------------------------------
# Stuck deals and close-date pushes


def test_stuck_deals_hand(tiny_history):
    # threshold = median days in the stage: P 15, N 60. d5 has been in P 89 days (> 15): stuck;
    # d3 in N 39 days (< 60): not stuck.
    got = stuck_deals(tiny_history, threshold="median")
    assert got["opportunity_id"].tolist() == ["d5"]
    r = got.iloc[0]
    assert (r["stage"], r["days_in_stage"], r["threshold_days"]) == ("Prospecting", 89, 15)
    assert (r["amount"], r["age_days"], r["close_date_pushes"]) == (500, 89, 0)
    # a fixed 30 days: both; largest amount first. d3's close date moved later twice.
    fixed = stuck_deals(tiny_history, threshold=30)
    assert fixed["opportunity_id"].tolist() == ["d5", "d3"]
    assert fixed["close_date_pushes"].tolist() == [0, 2]
    assert stuck_deals(tiny_history, threshold=30, sort="days_in_stage", top_n=1)[
        "opportunity_id"
    ].tolist() == ["d5"]
    # p90: not reached in P (S never ≤ 0.1), N's p90 is 60 > 39: nobody
    p90 = stuck_deals(tiny_history)
    assert p90.empty and "note" in p90.attrs
    aging = stuck_deals(tiny_history, threshold="median", only_stuck=False)
    pairs = zip(aging["opportunity_id"], aging["stuck"], strict=True)
    assert sorted(pairs) == [("d3", False), ("d5", True)]


def test_stuck_deals_without_history_close_date():
    data = load(_frames(history_close_date=False), as_of=AS_OF)
    got = stuck_deals(data, threshold=30)
    assert len(got) == 2 and got["close_date_pushes"].isna().all()
    with pytest.raises(MissingDataError, match=r"tables\.stage_history\.columns\.close_date"):
        close_date_pushes(data)


def test_close_date_pushes_hand(tiny_history):
    # pushes (close date later than on the previous row):
    #   d1 01-31 → 02-15 (+15) → 02-15 → 02-10 (earlier: not a push): 1 push, 15 days
    #   d3 02-28 → 03-15 (+15) → 04-15 (+31): 2 pushes, 46 days
    #   d6 01-31 → 01-31 → 02-28 (+28) → 03-09 (+9): 2 pushes, 37 days
    #   d2, d4, d5: none
    r = close_date_pushes(tiny_history).iloc[0]
    assert (r["deals"], r["deals_pushed"]) == (6, 3)
    assert r["share_pushed"] == 0.5
    assert r["mean_pushes"] == pytest.approx(5 / 6)
    assert r["mean_days_pushed"] == pytest.approx((15 + 46 + 37) / 6)
    assert r["share_pushed_low"] < 0.5 < r["share_pushed_high"]
    # open deals only: d3 (2 pushes, 46 days) and d5 (none)
    o = close_date_pushes(tiny_history, statuses=["open"]).iloc[0]
    assert (o["deals"], o["deals_pushed"], o["mean_pushes"], o["mean_days_pushed"]) == (
        2,
        1,
        1,
        23,
    )
    by = close_date_pushes(tiny_history, by=["deal_type"]).set_index("deal_type")
    assert by.loc["New", "deals_pushed"] == 2 and by.loc["Renewal", "deals_pushed"] == 1


# ------------------------------------------------------------------------------------------
# The default sample: independent references on rows, and the planted effects


def _rows(data, *cols):
    from salesops_widgets.metrics._deals import deals

    t = deals(data)
    return t.select(*cols).to_pandas()


def test_sample_time_to_close_matches_statsmodels_on_rows(sample):
    got = time_to_close(sample, by=["size_band"]).set_index("size_band")
    rows = _rows(sample, "size_band", "duration_days", "is_closed")
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


def test_sample_cycle_stats_match_pandas(sample):
    got = cycle_stats(sample, by=["size_band"]).set_index(["size_band", "outcome"])
    rows = _rows(sample, "size_band", "status", "cycle_days")
    rows = rows[rows["status"] != "open"]
    ref = rows.groupby(["size_band", "status"])["cycle_days"]
    assert got["deals"].to_dict() == ref.count().to_dict()
    for (band, status), value in ref.median().items():
        assert got.loc[(band, status), "median_cycle_days"] == value
    for (band, status), value in ref.quantile(0.9).items():
        assert got.loc[(band, status), "p90_cycle_days"] == pytest.approx(value)
    for (band, status), value in ref.mean().items():
        assert got.loc[(band, status), "mean_cycle_days"] == pytest.approx(value)


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


def test_sample_enterprise_bottleneck_is_negotiation(sample):
    got = stage_durations(sample, by=["size_band"])
    bottleneck = got[got["is_bottleneck"]].set_index("size_band")["stage"]
    assert bottleneck["Enterprise"] == "Negotiation"  # planted: ~3x longer in Negotiation
    assert bottleneck["SMB"] != "Negotiation" and bottleneck["Mid-Market"] != "Negotiation"
    assert got.groupby("size_band")["is_bottleneck"].sum().eq(1).all()
    order = got[got["size_band"] == "SMB"]["stage"].tolist()
    assert order == ["Prospecting", "Qualification", "Proposal", "Negotiation"]


def test_sample_stage_durations_match_rows(sample):
    # Enterprise Negotiation, recomputed with pandas + statsmodels on stage_history rows
    got = stage_durations(sample, filters={"size_band": "Enterprise"}).set_index("stage")
    sh = sample.stage_history.to_pandas().sort_values(["opportunity_id", "entered_at"])
    d = _rows(sample, "opportunity_id", "size_band", "is_closed")
    sh = sh.merge(d[d["size_band"] == "Enterprise"], on="opportunity_id")
    sh["next_at"] = sh.groupby("opportunity_id")["entered_at"].shift(-1)
    sh["next_stage"] = sh.groupby("opportunity_id")["stage"].shift(-1)
    neg = sh[sh["stage"] == "Negotiation"].copy()
    end = neg["next_at"].dt.normalize().fillna(pd.Timestamp(sample.as_of))
    neg["days"] = (end - neg["entered_at"].dt.normalize()).dt.days
    neg["event"] = neg["next_at"].notna().astype(int)
    sf = SurvfuncRight(neg["days"].to_numpy(), neg["event"].to_numpy())
    r = got.loc["Negotiation"]
    assert r["entered"] == len(neg)
    assert r["still_in_stage"] == (neg["event"] == 0).sum()
    assert r["won"] == (neg["next_stage"] == "Closed Won").sum() == r["moved_to_next"]
    assert r["median_days_in_stage"] == sf.quantile(0.5)


def test_sample_stuck_deals(sample):
    durations = stage_durations(sample).set_index("stage")["p90_days_in_stage"]
    got = stuck_deals(sample, top_n=25)
    assert 0 < len(got) <= 25
    assert (got["days_in_stage"] > got["threshold_days"]).all()
    assert (got["threshold_days"] == got["stage"].map(durations)).all()
    assert got["amount"].is_monotonic_decreasing
    assert got["owner"].notna().all() and got["close_date_pushes"].notna().all()


def test_sample_close_date_pushes_match_rows(sample):
    got = close_date_pushes(sample).iloc[0]
    sh = sample.stage_history.to_pandas().sort_values(["opportunity_id", "entered_at"])
    prev = sh.groupby("opportunity_id")["close_date"].shift()
    sh["push"] = pd.to_datetime(sh["close_date"]) > pd.to_datetime(prev)
    per_deal = sh.groupby("opportunity_id")["push"].sum()
    assert got["deals"] == len(per_deal)
    assert got["deals_pushed"] == (per_deal > 0).sum()
    assert got["mean_pushes"] == pytest.approx(per_deal.mean())
