"""Tests for salesops_widgets/metrics/_significance.py: significance tests and intervals on counts.

Every statistic is checked twice: against a value derived by hand on a tiny table (the
arithmetic is in the comments), and against scipy/statsmodels run on the expanded rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.duration.survfunc import survdiff
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics._significance import (
    chi_square_test,
    kruskal_from_counts,
    logrank_from_counts,
    mann_whitney_from_counts,
    mean_interval_from_moments,
    median_interval_from_counts,
    ratio_interval_from_sums,
    two_proportion_test,
    welch_anova_from_moments,
    welch_t_from_moments,
)

SETTINGS = settings(max_examples=30, deadline=None)
approx = pytest.approx


def expand(values, counts) -> np.ndarray:
    """The rows behind counts per distinct value."""
    return np.repeat(np.asarray(values, dtype=float), np.asarray(counts, dtype=int))


# --------------------------------------------------------------------------------------------------
# two_proportion_test


def test_two_proportion_by_hand():
    # p1 = 30/50 = 0.6, p2 = 20/50 = 0.4, pooled p = 50/100 = 0.5
    # se = sqrt(0.5 * 0.5 * (1/50 + 1/50)) = sqrt(0.25 * 0.04) = 0.1 -> z = 0.2 / 0.1 = 2
    # p = 2 * (1 - Phi(2)) = 2 * 0.02275 = 0.0455
    # Cohen's h = 2 asin(sqrt .6) - 2 asin(sqrt .4) = 2 * (0.88608 - 0.68472) = 0.40272
    r = two_proportion_test(30, 50, 20, 50)
    assert r.statistic == approx(2.0)
    assert r.p_value == approx(0.0455, abs=1e-4)
    assert r.effect_size == approx(0.2)
    assert r.details["cohens_h"] == approx(0.40272, abs=1e-5)
    assert r.effect_low < 0.2 < r.effect_high
    assert r.reason is None


def test_two_proportion_matches_statsmodels_on_rows():
    rng = np.random.default_rng(3)
    a = rng.random(120) < 0.55  # 0/1 outcome rows
    b = rng.random(90) < 0.35
    z, p = proportions_ztest([a.sum(), b.sum()], [a.size, b.size])
    r = two_proportion_test(a.sum(), a.size, b.sum(), b.size)
    assert r.statistic == approx(z)
    assert r.p_value == approx(p)
    low, high = confint_proportions_2indep(a.sum(), a.size, b.sum(), b.size, method="newcomb")
    assert (r.effect_low, r.effect_high) == (approx(low), approx(high))


@SETTINGS
@given(
    n1=st.integers(1, 300),
    n2=st.integers(1, 300),
    f1=st.floats(0, 1),
    f2=st.floats(0, 1),
)
def test_two_proportion_property(n1, n2, f1, f2):
    k1, k2 = round(n1 * f1), round(n2 * f2)
    r = two_proportion_test(k1, n1, k2, n2)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb")
    assert (r.effect_low, r.effect_high) == (approx(low, abs=1e-9), approx(high, abs=1e-9))
    if 0 < k1 + k2 < n1 + n2:
        # z squared is the uncorrected chi-square of the 2x2 table
        chi2 = stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
        assert r.statistic**2 == approx(chi2.statistic, rel=1e-9)
        assert r.p_value == approx(chi2.pvalue, rel=1e-6, abs=1e-12)
    else:
        assert math.isnan(r.p_value) and r.reason


def test_two_proportion_degenerate_and_bad_input():
    r = two_proportion_test(0, 0, 3, 10)
    assert math.isnan(r.statistic) and "no trials" in r.reason
    r = two_proportion_test(0, 10, 0, 12)  # nobody won anywhere
    assert math.isnan(r.p_value) and r.effect_size == 0.0 and r.reason
    with pytest.raises(ParameterError, match="k1 <= n1"):
        two_proportion_test(5, 4, 1, 2)
    with pytest.raises(ParameterError, match="non-negative"):
        two_proportion_test(-1, 4, 1, 2)
    with pytest.raises(ParameterError, match="confidence"):
        two_proportion_test(1, 4, 1, 2, confidence=95)


# --------------------------------------------------------------------------------------------------
# chi_square_test


def test_chi_square_by_hand():
    # expected counts are all 25; chi2 = 4 * (5^2 / 25) = 4, df = 1
    # Cramér's V = sqrt(4 / (100 * (2 - 1))) = 0.2
    r = chi_square_test([[30, 20], [20, 30]])
    assert (r.statistic, r.df, r.effect_size) == (approx(4.0), 1, approx(0.2))
    assert r.details["min_expected"] == approx(25)
    # an empty group is dropped, not an error
    r2 = chi_square_test([[30, 20], [0, 0], [20, 30]])
    assert r2.statistic == approx(4.0) and r2.details["groups"] == 2


def test_chi_square_matches_scipy_on_rows():
    rng = np.random.default_rng(5)
    group = rng.choice(["a", "b", "c", "d"], size=800)
    won = rng.random(800) < np.select([group == "a", group == "b"], [0.5, 0.4], 0.3)
    table = pd.crosstab(group, won)
    ref = stats.chi2_contingency(pd.crosstab(group, won).to_numpy(), correction=False)
    r = chi_square_test(table)
    assert (r.statistic, r.p_value, r.df) == (approx(ref.statistic), approx(ref.pvalue), 3)
    # Cramér's V from its definition on the row-level table
    assert r.effect_size == approx(np.sqrt(ref.statistic / (800 * 1)))


def test_chi_square_degenerate():
    assert "fewer than two groups" in chi_square_test([[3, 4], [0, 0]]).reason
    assert "same outcome" in chi_square_test([[0, 4], [0, 6]]).reason
    assert math.isnan(chi_square_test([[0, 0], [0, 0]]).statistic)
    with pytest.raises(ParameterError, match="2-dimensional"):
        chi_square_test([1, 2, 3])


# --------------------------------------------------------------------------------------------------
# Mann-Whitney and Kruskal-Wallis


def test_mann_whitney_by_hand():
    # a = 1, 2, 3 and b = 4, 5: ranks of a are 1, 2, 3 -> R_a = 6, U_a = 6 - 3*4/2 = 0
    # rank-biserial = 2 * 0 / (3*2) - 1 = -1 (every a below every b)
    r = mann_whitney_from_counts([1, 2, 3, 4, 5], [1, 1, 1, 0, 0], [0, 0, 0, 1, 1])
    assert r.statistic == 0 and r.effect_size == -1
    # ties: a = 1, 2 and b = 1, 2. Midranks: value 1 -> 1.5, value 2 -> 3.5
    # R_a = 1.5 + 3.5 = 5, U_a = 5 - 3 = 2, CLES = 2/4 = 0.5, rank-biserial 0
    r = mann_whitney_from_counts([2, 1], [1, 1], [1, 1])  # order of values does not matter
    assert r.statistic == 2 and r.details["cles"] == 0.5 and r.effect_size == 0


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=2, max_size=12),
)
def test_mann_whitney_matches_scipy_on_rows(pairs):
    values = np.arange(len(pairs)) * 1.5
    ca, cb = np.array(pairs).T
    r = mann_whitney_from_counts(values, ca, cb)
    a, b = expand(values, ca), expand(values, cb)
    if a.size == 0 or b.size == 0:
        assert r.reason and math.isnan(r.p_value)
        return
    ref = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
    assert r.statistic == approx(ref.statistic)
    if np.unique(np.r_[a, b]).size == 1:
        assert r.reason and math.isnan(r.p_value)
    else:
        assert r.p_value == approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_kruskal_by_hand():
    # groups {1, 2} and {3, 4}: R1 = 3, R2 = 7, N = 4
    # H = 12/(4*5) * (3^2/2 + 7^2/2) - 3*5 = 0.6 * 29 - 15 = 2.4; epsilon^2 = 2.4 / 3 = 0.8
    r = kruskal_from_counts([1, 2, 3, 4], [[1, 1, 0, 0], [0, 0, 1, 1]])
    assert (r.statistic, r.df, r.effect_size) == (approx(2.4), 1, approx(0.8))


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)),
        min_size=2,
        max_size=10,
    )
)
def test_kruskal_matches_scipy_on_rows(rows):
    values = np.arange(len(rows), dtype=float)
    counts = np.array(rows).T  # 3 groups x values
    r = kruskal_from_counts(values, counts)
    groups = [expand(values, c) for c in counts if c.sum()]
    everything = np.concatenate(groups) if groups else np.array([])
    if len(groups) < 2 or np.unique(everything).size == 1:
        assert r.reason and math.isnan(r.statistic)
        return
    ref = stats.kruskal(*groups)
    assert (r.statistic, r.p_value) == (approx(ref.statistic), approx(ref.pvalue, abs=1e-12))


def test_rank_tests_bad_input():
    with pytest.raises(ParameterError, match="one count per value"):
        mann_whitney_from_counts([1, 2], [1], [1, 1])
    with pytest.raises(ParameterError, match="without NaN"):
        kruskal_from_counts([1, float("nan")], [[1, 1], [1, 1]])
    assert "fewer than two groups" in kruskal_from_counts([1, 2], [[1, 2], [0, 0]]).reason


# --------------------------------------------------------------------------------------------------
# log-rank


def _survdiff_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    time = np.r_[expand(frame.time, frame.events), expand(frame.time, frame.censored)]
    status = np.r_[np.ones(frame.events.sum()), np.zeros(frame.censored.sum())]
    group = np.r_[np.repeat(frame.group, frame.events), np.repeat(frame.group, frame.censored)]
    return time, status, group


def test_logrank_by_hand():
    # A: events at 1 and 3. B: event at 2, censored at 4.
    # t=1: at risk A 2, B 2 (n 4), 1 event -> E_A = 2/4 = 0.5, V = 1*3/3 * 1/2 * 1/2 = 0.25
    # t=2: at risk A 1, B 2 (n 3), 1 event -> E_A = 1/3, V = 1*2/2 * 1/3 * 2/3 = 2/9
    # t=3: at risk A 1, B 1 (n 2), 1 event -> E_A = 1/2, V = 1*1/1 * 1/2 * 1/2 = 0.25
    # O_A = 2, E_A = 4/3, V = 13/18 -> chi2 = (2/3)^2 / (13/18) = 8/13
    # Peto hazard ratio A:B = exp((2/3) / (13/18)) = exp(12/13)
    frame = pd.DataFrame(
        {
            "group": ["A", "A", "B", "B"],
            "time": [1, 3, 2, 4],
            "events": [1, 1, 1, 0],
            "censored": [0, 0, 0, 1],
        }
    )
    r = logrank_from_counts(frame)
    assert r.statistic == approx(8 / 13) and r.df == 1
    assert r.details["expected"][0] == approx(4 / 3)
    assert r.effect_size == approx(math.exp(12 / 13))
    half = 1.959964 / math.sqrt(13 / 18)
    assert r.effect_low == approx(math.exp(12 / 13 - half), rel=1e-6)
    assert r.p_value == approx(survdiff(*_survdiff_rows(frame))[1])


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["g1", "g2", "g3"]),
            st.integers(1, 12),
            st.integers(0, 4),
            st.integers(0, 3),
        ),
        min_size=3,
        max_size=25,
    )
)
def test_logrank_matches_statsmodels_on_rows(rows):
    frame = pd.DataFrame(rows, columns=["group", "time", "events", "censored"])
    r = logrank_from_counts(frame)
    used = frame[(frame.events + frame.censored) > 0]
    if used.group.nunique() < 2 or frame.events.sum() == 0:
        assert r.reason and math.isnan(r.statistic)
        return
    # a group nobody of which is at risk when an event happens is left out of the test
    # (statsmodels' covariance is singular with it)
    first = frame[frame.events > 0].time.min()
    last = used.groupby("group").time.max()
    informative = used[used.group.isin(last.index[last >= first])]
    if r.reason:  # e.g. every event happens when only one group is at risk
        assert math.isnan(r.statistic)
        if informative.group.nunique() >= 2:
            with pytest.raises(np.linalg.LinAlgError):  # statsmodels fails on the same rows
                survdiff(*_survdiff_rows(informative))
        return
    chisq, p = survdiff(*_survdiff_rows(informative))
    assert r.df == informative.group.nunique() - 1
    assert r.statistic == approx(chisq, rel=1e-7, abs=1e-9)
    assert r.p_value == approx(p, rel=1e-6, abs=1e-12)


def test_logrank_degenerate():
    one = pd.DataFrame({"group": ["A"], "time": [1], "events": [3], "censored": [1]})
    assert "fewer than two groups" in logrank_from_counts(one).reason
    none = pd.DataFrame({"group": ["A", "B"], "time": [1, 2], "events": [0, 0], "censored": [2, 1]})
    assert "no events" in logrank_from_counts(none).reason
    with pytest.raises(ParameterError, match="censored"):
        logrank_from_counts(none.drop(columns="censored"))


# --------------------------------------------------------------------------------------------------
# Welch tests, intervals


def test_welch_matches_scipy_and_statsmodels_on_rows():
    rng = np.random.default_rng(11)
    groups = [rng.lognormal(10, s, size=n) for s, n in ((0.5, 40), (0.9, 65), (0.7, 23))]
    n, mean, var = zip(*((g.size, g.mean(), g.var(ddof=1)) for g in groups), strict=True)
    t = welch_t_from_moments(n[0], mean[0], var[0], n[1], mean[1], var[1])
    ref = stats.ttest_ind(groups[0], groups[1], equal_var=False)
    assert (t.statistic, t.p_value) == (approx(ref.statistic), approx(ref.pvalue))
    ci = ref.confidence_interval(0.95)
    assert (t.effect_low, t.effect_high) == (approx(ci.low), approx(ci.high))
    f = welch_anova_from_moments(n, mean, var)
    ref = anova_oneway(groups, use_var="unequal")
    assert (f.statistic, f.p_value) == (approx(ref.statistic), approx(ref.pvalue))
    assert f.details["df_denominator"] == approx(ref.df[1])


def test_welch_by_hand_and_degenerate():
    # means 10 and 6, variances 4 and 4, n 4 and 4: se = sqrt(4/4 + 4/4) = sqrt 2
    # t = 4 / sqrt 2 = 2.8284; df = (1 + 1)^2 / (1/3 + 1/3) = 6
    r = welch_t_from_moments(4, 10, 4, 4, 6, 4)
    assert (r.statistic, r.df, r.effect_size) == (approx(2.8284, abs=1e-4), approx(6), 4)
    assert "fewer than two" in welch_t_from_moments(1, 10, 0, 4, 6, 4).reason
    assert "no variation" in welch_t_from_moments(3, 10, 0, 4, 6, 0).reason
    assert "fewer than two groups" in welch_anova_from_moments([5, 1], [1, 2], [1, 0]).reason


def test_median_interval_by_hand():
    # 1..10: median (5 + 6)/2 = 5.5. P(Bin(10, 1/2) <= 1) = 11/1024 = 0.0107 <= 0.025 and
    # P(<= 2) = 56/1024 = 0.0547 > 0.025, so j - 1 = 1, j = 2: [x(2), x(9)] = [2, 9]
    assert median_interval_from_counts(range(1, 11), [1] * 10) == (5.5, 2.0, 9.0)
    # 10, 10, 20, 20, 30, 30, 40: median x(4) = 20; n = 7: P(<= 0) = 1/128 = 0.0078 <= 0.025,
    # P(<= 1) = 8/128 = 0.0625 > 0.025, so j = 1: [x(1), x(7)] = [10, 40]
    assert median_interval_from_counts([10, 20, 30, 40], [2, 2, 2, 1]) == (20.0, 10.0, 40.0)
    # n = 5: P(<= 0) = 1/32 = 0.031 > 0.025: no order-statistic interval at 95%
    med, low, high = median_interval_from_counts([1, 2, 3, 4, 5], [1] * 5)
    assert med == 3 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(x) for x in median_interval_from_counts([1, 2], [0, 0]))


@SETTINGS
@given(st.lists(st.integers(0, 5), min_size=1, max_size=15))
def test_median_interval_on_rows(counts):
    values = np.arange(len(counts)) * 3.0
    rows = np.sort(expand(values, counts))
    med, low, high = median_interval_from_counts(values, counts)
    if rows.size == 0:
        assert math.isnan(med)
        return
    assert med == np.median(rows)
    n = rows.size
    # the widest-rank j whose two-sided miss probability is <= 5%, by brute force
    ok = [j for j in range(1, n // 2 + 1) if 2 * stats.binom.cdf(j - 1, n, 0.5) <= 0.05]
    if not ok:
        assert math.isnan(low)
    else:
        j = max(ok)
        assert (low, high) == (rows[j - 1], rows[n - j])


def test_mean_and_ratio_intervals_on_rows():
    rng = np.random.default_rng(2)
    x = rng.uniform(100, 1000, 50)
    low, high = mean_interval_from_moments(x.size, x.mean(), x.var(ddof=1))
    ref = stats.t.interval(0.95, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert (float(low[0]), float(high[0])) == (approx(ref[0]), approx(ref[1]))
    # ratio estimator: y = [1, 2], x = [2, 2] -> R = 3/4; residuals y - R x = -0.5, 0.5
    # Var = (0.25 + 0.25) / (2 * 1) / 2^2 = 0.0625 -> se 0.25
    r, lo, hi = ratio_interval_from_sums(2, 3, 4, 1 + 4, 4 + 4, 2 + 4)
    assert float(r) == 0.75
    assert float(hi - r) == approx(1.959964 * 0.25, rel=1e-6)
    # on rows: the same linearisation computed from the residuals themselves
    y = x * rng.uniform(0.7, 1.0, 50)
    r, lo, hi = ratio_interval_from_sums(50, y.sum(), x.sum(), y @ y, x @ x, x @ y)
    e = y - (y.sum() / x.sum()) * x
    se = np.sqrt(e @ e / (50 * 49)) / x.mean()
    assert float(r) == approx(y.sum() / x.sum())
    assert float(hi - lo) == approx(2 * 1.959964 * se, rel=1e-6)
    r, lo, hi = ratio_interval_from_sums(0, 0, 0, 0, 0, 0)
    assert np.isnan(r) and np.isnan(lo)


def test_significance_to_frame():
    frame = two_proportion_test(30, 50, 20, 50).to_frame()
    assert list(frame.columns)[:4] == ["test", "statistic", "df", "p_value"]
    assert "details" not in frame.columns and len(frame) == 1
