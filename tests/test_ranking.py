"""Tests for salesops_widgets/metrics/_ranking.py: segments against the rest of the selection.

A hand calculation on a tiny dataset, then scipy/statsmodels on the unaggregated rows of the
sample for every test, Holm's adjustment by hand, the planted effects, and degenerate cases.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import segments_vs_overall

approx = pytest.approx
_IDS = itertools.count(1)
START = dt.date(2025, 1, 1)


def deal(deal_type, status, amount=100.0, days=10, list_amount=None):
    closed = status != "open"
    return {
        "opportunity_id": f"O-{next(_IDS)}",
        "created_date": pd.Timestamp(START),
        "close_date": pd.Timestamp(START + dt.timedelta(days=days if closed else 400)),
        "amount": float(amount),
        "list_amount": float(list_amount if list_amount is not None else amount),
        "is_closed": closed,
        "is_won": status == "won",
        "deal_type": deal_type,
    }


def test_win_rate_vs_rest_by_hand():
    # A: 6 won of 8 closed (plus 1 open); B: 2 won of 8 closed. Overall 8/16 = 0.5.
    # A vs rest(B): pooled p = 8/16 = 0.5, se = sqrt(0.25 * (1/8 + 1/8)) = 0.25,
    # z = (0.75 - 0.25) / 0.25 = 2.0, two-sided p = 2 * (1 - Phi(2)) = 0.0455.
    # Holm over two equal p-values: both become min(1, 2 * 0.0455) = 0.0910: not significant.
    rows = [deal("A", "won") for _ in range(6)] + [deal("A", "lost") for _ in range(2)]
    rows += [deal("A", "open")]
    rows += [deal("B", "won") for _ in range(2)] + [deal("B", "lost") for _ in range(6)]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    out = segments_vs_overall(data, by="deal_type", kpi="win_rate")
    assert out["deal_type"].tolist() == ["A", "B"]  # highest first
    assert out["value"].tolist() == approx([0.75, 0.25])
    assert out["overall"].tolist() == approx([0.5, 0.5])
    assert out["difference"].tolist() == approx([0.25, -0.25])
    assert out["n"].tolist() == [8, 8]
    assert out["p_value"].tolist() == approx([0.0455, 0.0455], abs=1e-4)
    assert out["p_adjusted"].tolist() == approx([0.0910, 0.0910], abs=1e-4)
    assert not out["significant"].any()
    assert out["direction"].tolist() == ["", ""]
    assert out["small_n"].all()  # 8 closed deals < 30


def test_win_rate_matches_statsmodels_on_the_sample(sample, sample_deals):
    out = segments_vs_overall(sample, by="size_band", kpi="win_rate").set_index("size_band")
    closed = sample_deals[sample_deals["is_closed"]]
    for band, row in out.iterrows():
        mine = closed["size_band"] == band
        counts = [closed.loc[mine, "is_won"].sum(), closed.loc[~mine, "is_won"].sum()]
        nobs = [mine.sum(), (~mine).sum()]
        _, p = proportions_ztest(counts, nobs)
        assert row["p_value"] == approx(p, rel=1e-9)
        assert row["value"] == approx(counts[0] / nobs[0])
    # planted: Enterprise wins less than the rest, significantly
    assert out.loc["Enterprise", "direction"] == "below"


def test_asp_matches_scipy_welch_on_the_sample(sample, sample_deals):
    out = segments_vs_overall(sample, by="region", kpi="asp").set_index("region")
    won = sample_deals[sample_deals["status"] == "won"]
    assert out["overall"].iloc[0] == approx(won["amount"].mean())
    for region, row in out.iterrows():
        mine = won["region"] == region
        ref = stats.ttest_ind(won.loc[mine, "amount"], won.loc[~mine, "amount"], equal_var=False)
        assert row["p_value"] == approx(ref.pvalue, rel=1e-6, abs=1e-300)
        assert row["value"] == approx(won.loc[mine, "amount"].mean())


def test_cycle_matches_scipy_mann_whitney_on_the_sample(sample, sample_deals):
    out = segments_vs_overall(sample, by="deal_type", kpi="median_cycle_days_won")
    won = sample_deals[sample_deals["status"] == "won"]
    assert out["overall"].iloc[0] == approx(won["cycle_days"].median())
    for _, row in out.iterrows():
        mine = won["deal_type"] == row["deal_type"]
        ref = stats.mannwhitneyu(
            won.loc[mine, "cycle_days"], won.loc[~mine, "cycle_days"], method="asymptotic"
        )
        assert row["p_value"] == approx(ref.pvalue, rel=1e-6, abs=1e-300)
        assert row["value"] == approx(won.loc[mine, "cycle_days"].median())


def test_discount_finds_the_planted_discounters(sample, sample_deals):
    out = segments_vs_overall(sample, by="owner_id", kpi="portfolio_discount")
    won = sample_deals[sample_deals["is_won"]]
    priced = won[(won["list_amount"] > 0) & (won["amount"] > 0)]  # the price realized
    # dollar-weighted, never a mean of percentages
    assert out["overall"].iloc[0] == approx(
        1 - priced["amount"].sum() / priced["list_amount"].sum()
    )
    top = out.head(3)
    assert set(top["owner_id"]) == {"REP-003", "REP-008", "REP-013"}  # data/samples/README.md
    assert (top["direction"] == "above").all()


def test_holm_adjustment_by_hand(sample):
    out = segments_vs_overall(sample, by="industry", kpi="win_rate")
    p = out["p_value"].to_numpy()
    # Holm: sort ascending, multiply the i-th smallest (0-based) by (m - i), take running max
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        adjusted[j] = running
    assert out["p_adjusted"].to_numpy() == approx(adjusted)
    assert (out["significant"] == (out["p_adjusted"] < 0.05)).all()


def test_filter_that_matches_nothing_gives_an_empty_frame(sample):
    out = segments_vs_overall(sample, by="region", filters={"region": ["Atlantis"]})
    assert out.empty
    assert {"value", "p_adjusted", "significant", "small_n"} <= set(out.columns)


def test_single_segment_has_no_test():
    rows = [deal("A", "won"), deal("A", "lost")]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    out = segments_vs_overall(data, by="deal_type", kpi="win_rate")
    assert len(out) == 1
    assert np.isnan(out["p_value"].iloc[0])
    assert not out["significant"].iloc[0]
    assert "no trials" in out["note"].iloc[0]


def test_bad_parameters_say_what_to_do(sample):
    with pytest.raises(ParameterError, match="kpi='speed' must be one of"):
        segments_vs_overall(sample, by="region", kpi="speed")
    with pytest.raises(ParameterError, match="not a dimension"):
        segments_vs_overall(sample, by="planet")
    rows = [{k: v for k, v in deal("A", "won").items() if k != "list_amount"}]
    data = load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")
    with pytest.raises(MissingDataError, match="list_amount"):
        segments_vs_overall(data, by="deal_type", kpi="portfolio_discount")
