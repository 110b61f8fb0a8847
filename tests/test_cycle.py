"""Cycle days of closed deals (salesops_widgets/metrics/_cycle.py): counts, means and quantiles
of won and lost deals, the pre-binned cycle-days histogram and the age bands of open deals.

Expected numbers are derived by hand from the tiny frames (arithmetic in the comments: the tiny
pipeline with stage history of tests/_helpers.py, and the one below), or computed on the
sample's rows with plain pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import deal_rows

from salesops_widgets import load, metrics
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics._cycle import (
    cycle_histogram,
    cycle_quantiles,
    cycle_stats,
    cycle_summary,
    open_deal_aging,
)

# ------------------------------------------------------------------------------------------
# Cycle days of closed deals, on the tiny pipeline with stage history


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


def test_sample_cycle_stats_match_pandas(sample):
    got = cycle_stats(sample, by=["size_band"]).set_index(["size_band", "outcome"])
    rows = deal_rows(sample, "size_band", "status", "cycle_days")
    rows = rows[rows["status"] != "open"]
    ref = rows.groupby(["size_band", "status"])["cycle_days"]
    assert got["deals"].to_dict() == ref.count().to_dict()
    for (band, status), value in ref.median().items():
        assert got.loc[(band, status), "median_cycle_days"] == value
    for (band, status), value in ref.quantile(0.9).items():
        assert got.loc[(band, status), "p90_cycle_days"] == pytest.approx(value)
    for (band, status), value in ref.mean().items():
        assert got.loc[(band, status), "mean_cycle_days"] == pytest.approx(value)


# ------------------------------------------------------------------------------------------
# A tiny pipeline, as of 2025-03-31.
#
#  id  type     stage        amount  created     close        cycle / age (days)
#  a1  New      Closed Won    100    2025-01-01  2025-01-11   10 won
#  a2  New      Closed Won    200    2025-01-01  2025-02-10   40 won   (31 + 9)
#  a3  New      Closed Lost   300    2025-01-01  2025-01-06    5 lost
#  a4  New      Prospecting   400    2025-03-01  2025-05-01   age 30 (Mar 1 → Mar 31)
#  a5  Renewal  Closed Won    500    2025-01-01  2025-03-02   60 won   (31 + 28 + 1)
#  a6  Renewal  Closed Lost   600    2025-01-01  2025-01-31   30 lost
#  a7  Renewal  Negotiation   700    2024-12-01  2025-04-30   age 120 (30 + 31 + 28 + 31)
#  a8  New      Proposal      800    2025-01-30  2025-04-30   age 60 (1 + 28 + 31)
# ------------------------------------------------------------------------------------------

AS_OF = "2025-03-31"
_OPPS = [
    ("a1", "New", "Closed Won", 100, "2025-01-01", "2025-01-11"),
    ("a2", "New", "Closed Won", 200, "2025-01-01", "2025-02-10"),
    ("a3", "New", "Closed Lost", 300, "2025-01-01", "2025-01-06"),
    ("a4", "New", "Prospecting", 400, "2025-03-01", "2025-05-01"),
    ("a5", "Renewal", "Closed Won", 500, "2025-01-01", "2025-03-02"),
    ("a6", "Renewal", "Closed Lost", 600, "2025-01-01", "2025-01-31"),
    ("a7", "Renewal", "Negotiation", 700, "2024-12-01", "2025-04-30"),
    ("a8", "New", "Proposal", 800, "2025-01-30", "2025-04-30"),
]
_COLUMNS = ["opportunity_id", "deal_type", "stage", "amount", "created_date", "close_date"]


@pytest.fixture(scope="module")
def tiny_cycles():
    return load({"opportunities": pd.DataFrame(_OPPS, columns=_COLUMNS)}, as_of=AS_OF)


@pytest.fixture(scope="module")
def raw(sample_dirs):
    """The sample's opportunities with the account's size band, straight from the parquet
    files: cycle days of closed deals, age of open ones (as of 2026-09-30)."""
    opps = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    accounts = pd.read_parquet(sample_dirs["default"] / "accounts.parquet")
    accounts = accounts[["account_id", "size_band"]]
    out = opps.merge(accounts, on="account_id", how="left")
    created = pd.to_datetime(out["created_date"])
    closed = pd.to_datetime(out["close_date"])
    out["cycle"] = np.where(out["is_closed"], (closed - created).dt.days, np.nan)
    out["age"] = np.where(~out["is_closed"], (pd.Timestamp("2026-09-30") - created).dt.days, np.nan)
    out["outcome"] = np.where(out["is_won"], "won", np.where(out["is_closed"], "lost", "open"))
    return out


# ------------------------------------------------------------------------------------------
# cycle_quantiles


def test_quantiles_by_hand(tiny_cycles):
    got = cycle_quantiles(tiny_cycles).set_index("outcome")
    # won cycles 10, 40, 60; linear interpolation at position q·(n − 1) = 2q:
    # p10 at 0.2 → 10 + 0.2·30 = 16; p25 at 0.5 → 25; median 40; p75 at 1.5 → 40 + 0.5·20 = 50;
    # p90 at 1.8 → 40 + 0.8·20 = 56
    won = got.loc["won"]
    assert won["deals"] == 3
    assert [won[c] for c in ("p10_cycle_days", "p25_cycle_days", "median_cycle_days")] == [
        pytest.approx(16),
        pytest.approx(25),
        40,
    ]
    assert won["p75_cycle_days"] == pytest.approx(50)
    assert won["p90_cycle_days"] == pytest.approx(56)
    # lost cycles 5, 30: position q → 5 + 25q: p10 7.5, p25 11.25, median 17.5, p75 23.75, p90 27.5
    lost = got.loc["lost"]
    expected = [7.5, 11.25, 17.5, 23.75, 27.5]
    columns = ["p10_cycle_days", "p25_cycle_days", "median_cycle_days"]
    columns += ["p75_cycle_days", "p90_cycle_days"]
    assert [lost[c] for c in columns] == pytest.approx(expected)
    assert got["small_n"].all()  # 3 and 2 deals


def test_quantiles_by_group_keep_both_outcomes(tiny_cycles):
    got = cycle_quantiles(tiny_cycles, by="deal_type").set_index(["deal_type", "outcome"])
    # New: won 10, 40 → median 25, p90 10 + 0.9·30 = 37; lost 5 alone
    assert got.loc[("New", "won"), "median_cycle_days"] == 25
    assert got.loc[("New", "won"), "p90_cycle_days"] == pytest.approx(37)
    assert got.loc[("New", "lost"), "p10_cycle_days"] == 5
    # Renewal: won 60, lost 30
    assert got.loc[("Renewal", "won"), "p25_cycle_days"] == 60
    assert got.loc[("Renewal", "lost"), "deals"] == 1
    assert len(got) == 4


def test_quantiles_of_a_group_without_won_deals_are_nan(tiny_cycles):
    got = cycle_quantiles(tiny_cycles, filters={"stage": ["Closed Lost"]}).set_index("outcome")
    assert got.loc["won", "deals"] == 0
    assert np.isnan(got.loc["won", "median_cycle_days"])
    assert got.loc["lost", "median_cycle_days"] == 17.5


def test_quantiles_match_pandas_and_cycle_stats_on_the_sample(sample, raw):
    got = cycle_quantiles(sample, by="size_band").set_index(["size_band", "outcome"])
    closed = raw[raw["outcome"] != "open"]
    for q, column in [(0.1, "p10_cycle_days"), (0.25, "p25_cycle_days"), (0.75, "p75_cycle_days")]:
        ref = closed.groupby(["size_band", "outcome"])["cycle"].quantile(q)
        assert got[column].to_dict() == pytest.approx(ref.to_dict())
    # the median and p90 are those of the KPI layer's cycle_stats
    stats = metrics.cycle_stats(sample, by="size_band").set_index(["size_band", "outcome"])
    for column in ("median_cycle_days", "p90_cycle_days", "deals"):
        assert got[column].to_dict() == pytest.approx(stats[column].to_dict())


def test_quantiles_need_close_dates():
    opps = pd.DataFrame(_OPPS, columns=_COLUMNS).drop(columns="close_date")
    data = load({"opportunities": opps}, as_of=AS_OF)
    with pytest.raises(MissingDataError, match="close_date"):
        cycle_quantiles(data)


# ------------------------------------------------------------------------------------------
# cycle_histogram


def test_histogram_by_hand(tiny_cycles):
    got = cycle_histogram(tiny_cycles, bin_days=30, max_days=60)
    won = got[got["outcome"] == "won"]
    # won 10 → bin 0, 40 → bin 1, 60 → the last bin (60 days or more)
    assert won["band"].tolist() == ["0–29 days", "30–59 days", "60+ days"]
    assert won["band_low"].tolist() == [0, 30, 60]
    assert won["band_high"].tolist() == [30, 60, 90]
    assert won["deals"].tolist() == [1, 1, 1]
    assert won["share"].tolist() == pytest.approx([1 / 3] * 3)
    # lost 5 → bin 0, 30 → bin 1; the empty last bin is there with 0
    lost = got[got["outcome"] == "lost"]
    assert lost["deals"].tolist() == [1, 1, 0]
    assert lost["share"].tolist() == pytest.approx([0.5, 0.5, 0.0])


def test_histogram_by_group(tiny_cycles):
    got = cycle_histogram(tiny_cycles, by=["deal_type"], bin_days=30, max_days=60)
    renewal = got[(got["deal_type"] == "Renewal") & (got["outcome"] == "lost")]
    assert renewal["deals"].tolist() == [0, 1, 0]  # a6: 30 days
    assert len(got) == 2 * 2 * 3  # two types, two outcomes, three bins


def test_histogram_matches_pandas_on_the_sample(sample, raw):
    got = cycle_histogram(sample, by="size_band")  # 30-day bins, the last from 360 days
    closed = raw[raw["outcome"] != "open"].copy()
    closed["bin"] = (closed["cycle"] // 30).clip(upper=12).astype(int) * 30
    ref = closed.groupby(["size_band", "outcome", "bin"]).size()
    shown = got[got["deals"] > 0].set_index(["size_band", "outcome", "band_low"])["deals"]
    assert shown.to_dict() == ref.to_dict()
    sums = got.groupby(["size_band", "outcome"])["share"].sum()
    assert sums.to_numpy() == pytest.approx(np.ones(len(sums)))


@pytest.mark.parametrize(("bin_days", "max_days"), [(0, 360), (30, 10), ("a", 360)])
def test_histogram_bad_bins(tiny_cycles, bin_days, max_days):
    with pytest.raises(ParameterError, match="bin_days"):
        cycle_histogram(tiny_cycles, bin_days=bin_days, max_days=max_days)


# ------------------------------------------------------------------------------------------
# open_deal_aging


def test_aging_by_hand(tiny_cycles):
    got = open_deal_aging(tiny_cycles, by="deal_type", edges=(30, 90))
    new = got[got["deal_type"] == "New"]
    # open New deals: a4 age 30 (0–30: an edge belongs to the band below it), a8 age 60
    assert new["age_band"].tolist() == ["0–30 days", "31–90 days", "over 90 days"]
    assert new["deals"].tolist() == [1, 1, 0]
    assert new["amount"].tolist() == [400, 800, 0]
    assert new["share"].tolist() == pytest.approx([0.5, 0.5, 0])
    assert new["amount_share"].tolist() == pytest.approx([400 / 1200, 800 / 1200, 0])
    renewal = got[got["deal_type"] == "Renewal"]  # a7, age 120
    assert renewal["deals"].tolist() == [0, 0, 1]
    assert renewal["band_high"].tolist()[-1] == np.inf


def test_aging_matches_pandas_on_the_sample(sample, raw):
    got = open_deal_aging(sample, by="size_band").set_index(["size_band", "age_band"])
    open_deals = raw[raw["outcome"] == "open"].copy()
    labels = ["0–30 days", "31–90 days", "91–180 days", "181–365 days", "over 365 days"]
    open_deals["band"] = pd.cut(open_deals["age"], [-1, 30, 90, 180, 365, np.inf], labels=labels)
    ref = open_deals.groupby(["size_band", "band"], observed=False)
    assert got["deals"].to_dict() == ref.size().to_dict()
    assert got["amount"].to_dict() == pytest.approx(ref["amount"].sum().to_dict())


def test_aging_with_nothing_open(tiny_cycles):
    got = open_deal_aging(tiny_cycles, filters={"stage": ["Closed Won"]})
    assert got.empty and "no open deal" in got.attrs["note"]


@pytest.mark.parametrize("edges", [(), (90, 30), (0, 30), (30, 30)])
def test_aging_bad_edges(tiny_cycles, edges):
    with pytest.raises(ParameterError, match="edges"):
        open_deal_aging(tiny_cycles, edges=edges)
