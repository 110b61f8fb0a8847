"""Survival statistics on counts (salesops_widgets/metrics/_survival.py).

Expected values are derived by hand (arithmetic in the comments), or computed independently in
the test: a hand-written Kaplan–Meier and Aalen–Johansen on unaggregated rows, and statsmodels'
SurvfuncRight / CumIncidenceRight on unaggregated rows (no frequency weights).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.duration.survfunc import CumIncidenceRight, SurvfuncRight

from salesops_widgets.metrics._survival import (
    KM_COLUMNS,
    KMFit,
    cumulative_incidence_from_counts,
    grouped_quantile_from_counts,
    km_from_counts,
    km_summary,
    quantile_from_counts,
)

# ------------------------------------------------------------------------------------------
# Independent references on rows


def hand_km(time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """Product-limit on rows, written out: at each event time t, S *= 1 − d/n with n the rows
    with time ≥ t; Greenwood var sum += d / (n (n − d))."""
    rows, s, var = [], 1.0, 0.0
    for t in sorted(set(time[event == 1])):
        n = int(np.sum(time >= t))
        d = int(np.sum((time == t) & (event == 1)))
        s *= 1 - d / n
        var = var + d / (n * (n - d)) if n > d else math.nan
        rows.append((float(t), n, d, s, s * math.sqrt(var) if s > 0 else math.nan))
    return pd.DataFrame(rows, columns=["time", "at_risk", "events", "survival", "se"], dtype=float)


def hand_median(curve: pd.DataFrame) -> float:
    """½(inf{t: S ≤ ½} + sup{t: S ≥ ½}) on a step curve at event times."""
    times, surv = curve["time"].to_list(), curve["survival"].to_list()
    for i, (t, s) in enumerate(zip(times, surv, strict=True)):
        if abs(s - 0.5) < 1e-9:
            return (t + times[i + 1]) / 2 if i + 1 < len(times) else t
        if s < 0.5:
            return t
    return math.nan


def to_counts(time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """Aggregate rows as the engine does: one row per distinct duration."""
    df = pd.DataFrame({"t": time, "e": event})
    return (
        df.groupby("t")["e"]
        .agg(events="sum", n="count")
        .assign(censored=lambda g: g["n"] - g["events"])
        .reset_index()
    )


samples = st.lists(st.tuples(st.integers(0, 25), st.booleans()), min_size=1, max_size=40).map(
    lambda rows: (np.array([r[0] for r in rows]), np.array([int(r[1]) for r in rows]))
)


# ------------------------------------------------------------------------------------------
# Kaplan–Meier: by hand


def test_km_hand_example():
    # 5 deals: closed on day 2, open at day 3 (censored), closed on day 5, 5 and 8.
    # day 2: 5 at risk, 1 closes: S = 4/5
    # day 5: 3 at risk (the day-3 deal left), 2 close: S = 4/5 · (1 − 2/3) = 4/15
    # day 8: 1 at risk, 1 closes: S = 0
    # Greenwood: se(2) = 4/5·sqrt(1/(5·4)) = 0.178885; se(5) = 4/15·sqrt(1/20 + 2/(3·1))
    curve = km_from_counts([2, 3, 5, 8], [1, 0, 2, 1], [0, 1, 0, 0])
    assert list(curve.columns) == KM_COLUMNS
    assert curve["time"].tolist() == [2, 5, 8]
    assert curve["at_risk"].tolist() == [5, 3, 1]
    assert curve["events"].tolist() == [1, 2, 1]
    assert curve["survival"].tolist() == pytest.approx([4 / 5, 4 / 15, 0])
    assert curve["se"].iloc[0] == pytest.approx(0.8 * math.sqrt(1 / 20))
    assert curve["se"].iloc[1] == pytest.approx(4 / 15 * math.sqrt(1 / 20 + 2 / 3))
    assert math.isnan(curve["se"].iloc[2])  # Greenwood is undefined once S = 0
    # log-log limits bracket S and stay inside [0, 1]
    assert (curve["ci_low"].iloc[:2] < curve["survival"].iloc[:2]).all()
    assert (curve["ci_high"].iloc[:2] > curve["survival"].iloc[:2]).all()
    assert curve["ci_high"].iloc[:2].max() <= 1


def test_km_summary_hand_example():
    s = km_summary([2, 3, 5, 5, 8], [1, 0, 1, 1, 1], [0, 1, 0, 0, 0], by_day=(1, 3, 8, 30))
    # S first falls to or below 1/2 at day 5 (S = 4/15)
    assert s["median"] == 5 and s["reached"] is True
    # share closed by day d = 1 − S(d): day 1 → 0, day 3 → 1/5, day 8 → 1, day 30 → 1 (S is 0,
    # so it is known past the last deal)
    assert s["share_closed_by"] == pytest.approx({1: 0, 3: 1 / 5, 8: 1, 30: 1})
    # RMST: 1 on [0,2) + 4/5 on [2,5) + 4/15 on [5,8) + 0 after = 2 + 2.4 + 0.8 = 5.2
    assert s["restricted_mean"] == pytest.approx(5.2)
    assert s["horizon"] == 365
    assert (s["n"], s["n_events"], s["max_time"]) == (5, 4, 8)


def test_km_repeated_durations_are_summed():
    a = km_from_counts([5, 2, 5, 8, 3], [1, 1, 1, 1, 0], [0, 0, 0, 0, 1])
    b = km_from_counts([2, 3, 5, 8], [1, 0, 2, 1], [0, 1, 0, 0])
    pd.testing.assert_frame_equal(a, b)


def test_median_at_exactly_one_half_is_the_midpoint():
    # 4 deals closing on days 1, 2, 3, 4: S(2) = 2/4 exactly, so the median is (2 + 3)/2 = 2.5,
    # the ordinary sample median (statsmodels' strict S < 1/2 rule would give 3).
    s = km_summary([1, 2, 3, 4], [1, 1, 1, 1], [0, 0, 0, 0])
    assert s["median"] == 2.5 == np.median([1, 2, 3, 4])


def test_median_not_reached_gives_nan_share_and_restricted_mean():
    # 4 deals: one closes on day 10, three are open at day 30. S(10) = 3/4, never ≤ 1/2.
    s = km_summary([10, 30], [1, 0], [0, 3], by_day=(5, 10, 30, 31), horizon=365)
    assert math.isnan(s["median"]) and s["reached"] is False
    assert not math.isinf(s["median_high"])
    # 1 − S: day 5 → 0, day 10 → 1/4, day 30 → 1/4, day 31 → past the follow-up: NaN
    got = s["share_closed_by"]
    assert got[5] == 0 and got[10] == pytest.approx(0.25) and got[30] == pytest.approx(0.25)
    assert math.isnan(got[31])
    # RMST up to the follow-up (30): 10·1 + 20·3/4 = 25
    assert s["restricted_mean"] == pytest.approx(25) and s["horizon"] == 30


def test_all_censored():
    s = km_summary([10, 20], [0, 0], [3, 4])
    assert math.isnan(s["median"]) and s["reached"] is False
    assert math.isnan(s["median_low"]) and math.isnan(s["median_high"])
    # nobody closed: S = 1 up to the longest follow-up (20 days): RMST = 20
    assert s["restricted_mean"] == 20 and s["horizon"] == 20
    assert s["share_closed_by"][30] != s["share_closed_by"][30]  # NaN past day 20
    assert km_from_counts([10, 20], [0, 0], [3, 4]).empty


def test_empty_input():
    s = km_summary([], [], [])
    assert s["n"] == 0 and s["n_events"] == 0 and s["reached"] is False
    assert all(math.isnan(s[k]) for k in ("median", "median_low", "restricted_mean"))
    assert km_from_counts([], [], []).empty


def test_one_deal():
    # one deal closed on day 7: S(7) = 0, median 7, no interval, RMST 7
    s = km_summary([7], [1], [0])
    assert s["median"] == 7 and s["restricted_mean"] == 7
    assert math.isnan(s["median_low"]) and math.isnan(s["median_high"])


def test_bad_counts_raise():
    with pytest.raises(ValueError):
        km_from_counts([1, 2], [1], [0, 0])
    with pytest.raises(ValueError):
        km_from_counts([1], [-1], [0])


# ------------------------------------------------------------------------------------------
# Kaplan–Meier: against references on unaggregated rows


@settings(max_examples=30, deadline=None)
@given(samples)
def test_km_on_counts_matches_rows(sample):
    time, event = sample
    counts = to_counts(time, event)
    fit = KMFit.from_counts(counts["t"], counts["events"], counts["censored"])
    curve = fit.table()
    ref = hand_km(time, event)
    assert curve["time"].tolist() == ref["time"].tolist()
    assert curve["at_risk"].tolist() == ref["at_risk"].tolist()
    np.testing.assert_allclose(curve["survival"], ref["survival"], atol=1e-12)
    np.testing.assert_allclose(curve["se"], ref["se"], rtol=1e-9)
    median = fit.quantile(0.5)
    assert median == pytest.approx(hand_median(ref), nan_ok=True)
    if event.sum() == 0:
        return
    # statsmodels on the unaggregated rows (Greenwood SE, the same median interval)
    sf = SurvfuncRight(time, event)
    np.testing.assert_allclose(curve["survival"], sf.surv_prob, atol=1e-12)
    np.testing.assert_allclose(curve["se"], sf.surv_prob_se, rtol=1e-9)
    with np.errstate(all="ignore"):
        low, high = sf.quantile_ci(0.5)
    got = fit.quantile_ci(0.5)
    assert got[0] == pytest.approx(low if np.isfinite(low) else math.nan, nan_ok=True)
    assert got[1] == pytest.approx(high if np.isfinite(high) else math.nan, nan_ok=True)
    if not np.any(np.abs(sf.surv_prob - 0.5) < 1e-9):  # statsmodels' rule differs only there
        assert median == pytest.approx(sf.quantile(0.5), nan_ok=True)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=40))
def test_km_median_without_censoring_is_the_sample_median(durations):
    s = km_summary(durations, np.ones(len(durations)), np.zeros(len(durations)))
    assert s["median"] == pytest.approx(float(np.median(durations)))
    assert s["reached"] is True
    # with no censoring the restricted mean over a long horizon is the plain mean
    assert s["restricted_mean"] == pytest.approx(float(np.mean(durations)))


@settings(max_examples=30, deadline=None)
@given(samples, st.integers(0, 30))
def test_restricted_mean_is_the_area_under_the_curve(sample, horizon):
    time, event = sample
    counts = to_counts(time, event)
    s = km_summary(counts["t"], counts["events"], counts["censored"], horizon=horizon)
    ref = hand_km(time, event)
    h = s["horizon"]
    # integrate the step function day by day on a fine grid (durations are whole days)
    grid = np.arange(0, h, 0.25) + 0.125 if h > 0 else np.array([])
    idx = np.searchsorted(ref["time"].to_numpy(), grid, side="right")
    surv = np.r_[1.0, ref["survival"].to_numpy()][idx]
    assert s["restricted_mean"] == pytest.approx(float(np.sum(surv) * 0.25), abs=1e-9)


# ------------------------------------------------------------------------------------------
# Competing risks


def test_cumulative_incidence_hand_example():
    # 5 deals: won day 2, lost day 3, open at day 3, won day 5, lost day 5.
    # day 2: 5 at risk, S(2−) = 1: won += 1·1/5 → 0.2; S = 4/5
    # day 3: 4 at risk: lost += 4/5·1/4 → 0.2; S = 4/5·3/4 = 3/5 (the open deal leaves after)
    # day 5: 2 at risk: won += 3/5·1/2 → 0.5; lost += 3/5·1/2 → 0.5; S = 0
    cif = cumulative_incidence_from_counts([2, 3, 5], [1, 0, 1], [0, 1, 1], [0, 1, 0])
    assert cif["time"].tolist() == [2, 3, 5]
    assert cif["at_risk"].tolist() == [5, 4, 2]
    assert cif["share_won"].tolist() == pytest.approx([0.2, 0.2, 0.5])
    assert cif["share_lost"].tolist() == pytest.approx([0.0, 0.2, 0.5])
    assert cif["share_open"].tolist() == pytest.approx([0.8, 0.6, 0.0])


def test_cumulative_incidence_without_events_or_losses():
    none = cumulative_incidence_from_counts([4, 9], [0, 0], [0, 0], [2, 1])
    assert none["share_won"].tolist() == [0, 0] and none["share_open"].tolist() == [1, 1]
    # only wins: statsmodels returns one cause; share_lost stays 0
    wins = cumulative_incidence_from_counts([1, 2], [1, 1], [0, 0], [0, 0])
    assert wins["share_won"].tolist() == pytest.approx([0.5, 1.0])
    assert wins["share_lost"].tolist() == [0, 0]
    assert cumulative_incidence_from_counts([], [], [], []).empty


def hand_aalen_johansen(time: np.ndarray, cause: np.ndarray) -> pd.DataFrame:
    """CIF_k(t) = Σ_{s ≤ t} S(s−) d_k(s) / n(s), on rows (cause 0 = censored)."""
    rows, s, won, lost = [], 1.0, 0.0, 0.0
    for t in sorted(set(time)):
        n = int(np.sum(time >= t))
        d1 = int(np.sum((time == t) & (cause == 1)))
        d2 = int(np.sum((time == t) & (cause == 2)))
        won += s * d1 / n
        lost += s * d2 / n
        s *= 1 - (d1 + d2) / n
        rows.append((float(t), won, lost, s))
    return pd.DataFrame(rows, columns=["time", "won", "lost", "open"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 2)), min_size=1, max_size=40))
def test_cumulative_incidence_matches_rows(rows):
    time = np.array([r[0] for r in rows])
    cause = np.array([r[1] for r in rows])
    df = pd.DataFrame({"t": time, "c": cause})
    counts = pd.crosstab(df["t"], df["c"]).reindex(columns=[0, 1, 2], fill_value=0)
    cif = cumulative_incidence_from_counts(counts.index, counts[1], counts[2], counts[0])
    ref = hand_aalen_johansen(time, cause)
    np.testing.assert_allclose(cif["share_won"], ref["won"], atol=1e-12)
    np.testing.assert_allclose(cif["share_lost"], ref["lost"], atol=1e-12)
    np.testing.assert_allclose(cif["share_open"], ref["open"], atol=1e-12)
    if cause.max() == 2:  # statsmodels, unweighted rows (needs both causes to be coded)
        with np.errstate(all="ignore"):  # its standard errors divide by 0 at the last time
            sm = CumIncidenceRight(time, cause)
        np.testing.assert_allclose(cif["share_won"], sm.cinc[0], atol=1e-12)
        np.testing.assert_allclose(cif["share_lost"], sm.cinc[1], atol=1e-12)
    # Aalen–Johansen is consistent with Kaplan–Meier: won + lost = 1 − S(all causes)
    km = KMFit.from_counts(counts.index, counts[1] + counts[2], counts[0])
    for t, total in zip(cif["time"], cif["share_won"] + cif["share_lost"], strict=True):
        assert total == pytest.approx(1 - km.at(t), abs=1e-12)


# ------------------------------------------------------------------------------------------
# Quantile on counts


def test_quantile_from_counts_hand():
    # 2 5 5 8: median (5 + 5)/2 = 5; p90 at position 0.9·3 = 2.7: 5 + 0.7·(8 − 5) = 7.1
    assert quantile_from_counts([8, 2, 5], [1, 1, 2], 0.5) == 5
    assert quantile_from_counts([8, 2, 5], [1, 1, 2], 0.9) == pytest.approx(7.1)
    assert math.isnan(quantile_from_counts([1, 2], [0, 0], 0.5))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-5, 50), st.integers(0, 4)), min_size=1, max_size=20),
    st.sampled_from([0.1, 0.25, 0.5, 0.9]),
)
def test_quantile_from_counts_matches_numpy(pairs, p):
    values = [v for v, _ in pairs]
    counts = [c for _, c in pairs]
    rows = np.repeat(values, counts)
    got = quantile_from_counts(values, counts, p)
    if len(rows) == 0:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(float(np.quantile(rows, p)))


def test_grouped_quantile_from_counts_hand():
    # group 0: 2 5 5 8 -> 5; group 1: 7 7 7 -> 7; group 2: nothing; group 3: only a NaN value
    got = grouped_quantile_from_counts(
        [0, 0, 1, 0, 3], [2, 5, 7, 8, np.nan], [1, 2, 3, 1, 4], 0.5, 4
    ).tolist()
    assert got[:2] == [5.0, 7.0] and math.isnan(got[2]) and math.isnan(got[3])
    assert np.isnan(grouped_quantile_from_counts([], [], [], 0.5, 2)).all()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(-5, 50), st.integers(0, 4)), max_size=30),
    st.sampled_from([0.1, 0.25, 0.5, 0.9]),
)
def test_grouped_quantile_from_counts_matches_numpy(rows, p):
    groups = np.array([g for g, _, _ in rows], dtype=int)
    values = np.array([v for _, v, _ in rows], dtype=float)
    counts = np.array([c for _, _, c in rows], dtype=int)
    got = grouped_quantile_from_counts(groups, values, counts, p, 4)
    for g in range(4):
        repeated = np.repeat(values[groups == g], counts[groups == g])
        if len(repeated) == 0:
            assert math.isnan(got[g])
        else:
            assert got[g] == pytest.approx(float(np.quantile(repeated, p)))
