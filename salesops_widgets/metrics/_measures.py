"""The one definition of each per-group aggregate and each ratio KPI (docs/metrics.md).

Two halves, and every KPI module calls them instead of writing a formula again
(tests/test_measures.py fails when a formula reappears elsewhere in the package):

- **In the engine** (Ibis expressions): :func:`outcomes`, the deal predicates open / won / lost /
  closed; :func:`aggregates`, the per-group counts and sums; :func:`median_cycle_days` and
  :func:`median_cycle_days_won`; and :func:`aggregate`, which runs them per group.
- **On the aggregated rows** (pandas / numpy arrays): :func:`win_rate` and
  :func:`win_rate_columns`, :func:`value_win_rate`, :func:`asp`, :func:`price_realization` and
  :func:`portfolio_discount`, all built on :func:`ratio`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ._stats import MIN_CLOSED, small_n, wilson_interval

__all__ = [
    "AGGREGATES",
    "aggregate",
    "aggregates",
    "asp",
    "median_cycle_days",
    "median_cycle_days_won",
    "outcomes",
    "portfolio_discount",
    "price_realization",
    "ratio",
    "value_win_rate",
    "win_rate",
    "win_rate_columns",
]

AGGREGATES = (
    "opportunities",
    "open",
    "won",
    "lost",
    "closed",
    "bookings",
    "lost_amount",
    "open_pipeline",
    "weighted_pipeline",
    "net_priced",
    "list_priced",
)

# --------------------------------------------------------------------------------------------------
# In the engine


def outcomes(t: ibis.Table) -> dict[str, ibis.BooleanValue]:
    """The deal predicates ``open``, ``won``, ``lost`` (closed and not won) and ``closed``.

    The one definition; docs/metrics.md ("Pipeline").
    """
    return {
        "open": ~t.is_closed,
        "won": t.is_won,
        "lost": t.is_closed & ~t.is_won,
        "closed": t.is_closed,
    }


def aggregates(t: ibis.Table, *names: str, priced: bool = True) -> dict[str, ibis.Value]:
    """Per-group counts and sums of deals, as Ibis expressions named as in docs/metrics.md.

    The one definition; docs/metrics.md. ``opportunities`` (every deal), ``open``, ``won``,
    ``lost``, ``closed`` (counts); ``bookings`` (Σ amount of won deals), ``lost_amount``,
    ``open_pipeline`` (Σ amount of open deals); ``weighted_pipeline`` (Σ amount × probability
    of open deals with a probability; only when ``t`` has ``probability``); ``net_priced`` and
    ``list_priced`` (Σ amount and Σ list_amount over deals with list_amount > 0; only when
    ``priced`` and ``t`` has ``list_amount``).

    Parameters
    ----------
    t
        Deals, e.g. from :func:`select_deals`.
    *names
        The aggregates wanted, in this order (default: all that ``t`` supports). Names whose
        columns ``t`` lacks are left out, so check for them in the result.
    priced
        Include ``net_priced`` and ``list_priced``.

    Examples
    --------
    >>> t = ibis.memtable({"amount": [100.0, 50.0, 80.0], "is_closed": [True, True, False],
    ...                    "is_won": [True, False, False]})
    >>> t.aggregate(**aggregates(t, "won", "lost", "bookings")).execute().to_dict("records")
    [{'won': 1, 'lost': 1, 'bookings': 100.0}]
    """
    unknown = [n for n in names if n not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown aggregates {unknown}; known: {', '.join(AGGREGATES)}")
    is_ = outcomes(t)
    m: dict[str, ibis.Value] = {"opportunities": t.count()}
    m.update({name: t.count(where=where) for name, where in is_.items()})
    m["bookings"] = t.amount.sum(where=is_["won"])
    m["lost_amount"] = t.amount.sum(where=is_["lost"])
    m["open_pipeline"] = t.amount.sum(where=is_["open"])
    if "probability" in t.columns:
        has_p = is_["open"] & t.probability.notnull()
        m["weighted_pipeline"] = (t.amount * t.probability).sum(where=has_p)
    if priced and "list_amount" in t.columns:
        listed = t.list_amount > 0
        m["net_priced"] = t.amount.sum(where=listed)
        m["list_priced"] = t.list_amount.sum(where=listed)
    return {n: m[n] for n in names if n in m} if names else m


def median_cycle_days(t: ibis.Table, *, where: ibis.BooleanValue | None = None) -> ibis.Value:
    """Median cycle days (close − created) of the closed deals in ``where``.

    The one definition; docs/metrics.md ("Cycle"). The engine's exact, interpolated median
    (``quantile_cont``); NULL for a group without such deals.
    """
    return t.cycle_days.quantile(0.5, where=where)


def median_cycle_days_won(t: ibis.Table) -> ibis.Value:
    """``median_cycle_days_won``: :func:`median_cycle_days` of the won deals.

    The one definition; docs/metrics.md ("Cycle").
    """
    return median_cycle_days(t, where=outcomes(t)["won"])


def aggregate(t: ibis.Table, by: Sequence[str], metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Run ``metrics`` per group of ``by``, ordered by ``by`` (one row overall when empty)."""
    if by:
        return t.group_by(list(by)).aggregate(**metrics).order_by(list(by)).execute()
    return t.aggregate(**metrics).execute()


# --------------------------------------------------------------------------------------------------
# On the aggregated rows


def ratio(num: Any, den: Any) -> np.ndarray:
    """num / den as floats, NaN where den is 0, negative or missing.

    Examples
    --------
    >>> ratio([1, 1], [4, 0]).tolist()
    [0.25, nan]
    """
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def win_rate(won: Any, lost: Any) -> np.ndarray:
    """``win_rate`` = won / (won + lost); NaN where nothing is closed.

    The one definition; docs/metrics.md. Open deals are never in the denominator.

    Examples
    --------
    >>> win_rate([3, 0], [1, 0]).tolist()
    [0.75, nan]
    """
    won = np.asarray(won, dtype=float)
    return ratio(won, won + np.asarray(lost, dtype=float))


def win_rate_columns(
    won: Any, lost: Any, *, min_closed: int = MIN_CLOSED, confidence: float = 0.95
) -> dict[str, np.ndarray]:
    """``closed``, :func:`win_rate`, its Wilson bounds and ``small_n``, from won and lost counts.

    The one definition; docs/metrics.md. ``win_rate_low`` / ``win_rate_high`` are the Wilson
    score interval at ``confidence``; ``small_n`` is True where closed < ``min_closed``.

    Examples
    --------
    >>> cols = win_rate_columns([3], [1])
    >>> float(cols["win_rate"][0]), bool(cols["small_n"][0])
    (0.75, True)
    """
    won, lost = np.asarray(won, dtype="int64"), np.asarray(lost, dtype="int64")
    closed = won + lost
    low, high = wilson_interval(won, closed, confidence=confidence)
    return {
        "closed": closed,
        "win_rate": win_rate(won, lost),
        "win_rate_low": low,
        "win_rate_high": high,
        "small_n": small_n(closed, minimum=min_closed),
    }


def value_win_rate(bookings: Any, lost_amount: Any) -> np.ndarray:
    """``value_win_rate`` = won amount / (won amount + lost amount); NaN with nothing closed.

    The one definition; docs/metrics.md.
    """
    bookings = np.asarray(bookings, dtype=float)
    return ratio(bookings, bookings + np.asarray(lost_amount, dtype=float))


def asp(bookings: Any, won: Any) -> np.ndarray:
    """``asp`` (average selling price) = won amount / won count; NaN with no won deal.

    The one definition; docs/metrics.md.

    Examples
    --------
    >>> asp([300.0, 0.0], [2, 0]).tolist()
    [150.0, nan]
    """
    return ratio(bookings, won)


def price_realization(net: Any, list_: Any) -> np.ndarray:
    """``price_realization`` = Σ realized / Σ list, weighted by dollars; NaN where Σ list is 0.

    The one definition; docs/metrics.md ("Pricing"). ``net`` is what was realized: the deal
    amount (net) or invoice, or the pocket price, × quantity, summed over the same deals or
    lines as ``list_``.
    """
    return ratio(net, list_)


def portfolio_discount(net: Any, list_: Any) -> np.ndarray:
    """``portfolio_discount`` = 1 − Σ net / Σ list: weighted by dollars, never a mean of %.

    The one definition; docs/metrics.md ("Pricing"). Sums over deals with list_amount > 0.

    Examples
    --------
    >>> portfolio_discount([90.0 + 500.0], [100.0 + 1000.0]).round(4).tolist()
    [0.4636]
    """
    return 1 - price_realization(net, list_)
