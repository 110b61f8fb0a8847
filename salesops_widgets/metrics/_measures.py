"""The one definition of each per-group aggregate and each ratio KPI (docs/metrics.md).

Two halves, and every KPI module calls them instead of writing a formula again
(tests/test_measures.py fails when a formula reappears elsewhere in the package):

- **In the engine** (Ibis expressions), over the deal predicates of :mod:`._deals` (open, won,
  lost, closed, priced): :func:`aggregates`, the per-group counts and sums;
  :func:`median_cycle_days` and :func:`median_cycle_days_won`; and :func:`aggregate`, which
  runs them per group.
- **From outcome sums**: :func:`outcome_sums` asks the engine for plain counts and sums per
  group and deal outcome, finer rows that :func:`combine` adds up to the same aggregates (and
  to the won deals' median cycle, when they are split by duration). One cheap query then
  serves a whole KPI table, its medians and its Kaplan–Meier counts. Both halves read the
  aggregates from one table, ``_DEFINITIONS``.
- **On the aggregated rows** (pandas / numpy arrays): :func:`win_rate` and
  :func:`win_rate_columns`, :func:`value_win_rate`, :func:`asp`, :func:`price_realization` and
  :func:`portfolio_discount`, all built on :func:`ratio`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from ._codes import code_column, decode_outcome
from ._deals import outcomes
from ._deals import priced as priced_deals
from ._significance import ratio_interval_from_sums
from ._stats import MIN_CLOSED, small_n, wilson_interval
from ._survival import grouped_quantile_from_counts

__all__ = [
    "AGGREGATES",
    "OUTCOME_COLUMNS",
    "aggregate",
    "aggregates",
    "asp",
    "combine",
    "median_cycle_days",
    "median_cycle_days_won",
    "outcome_sums",
    "outcome_sums_query",
    "portfolio_discount",
    "portfolio_discount_by",
    "price_realization",
    "ratio",
    "realization_moments",
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
    "won_with_amount",
    "open_with_amount",
    "net_realized",
    "list_realized",
)

# --------------------------------------------------------------------------------------------------
# In the engine


# What each aggregate adds up (None: it counts deals; "n_amount": it counts the deals that have
# an amount) over which deals: an outcome of ``_deals.outcomes``, "all", "priced"
# (``_deals.priced``: a list price and an amount above 0) or "realized" (won and priced).
# "weighted" is amount × probability (a sum skips deals without a probability). Sums skip deals
# without a value: open deals without an amount add nothing to the open pipeline.
_DEFINITIONS: dict[str, tuple[str | None, str]] = {
    "opportunities": (None, "all"),
    "open": (None, "open"),
    "won": (None, "won"),
    "lost": (None, "lost"),
    "closed": (None, "closed"),
    "bookings": ("amount", "won"),
    "lost_amount": ("amount", "lost"),
    "open_pipeline": ("amount", "open"),
    "weighted_pipeline": ("weighted", "open"),
    "net_priced": ("amount", "priced"),
    "list_priced": ("list_amount", "priced"),
    "won_with_amount": ("n_amount", "won"),
    "open_with_amount": ("n_amount", "open"),
    "net_realized": ("amount", "realized"),
    "list_realized": ("list_amount", "realized"),
}
_PRICED = ("net_priced", "list_priced", "net_realized", "list_realized")
_VALUES = ("amount", "list_amount", "weighted", "n_amount")
_COUNTS = (None, "n_amount")
# :func:`combine` also gives the won deals' median cycle, from outcome sums split by duration.
MEDIAN_WON = "median_cycle_days_won"


def _values(t: ibis.Table) -> dict[str, ibis.NumericValue]:
    """The per-deal values the aggregates add up, where ``t`` has their columns."""
    values = {"amount": t.amount, "n_amount": t.amount.notnull()}
    if "list_amount" in t.columns:
        values["list_amount"] = t.list_amount
    if "probability" in t.columns:
        values["weighted"] = t.amount * t.probability
    return values


def _available(names: Sequence[str], have: set[str], priced: bool = True) -> list[str]:
    """The aggregates of ``names`` (default: all) whose value and deals ``have`` holds."""
    unknown = [n for n in names if n not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown aggregates {unknown}; known: {', '.join(AGGREGATES)}")
    return [
        n
        for n in names or AGGREGATES
        if {_DEFINITIONS[n][1], _DEFINITIONS[n][0] or "all"} <= have
        and (priced or n not in _PRICED)
    ]


def aggregates(t: ibis.Table, *names: str, priced: bool = True) -> dict[str, ibis.Value]:
    """Per-group counts and sums of deals, as Ibis expressions named as in docs/metrics.md.

    The one definition; docs/metrics.md. ``opportunities`` (every deal), ``open``, ``won``,
    ``lost``, ``closed`` (counts); ``bookings`` (Σ amount of won deals), ``lost_amount``,
    ``open_pipeline`` (Σ amount of open deals); ``weighted_pipeline`` (Σ amount × probability
    of open deals with a probability; only when ``t`` has ``probability``); ``net_priced`` and
    ``list_priced`` (Σ amount and Σ list_amount over the priced deals: a list price and an
    amount above 0), ``net_realized`` and ``list_realized`` (the same over the won priced
    deals); those four only when ``priced`` and ``t`` has ``list_amount``;
    ``won_with_amount`` and ``open_with_amount`` (won, open deals that have an amount).

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
    values = _values(t)
    deals = _deal_sets(t)
    m: dict[str, ibis.Value] = {}
    for name in _available(names, {*values, *deals}, priced):
        value, which = _DEFINITIONS[name]
        where = deals[which]
        if value is None:
            m[name] = t.count(where=where)
        elif value == "n_amount":
            m[name] = t.amount.count(where=where)
        else:
            m[name] = values[value].sum(where=where)
    return m


def _deal_sets(t: Any) -> dict[str, Any]:
    """The sets of deals the aggregates are over (``_DEFINITIONS``), where ``t`` supports them."""
    deals: dict[str, Any] = {"all": None, **outcomes(t)}
    if "list_amount" in t.columns:
        deals["priced"] = priced_deals(t)
        deals["realized"] = deals["won"] & deals["priced"]
    return deals


def realization_moments(t: ibis.Table) -> dict[str, ibis.Value]:
    """Σ amount² (``yy``), Σ list_amount² (``xx``) and Σ amount × list_amount (``xy``) of the
    deals ``t``: with their count, ``net_priced`` and ``list_priced``, the sums the interval of
    Σ net / Σ list needs (``_significance.ratio_interval_from_sums``)."""
    return {
        "yy": (t.amount * t.amount).sum(),
        "xx": (t.list_amount * t.list_amount).sum(),
        "xy": (t.amount * t.list_amount).sum(),
    }


def portfolio_discount_by(t: ibis.Table, key: str, *, confidence: float = 0.95) -> pd.DataFrame:
    """:func:`portfolio_discount` per value of ``key``, with its interval, on the won deals of
    ``t`` with a list price and an amount above 0 (the price realized).

    Columns: ``key``, ``n`` (those deals), ``net`` and ``list`` (their Σ amount and
    Σ list_amount), ``portfolio_discount``, ``low`` and ``high``: the delta-method interval of
    the realization Σ net / Σ list (``_significance.ratio_interval_from_sums``) turned into one
    of the discount. Ordered by ``key``.
    """
    p = t.filter(outcomes(t)["won"] & priced_deals(t))
    moments = {**aggregates(p, "opportunities", "net_priced", "list_priced")}
    moments.update(realization_moments(p))
    sums = aggregate(p, [key], moments)
    n, net, list_ = (
        sums[c].to_numpy(float) for c in ("opportunities", "net_priced", "list_priced")
    )
    _, r_low, r_high = ratio_interval_from_sums(
        n, net, list_, sums["yy"], sums["xx"], sums["xy"], confidence=confidence
    )
    columns = {"n": n, "net": net, "list": list_}
    columns.update(portfolio_discount=portfolio_discount(net, list_), low=1 - r_high)
    columns["high"] = 1 - r_low
    return pd.DataFrame({key: sums[key], **columns})


def median_cycle_days(t: ibis.Table, *, where: ibis.BooleanValue | None = None) -> ibis.Value:
    """Median cycle days (close − created) of the closed deals in ``where``.

    The one definition; docs/metrics.md ("Cycle"). The engine's exact, interpolated median
    (``quantile_cont``); NULL for a group without such deals.
    """
    return t.cycle_days.quantile(0.5, where=where)


def median_cycle_days_won(t: ibis.Table) -> ibis.Value:
    """``median_cycle_days_won``: :func:`median_cycle_days` of the won deals.

    The one definition; docs/metrics.md ("Cycle"). :func:`combine` gives the same number from
    outcome sums split by duration.
    """
    return median_cycle_days(t, where=outcomes(t)["won"])


def aggregate(
    t: ibis.Table,
    by: Sequence[str | ibis.Value],
    metrics: Mapping[str, Any],
    *,
    labels: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Run ``metrics`` per group of ``by``, ordered by ``by`` (one row overall when empty).

    ``by`` holds column names or named expressions (grouping by an expression directly, rather
    than by a column added with ``mutate``, keeps the SQL and its compilation small).
    ``labels`` (``_deals.dimension_labels(data)``): a dimension of ``by`` listed there whose
    code column is in ``t`` (``_deals.select_coded_deals``) is grouped by its small-integer
    code, several times faster than by its text, and comes back as its label. Codes are
    numbered in label order, so the rows come in the same order.
    """
    return _aggregate(t, by, metrics, labels, ordered=True)


def _aggregate(
    t: ibis.Table,
    by: Sequence[str | ibis.Value],
    metrics: Mapping[str, Any],
    labels: Mapping[str, Sequence[str]] | None,
    *,
    ordered: bool,
) -> pd.DataFrame:
    """:func:`aggregate`; ``ordered=False`` leaves the rows in the engine's order."""
    query, finish = _grouped(t, by, metrics, labels, ordered=ordered)
    return finish(query.execute())


def _grouped(
    t: ibis.Table,
    by: Sequence[str | ibis.Value],
    metrics: Mapping[str, Any],
    labels: Mapping[str, Sequence[str]] | None,
    *,
    ordered: bool,
) -> tuple[ibis.Table, Callable[[pd.DataFrame], pd.DataFrame]]:
    """The query of :func:`_aggregate`, and the function that puts labels on its rows."""
    if not by:
        return t.aggregate(**metrics), lambda out: out
    coded = [
        d for d in by if isinstance(d, str) and d in (labels or {}) and code_column(d) in t.columns
    ]
    keys = [code_column(d) if isinstance(d, str) and d in coded else d for d in by]
    names = [k if isinstance(k, str) else k.get_name() for k in keys]
    query = t.group_by(keys).aggregate(**metrics)
    if ordered:
        query = query.order_by(names)
    found = {d: pa.array(labels[d], type=pa.string()) for d in coded} if coded else {}

    def finish(out: pd.DataFrame) -> pd.DataFrame:
        for d, words in found.items():
            codes = pa.array(out[code_column(d)].to_numpy(), type=pa.int32())
            # through Arrow, as the engine's text columns come, for the same pandas dtype
            out[code_column(d)] = words.take(codes).to_pandas()
        return out.rename(columns={code_column(d): d for d in coded})

    return query, finish


def outcome_sums(
    t: ibis.Table,
    by: Sequence[str | ibis.Value],
    *names: str,
    labels: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Deals counted and amounts summed per group of ``by`` and deal outcome: one engine query.

    The rows :func:`combine` adds up to the aggregates ``names`` of :data:`AGGREGATES`
    (default: all that ``t`` supports), over ``by`` or fewer keys; only what those need is
    asked for. Columns: the ``by`` columns, the outcome keys ``is_closed``, ``is_won`` and
    (for ``net_priced`` / ``list_priced``) ``_priced`` (list_amount > 0), then ``_n`` (deals)
    and, as needed, ``_amount``, ``_list_amount`` and ``_weighted`` (Σ amount × probability);
    in no particular order. ``by`` and ``labels`` as in :func:`aggregate`; ``t`` needs only the
    columns of :data:`OUTCOME_COLUMNS` it has, and those of ``by``. On the kept deals table
    the engine groups by the three outcome keys packed in one stored column (``_outcome``,
    ``_deals.outcome_code``), a faster key, and they are unpacked on the rows.
    """
    query, finish = outcome_sums_query(t, by, *names, labels=labels)
    return finish(query.execute())


def outcome_sums_query(
    t: ibis.Table,
    by: Sequence[str | ibis.Value],
    *names: str,
    labels: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ibis.Table, Callable[[pd.DataFrame], pd.DataFrame]]:
    """The query of :func:`outcome_sums` and the function that gives its rows from the query's
    (for ``_deals.run_query``, which keeps the compiled query)."""
    values = _values(t)
    have = {*_deal_sets(t), *values}
    wanted = [_DEFINITIONS[n] for n in _available([n for n in names if n != MEDIAN_WON], have)]
    has_priced = any(which in ("priced", "realized") for _, which in wanted)
    packed = "_outcome" in t.columns
    if packed:
        keys = [t._outcome]
    else:
        keys = [t.is_closed, t.is_won, *([priced_deals(t).name("_priced")] if has_priced else [])]
    summed = {value for value, _ in wanted}
    sums = {"_n": t.count()}
    sums.update({f"_{v}": values[v].sum() for v in _VALUES if v in summed and v != "n_amount"})
    if "n_amount" in summed:
        sums["_n_amount"] = t.amount.count()
    query, finish = _grouped(t, [*by, *keys], sums, labels, ordered=False)
    if not packed:
        return query, finish

    def unpacked(out: pd.DataFrame) -> pd.DataFrame:
        out = finish(out)
        closed, won, has_list = decode_outcome(out.pop("_outcome"))
        out["is_closed"], out["is_won"] = closed, won
        if has_priced:
            out["_priced"] = has_list
        return out

    return query, unpacked


# The columns of the deals :func:`outcome_sums` reads.
OUTCOME_COLUMNS = ("is_closed", "is_won", "amount", "list_amount", "probability")


def _outcome_masks(parts: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per row of :func:`outcome_sums`: True where its deals are in each set of deals."""
    flags = {c: parts[c] for c in ("is_closed", "is_won")}
    if all(f.dtype == np.dtype(bool) for f in flags.values()):  # no NULL flag: numpy
        masks = outcomes(SimpleNamespace(**{c: f.to_numpy() for c, f in flags.items()}))
    else:  # NULL flags: pandas' nullable booleans follow SQL's three-valued logic
        masks = outcomes(pd.DataFrame(flags).astype("boolean"))
        masks = {k: m.fillna(False).to_numpy(dtype=bool) for k, m in masks.items()}
    masks["all"] = np.ones(len(parts), dtype=bool)
    if "_priced" in parts:
        has_list = parts["_priced"]
        if has_list.dtype != np.dtype(bool):
            has_list = has_list.astype("boolean").fillna(False)
        masks["priced"] = has_list.to_numpy(dtype=bool)
        masks["realized"] = masks["won"] & masks["priced"]
    return masks


def _group_numbers(parts: pd.DataFrame, by: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's group number (groups of ``by`` in order, NULL last) and the groups' keys."""
    if not by:
        return np.zeros(len(parts), dtype=np.int64), pd.DataFrame(index=range(1))
    ids, first = np.zeros(len(parts), dtype=np.int64), np.zeros(0, dtype=np.int64)
    for key in by:  # numbered key by key, each in its sorted order: the order of the keys
        codes, uniques = pd.factorize(parts[key], sort=True, use_na_sentinel=False)
        numbers = ids * len(uniques) + codes
        _, first, ids = np.unique(numbers, return_index=True, return_inverse=True)
    return ids.ravel(), parts[list(by)].iloc[first].reset_index(drop=True)


def combine(parts: pd.DataFrame, by: Sequence[str], *names: str) -> pd.DataFrame:
    """The aggregates ``names`` per group of ``by``, from rows of :func:`outcome_sums`; as
    :func:`aggregate` with :func:`aggregates` returns them.

    ``names``: aggregates of :data:`AGGREGATES` (default: all the rows support; those they do
    not support are left out), and ``"median_cycle_days_won"`` when the rows were summed by
    ``duration_days`` too: a closed deal's duration is its cycle, so the won deals' counts per
    duration give :func:`median_cycle_days_won`, the same interpolated median. ``by`` may be
    fewer keys than the rows were summed by. Ordered by ``by``; one row overall when ``by`` is
    empty. Counts are 0 and sums and medians NaN (SQL: NULL) for a group without such deals.
    """
    masks = _outcome_masks(parts)
    values = {None: parts["_n"], **{k: parts[f"_{k}"] for k in _VALUES if f"_{k}" in parts}}
    median = MEDIAN_WON in names
    sums = _available([n for n in names if n != MEDIAN_WON], {*values, *masks} - {None})
    ids, groups = _group_numbers(parts, by)
    n = len(groups)
    found: dict[str, np.ndarray] = {}
    for name in sums:
        value, which = _DEFINITIONS[name]
        v = values[value].to_numpy(dtype=float, na_value=np.nan)
        counted = masks[which] & ~np.isnan(v)
        total = np.bincount(ids, weights=np.where(counted, v, 0.0), minlength=n)
        if value in _COUNTS:
            found[name] = total.astype("int64")
        else:  # a sum over no value is NULL in SQL
            found[name] = np.where(np.bincount(ids, counted, minlength=n) > 0, total, np.nan)
    if median:
        days = parts["duration_days"].to_numpy(dtype=float, na_value=np.nan)
        won = np.where(masks["won"] & masks["closed"], parts["_n"].to_numpy(dtype=float), 0.0)
        found[MEDIAN_WON] = grouped_quantile_from_counts(ids, days, won, 0.5, n)
    # one frame built at once: adding columns one by one costs more than the sums
    columns = {b: groups[b] for b in by}
    columns.update({k: found[k] for k in (names or sums) if k in found})
    return pd.DataFrame(columns, index=groups.index)


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


def value_win_rate(bookings: Any, lost_amount: Any, lost: Any = None) -> np.ndarray:
    """``value_win_rate`` = won amount / (won amount + lost amount); NaN with nothing closed.

    The one definition; docs/metrics.md. Deals without an amount, or at $0, add nothing to
    either sum. With ``lost`` (lost deals counted), NaN where there are lost deals but none
    with an amount above 0: lost deals often carry $0 by CRM convention, and the rate would
    then be 100%.

    Examples
    --------
    >>> value_win_rate([300.0, 300.0], [100.0, 0.0], lost=[2, 2]).tolist()
    [0.75, nan]
    """
    bookings = np.asarray(bookings, dtype=float)
    lost_amount = np.asarray(lost_amount, dtype=float)
    out = ratio(bookings, bookings + np.nan_to_num(lost_amount))
    if lost is None:
        return out
    unpriced = (np.asarray(lost, dtype=float) > 0) & ~(lost_amount > 0)
    return np.where(unpriced, np.nan, out)


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
