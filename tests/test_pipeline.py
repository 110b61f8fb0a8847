"""Pipeline KPIs (salesops_widgets/metrics/_pipeline.py).

Expected numbers are derived by hand from the tiny frames below (arithmetic in the comments), or
computed independently in the test with plain pandas and statsmodels' Wilson interval.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics._pipeline import coverage_window, pipeline_kpis

COLUMNS = [
    "opportunities", "open", "open_with_amount", "won", "lost", "closed", "win_rate",
    "win_rate_low", "win_rate_high", "value_win_rate", "bookings", "asp", "open_pipeline",
    "weighted_pipeline", "small_n",
]  # fmt: skip
COVERAGE = ["quota", "quota_remaining", "coverage"]

# ------------------------------------------------------------------------------------------
# A tiny pipeline, as of 2025-06-30.
#
#  id  owner account stage        amount  prob  created     close
#  o1  R1    A1      Closed Won     100   1.0   2025-01-10  2025-02-10
#  o2  R1    A1      Closed Won     300   -     2025-01-15  2025-03-01
#  o3  R1    A1      Closed Lost    200   0.0   2025-02-01  2025-03-15
#  o4  R1    A1      Proposal       400   0.5   2025-03-01  2025-08-01
#  o5  R2    A1      Closed Lost     50   -     2025-01-20  2025-02-20
#  o6  R2    A2      Negotiation   1000   0.8   2025-04-01  2025-09-01
#  o7  R2    A2      Prospecting    500   -     2025-05-01  2025-10-01
#  o8  R3    A2      Closed Won     700   -     2024-11-01  2024-12-15   (closed in 2024)
#  o9  R3    A2      Closed Won     900   -     2025-02-01  2025-04-01
#
# reps: R1 team East quota 1200; R2 team East quota 600; R3 team West quota 2400.
# accounts: A1 Technology, A2 Retail.
# ------------------------------------------------------------------------------------------

_OPPS = [
    ("o1", "R1", "A1", "Closed Won", 100, 1.0, "2025-01-10", "2025-02-10"),
    ("o2", "R1", "A1", "Closed Won", 300, None, "2025-01-15", "2025-03-01"),
    ("o3", "R1", "A1", "Closed Lost", 200, 0.0, "2025-02-01", "2025-03-15"),
    ("o4", "R1", "A1", "Proposal", 400, 0.5, "2025-03-01", "2025-08-01"),
    ("o5", "R2", "A1", "Closed Lost", 50, None, "2025-01-20", "2025-02-20"),
    ("o6", "R2", "A2", "Negotiation", 1000, 0.8, "2025-04-01", "2025-09-01"),
    ("o7", "R2", "A2", "Prospecting", 500, None, "2025-05-01", "2025-10-01"),
    ("o8", "R3", "A2", "Closed Won", 700, None, "2024-11-01", "2024-12-15"),
    ("o9", "R3", "A2", "Closed Won", 900, None, "2025-02-01", "2025-04-01"),
]
AS_OF = "2025-06-30"


def _frames() -> dict[str, pd.DataFrame]:
    cols = ["opportunity_id", "owner_id", "account_id", "stage", "amount", "probability",
            "created_date", "close_date"]  # fmt: skip
    opps = pd.DataFrame(_OPPS, columns=cols)
    opps["amount"] = opps["amount"].astype(float)
    opps["probability"] = opps["probability"].astype(float)
    for c in ("created_date", "close_date"):
        opps[c] = pd.to_datetime(opps[c])
    reps = pd.DataFrame(
        {
            "owner_id": ["R1", "R2", "R3"],
            "owner_name": ["Ann", "Bob", "Cy"],
            "team": ["East", "East", "West"],
            "quota": [1200.0, 600.0, 2400.0],
        }
    )
    accounts = pd.DataFrame({"account_id": ["A1", "A2"], "industry": ["Technology", "Retail"]})
    return {"opportunities": opps, "reps": reps, "accounts": accounts}


@pytest.fixture(scope="module")
def tiny_quotas():
    return load(_frames(), as_of=AS_OF)


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for col, value in where.items():
        mask &= (frame[col] == value).to_numpy()
    assert mask.sum() == 1, (where, frame)
    return frame[mask].iloc[0]


# ------------------------------------------------------------------------------------------
# By hand


def test_overall_kpis_by_hand(tiny_quotas):
    out = pipeline_kpis(tiny_quotas)
    assert list(out.columns) == COLUMNS + COVERAGE
    assert len(out) == 1
    r = out.iloc[0]
    assert r.opportunities == 9
    assert r.open == 3  # o4, o6, o7
    assert r.won == 4  # o1, o2, o8, o9
    assert r.lost == 2  # o3, o5
    assert r.closed == 6
    assert r.win_rate == pytest.approx(4 / 6)  # won=4, lost=2 -> 4/6; open never counted
    assert r.value_win_rate == pytest.approx(2000 / 2250)  # won 100+300+700+900; lost 200+50
    assert r.bookings == pytest.approx(2000)
    assert r.asp == pytest.approx(500)  # 2000 / 4
    assert r.open_pipeline == pytest.approx(1900)  # 400 + 1000 + 500
    assert r.weighted_pipeline == pytest.approx(1000)  # 400*0.5 + 1000*0.8; o7 has no prob
    assert bool(r.small_n)  # 6 closed < 30


def test_deals_without_an_amount_count_where_no_amount_is_needed():
    frames = _frames()
    opps = frames["opportunities"]
    opps.loc[opps.opportunity_id.isin(["o2", "o7"]), "amount"] = np.nan  # won o2, open o7
    r = pipeline_kpis(load(frames, as_of=AS_OF)).iloc[0]
    assert (r.won, r.lost, r.open) == (4, 2, 3)  # every deal still counts by its status
    assert r.win_rate == pytest.approx(4 / 6)
    assert r.bookings == pytest.approx(100 + 700 + 900)  # 1700: o2 adds nothing
    assert r.asp == pytest.approx(1700 / 3)  # the 3 won deals with an amount, not 1700 / 4
    assert r.open_with_amount == 2  # o4, o6
    assert r.open_pipeline == pytest.approx(400 + 1000)
    assert r.value_win_rate == pytest.approx(1700 / (1700 + 200 + 50))
    # no open deal with an amount: the open pipeline cannot be computed (not $0)
    opps.loc[opps.opportunity_id.isin(["o4", "o6"]), "amount"] = np.nan
    r = pipeline_kpis(load(frames, as_of=AS_OF)).iloc[0]
    assert r.open == 3 and r.open_with_amount == 0 and np.isnan(r.open_pipeline)


def test_lost_deals_all_at_zero_leave_the_value_win_rate_undefined():
    frames = _frames()
    opps = frames["opportunities"]
    opps.loc[opps.opportunity_id.isin(["o3", "o5"]), "amount"] = 0.0  # the two lost deals
    r = pipeline_kpis(load(frames, as_of=AS_OF)).iloc[0]
    assert np.isnan(r.value_win_rate)  # 2000 / (2000 + 0) would read 100%
    assert r.win_rate == pytest.approx(4 / 6)


def test_win_rate_interval_is_wilson(tiny_quotas):
    r = pipeline_kpis(tiny_quotas).iloc[0]
    low, high = proportion_confint(4, 6, alpha=0.05, method="wilson")
    assert (r.win_rate_low, r.win_rate_high) == pytest.approx((low, high))


def test_small_n_follows_min_closed(tiny_quotas):
    assert not pipeline_kpis(tiny_quotas, min_closed=6).small_n.iloc[0]  # 6 closed, not < 6
    assert pipeline_kpis(tiny_quotas, min_closed=7).small_n.iloc[0]


def test_by_owner_by_hand(tiny_quotas):
    out = pipeline_kpis(tiny_quotas, by=["owner_id"])
    assert list(out.columns) == ["owner_id", *COLUMNS, *COVERAGE]
    assert out.owner_id.tolist() == ["R1", "R2", "R3"]
    r1, r2, r3 = (_row(out, owner_id=o) for o in ("R1", "R2", "R3"))
    # R1: won o1, o2 (400); lost o3; open o4 (400, p 0.5)
    assert (r1.opportunities, r1.open, r1.won, r1.lost) == (4, 1, 2, 1)
    assert r1.win_rate == pytest.approx(2 / 3)
    assert r1.asp == pytest.approx(200)  # 400 / 2
    assert r1.weighted_pipeline == pytest.approx(200)  # 400 * 0.5
    # R2: nothing won -> win rate 0/1 = 0, ASP undefined; o7 has no probability
    assert r2.win_rate == 0
    assert r2.value_win_rate == 0  # 0 / (0 + 50)
    assert math.isnan(r2.asp)
    assert r2.bookings == 0
    assert r2.open_pipeline == pytest.approx(1500)  # 1000 + 500
    assert r2.weighted_pipeline == pytest.approx(800)  # 1000 * 0.8
    # R3: all won, nothing open -> weighted pipeline 0, not NaN
    assert r3.win_rate == 1
    assert r3.asp == pytest.approx(800)  # (700 + 900) / 2
    assert r3.open_pipeline == 0
    assert r3.weighted_pipeline == 0


def test_coverage_by_owner_by_hand(tiny_quotas):
    out = pipeline_kpis(tiny_quotas, by=["owner_id"])
    r1, r2, r3 = (_row(out, owner_id=o) for o in ("R1", "R2", "R3"))
    # window: calendar 2025 (as_of 2025-06-30) = 1 year
    # R1: quota 1200, booked in 2025 100+300 = 400 -> remaining 800; open 400 -> 0.5
    assert (r1.quota, r1.quota_remaining, r1.coverage) == pytest.approx((1200, 800, 0.5))
    # R2: quota 600, nothing booked -> remaining 600; open 1500 -> 2.5
    assert (r2.quota, r2.quota_remaining, r2.coverage) == pytest.approx((600, 600, 2.5))
    # R3: quota 2400, booked in 2025 only o9 (900; o8 closed in 2024) -> 1500; open 0 -> 0
    assert (r3.quota, r3.quota_remaining, r3.coverage) == pytest.approx((2400, 1500, 0))


def test_coverage_overall_and_by_team_by_hand(tiny_quotas):
    r = pipeline_kpis(tiny_quotas).iloc[0]
    # quota 1200+600+2400 = 4200; booked 2025: 100+300+900 = 1300 -> 2900; open 1900
    assert (r.quota, r.quota_remaining) == pytest.approx((4200, 2900))
    assert r.coverage == pytest.approx(1900 / 2900)
    east = _row(pipeline_kpis(tiny_quotas, by=["team"]), team="East")
    # East = R1 + R2: quota 1800, booked 400 -> 1400; open 400 + 1500 = 1900
    assert east.coverage == pytest.approx(1900 / 1400)


def test_coverage_prorated_to_the_period(tiny_quotas):
    r = pipeline_kpis(tiny_quotas, period=("2025-01-01", "2025-03-31")).iloc[0]
    # Q1 2025 = 90 of 365 days; quota 4200*90/365; booked in Q1: o1 100 + o2 300 = 400
    # deals created in Q1: o1-o5 and o9; open among them: o4 (400)
    quota = 4200 * 90 / 365
    assert r.opportunities == 6
    assert r.quota == pytest.approx(quota)
    assert r.quota_remaining == pytest.approx(quota - 400)
    assert r.coverage == pytest.approx(400 / (quota - 400))


def test_coverage_nan_when_quota_met(tiny_quotas):
    out = pipeline_kpis(tiny_quotas, by=["owner_id"], period=("2025-01-01", "2025-04-30"))
    r3 = _row(out, owner_id="R3")
    # 120 days: quota 2400*120/365 = 789.04 < booked o9 900 -> nothing left to cover
    assert r3.quota_remaining == pytest.approx(2400 * 120 / 365 - 900)
    assert r3.quota_remaining < 0
    assert math.isnan(r3.coverage)


def test_coverage_window():
    as_of = dt.date(2024, 8, 15)
    assert coverage_window(as_of) == (dt.date(2024, 1, 1), dt.date(2024, 12, 31), 1.0)
    # 2024 is a leap year: Q1 = 31 + 29 + 31 = 91 of 366 days
    assert coverage_window(as_of, ("2024-01-01", "2024-03-31"))[2] == pytest.approx(91 / 366)
    # Dec 2024 (31/366) + Jan 2025 (31/365)
    span = coverage_window(as_of, ("2024-12-01", "2025-01-31"))[2]
    assert span == pytest.approx(31 / 366 + 31 / 365)
    # open-ended: from the start to the as-of date
    assert coverage_window(as_of, ("2024-08-01", None))[:2] == (as_of.replace(day=1), as_of)


def test_quota_only_for_rep_level_groups_and_filters(tiny_quotas):
    assert "quota" not in pipeline_kpis(tiny_quotas, by=["industry"])
    # a filter the quota cannot be split by: columns kept, values NaN
    out = pipeline_kpis(tiny_quotas, by=["owner_id"], filters={"industry": "Retail"})
    assert out[COVERAGE].isna().all().all()
    # a rep-level filter keeps only those reps' quota: R1 + R2 = 1800
    east = pipeline_kpis(tiny_quotas, filters={"team": "East"}).iloc[0]
    assert east.quota == pytest.approx(1800)


def test_no_quota_columns_without_quota():
    frames = _frames()
    frames["reps"] = frames["reps"].drop(columns="quota")
    assert list(pipeline_kpis(load(frames, as_of=AS_OF)).columns) == COLUMNS
    del frames["reps"]
    assert list(pipeline_kpis(load(frames, as_of=AS_OF)).columns) == COLUMNS


def test_period_on_closed_date(tiny_quotas):
    r = pipeline_kpis(tiny_quotas, period=("2025-01-01", "2025-12-31"), date_field="closed_date")
    # closed in 2025: o1, o2, o9 won (1300), o3, o5 lost; open deals have no closed date
    r = r.iloc[0]
    assert (r.won, r.lost, r.open) == (3, 2, 0)
    assert r.bookings == pytest.approx(1300)


# ------------------------------------------------------------------------------------------
# Degenerate cases: NaN or empty, never an exception


def test_filter_matching_nothing(tiny_quotas):
    out = pipeline_kpis(tiny_quotas, by=["owner_id"], filters={"owner_id": "nobody"})
    assert list(out.columns) == ["owner_id", *COLUMNS, *COVERAGE]
    assert out.empty
    r = pipeline_kpis(tiny_quotas, filters={"owner_id": "nobody"}).iloc[0]
    assert (r.opportunities, r.won, r.lost, r.open) == (0, 0, 0, 0)
    assert math.isnan(r.win_rate) and math.isnan(r.win_rate_low) and math.isnan(r.asp)
    assert math.isnan(r.value_win_rate) and bool(r.small_n)
    assert r.bookings == 0 and r.open_pipeline == 0


def test_everything_open():
    frames = _frames()
    frames["opportunities"]["stage"] = "Proposal"
    r = pipeline_kpis(load(frames, as_of=AS_OF)).iloc[0]
    assert (r.closed, r.open) == (0, 9)
    assert math.isnan(r.win_rate) and math.isnan(r.win_rate_high)
    assert math.isnan(r.asp) and r.bookings == 0


def test_single_deal():
    frames = _frames()
    frames["opportunities"] = frames["opportunities"].iloc[[0]]
    r = pipeline_kpis(load(frames, as_of=AS_OF)).iloc[0]
    low, high = proportion_confint(1, 1, method="wilson")
    assert (r.opportunities, r.won, r.win_rate, r.asp) == (1, 1, 1.0, 100.0)
    assert (r.win_rate_low, r.win_rate_high) == pytest.approx((low, high))


def test_no_probability_column():
    frames = _frames()
    frames["opportunities"] = frames["opportunities"].drop(columns="probability")
    assert math.isnan(pipeline_kpis(load(frames, as_of=AS_OF)).weighted_pipeline.iloc[0])


def test_bad_dimension(tiny_quotas):
    with pytest.raises(ParameterError, match="not a dimension"):
        pipeline_kpis(tiny_quotas, by=["colour"])
    frames = _frames()
    del frames["accounts"]
    with pytest.raises(MissingDataError, match="tables.accounts.columns.industry"):
        pipeline_kpis(load(frames, as_of=AS_OF), by=["industry"])


# ------------------------------------------------------------------------------------------
# Against plain pandas and statsmodels


def _pandas_reference(opps: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    o = opps.assign(
        won=opps.is_won,
        lost=opps.is_closed & ~opps.is_won,
        open=~opps.is_closed,
        won_amount=opps.amount.where(opps.is_won, 0.0),
        open_amount=opps.amount.where(~opps.is_closed, 0.0),
    )
    g = o.groupby(by)[["won", "lost", "open", "won_amount", "open_amount"]].sum()
    g["win_rate"] = g.won / (g.won + g.lost)
    g["asp"] = g.won_amount / g.won
    return g


def test_against_pandas_on_the_sample(sample):
    ref = _pandas_reference(sample.opportunities.to_pandas(), ["owner_id"])
    out = pipeline_kpis(sample, by=["owner_id"]).set_index("owner_id")
    assert out.index.tolist() == ref.index.tolist()
    assert (out.won == ref.won).all() and (out.lost == ref.lost).all()
    assert np.allclose(out.win_rate, ref.win_rate)
    assert np.allclose(out.bookings, ref.won_amount)
    assert np.allclose(out.asp, ref.asp)
    assert np.allclose(out.open_pipeline, ref.open_amount)
    low, high = proportion_confint(ref.won, ref.won + ref.lost, method="wilson")
    assert np.allclose(out.win_rate_low, low) and np.allclose(out.win_rate_high, high)


_deal = st.tuples(
    st.sampled_from(["Closed Won", "Closed Lost", "Proposal"]),
    st.sampled_from(["R1", "R2", "R3"]),
    st.integers(min_value=0, max_value=10_000),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_deal, min_size=1, max_size=25))
def test_win_rate_property(deals):
    opps = pd.DataFrame(deals, columns=["stage", "owner_id", "amount"])
    opps["amount"] = opps["amount"].astype(float)
    opps["opportunity_id"] = [f"x{i}" for i in range(len(opps))]
    opps["created_date"] = pd.Timestamp("2025-01-01")
    data = load({"opportunities": opps})
    out = pipeline_kpis(data, by=["owner_id"]).set_index("owner_id")
    ref = _pandas_reference(data.opportunities.to_pandas(), ["owner_id"])
    assert out.won.tolist() == ref.won.tolist() and out.lost.tolist() == ref.lost.tolist()
    assert np.allclose(out.win_rate, ref.win_rate, equal_nan=True)
    assert np.allclose(out.asp, ref.asp, equal_nan=True)
    assert np.allclose(out.bookings, ref.won_amount)
    closed = (ref.won + ref.lost).to_numpy()
    has = closed > 0
    low, high = proportion_confint(ref.won.to_numpy()[has], closed[has], method="wilson")
    assert np.allclose(out.win_rate_low.to_numpy()[has], low)
    assert np.allclose(out.win_rate_high.to_numpy()[has], high)
    assert np.isnan(out.win_rate_low.to_numpy()[~has]).all()  # nothing closed: NaN


# ------------------------------------------------------------------------------------------
# Planted effects (data/samples/README.md)


def test_segments_differ_in_win_rate_and_asp(sample):
    out = pipeline_kpis(sample, by=["size_band"]).set_index("size_band")
    # README: win rate SMB 42.1%, Mid-Market 37.0%, Enterprise 29.0%
    assert out.loc[["SMB", "Mid-Market", "Enterprise"], "win_rate"].tolist() == pytest.approx(
        [0.421, 0.370, 0.290], abs=0.001
    )
    assert out.loc["SMB", "win_rate_low"] > out.loc["Mid-Market", "win_rate_high"]
    assert out.loc["Mid-Market", "win_rate_low"] > out.loc["Enterprise", "win_rate_high"]
    # README: ASP $20,200 / $63,700 / $223,800
    assert out.loc[["SMB", "Mid-Market", "Enterprise"], "asp"].tolist() == pytest.approx(
        [20_200, 63_700, 223_800], abs=100
    )
    assert not out.small_n.any()


def test_top_tier_reps_win_more(sample):
    by_rep = pipeline_kpis(sample, by=["owner_id"])
    top = by_rep[by_rep.bookings >= by_rep.bookings.quantile(0.75)].owner_id.tolist()
    out = pipeline_kpis(sample, filters={"owner_id": top}).iloc[0]
    rest = [o for o in by_rep.owner_id if o not in top]
    others = pipeline_kpis(sample, filters={"owner_id": rest}).iloc[0]
    # README: 47.5% against 30.9%
    assert out.win_rate == pytest.approx(0.475, abs=0.01)
    assert others.win_rate == pytest.approx(0.309, abs=0.01)
    assert out.win_rate_low > others.win_rate_high


def test_open_share_of_the_sample(sample):
    r = pipeline_kpis(sample).iloc[0]
    assert r.open / r.opportunities == pytest.approx(0.15, abs=0.001)  # README: 15.0% open
