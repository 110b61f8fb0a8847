"""Segments ranked against the whole selection: which ones really differ from the average.

Each segment of one dimension is tested against the rest of the selection (every other
segment together) with the test that fits the KPI, and the p-values are adjusted for the
number of segments tested (Holm 1979), because with ten segments one of them looks
"significant" at 5% by chance alone about four times in ten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ._deals import check_dimensions, outcomes, priced, select_deals
from ._groups import counts_by_value
from ._measures import (
    aggregate,
    aggregates,
    asp,
    portfolio_discount,
    portfolio_discount_by,
    win_rate_columns,
)
from ._significance import (
    Significance,
    mann_whitney_from_counts,
    mean_interval_from_moments,
    median_interval_from_counts,
    two_proportion_test,
    welch_t_from_moments,
)
from ._stats import MIN_CLOSED, small_n

__all__ = ["RANKING_KPIS", "segments_vs_overall"]

RANKING_KPIS = ("win_rate", "asp", "median_cycle_days_won", "portfolio_discount")
DISCOUNT_DECIMALS = 4  # per-deal discounts are ranked to 0.01 percentage point


def _win_rate(t: ibis.Table, dim: str, confidence: float, min_closed: int):
    raw = aggregate(t, [dim], aggregates(t, "won", "lost"))
    cols = win_rate_columns(raw["won"], raw["lost"], min_closed=min_closed, confidence=confidence)
    won, closed = raw["won"].to_numpy(float), cols["closed"].astype(float)
    k_all, n_all = won.sum(), closed.sum()
    overall = k_all / n_all if n_all else np.nan
    tests = [
        two_proportion_test(k, n, k_all - k, n_all - n, confidence=confidence)
        for k, n in zip(won, closed, strict=True)
    ]
    frame = pd.DataFrame(
        {
            dim: raw[dim],
            "value": cols["win_rate"],
            "low": cols["win_rate_low"],
            "high": cols["win_rate_high"],
            "n": closed.astype(int),
        }
    )
    return frame, overall, tests


def _asp(t: ibis.Table, dim: str, confidence: float, min_closed: int):
    won = outcomes(t)["won"]
    m = aggregates(t, "won_with_amount", "bookings")
    metrics = {**m, "var": t.amount.var(how="sample", where=won)}
    raw = aggregate(t, [dim], metrics)
    n = raw["won_with_amount"].to_numpy(float)
    mean = asp(raw["bookings"], n)
    var = np.nan_to_num(raw["var"].to_numpy(float))
    # the rest of the selection, combined from the per-segment moments (parallel variance):
    # M2 = Σ (n_g − 1)·var_g + Σ n_g·(mean_g − mean)², stable where Σx² − n·mean² is not
    m2 = np.where(n > 1, (n - 1) * var, 0.0)
    filled = np.nan_to_num(mean)
    n_all = n.sum()
    overall = float((filled * n).sum() / n_all) if n_all else np.nan
    tests = []
    for i in range(len(n)):
        rest = np.arange(len(n)) != i
        n_r = n[rest].sum()
        mean_r = (filled[rest] * n[rest]).sum() / n_r if n_r else np.nan
        m2_r = m2[rest].sum() + (n[rest] * (filled[rest] - mean_r) ** 2).sum()
        var_r = m2_r / (n_r - 1) if n_r > 1 else np.nan
        tests.append(
            welch_t_from_moments(n[i], mean[i], var[i], n_r, mean_r, var_r, confidence=confidence)
        )
    low, high = mean_interval_from_moments(n, mean, var, confidence=confidence)
    frame = pd.DataFrame(
        {dim: raw[dim], "value": mean, "low": low, "high": high, "n": n.astype(int)}
    )
    return frame, overall, tests


def _rank_tests(wide: pd.DataFrame, confidence: float) -> tuple[list, list[Significance], float]:
    values = wide.columns.to_numpy(float)
    counts = wide.to_numpy(float)
    total = counts.sum(axis=0)
    stats_ = [median_interval_from_counts(values, row, confidence=confidence) for row in counts]
    tests = [mann_whitney_from_counts(values, row, total - row) for row in counts]
    overall = median_interval_from_counts(values, total, confidence=confidence)[0]
    return stats_, tests, overall


def _cycle(t: ibis.Table, dim: str, confidence: float, min_closed: int):
    won = t.filter(outcomes(t)["won"])
    wide = counts_by_value(won, dim, won.cycle_days)
    if wide.empty:
        return pd.DataFrame(columns=[dim, "value", "low", "high", "n"]), np.nan, []
    stats_, tests, overall = _rank_tests(wide, confidence)
    med, low, high = (np.array(x, dtype=float) for x in zip(*stats_, strict=True))
    frame = pd.DataFrame(
        {
            dim: wide.index,
            "value": med,
            "low": low,
            "high": high,
            "n": wide.sum(axis=1).to_numpy().astype(int),
        }
    )
    return frame, overall, tests


def _discount(t: ibis.Table, dim: str, confidence: float, min_closed: int):
    if "discount" not in t.columns:
        raise MissingDataError(
            "kpi='portfolio_discount' needs list_amount on opportunities; map "
            "tables.opportunities.columns.list_amount, or choose another KPI."
        )
    sums = portfolio_discount_by(t, dim, confidence=confidence)
    p = t.filter(outcomes(t)["won"] & priced(t))  # the deals portfolio_discount_by is over
    wide = counts_by_value(p, dim, p.discount.round(DISCOUNT_DECIMALS))
    wide = wide.reindex(sums[dim]).fillna(0.0)
    _, tests, _ = _rank_tests(wide, confidence) if len(wide.columns) else (None, [], None)
    frame = sums[[dim, "portfolio_discount", "low", "high", "n"]].rename(
        columns={"portfolio_discount": "value"}
    )
    frame["n"] = frame["n"].astype(int)
    net, list_ = sums["net"].sum(), sums["list"].sum()
    overall = float(portfolio_discount([net], [list_])[0]) if len(sums) else np.nan
    return frame, overall, tests


_KPIS = {
    "win_rate": (_win_rate, "closed deals"),
    "asp": (_asp, "won deals with an amount"),
    "median_cycle_days_won": (_cycle, "won deals"),
    "portfolio_discount": (_discount, "won deals with a list price and an amount above 0"),
}


def _holm(p: np.ndarray) -> np.ndarray:
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def segments_vs_overall(
    data: SalesData,
    *,
    by: str,
    kpi: str = "win_rate",
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    confidence: float = 0.95,
    min_closed: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Each segment of ``by`` against the rest of the selection, ranked, with significance.

    Parameters
    ----------
    by
        One dimension.
    kpi
        ``"win_rate"`` (Wilson interval; two-proportion z test of the segment against the
        rest), ``"asp"`` (t interval; Welch t test), ``"median_cycle_days_won"`` (order-statistic
        interval; Mann–Whitney U) or ``"portfolio_discount"`` (ratio interval; Mann–Whitney U on
        per-deal discounts).
    confidence
        Of the intervals, and 1 − the significance level of the tests.
    min_closed
        Segments with fewer closed deals are ``small_n``: "too few to say".

    Returns
    -------
    pandas.DataFrame
        One row per segment, highest ``value`` first: ``by``, ``value``, ``low``, ``high``,
        ``n`` (the deals the KPI is computed on), ``overall`` (the KPI on the whole
        selection), ``difference`` (value − overall), ``p_value`` (segment vs the rest),
        ``p_adjusted`` (Holm over the segments tested), ``significant``
        (p_adjusted < 1 − confidence), ``direction`` ("above", "below" or "" when not
        significant), ``test``, ``small_n`` and ``note`` (why there is no test).
    """
    if kpi not in _KPIS:
        raise ParameterError(f"kpi={kpi!r} must be one of {', '.join(RANKING_KPIS)}.")
    (dim,) = check_dimensions(data, [by])
    t = select_deals(data, filters, period, date_field=date_field)
    if kpi == "median_cycle_days_won" and "cycle_days" not in t.columns:
        raise MissingDataError(
            "kpi='median_cycle_days_won' needs close_date on opportunities; map "
            "tables.opportunities.columns.close_date, or choose another KPI."
        )
    compute, _ = _KPIS[kpi]
    frame, overall, tests = compute(t, dim, confidence, min_closed)
    closed = aggregate(t, [dim], aggregates(t, "closed")).set_index(dim)["closed"]
    frame = frame.reset_index(drop=True)
    frame["overall"] = overall
    frame["difference"] = frame["value"] - overall
    p = np.array([s.p_value for s in tests], dtype=float) if tests else np.full(len(frame), np.nan)
    frame["p_value"] = p
    frame["p_adjusted"] = _holm(p)
    frame["significant"] = frame["p_adjusted"] < 1 - confidence
    frame["direction"] = np.where(
        frame["significant"], np.where(frame["difference"] > 0, "above", "below"), ""
    )
    frame["test"] = [s.test for s in tests] if tests else ""
    frame["small_n"] = small_n(
        frame[dim].map(closed).fillna(0).to_numpy(dtype="int64"), minimum=min_closed
    )
    frame["note"] = [s.reason or "" for s in tests] if tests else ""
    frame = frame.sort_values("value", ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True)
