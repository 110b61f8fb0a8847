"""Tests for salesops_widgets/metrics/_strata.py: tiers, comparisons, mix adjustment, migration.

Hand-derived values on tiny datasets (arithmetic in the comments), scipy/statsmodels on the
expanded rows for every statistic, hypothesis properties of the tiering, the planted effects of
data/samples/default, and the degenerate cases.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.duration.survfunc import survdiff
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from salesops_widgets import load
from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics._significance import chi_square_test
from salesops_widgets.metrics._stats import TOO_FEW
from salesops_widgets.metrics._strata import (
    assign_tiers,
    compare_strata,
    mix_adjusted,
    stratify,
    tier_labels,
    tier_migration,
)

SETTINGS = settings(max_examples=30, deadline=None)
approx = pytest.approx
START = dt.date(2025, 1, 1)
AS_OF = "2025-06-30"
_IDS = itertools.count(1)


def deal(owner, status, amount, days, *, list_amount=None, created=START, **dims):
    """One opportunity: closed ``days`` after ``created``, or open (close date after the as-of)."""
    closed = status != "open"
    return {
        "opportunity_id": f"O-{next(_IDS)}",
        "owner_id": owner,
        "created_date": pd.Timestamp(created),
        "close_date": pd.Timestamp(created + dt.timedelta(days=days if closed else 400)),
        "amount": float(amount),
        "list_amount": float(list_amount if list_amount is not None else amount),
        "is_closed": closed,
        "is_won": status == "won",
        **dims,
    }


def make(rows, as_of=AS_OF):
    return load({"opportunities": pd.DataFrame(rows)}, as_of=as_of)


# Five reps (all deals created 2025-01-01, as of 2025-06-30):
#   R1: won 50, 100, 150, 200 (cycles 10, 20, 30, 40), listed at 1.25x amount (discount 20%)
#   R2: won 100, 120, 140 (cycles 10, 20, 30); lost 100 (cycle 5)
#   R3: won 100, 150 (cycles 50, 60); lost 100, 100 (cycles 15, 25)
#   R4: won 120 (cycle 70); lost 100, 100, 100 (cycles 35, 45, 55)
#   R5: lost 100 (cycle 65); open 100 (age 180 days)
# bookings: R1 500, R2 360, R3 250, R4 120, R5 0 (total 1230)
FIVE = [
    *(deal("R1", "won", a, d, list_amount=1.25 * a) for a, d in [(50, 10), (100, 20), (150, 30),
                                                                  (200, 40)]),
    *(deal("R2", "won", a, d) for a, d in [(100, 10), (120, 20), (140, 30)]),
    deal("R2", "lost", 100, 5),
    deal("R3", "won", 100, 50),
    deal("R3", "won", 150, 60),
    deal("R3", "lost", 100, 15),
    deal("R3", "lost", 101, 25),
    deal("R4", "won", 120, 70),
    *(deal("R4", "lost", 100 + i, d) for i, d in enumerate([35, 45, 55])),
    deal("R5", "lost", 100, 65),
    deal("R5", "open", 100, 0),
]  # fmt: skip


@pytest.fixture(scope="module")
def five():
    return make(FIVE)


# --------------------------------------------------------------------------------------------------
# stratify


def test_stratify_quartiles_by_hand(five):
    s = stratify(five, entity="owner_id", measure="bookings", method="quartile")
    # NTILE(4) over 5 reps: 5 = 4*1 + 1, so Q1 gets 2 and Q2..Q4 one each
    assert s["entity"].tolist() == ["R1", "R2", "R3", "R4", "R5"]
    assert s["value"].tolist() == [500, 360, 250, 120, 0]
    assert s["tier"].astype(str).tolist() == ["Q1", "Q1", "Q2", "Q3", "Q4"]
    assert s["rank"].tolist() == [1, 2, 3, 4, 5]
    # shares 500/1230, 360/1230, ...; cumulative 500/1230 = 0.4065, 860/1230 = 0.6992, ...
    assert s["cumulative_share"].tolist() == approx([500 / 1230, 860 / 1230, 1110 / 1230, 1, 1])
    assert s["opportunities"].tolist() == [4, 4, 4, 4, 2]
    assert s["closed"].tolist() == [4, 4, 4, 4, 1]
    assert s["small_n"].all()  # fewer than 30 closed deals each
    assert s["label"].tolist() == s["entity"].tolist()  # no reps table: the id is the name


def test_stratify_abc_by_hand(five):
    # cumulative share before each rep: 0, 0.4065, 0.6992, 0.9024, 1.0
    # abc (A < 80%, B < 95%): A A A B C; abcd (A < 50%, B < 80%, C < 95%): A A B C D
    abc = stratify(five, measure="bookings", method="abc")
    assert abc["tier"].astype(str).tolist() == ["A", "A", "A", "B", "C"]
    abcd = stratify(five, measure="bookings", method="abcd")
    assert abcd["tier"].astype(str).tolist() == ["A", "A", "B", "C", "D"]
    # deciles: 5 reps in 10 tiers -> one each in D1..D5
    dec = stratify(five, measure="bookings", method="decile")
    assert dec["tier"].astype(str).tolist() == ["D1", "D2", "D3", "D4", "D5"]


def test_stratify_other_measures(five):
    # win rates: R1 4/4, R2 3/4, R3 2/4, R4 1/4, R5 0/1
    wr = stratify(five, measure="win_rate")
    assert wr["value"].tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert (wr["note"] == TOO_FEW).all() and wr["share"].isna().all()
    # opportunities: 4, 4, 4, 4, 2 -> ties broken by entity id
    d = stratify(five, measure="opportunities")
    assert d["entity"].tolist() == ["R1", "R2", "R3", "R4", "R5"]
    assert d["tier"].astype(str).tolist() == ["Q1", "Q1", "Q2", "Q3", "Q4"]
    # the former name of the measure still works
    pd.testing.assert_frame_equal(stratify(five, measure="deals"), d)
    # ASP: R1 500/4 = 125, R3 250/2 = 125, R2 360/3 = 120, R4 120/1 = 120, R5 no won deal
    asp = stratify(five, measure="asp")
    assert asp["entity"].tolist() == ["R1", "R3", "R2", "R4", "R5"]
    assert asp["value"].tolist()[:4] == [125, 125, 120, 120]
    assert pd.isna(asp["tier"].iloc[4]) and asp["note"].iloc[4] == "no won deal with an amount"
    # discount = 1 - Σamount/Σlist: R1 1 - 500/625 = 0.2, everyone else 0
    disc = stratify(five, measure="discount")
    assert disc["entity"].iloc[0] == "R1" and disc["value"].iloc[0] == approx(0.2)


def test_stratify_bad_parameters(five):
    with pytest.raises(ParameterError, match="entity='team'.*'owner_id'"):
        stratify(five, entity="team")
    with pytest.raises(ParameterError, match="method='tercile'.*'quartile'"):
        stratify(five, method="tercile")
    with pytest.raises(ParameterError, match="measure='revenue'"):
        stratify(five, measure="revenue")
    with pytest.raises(ParameterError, match="additive measure"):
        stratify(five, measure="win_rate", method="abc")


@SETTINGS
@given(
    values=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=0, max_size=40),
    method=st.sampled_from(["quartile", "decile"]),
)
def test_quantile_tiers_partition(values, method):
    tiers = assign_tiers(values, method)
    labels = tier_labels(method)
    k = len(labels)
    assert all(t in labels for t in tiers)  # every entity in exactly one tier
    sizes = [int((tiers == lab).sum()) for lab in labels]
    m = len(values)
    # NTILE: sizes differ by at most one, larger tiers first
    assert sum(sizes) == m and sizes == sorted(sizes, reverse=True)
    assert max(sizes) - min(sizes) <= 1 and max(sizes) == -(-m // k)
    # a better tier never holds a smaller value than a worse one
    pos = np.array([labels.index(t) for t in tiers])
    vals = np.array(values)
    for i in range(k - 1):
        if (pos == i).any() and (pos == i + 1).any():
            assert vals[pos == i].min() >= vals[pos == i + 1].max()


@SETTINGS
@given(
    values=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40),
    method=st.sampled_from(["abc", "abcd"]),
)
def test_abc_cumulative_shares(values, method):
    tiers = assign_tiers(values, method)
    vals = np.array(values)
    if vals.sum() <= 0:
        assert all(t is None for t in tiers)
        return
    order = np.argsort(-vals, kind="stable")
    before = (np.cumsum(vals[order]) - vals[order]) / vals.sum()
    bounds = {"abc": [0.80, 0.95], "abcd": [0.50, 0.80, 0.95]}[method]
    labels = tier_labels(method)
    for b, t in zip(before, tiers[order], strict=True):
        # the tier is the number of bounds the share before the entity has reached
        expected = labels[sum(b >= bound - 1e-12 for bound in bounds)]
        assert t == expected
    assert tiers[order][0] == "A"
    a_share = vals[tiers == "A"].sum() / vals.sum()
    assert a_share >= bounds[0] - 1e-9  # A makes at least its share of the total


# --------------------------------------------------------------------------------------------------
# compare_strata on the five reps


def test_compare_win_rate_by_hand(five):
    r = compare_strata(five, measure="bookings", method="quartile", outcome="win_rate")
    t = r.table
    # Q1 = R1 + R2: 8 deals, 8 closed, 7 won; Q2 = R3: 4, 4, 2; Q3 = R4: 4, 4, 1;
    # Q4 = R5: 2 deals, 1 closed (lost), 1 open
    assert t["tier"].astype(str).tolist() == ["Q1", "Q2", "Q3", "Q4"]
    assert t["entities"].tolist() == [2, 1, 1, 1]
    assert t["opportunities"].tolist() == [8, 4, 4, 2] and t["closed"].tolist() == [8, 4, 4, 1]
    assert t["won"].tolist() == [7, 2, 1, 0] and t["open"].tolist() == [0, 0, 0, 1]
    assert t["win_rate"].tolist() == [7 / 8, 0.5, 0.25, 0.0]
    low, high = proportion_confint([7, 2, 1, 0], [8, 4, 4, 1], method="wilson")
    assert t["win_rate_low"].tolist() == approx(list(low))
    assert t["win_rate_high"].tolist() == approx(list(high))
    assert t["small_n"].all() and (t["note"] == TOO_FEW).all()
    # across tiers: chi-square on won/lost per tier, from the row-level table
    rows = pd.DataFrame(
        {"tier": np.repeat(["Q1", "Q2", "Q3", "Q4"], [8, 4, 4, 1]),
         "won": np.r_[[1] * 7, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0]}
    )  # fmt: skip
    ref = stats.chi2_contingency(pd.crosstab(rows.tier, rows.won).to_numpy(), correction=False)
    assert r.test.statistic == approx(ref.statistic) and r.test.p_value == approx(ref.pvalue)
    # top vs bottom: Q1 7/8 against Q4 0/1
    z, p = proportions_ztest([7, 0], [8, 1])
    assert r.top_vs_bottom.statistic == approx(z) and r.top_vs_bottom.p_value == approx(p)
    assert r.top_vs_bottom.effect_size == approx(7 / 8)
    assert r.tests["comparison"].tolist() == ["across tiers", "Q1 vs Q4"]


def test_compare_cycle_by_hand(five):
    r = compare_strata(five, outcome="cycle_days")
    t = r.table
    # won cycles: Q1 10, 10, 20, 20, 30, 30, 40 -> median x(4) = 20, 95% interval [x(1), x(7)]
    # (n = 7: P(Bin <= 0) = 1/128 <= 0.025 < P(Bin <= 1) = 8/128) = [10, 40]
    # Q2 50, 60 -> median 55, n = 2 too small for an interval; Q3 70; Q4 no won deal
    assert t["median_cycle_days_won"].tolist()[:3] == [20, 55, 70]
    assert t["median_cycle_days_won_low"].iloc[0] == 10
    assert t["median_cycle_days_won_high"].iloc[0] == 40
    assert np.isnan(t["median_cycle_days_won_low"].iloc[1])
    assert np.isnan(t["median_cycle_days_won"].iloc[3]) and t["n_outcome"].tolist() == [7, 2, 1, 0]
    q1, q2, q3 = [10, 10, 20, 20, 30, 30, 40], [50, 60], [70]
    ref = stats.kruskal(q1, q2, q3)
    assert r.test.statistic == approx(ref.statistic) and r.test.p_value == approx(ref.pvalue)
    # bottom tier *with data* is Q3 (Q4 has no won deal)
    ref = stats.mannwhitneyu(q1, q3, method="asymptotic")
    assert r.top_vs_bottom.statistic == approx(ref.statistic)
    assert r.top_vs_bottom.p_value == approx(ref.pvalue)
    assert r.top_vs_bottom.details["comparison"] == "Q1 vs Q3"
    # every Q1 cycle is below 70: U = 0, rank-biserial -1
    assert r.top_vs_bottom.effect_size == -1


def test_compare_discount_asp_by_hand(five):
    d = compare_strata(five, outcome="discount").table
    # on the won deals (the price realized): Q1: R1 net 500 / list 625, R2 won 360 / list 360
    # (its lost deal is a quote) -> 1 - 860/985 = 125/985 = 0.1269
    assert d["portfolio_discount"].iloc[0] == approx(125 / 985)
    # Q2 (R3) and Q3 (R4) sold at list: 0; Q4 (R5) won nothing: no discount realized
    assert d["portfolio_discount"].iloc[1:3].tolist() == approx([0, 0])
    assert np.isnan(d["portfolio_discount"].iloc[3])
    lo, hi = d["portfolio_discount_low"].iloc[0], d["portfolio_discount_high"].iloc[0]
    assert lo < 125 / 985 < hi
    a = compare_strata(five, outcome="asp")
    # ASP Q1 = (500 + 360) / 7 = 122.857; Q2 = 250 / 2 = 125; Q3 = 120 / 1
    q1, q2 = [50, 100, 150, 200, 100, 120, 140], [100, 150]
    assert a.table["asp"].tolist()[:3] == approx([860 / 7, 125, 120])
    ci = stats.t.interval(0.95, 6, loc=np.mean(q1), scale=stats.sem(q1))
    assert (a.table["asp_low"].iloc[0], a.table["asp_high"].iloc[0]) == approx(ci)
    ref = anova_oneway([q1, q2], use_var="unequal")  # Q3 has a single won deal: left out
    assert a.test.statistic == approx(ref.statistic) and a.test.p_value == approx(ref.pvalue)
    assert "fewer than two observations" in a.top_vs_bottom.reason  # Q1 vs Q3 (n = 1)


def test_compare_time_to_close_matches_survdiff(five):
    r = compare_strata(five, outcome="time_to_close")
    # closed deals are events at their cycle; R5's open deal is censored at age 180
    frame = pd.DataFrame(FIVE)
    tier = frame.owner_id.map({"R1": "Q1", "R2": "Q1", "R3": "Q2", "R4": "Q3", "R5": "Q4"})
    time = np.where(frame.is_closed, (frame.close_date - frame.created_date).dt.days, 180)
    chisq, p = survdiff(time, frame.is_closed.astype(float).to_numpy(), tier.to_numpy())
    assert r.test.statistic == approx(chisq) and r.test.p_value == approx(p)
    keep = tier.isin(["Q1", "Q4"]).to_numpy()
    chisq, p = survdiff(time[keep], frame.is_closed[keep].astype(float), tier[keep].to_numpy())
    assert r.top_vs_bottom.statistic == approx(chisq)
    assert r.table["closes_observed"].tolist() == [8, 4, 4, 1]


# --------------------------------------------------------------------------------------------------
# mix_adjusted


def _simpson():
    # closed deals by lead source x deal type (won / closed):
    #   Web:   New 2/10 (0.2), Renewal 18/30 (0.6) -> crude 20/40 = 0.5
    #   Event: New 9/30 (0.3), Renewal 7/10 (0.7)  -> crude 16/40 = 0.4
    # overall mix: New 40, Renewal 40 closed -> weights 0.5, 0.5
    # adjusted Web = 0.5*0.2 + 0.5*0.6 = 0.4; Event = 0.5*0.3 + 0.5*0.7 = 0.5 (the order flips)
    rows = []
    for src, typ, won, closed in [
        ("Web", "New", 2, 10),
        ("Web", "Renewal", 18, 30),
        ("Event", "New", 9, 30),
        ("Event", "Renewal", 7, 10),
    ]:
        rows += [deal("R1", "won" if i < won else "lost", 100 + i, 10, lead_source=src,
                      deal_type=typ) for i in range(closed)]  # fmt: skip
    rows.append(deal("R1", "open", 100, 0, lead_source="Web", deal_type="New"))
    return rows


def test_mix_adjusted_by_hand():
    data = make(_simpson())
    m = mix_adjusted(data, by="lead_source", standardize_on="deal_type").set_index("lead_source")
    assert m.loc["Web", "n"] == 40  # the open deal is not in the denominator
    assert m.loc["Web", "crude_rate"] == approx(0.5) and m.loc["Event", "crude_rate"] == approx(0.4)
    assert m.loc["Web", "adjusted_rate"] == approx(0.4)
    assert m.loc["Event", "adjusted_rate"] == approx(0.5)
    assert m.loc["Web", "difference"] == approx(-0.1)
    assert m["overall_rate"].tolist() == approx([36 / 80] * 2)
    # Var(Web) = 0.25 * 0.2*0.8/10 + 0.25 * 0.6*0.4/30 = 0.004 + 0.002 = 0.006
    half = 1.959964 * math.sqrt(0.006)
    assert m.loc["Web", "adjusted_high"] - 0.4 == approx(half, rel=1e-6)
    assert m["weight_coverage"].tolist() == approx([1.0, 1.0]) and m["note"].eq("").all()


def test_mix_adjusted_partial_coverage():
    # add Partner: New only, 5/10. Overall New 50, Renewal 40 -> weights 5/9, 4/9
    # Partner has no Renewal deal: adjusted = its New rate 0.5, coverage 5/9
    # Web adjusted = 5/9 * 0.2 + 4/9 * 0.6 = (1 + 2.4)/9 = 0.37778
    rows = _simpson() + [
        deal("R1", "won" if i < 5 else "lost", 100, 10, lead_source="Partner", deal_type="New")
        for i in range(10)
    ]
    m = mix_adjusted(make(rows), by="lead_source", standardize_on="deal_type")
    m = m.set_index("lead_source")
    assert m.loc["Partner", "adjusted_rate"] == approx(0.5)
    assert m.loc["Partner", "weight_coverage"] == approx(5 / 9)
    assert "56% of the mix" in m.loc["Partner", "note"] and TOO_FEW in m.loc["Partner", "note"]
    assert m.loc["Web", "adjusted_rate"] == approx(3.4 / 9)


def test_mix_adjusted_asp_by_hand():
    # won amounts: Web New 100, 101 (mean 100.5), Web Renewal 100..117 (mean 108.5);
    # Event New 100..108 (mean 104), Event Renewal 100..106 (mean 103)
    # won-deal mix: New 2 + 9 = 11, Renewal 18 + 7 = 25 -> weights 11/36, 25/36
    m = mix_adjusted(make(_simpson()), by="lead_source", standardize_on="deal_type", outcome="asp")
    m = m.set_index("lead_source")
    assert m.loc["Web", "adjusted_rate"] == approx(11 / 36 * 100.5 + 25 / 36 * 108.5)
    assert m.loc["Event", "adjusted_rate"] == approx(11 / 36 * 104 + 25 / 36 * 103)
    assert m.loc["Web", "crude_rate"] == approx((201 + sum(range(100, 118))) / 20)


def test_mix_adjusted_bad_parameters(five):
    with pytest.raises(ParameterError, match="same dimension"):
        mix_adjusted(five, by="owner_id", standardize_on="owner_id")
    with pytest.raises(ParameterError, match="outcome='cycle_days'"):
        mix_adjusted(five, by="owner_id", standardize_on="deal_type", outcome="cycle_days")


# --------------------------------------------------------------------------------------------------
# tier_migration


def test_tier_migration_by_hand():
    a, b = dt.date(2024, 1, 1), dt.date(2025, 1, 1)
    # period A bookings: R1 400, R2 300, R3 200, R4 100 -> Q1..Q4 one each
    # period B bookings: R2 400, R3 300, R5 200, R1 100 -> R2 Q1, R3 Q2, R5 Q3, R1 Q4; R4 gone
    rows = [
        deal(o, "won", v, 5, created=a)
        for o, v in [("R1", 400), ("R2", 300), ("R3", 200), ("R4", 100)]
    ]
    rows += [deal(o, "won", v, 5, created=b) for o, v in [("R2", 400), ("R3", 300), ("R5", 200),
                                                         ("R1", 100)]]  # fmt: skip
    data = make(rows, as_of="2025-06-30")
    m = tier_migration(
        data, period_a=("2024-01-01", "2024-12-31"), period_b=("2025-01-01", "2025-12-31")
    )
    matrix = m.pivot(index="tier_a", columns="tier_b", values="entities")
    assert matrix.loc["Q1", "Q4"] == 1 and matrix.loc["Q2", "Q1"] == 1
    assert matrix.loc["Q3", "Q2"] == 1 and matrix.loc["Q4", "gone"] == 1
    assert matrix.loc["new", "Q3"] == 1
    assert matrix.to_numpy().sum() == 5  # R1..R5, each once
    assert len(m) == 6 * 6  # every cell, zeros included
    assert m.loc[m.entities > 0, "row_share"].tolist() == [1.0] * 5
    assert m.loc[(m.tier_a == "unranked"), "row_share"].isna().all()
    with pytest.raises(ParameterError, match="period_b is required"):
        tier_migration(data, period_a=("2024-01-01", "2024-12-31"))


# --------------------------------------------------------------------------------------------------
# Degenerate cases


def test_filter_matching_nothing(five):
    nothing = {"owner_id": ["nobody"]}
    s = stratify(five, filters=nothing)
    assert s.empty and s.attrs["reason"] and "tier" in s.columns
    r = compare_strata(five, filters=nothing)
    assert (r.table["note"] == "empty tier").all() and r.table["opportunities"].sum() == 0
    assert math.isnan(r.test.p_value) and r.test.reason
    assert math.isnan(r.top_vs_bottom.p_value) and r.top_vs_bottom.reason
    for outcome in ("cycle_days", "discount", "asp", "time_to_close"):
        r = compare_strata(five, filters=nothing, outcome=outcome)
        assert r.test.reason and r.top_vs_bottom.reason
    simpson = make(_simpson())
    m = mix_adjusted(simpson, by="lead_source", standardize_on="deal_type", filters=nothing)
    assert m.empty and m.attrs["reason"]
    m = mix_adjusted(simpson, by="tier", standardize_on="deal_type", filters=nothing)
    assert (m["note"] == "no deals").all() and m["adjusted_rate"].isna().all()


def test_one_stratum_and_no_closed_deals():
    one = make([deal("R1", "won", 100, 5), deal("R1", "lost", 100, 9)])
    r = compare_strata(one, outcome="win_rate")
    assert r.table["entities"].tolist() == [1, 0, 0, 0]
    assert "fewer than two" in r.test.reason and "fewer than two" in r.top_vs_bottom.reason
    everything_open = make([deal(o, "open", 100, 0) for o in ("R1", "R2", "R3", "R4")])
    s = stratify(everything_open, measure="win_rate")
    assert s["tier"].isna().all() and (s["note"] == "no closed deals").all()
    r = compare_strata(everything_open, measure="bookings", outcome="win_rate")
    assert r.table["win_rate"].isna().all() and r.test.reason
    r = compare_strata(everything_open, outcome="time_to_close")
    assert "no events" in r.test.reason
    migration = tier_migration(everything_open, measure="win_rate",
                               period_a=("2025-01-01", "2025-03-31"),
                               period_b=("2025-01-01", "2025-03-31"))  # fmt: skip
    assert migration.set_index(["tier_a", "tier_b"]).loc[("unranked", "unranked"), "entities"] == 4


def test_compare_bad_outcome(five):
    with pytest.raises(ParameterError, match="outcome='speed'.*'win_rate'"):
        compare_strata(five, outcome="speed")


# --------------------------------------------------------------------------------------------------
# Planted effects of the default sample


def test_planted_top_reps_are_the_top_bookings_quartile(sample):
    s = stratify(sample, entity="owner_id", measure="bookings", method="quartile")
    top = set(s.loc[s.tier == "Q1", "entity"])
    planted = {f"REP-{n:03d}" for n in (5, 6, 7, 15, 19, 23, 29, 30, 32, 37, 39, 46, 48, 52)}
    assert len(top) == 15 and planted <= top  # README: 14 of its 15 reps are top tier


def test_planted_top_tier_wins_more_and_closes_faster(sample):
    wr = compare_strata(sample, entity="owner_id", measure="bookings", outcome="win_rate")
    q1, q4 = wr.table.set_index("tier").loc[["Q1", "Q4"], "win_rate"]
    assert q1 > q4 and q1 == approx(0.475, abs=0.005)  # README: 47.5%
    assert wr.top_vs_bottom.p_value < 0.05 and wr.top_vs_bottom.effect_low > 0
    assert wr.test.p_value < 0.05
    cyc = compare_strata(sample, entity="owner_id", measure="bookings", outcome="cycle_days")
    med = cyc.table.set_index("tier")["median_cycle_days_won"]
    assert med["Q1"] < med["Q4"] and med["Q1"] == approx(69, abs=2)  # README: 69 days
    assert cyc.top_vs_bottom.p_value < 0.05 and cyc.top_vs_bottom.effect_size < 0
    ttc = compare_strata(sample, entity="owner_id", measure="bookings", outcome="time_to_close")
    assert ttc.top_vs_bottom.p_value < 0.05 and ttc.top_vs_bottom.effect_low > 1  # closes sooner


def test_planted_tier_gap_survives_size_mix(sample):
    m = mix_adjusted(sample, by="tier", standardize_on="size_band").set_index("tier")
    assert m.loc["Q1", "adjusted_low"] > m.loc["Q4", "adjusted_high"]


@pytest.mark.parametrize("dimension", ["size_band", "industry"])
def test_planted_segments_differ_in_win_rate(sample, dimension):
    from salesops_widgets.metrics import select_deals

    t = select_deals(sample)
    t = t.filter(t.is_closed)
    counts = t.group_by(dimension).aggregate(won=t.is_won.cast("int64").sum(), n=t.count())
    counts = counts.to_pandas()
    r = chi_square_test(np.c_[counts.won, counts.n - counts.won])
    assert r.p_value < 0.05 and r.df == len(counts) - 1
