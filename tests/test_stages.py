"""Stages (salesops_widgets/metrics/_stages.py): days in stage and stage-to-stage conversion,
stuck open deals, and expected close dates that slip.

Expected numbers are derived by hand from the tiny pipeline of tests/_helpers.py (its comment
gives every stay), or computed independently on the rows with pandas and statsmodels'
SurvfuncRight. The planted effects of data/samples/default are checked at the end.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from _helpers import HISTORY_AS_OF, deal_rows, history_frames
from statsmodels.duration.survfunc import SurvfuncRight

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics._stages import close_date_pushes, stage_durations, stuck_deals


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
    data = load(history_frames(history=False), as_of=HISTORY_AS_OF)
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
    data = load(history_frames(history_close_date=False), as_of=HISTORY_AS_OF)
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


def test_bad_parameters(tiny_history):
    with pytest.raises(ParameterError):
        stuck_deals(tiny_history, threshold="p900")
    with pytest.raises(ParameterError):
        stuck_deals(tiny_history, sort="size")
    with pytest.raises(ParameterError):
        stage_durations(tiny_history, by=["stage"])
    with pytest.raises(ParameterError):
        close_date_pushes(tiny_history, statuses="open")


# ------------------------------------------------------------------------------------------
# The default sample: independent references on rows, and the planted effects


def test_sample_enterprise_bottleneck_is_negotiation(sample):
    got = stage_durations(sample, by=["size_band"])
    bottleneck = got[got["is_bottleneck"]].set_index("size_band")["stage"]
    assert bottleneck["Enterprise"] == "Negotiation"  # planted: ~3x longer in Negotiation
    assert bottleneck["SMB"] != "Negotiation" and bottleneck["Mid-Market"] != "Negotiation"
    assert got.groupby("size_band")["is_bottleneck"].sum().eq(1).all()
    order = got[got["size_band"] == "SMB"]["stage"].tolist()
    assert order == ["Prospecting", "Qualification", "Proposal", "Negotiation"]


def test_sample_stage_durations_matchdeal_rows(sample):
    # Enterprise Negotiation, recomputed with pandas + statsmodels on stage_history rows
    got = stage_durations(sample, filters={"size_band": "Enterprise"}).set_index("stage")
    sh = sample.stage_history.to_pandas().sort_values(["opportunity_id", "entered_at"])
    d = deal_rows(sample, "opportunity_id", "size_band", "is_closed")
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


def test_sample_close_date_pushes_matchdeal_rows(sample):
    got = close_date_pushes(sample).iloc[0]
    sh = sample.stage_history.to_pandas().sort_values(["opportunity_id", "entered_at"])
    prev = sh.groupby("opportunity_id")["close_date"].shift()
    sh["push"] = pd.to_datetime(sh["close_date"]) > pd.to_datetime(prev)
    per_deal = sh.groupby("opportunity_id")["push"].sum()
    assert got["deals"] == len(per_deal)
    assert got["deals_pushed"] == (per_deal > 0).sum()
    assert got["mean_pushes"] == pytest.approx(per_deal.mean())
