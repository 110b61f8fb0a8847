"""Significance tests, effect sizes and intervals computed from aggregated counts.

No Ibis here: every function takes counts (or per-group moments) that the engine has already
aggregated, e.g. won/closed per group or deals per (group, distinct duration), so the cost grows
with the number of groups and distinct values, never with the number of deals.

Each test returns a :class:`Significance`. When a test cannot be computed (one group, no
events, every observation tied, ...) its numbers are NaN and ``reason`` says why; no exception.
Bad arguments (negative counts, more successes than trials, mismatched lengths) raise
:class:`~salesops_widgets.errors.ParameterError`.

Sources: Wilson (1927) and Newcombe (1998) for proportions; Agresti, *Categorical Data Analysis*
(3rd ed., 2013) for the z and chi-square tests and Cramér's V; Cohen (1988) for h; Mann & Whitney
(1947) and Kruskal & Wallis (1952) for the rank tests, Kerby (2014) for the rank-biserial
correlation; Mantel (1966) and Peto & Peto (1972) for the log-rank test and its hazard ratio;
Welch (1947, 1951) for unequal-variance tests; Conover, *Practical Nonparametric Statistics*
(3rd ed., 1999, §3.2) for the order-statistic interval of a median; Cochran, *Sampling
Techniques* (3rd ed., 1977, §6.2-6.4) for the variance of a ratio estimator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ParameterError
from ._stats import wilson_interval

__all__ = [
    "Significance",
    "two_proportion_test",
    "chi_square_test",
    "mann_whitney_from_counts",
    "kruskal_from_counts",
    "logrank_from_counts",
    "welch_t_from_moments",
    "welch_anova_from_moments",
    "median_interval_from_counts",
    "mean_interval_from_moments",
    "ratio_interval_from_sums",
]

NAN = float("nan")


@dataclass(frozen=True)
class Significance:
    """The result of one significance test with its effect size.

    Attributes
    ----------
    test
        The test used, e.g. ``"two-proportion z"``, ``"chi-square"``, ``"log-rank"``.
    statistic, df, p_value
        Test statistic, its degrees of freedom (NaN for z and U) and the two-sided p-value.
    effect, effect_size, effect_low, effect_high
        Name of the effect size, its value and its confidence interval (NaN when the effect size
        has no interval here).
    n
        Observations used by the test.
    reason
        Why the numbers are NaN (``None`` when the test ran).
    details
        Further figures: group rates, Cohen's h, expected counts, O/E per group, ...
    """

    test: str
    statistic: float = NAN
    df: float = NAN
    p_value: float = NAN
    effect: str = ""
    effect_size: float = NAN
    effect_low: float = NAN
    effect_high: float = NAN
    n: int = 0
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row: every attribute but ``details``."""
        row = {k: v for k, v in asdict(self).items() if k != "details"}
        return pd.DataFrame([row])


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ParameterError(f"confidence={confidence!r} must be between 0 and 1, e.g. 0.95.")
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def _counts(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if np.isnan(arr).any() or (arr < 0).any():
        raise ParameterError(f"{name} must be counts: non-negative numbers without NaN.")
    return arr


# --------------------------------------------------------------------------------------------------
# Rates


def two_proportion_test(
    k1: float, n1: float, k2: float, n2: float, *, confidence: float = 0.95
) -> Significance:
    """Two-sided z test that two proportions are equal, with the risk difference.

    z = (p1 − p2) / sqrt(p̂(1 − p̂)(1/n1 + 1/n2)) with the pooled p̂ = (k1 + k2)/(n1 + n2).
    Effect size: the risk difference p1 − p2 with Newcombe's hybrid score interval (built from
    the two Wilson intervals); ``details`` holds p1, p2 and Cohen's h = 2·asin√p1 − 2·asin√p2.

    Examples
    --------
    >>> r = two_proportion_test(30, 50, 20, 50)
    >>> round(r.statistic, 4), round(r.effect_size, 2)
    (2.0, 0.2)
    """
    k1, n1, k2, n2 = (float(v) for v in _counts([k1, n1, k2, n2], "k1, n1, k2, n2"))
    if k1 > n1 or k2 > n2:
        raise ParameterError("two_proportion_test: k1 <= n1 and k2 <= n2 (successes <= trials).")
    _z(confidence)
    base = {"test": "two-proportion z", "effect": "risk difference", "n": int(n1 + n2)}
    if n1 == 0 or n2 == 0:
        return Significance(**base, reason="a group has no trials (no closed deals)")
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = (
        np.asarray(wilson_interval(k, n, confidence=confidence), float)
        for k, n in ((k1, n1), (k2, n2))
    )
    diff = p1 - p2
    low = diff - float(np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
    high = diff + float(np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    h = 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2))
    details = {"p1": p1, "p2": p2, "cohens_h": float(h)}
    pooled = (k1 + k2) / (n1 + n2)
    effect = {"effect_size": diff, "effect_low": low, "effect_high": high, "details": details}
    if pooled in (0.0, 1.0):
        reason = "every trial in both groups has the same outcome: nothing to test"
        return Significance(**base, **effect, reason=reason)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = diff / se
    p = float(2 * stats.norm.sf(abs(z)))
    return Significance(**base, **effect, statistic=float(z), p_value=p)


def chi_square_test(table: Any) -> Significance:
    """Pearson chi-square test of independence on a groups × outcomes table of counts.

    For rates across groups pass one row per group: ``[[won, lost], ...]``. Rows with no
    observations (empty groups) are dropped first. No continuity correction, so on a 2×2 table
    the statistic is the square of :func:`two_proportion_test`'s z. Effect size: Cramér's
    V = sqrt(χ² / (N·(min(r, c) − 1))). ``details`` holds the smallest expected count (the
    χ² approximation is doubtful below 5) and the number of groups used.

    Examples
    --------
    >>> r = chi_square_test([[30, 20], [20, 30]])
    >>> round(r.statistic, 4), round(r.effect_size, 4)
    (4.0, 0.2)
    """
    arr = _counts(table, "table")
    if arr.ndim != 2:
        raise ParameterError(
            "table must be 2-dimensional: one row per group, one column per outcome."
        )
    base = {"test": "chi-square", "effect": "Cramér's V"}
    arr = arr[arr.sum(axis=1) > 0]
    n = int(arr.sum())
    if arr.shape[0] < 2:
        return Significance(**base, n=n, reason="fewer than two groups with observations")
    arr = arr[:, arr.sum(axis=0) > 0]
    if arr.shape[1] < 2:
        return Significance(**base, n=n, reason="every observation has the same outcome")
    res = stats.chi2_contingency(arr, correction=False)
    v = np.sqrt(res.statistic / (n * (min(arr.shape) - 1)))
    details = {"min_expected": float(res.expected_freq.min()), "groups": int(arr.shape[0])}
    return Significance(
        **base,
        statistic=float(res.statistic),
        df=float(res.dof),
        p_value=float(res.pvalue),
        effect_size=float(v),
        n=n,
        details=details,
    )


# --------------------------------------------------------------------------------------------------
# Ranks


def _merge_values(values: Any, *counts: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sort distinct values and add up counts of repeated values."""
    vals = np.asarray(values, dtype=float)
    if vals.ndim != 1 or np.isnan(vals).any():
        raise ParameterError("values must be a 1-dimensional sequence of numbers without NaN.")
    out = []
    uniq, inverse = np.unique(vals, return_inverse=True)
    for i, c in enumerate(counts):
        arr = _counts(c, f"counts[{i}]")
        if arr.shape != vals.shape:
            raise ParameterError(
                f"counts[{i}] has {arr.size} entries but values has {vals.size}; give one "
                f"count per value."
            )
        out.append(np.bincount(inverse, weights=arr, minlength=uniq.size))
    return uniq, out


def _midranks(totals: np.ndarray) -> np.ndarray:
    """Average rank of the observations at each distinct value (ascending)."""
    before = np.cumsum(totals) - totals
    return before + (totals + 1) / 2


def mann_whitney_from_counts(values: Any, counts_a: Any, counts_b: Any) -> Significance:
    """Mann–Whitney U test from counts per distinct value, two-sided normal approximation.

    ``values`` are the distinct values and ``counts_a``/``counts_b`` how many observations of
    each group take each value. U_a = R_a − n_a(n_a + 1)/2 with midranks for ties; the p-value
    uses the tie-corrected variance n_a·n_b/12·((N + 1) − Σ(t³ − t)/(N(N − 1))) and a continuity
    correction of 0.5 (the same as ``scipy.stats.mannwhitneyu(method="asymptotic")``).

    ``statistic`` is U_a. Effect size: the rank-biserial correlation r = 2·U_a/(n_a·n_b) − 1
    (from −1, every a below every b, to +1, every a above every b); ``details`` holds the
    common-language effect size U_a/(n_a·n_b) = P(a > b) + ½P(a = b) and z.
    """
    vals, (ca, cb) = _merge_values(values, counts_a, counts_b)
    na, nb = float(ca.sum()), float(cb.sum())
    base = {"test": "Mann-Whitney U", "effect": "rank-biserial correlation", "n": int(na + nb)}
    if na == 0 or nb == 0:
        return Significance(**base, reason="a group has no observations")
    totals = ca + cb
    big_n = na + nb
    ua = float((ca * _midranks(totals)).sum() - na * (na + 1) / 2)
    ties = float((totals**3 - totals).sum())
    cles = ua / (na * nb)
    effect = {"effect_size": 2 * cles - 1}
    var = na * nb / 12 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    if var <= 0:
        return Significance(
            **base,
            statistic=ua,
            **effect,
            details={"cles": cles},
            reason="every observation has the same value",
        )
    u = max(ua, na * nb - ua)
    z = (u - na * nb / 2 - 0.5) / np.sqrt(var)
    p = float(min(1.0, 2 * stats.norm.sf(z)))
    details = {"cles": cles, "z": float(z), "n_a": int(na), "n_b": int(nb)}
    return Significance(**base, statistic=ua, p_value=p, **effect, details=details)


def kruskal_from_counts(values: Any, counts: Any) -> Significance:
    """Kruskal–Wallis H test across groups from counts per (group, distinct value).

    ``counts`` is a groups × values array. Groups with no observations are dropped.
    H = [12/(N(N + 1)) Σ R_g²/n_g − 3(N + 1)] / [1 − Σ(t³ − t)/(N³ − N)], χ² with k − 1
    degrees of freedom (as ``scipy.stats.kruskal``). Effect size: ε² = H/(N − 1)
    (Tomczak & Tomczak 2014), the share of rank variance between groups.
    """
    arr = np.atleast_2d(_counts(counts, "counts"))
    vals, rows = _merge_values(values, *arr)
    arr = np.array(rows)
    arr = arr[arr.sum(axis=1) > 0]
    big_n = float(arr.sum())
    base = {"test": "Kruskal-Wallis H", "effect": "epsilon squared", "n": int(big_n)}
    if arr.shape[0] < 2:
        return Significance(**base, reason="fewer than two groups with observations")
    totals = arr.sum(axis=0)
    ranks = _midranks(totals)
    n_g = arr.sum(axis=1)
    r_g = (arr * ranks).sum(axis=1)
    h = 12 / (big_n * (big_n + 1)) * float((r_g**2 / n_g).sum()) - 3 * (big_n + 1)
    correction = 1 - float((totals**3 - totals).sum()) / (big_n**3 - big_n)
    k = arr.shape[0]
    if correction <= 0:
        return Significance(**base, reason="every observation has the same value")
    h /= correction
    return Significance(
        **base,
        statistic=h,
        df=float(k - 1),
        p_value=float(stats.chi2.sf(h, k - 1)),
        effect_size=h / (big_n - 1),
        details={"groups": k},
    )


# --------------------------------------------------------------------------------------------------
# Censored durations


def _group_by_time(
    f: pd.DataFrame, events: str, censored: str
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """(groups with observations, in order of first appearance; events and censored counts as
    groups × distinct times arrays) from rows of (group, time, events, censored)."""
    group, time = f.columns[:2]
    labels = list(pd.unique(f[group]))
    times = np.sort(pd.unique(f[time].astype(float)))
    g_idx = pd.Index(labels).get_indexer(f[group])
    t_idx = np.searchsorted(times, f[time].astype(float).to_numpy())
    d = np.zeros((len(labels), times.size))
    c = np.zeros_like(d)
    np.add.at(d, (g_idx, t_idx), _counts(f[events], events))
    np.add.at(c, (g_idx, t_idx), _counts(f[censored], censored))
    keep = (d + c).sum(axis=1) > 0
    labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
    return labels, d[keep], c[keep]


def logrank_from_counts(
    frame: pd.DataFrame,
    *,
    group: str = "group",
    time: str = "time",
    events: str = "events",
    censored: str = "censored",
    confidence: float = 0.95,
) -> Significance:
    """Log-rank test across ≥ 2 groups from event and censored counts per (group, time).

    ``frame`` has one row per (group, distinct time) with the number of events (e.g. deals
    closed after that many days) and of censored observations (deals still open at that age).
    A censored observation at time t is at risk at t. At each event time,
    E_g = Σ_t n_gt·d_t/n_t and V_gh = Σ_t d_t(n_t − d_t)/(n_t − 1)·(n_gt/n_t)(δ_gh − n_ht/n_t);
    the statistic (O − E)ᵀ V⁻¹ (O − E) over k − 1 groups is χ² with k − 1 degrees of freedom
    (Mantel 1966; the same as ``statsmodels.duration.survdiff``).

    Groups keep the order of their first appearance in ``frame``. With two groups the effect
    size is the hazard ratio of the first group to the second, Peto's one-step estimate
    exp((O₁ − E₁)/V₁₁) with interval exp((O₁ − E₁)/V₁₁ ± z/√V₁₁); above 1 the first group's
    events come sooner. ``details`` holds observed and expected events per group.
    """
    missing = [c for c in (group, time, events, censored) if c not in frame.columns]
    if missing:
        raise ParameterError(
            f"logrank_from_counts: frame lacks column(s) {', '.join(missing)}; it needs "
            f"{group!r}, {time!r}, {events!r} and {censored!r} (or name them with the keywords)."
        )
    z_crit = _z(confidence)
    base = {"test": "log-rank", "effect": "hazard ratio"}
    labels, d, c = _group_by_time(frame[[group, time, events, censored]], events, censored)
    n = int((d + c).sum())
    if len(labels) < 2:
        return Significance(**base, n=n, reason="fewer than two groups with observations")
    if d.sum() == 0:
        return Significance(**base, n=n, reason="no events (nothing closed) in any group")
    at_risk = np.cumsum((d + c)[:, ::-1], axis=1)[:, ::-1]
    ev = d.sum(axis=0) > 0
    d, at_risk = d[:, ev], at_risk[:, ev]
    # a group nobody of which is at risk at any event time says nothing: it is left out
    informative = at_risk.sum(axis=1) > 0
    labels = [lab for lab, k in zip(labels, informative, strict=True) if k]
    d, at_risk = d[informative], at_risk[informative]
    if len(labels) < 2:
        return Significance(**base, n=n, reason="fewer than two groups at risk when deals closed")
    d_t, n_t = d.sum(axis=0), at_risk.sum(axis=0)
    observed = d.sum(axis=1)
    expected = (at_risk * d_t / n_t).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0)
    share = at_risk / n_t
    cov = -(share * w) @ share.T
    cov[np.diag_indices_from(cov)] += (share * w).sum(axis=1)
    diff = observed - expected
    k = len(labels)
    sub = cov[: k - 1, : k - 1]
    details = {
        "groups": labels,
        "observed": observed.tolist(),
        "expected": expected.tolist(),
    }
    if np.linalg.matrix_rank(sub) < k - 1:
        return Significance(
            **base,
            n=n,
            details=details,
            reason="no variation in who is at risk: the test is undefined",
        )
    stat = float(diff[: k - 1] @ np.linalg.solve(sub, diff[: k - 1]))
    out = {
        "statistic": stat,
        "df": float(k - 1),
        "p_value": float(stats.chi2.sf(stat, k - 1)),
        "n": n,
        "details": details,
    }
    if k == 2:
        log_hr = diff[0] / cov[0, 0]
        half = z_crit / np.sqrt(cov[0, 0])
        out |= {
            "effect_size": float(np.exp(log_hr)),
            "effect_low": float(np.exp(log_hr - half)),
            "effect_high": float(np.exp(log_hr + half)),
        }
    return Significance(**base, **out)


# --------------------------------------------------------------------------------------------------
# Means (from per-group n, mean and sample variance)


def _moments(n: Any, mean: Any, var: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_, m_, v_ = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (n, mean, var))
    if not (n_.shape == m_.shape == v_.shape):
        raise ParameterError("n, mean and var must have one entry per group each.")
    if (n_ < 0).any():
        raise ParameterError("n must be non-negative counts.")
    return n_, m_, v_


def welch_t_from_moments(
    n1: float,
    mean1: float,
    var1: float,
    n2: float,
    mean2: float,
    var2: float,
    *,
    confidence: float = 0.95,
) -> Significance:
    """Welch's unequal-variance t test from each group's n, mean and sample variance.

    t = (m1 − m2)/sqrt(v1/n1 + v2/n2), with Welch–Satterthwaite degrees of freedom. Effect
    size: the difference of means m1 − m2 with its Welch interval; ``details`` holds the ratio
    m1/m2.
    """
    _z(confidence)
    base = {"test": "Welch t", "effect": "difference of means", "n": int(n1 + n2)}
    if n1 < 2 or n2 < 2:
        return Significance(**base, reason="a group has fewer than two observations")
    se2 = var1 / n1 + var2 / n2
    diff = mean1 - mean2
    details = {"ratio": mean1 / mean2 if mean2 else NAN}
    if not se2 > 0:
        return Significance(
            **base, effect_size=diff, details=details, reason="no variation within the groups"
        )
    df = se2**2 / ((var1 / n1) ** 2 / (n1 - 1) + (var2 / n2) ** 2 / (n2 - 1))
    t = diff / np.sqrt(se2)
    half = stats.t.ppf(1 - (1 - confidence) / 2, df) * np.sqrt(se2)
    return Significance(
        **base,
        statistic=float(t),
        df=float(df),
        p_value=float(2 * stats.t.sf(abs(t), df)),
        effect_size=float(diff),
        effect_low=float(diff - half),
        effect_high=float(diff + half),
        details=details,
    )


def welch_anova_from_moments(n: Any, mean: Any, var: Any) -> Significance:
    """Welch's one-way ANOVA (unequal variances) from per-group n, mean and sample variance.

    Groups with fewer than two observations are dropped. With weights w_g = n_g/v_g,
    F = [Σ w_g(m_g − m_w)²/(k − 1)] / [1 + 2(k − 2)/(k² − 1)·Σ(1 − w_g/W)²/(n_g − 1)] on
    (k − 1, (k² − 1)/(3Σ(1 − w_g/W)²/(n_g − 1))) degrees of freedom (Welch 1951; the same as
    ``statsmodels.stats.oneway.anova_oneway(use_var="unequal")``). No effect size across k
    groups: compare two groups with :func:`welch_t_from_moments`.
    """
    n_, m_, v_ = _moments(n, mean, var)
    ok = n_ >= 2
    n_, m_, v_ = n_[ok], m_[ok], v_[ok]
    base = {"test": "Welch ANOVA", "n": int(n_.sum())}
    k = n_.size
    if k < 2:
        return Significance(**base, reason="fewer than two groups with two or more observations")
    if (v_ <= 0).any():
        return Significance(**base, reason="a group has no variation")
    w = n_ / v_
    big_w = w.sum()
    m_w = (w * m_).sum() / big_w
    a = ((1 - w / big_w) ** 2 / (n_ - 1)).sum()
    f = ((w * (m_ - m_w) ** 2).sum() / (k - 1)) / (1 + 2 * (k - 2) / (k**2 - 1) * a)
    df2 = (k**2 - 1) / (3 * a)
    return Significance(
        **base,
        statistic=float(f),
        df=float(k - 1),
        p_value=float(stats.f.sf(f, k - 1, df2)),
        details={"df_denominator": float(df2), "groups": k},
    )


# --------------------------------------------------------------------------------------------------
# Intervals on aggregates


def median_interval_from_counts(
    values: Any, counts: Any, *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Sample median and its distribution-free order-statistic interval, from counts per value.

    The median is that of the expanded observations (mean of the two middle ones for even n).
    The interval is [x₍ⱼ₎, x₍ₙ₋ⱼ₊₁₎] with j the largest rank such that
    P(Binomial(n, ½) ≤ j − 1) ≤ (1 − confidence)/2, so it covers the population median with
    probability ≥ ``confidence`` (Conover 1999, §3.2). NaN where there is no observation; the
    interval is NaN when n is too small for any j (n ≤ 5 at 95%).

    Examples
    --------
    >>> median_interval_from_counts([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1] * 10)
    (5.5, 2.0, 9.0)
    """
    vals, (cnt,) = _merge_values(values, counts)
    n = int(round(cnt.sum()))
    if n == 0:
        return NAN, NAN, NAN
    _z(confidence)
    cum = np.cumsum(cnt)

    def order_stat(rank: int) -> float:  # 1-based rank among the expanded observations
        return float(vals[np.searchsorted(cum, rank)])

    median = (order_stat((n + 1) // 2) + order_stat(n // 2 + 1)) / 2
    alpha = 1 - confidence
    j = int(stats.binom.ppf(alpha / 2, n, 0.5))
    if stats.binom.cdf(j, n, 0.5) <= alpha / 2:
        j += 1
    if j < 1:
        return median, NAN, NAN
    return median, order_stat(j), order_stat(n - j + 1)


def mean_interval_from_moments(
    n: Any, mean: Any, var: Any, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Student t interval for a mean, mean ± t(n − 1)·sqrt(var/n), vectorised; NaN where n < 2."""
    n_, m_, v_ = _moments(n, mean, var)
    _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = stats.t.ppf(1 - (1 - confidence) / 2, np.where(n_ >= 2, n_ - 1, np.nan))
        half = t * np.sqrt(v_ / n_)
    ok = n_ >= 2
    return np.where(ok, m_ - half, np.nan), np.where(ok, m_ + half, np.nan)


def ratio_interval_from_sums(
    n: Any,
    sum_y: Any,
    sum_x: Any,
    sum_yy: Any,
    sum_xx: Any,
    sum_xy: Any,
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio R = Σy/Σx with its linearisation (delta-method) interval, from sums, vectorised.

    Var(R) ≈ Σ(y − R·x)² / (n(n − 1)·x̄²), where Σ(y − R·x)² = Σy² − 2RΣxy + R²Σx² (Cochran
    1977, §6.3, without the finite-population correction); the interval is R ± z·√Var(R).
    NaN where Σx is 0 (no ratio) and the interval is NaN where n < 2.
    """
    z = _z(confidence)
    n_, y, x, yy, xx, xy = (
        np.asarray(v, dtype=float) for v in (n, sum_y, sum_x, sum_yy, sum_xx, sum_xy)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(x != 0, y / x, np.nan)
        resid = np.maximum(yy - 2 * r * xy + r**2 * xx, 0.0)
        se = np.sqrt(resid / (n_ * (n_ - 1))) / (x / n_)
        se = np.where(n_ >= 2, se, np.nan)
    return r, r - z * se, r + z * se
