"""Stratification: tiers of reps, accounts or products, and outcome comparisons across tiers.

``stratify`` ranks entities on a measure and cuts them into quantile tiers (quartiles, deciles)
or ABC(D) tiers by cumulative contribution. ``compare_strata`` compares an outcome across the
tiers with intervals, a significance test and an effect size; ``mix_adjusted`` checks whether a
difference survives direct standardization on another dimension; ``tier_migration`` counts how
entities move between tiers from one period to another.

The engine aggregates (one row per entity, per tier, or per tier and distinct value); the
tiering and the statistics run on those small frames. Definitions: docs/metrics.md
("Segments and strata").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy.stats import norm

from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ._deals import check_dimensions, outcomes, priced, select_deals
from ._groups import NO_DEALS, counts_by_value
from ._measures import (
    aggregate,
    aggregates,
    asp,
    portfolio_discount,
    portfolio_discount_by,
    win_rate,
    win_rate_columns,
)
from ._significance import (
    Significance,
    chi_square_test,
    kruskal_from_counts,
    logrank_from_counts,
    mann_whitney_from_counts,
    mean_interval_from_moments,
    median_interval_from_counts,
    two_proportion_test,
    welch_anova_from_moments,
    welch_t_from_moments,
)
from ._stats import MIN_CLOSED, TOO_FEW, small_n

__all__ = [
    "ENTITIES",
    "MEASURES",
    "METHODS",
    "OUTCOMES",
    "StrataComparison",
    "stratify",
    "tier_labels",
    "assign_tiers",
    "compare_strata",
    "mix_adjusted",
    "tier_migration",
]

# entity id column -> the dimension that names it
ENTITIES = {"owner_id": "owner", "account_id": "account", "product_id": "product"}
MEASURES = ("bookings", "win_rate", "opportunities", "asp", "discount")
ADDITIVE = ("bookings", "opportunities")
# the former name of the deal-count measure, still accepted
_MEASURE_ALIASES = {"deals": "opportunities"}
# method -> (tier, upper bound of the cumulative share *before* the entity) for ABC(D),
# or the number of quantile tiers and their prefix
ABC_CUTS = {
    "abc": (("A", 0.80), ("B", 0.95), ("C", 1.0)),
    "abcd": (("A", 0.50), ("B", 0.80), ("C", 0.95), ("D", 1.0)),
}
QUANTILES = {"quartile": ("Q", 4), "decile": ("D", 10)}
METHODS = (*QUANTILES, *ABC_CUTS)
OUTCOMES = ("win_rate", "cycle_days", "discount", "asp", "time_to_close")
NEW, GONE, UNRANKED = "new", "gone", "unranked"
# per-deal discounts are rounded to this many decimals (0.1 percentage point) for rank tests
DISCOUNT_DECIMALS = 3


def _choice(name: str, value: Any, allowed: tuple[str, ...] | Mapping[str, Any]) -> str:
    if value not in allowed:
        raise ParameterError(
            f"{name}={value!r} is not allowed; use one of: {', '.join(map(repr, allowed))}."
        )
    return value


def tier_labels(method: str) -> list[str]:
    """Tier labels of a method, best first: Q1..Q4, D1..D10, A/B/C or A/B/C/D."""
    _choice("method", method, METHODS)
    if method in ABC_CUTS:
        return [label for label, _ in ABC_CUTS[method]]
    prefix, k = QUANTILES[method]
    return [f"{prefix}{i}" for i in range(1, k + 1)]


# --------------------------------------------------------------------------------------------------
# Aggregates in the engine


# The counts and sums per entity and per tier (defined in _measures.aggregates); the priced sums
# only when the data has list_amount.
_ENTITY_AGGREGATES = (
    "opportunities",
    "closed",
    "won",
    "won_with_amount",
    "lost",
    "bookings",
    "net_realized",
    "list_realized",
)
_TIER_AGGREGATES = ("opportunities", "closed", "won", "lost", "open")


def _fill(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts and sums as floats, 0 where the engine gave NULL."""
    cols = [c for c in {*_ENTITY_AGGREGATES, *_TIER_AGGREGATES} if c in frame.columns]
    return frame.astype({c: float for c in cols}).fillna({c: 0.0 for c in cols})


def _measure(frame: pd.DataFrame, measure: str) -> tuple[pd.Series, pd.Series]:
    """(value, reason it is undefined) per row of a per-entity frame."""
    none = pd.Series("", index=frame.index)
    if measure in ADDITIVE:
        return frame[measure].astype(float), none
    if measure == "win_rate":
        value, why = win_rate(frame.won, frame.lost), "no closed deals"
    elif measure == "asp":
        value, why = asp(frame.bookings, frame.won_with_amount), "no won deal with an amount"
    else:
        if "list_realized" not in frame.columns:
            raise MissingDataError(
                "measure='discount' needs list_amount on opportunities; map "
                "tables.opportunities.columns.list_amount, or choose another measure."
            )
        value = portfolio_discount(frame.net_realized, frame.list_realized)
        why = "no won deal with a list price and an amount"
    value = pd.Series(value, index=frame.index, dtype=float)
    return value, none.where(value.notna(), why)


# --------------------------------------------------------------------------------------------------
# stratify


def assign_tiers(values: Any, method: str) -> np.ndarray:
    """Tier label of each value (object array; None where the value is NaN).

    Values are ranked highest first; ties keep their input order. Quantile methods follow SQL
    NTILE: m ranked values in k tiers give every tier m // k values and the first m % k tiers
    one more. ABC(D) methods put a value in the first tier whose bound is above the cumulative
    share of the values ranked before it (``abc``: A < 80%, B < 95%, C the rest; ``abcd``:
    A < 50%, B < 80%, C < 95%, D the rest), so the value that crosses a bound still belongs to
    the tier below it and A is never empty. ABC(D) needs non-negative values with a positive
    total; otherwise every label is None.

    Examples
    --------
    >>> assign_tiers([400, 300, 200, 100, 0], "abc").tolist()
    ['A', 'A', 'A', 'B', 'C']
    >>> assign_tiers([5, 4, 3, 2, 1], "quartile").tolist()
    ['Q1', 'Q1', 'Q2', 'Q3', 'Q4']
    """
    labels = np.asarray(tier_labels(method), dtype=object)
    vals = np.asarray(values, dtype=float)
    out = np.full(vals.shape, None, dtype=object)
    ranked = np.flatnonzero(~np.isnan(vals))
    order = ranked[np.argsort(-vals[ranked], kind="stable")]
    m = order.size
    if method in QUANTILES:
        q, r = divmod(m, QUANTILES[method][1])  # NTILE: the first r tiers get one more
        i = np.arange(m)
        big = r * (q + 1)
        idx = np.where(i < big, i // (q + 1), r + (i - big) // max(q, 1))
    else:
        sorted_vals = vals[order]
        total = sorted_vals.sum()
        if m == 0 or total <= 0 or (sorted_vals < 0).any():
            return out
        before = (np.cumsum(sorted_vals) - sorted_vals) / total
        cuts = np.array([cut for _, cut in ABC_CUTS[method]])
        # a cumulative share within 1e-12 of a bound counts as having reached it
        idx = np.searchsorted(cuts - 1e-12, before, side="right").clip(max=len(cuts) - 1)
    out[order] = labels[idx]
    return out


def stratify(
    data: SalesData,
    *,
    entity: str = "owner_id",
    measure: str = "bookings",
    method: str = "quartile",
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    min_closed: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Rank entities on a measure and cut them into tiers.

    Parameters
    ----------
    data
        The loaded sales data.
    entity
        ``"owner_id"`` (reps), ``"account_id"`` or ``"product_id"``.
    measure
        ``"bookings"`` (Σ amount of won deals), ``"opportunities"`` (count of deals; the
        former name ``"deals"`` is still accepted), ``"win_rate"``, ``"asp"`` or
        ``"discount"`` (the portfolio discount over deals with a list price); each as defined
        in :mod:`._measures` and docs/metrics.md.
    method
        ``"quartile"`` (Q1 = top 25% … Q4), ``"decile"`` (D1 … D10), ``"abc"`` (A: the
        entities that make the first 80% of the measure, B: the next 15%, C: the last 5%) or
        ``"abcd"`` (50/30/15/5%). ABC(D) needs an additive measure (bookings or opportunities).
    filters, period, date_field
        Which deals count, as in :func:`select_deals`.
    min_closed
        Fewer closed deals than this flags an entity ``small_n``.

    Returns
    -------
    pandas.DataFrame
        One row per entity with a deal in the selection, best first: ``entity``, ``label``
        (name), ``value`` (the measure), ``tier`` (ordered categorical; NaN when the measure is
        undefined), ``rank`` (1 = highest value), ``share`` and ``cumulative_share`` of the
        measure total (additive measures), ``opportunities``, ``closed``, ``won``, ``bookings``,
        ``small_n`` (closed < MIN_CLOSED) and ``note`` (why an entity is unranked, or
        "too few to say" for a rate measure on small n).

    Notes
    -----
    Entities are sorted by value, highest first, ties broken by entity id. Quantile tiers
    follow SQL NTILE: m entities in k tiers give every tier m // k entities and the first
    m % k tiers one more. ABC(D): an entity is in the first tier whose bound is above the
    cumulative share of the entities ranked before it (A: < 80%, B: < 95%, C: the rest), so
    the entity that crosses 80% is still an A and A is never empty.
    """
    _choice("entity", entity, ENTITIES)
    measure = _choice("measure", _MEASURE_ALIASES.get(measure, measure), MEASURES)
    labels = tier_labels(method)
    if method in ABC_CUTS and measure not in ADDITIVE:
        raise ParameterError(
            f"method={method!r} cuts by cumulative contribution, which needs an additive "
            f"measure: use measure='bookings' or 'opportunities', or method='quartile' or "
            f"'decile'."
        )
    check_dimensions(data, [entity], parameter="entity")
    t = select_deals(data, filters, period, date_field=date_field)
    label_dim = ENTITIES[entity]
    keys = [entity, label_dim] if label_dim in t.columns else [entity]
    frame = _fill(aggregate(t, keys, aggregates(t, *_ENTITY_AGGREGATES)))
    frame = frame.rename(columns={entity: "entity", label_dim: "label"})
    if "label" not in frame.columns:
        frame["label"] = frame["entity"]
    value, reason = _measure(frame, measure)
    frame = frame.assign(value=value, note=reason)
    frame = frame.sort_values(["value", "entity"], ascending=[False, True], na_position="last")
    frame = frame.reset_index(drop=True)
    ranked = frame["value"].notna().to_numpy()
    m = int(ranked.sum())
    values = frame["value"].to_numpy()[:m]
    share = np.full(len(frame), np.nan)
    cumulative = np.full(len(frame), np.nan)
    total = values.sum() if m else 0.0
    if measure in ADDITIVE and total > 0:
        share[:m] = values / total
        cumulative[:m] = np.cumsum(values) / total
    tier = assign_tiers(frame["value"], method)
    if method in ABC_CUTS and m and total <= 0:
        frame.loc[: m - 1, "note"] = f"{measure} total is 0: no cumulative contribution"
    rank = np.where(tier != None, np.arange(1, len(frame) + 1), np.nan)  # noqa: E711
    few = small_n(frame["closed"], minimum=min_closed)
    rate_note = np.where(few & (frame["note"] == "") & (measure not in ADDITIVE), TOO_FEW, "")
    frame = frame.assign(
        tier=pd.Categorical(tier, categories=labels, ordered=True),
        rank=rank,
        share=share,
        cumulative_share=cumulative,
        small_n=few,
        note=np.where(frame["note"] == "", rate_note, frame["note"]),
    )
    cols = [
        "entity",
        "label",
        "value",
        "tier",
        "rank",
        "share",
        "cumulative_share",
        "opportunities",
        "closed",
        "won",
        "bookings",
        "small_n",
        "note",
    ]
    out = frame[cols].astype({"opportunities": int, "closed": int, "won": int})
    if out.empty:
        out.attrs["reason"] = NO_DEALS
    return out


# --------------------------------------------------------------------------------------------------
# compare_strata


@dataclass(frozen=True)
class StrataComparison:
    """What :func:`compare_strata` returns.

    Attributes
    ----------
    table
        One row per tier (see :func:`compare_strata`).
    test
        The test across all tiers with data.
    top_vs_bottom
        The test and effect size of the top tier against the bottom tier with data.
    """

    table: pd.DataFrame
    test: Significance
    top_vs_bottom: Significance

    @property
    def tests(self) -> pd.DataFrame:
        """Both tests as rows, with a ``comparison`` column ("across tiers", "Q1 vs Q4")."""
        rows = [self.test.to_frame(), self.top_vs_bottom.to_frame()]
        frame = pd.concat(rows, ignore_index=True)
        vs = self.top_vs_bottom.details.get("comparison", "top vs bottom")
        frame.insert(0, "comparison", ["across tiers", vs])
        return frame


def _tiered_deals(
    data: SalesData,
    strata: pd.DataFrame,
    entity: str,
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
) -> ibis.Table:
    """The selected deals of ranked entities, with their tier in column ``_tier``."""
    ranked = strata[strata["tier"].notna()]
    mapping = ibis.memtable(
        pd.DataFrame({"_entity": ranked["entity"].astype(str), "_tier": ranked["tier"].astype(str)})
    )
    t = select_deals(data, filters, period, date_field=date_field)
    return t.inner_join(mapping, t[entity] == mapping["_entity"]).drop("_entity")


def _by_value(t: ibis.Table, value: Any, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, tiers × values counts), aggregated in the engine."""
    wide = counts_by_value(t, "_tier", value)
    if wide.empty:
        return np.array([]), np.zeros((len(labels), 0))
    wide = wide.reindex(labels).fillna(0.0)
    return wide.columns.to_numpy(dtype=float), wide.to_numpy(dtype=float)


def _top_bottom(labels: list[str], n: np.ndarray) -> tuple[int, int] | None:
    idx = np.flatnonzero(n > 0)
    return (int(idx[0]), int(idx[-1])) if idx.size >= 2 else None


def _vs(test: Significance, labels: list[str], pair: tuple[int, int] | None) -> Significance:
    """Name the top-vs-bottom comparison; void the test when there is no pair of tiers."""
    if pair is None:
        return Significance(
            test=test.test, effect=test.effect, reason="fewer than two tiers with data"
        )
    details = {**test.details, "comparison": f"{labels[pair[0]]} vs {labels[pair[1]]}"}
    return replace(test, details=details)


def _outcome_win_rate(t, base, labels, confidence):
    won, lost, closed = (base[c].to_numpy() for c in ("won", "lost", "closed"))
    rates = win_rate_columns(won, lost, confidence=confidence)
    cols = {c: rates[c] for c in ("win_rate", "win_rate_low", "win_rate_high")}
    pair = _top_bottom(labels, closed)
    across = chi_square_test(np.c_[won, lost])
    i, j = pair or (0, 0)
    vs = two_proportion_test(won[i], closed[i], won[j], closed[j], confidence=confidence)
    return cols, closed, across, vs, pair


def _outcome_ranks(values, counts, labels, column, confidence):
    n = counts.sum(axis=1)
    stats_ = [
        median_interval_from_counts(values, row, confidence=confidence)
        if row.sum()
        else (np.nan,) * 3
        for row in counts
    ]
    med, low, high = (np.array(x, dtype=float) for x in zip(*stats_, strict=True))
    cols = {column: med, f"{column}_low": low, f"{column}_high": high}
    pair = _top_bottom(labels, n)
    across = kruskal_from_counts(values, counts)
    a, b = (counts[pair[0]], counts[pair[1]]) if pair else (values * 0, values * 0)
    vs = mann_whitney_from_counts(values, a, b)
    return cols, n, across, vs, pair


def _outcome_cycle(t, base, labels, confidence):
    won = t.filter(outcomes(t)["won"])
    values, counts = _by_value(won, won.cycle_days, labels)
    return _outcome_ranks(values, counts, labels, "median_cycle_days_won", confidence)


def _outcome_discount(t, base, labels, confidence):
    if "list_amount" not in t.columns:
        raise MissingDataError(
            "outcome='discount' needs list_amount on opportunities; map "
            "tables.opportunities.columns.list_amount, or choose another outcome."
        )
    sums = portfolio_discount_by(t, "_tier", confidence=confidence).set_index("_tier")
    sums = sums.reindex(labels)
    p = t.filter(outcomes(t)["won"] & priced(t))  # the deals portfolio_discount_by is over
    values, counts = _by_value(p, p.discount.round(DISCOUNT_DECIMALS), labels)
    _, _, across, vs, pair = _outcome_ranks(values, counts, labels, "d", confidence)
    cols = {
        "portfolio_discount": sums["portfolio_discount"].to_numpy(),
        "portfolio_discount_low": sums["low"].to_numpy(),
        "portfolio_discount_high": sums["high"].to_numpy(),
    }
    return cols, sums["n"].fillna(0.0).to_numpy(), across, vs, pair


def _won_amounts(t: ibis.Table) -> dict[str, Any]:
    """``won`` (won deals with an amount: those ASP averages), bookings and ``var``, the sample
    variance of won amounts (for ASP intervals)."""
    var = t.amount.var(how="sample", where=outcomes(t)["won"])
    m = aggregates(t, "won_with_amount", "bookings")
    return {"won": m["won_with_amount"], "bookings": m["bookings"], "var": var}


def _outcome_asp(t, base, labels, confidence):
    m = aggregate(t, ["_tier"], _won_amounts(t)).set_index("_tier").reindex(labels)
    n = m["won"].fillna(0.0).to_numpy(dtype=float)
    mean, var = asp(m["bookings"], n), m["var"].to_numpy(dtype=float)
    low, high = mean_interval_from_moments(n, mean, var, confidence=confidence)
    cols = {"asp": mean, "asp_low": low, "asp_high": high}
    pair = _top_bottom(labels, n)
    across = welch_anova_from_moments(n, mean, np.nan_to_num(var))
    i, j = pair or (0, 0)
    vs = welch_t_from_moments(n[i], mean[i], var[i], n[j], mean[j], var[j], confidence=confidence)
    return cols, n, across, vs, pair


def _outcome_time_to_close(t, base, labels, confidence):
    d = t.filter(t.duration_days.notnull())
    counted = (
        d.group_by(["_tier", d.duration_days.name("time"), "is_closed"])
        .aggregate(n=d.count())
        .to_pandas()
    )
    counted["events"] = np.where(counted["is_closed"], counted["n"], 0)
    counted["censored"] = np.where(counted["is_closed"], 0, counted["n"])
    order = {label: i for i, label in enumerate(labels)}
    counted = counted.sort_values("_tier", key=lambda s: s.map(order), kind="stable")
    across = logrank_from_counts(counted, group="_tier", confidence=confidence)
    obs = counted.groupby("_tier")["events"].sum().reindex(labels).fillna(0.0).to_numpy()
    n = counted.groupby("_tier")["n"].sum().reindex(labels).fillna(0.0).to_numpy()
    expected = np.full(len(labels), np.nan)
    if across.reason is None:
        expected = pd.Series(across.details["expected"], index=across.details["groups"])
        expected = expected.reindex(labels).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = obs / expected
    cols = {"closes_observed": obs, "closes_expected": expected, "close_ratio": ratio}
    pair = _top_bottom(labels, n)
    top_bottom = [labels[k] for k in pair] if pair else []
    two = counted[counted["_tier"].isin(top_bottom)]
    vs = logrank_from_counts(two, group="_tier", confidence=confidence)
    return cols, base["closed"].to_numpy(), across, vs, pair


_OUTCOMES = {
    "win_rate": _outcome_win_rate,
    "cycle_days": _outcome_cycle,
    "discount": _outcome_discount,
    "asp": _outcome_asp,
    "time_to_close": _outcome_time_to_close,
}


def compare_strata(
    data: SalesData,
    *,
    entity: str = "owner_id",
    measure: str = "bookings",
    method: str = "quartile",
    outcome: str = "win_rate",
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    tier_period: tuple[Any, Any] | None = None,
    confidence: float = 0.95,
    min_closed: int = MIN_CLOSED,
) -> StrataComparison:
    """Compare an outcome across the tiers of :func:`stratify`, with a test and an effect size.

    Parameters
    ----------
    entity, measure, method
        How entities are tiered (see :func:`stratify`).
    outcome
        ``"win_rate"`` (won / closed, Wilson interval; chi-square across tiers; top vs bottom:
        two-proportion z test, risk difference), ``"cycle_days"`` (median cycle days of won
        deals with the order-statistic interval; Kruskal–Wallis; Mann–Whitney, rank-biserial
        correlation), ``"discount"`` (portfolio discount 1 − Σ amount / Σ list_amount with a
        ratio-estimator interval; Kruskal–Wallis and Mann–Whitney on per-deal discounts
        rounded to 0.1 pt), ``"asp"`` (won amount / won with a t interval; Welch ANOVA; Welch
        t, difference of ASPs) or ``"time_to_close"`` (every deal, open deals censored at
        their age; log-rank; hazard ratio of closing).
    filters, period, date_field
        Which deals are compared (see :func:`select_deals`).
    tier_period
        The period the tiers are computed on (default: ``period``). Tiering and comparing on
        the same deals builds in some of the difference (e.g. more wins → more bookings → top
        tier); tier on an earlier period to avoid it.
    confidence
        Level of the intervals.
    min_closed
        Fewer observations behind a tier's value than this flags it ``small_n``.

    Returns
    -------
    StrataComparison
        ``table``: one row per tier (empty tiers included): ``tier``, ``entities``,
        ``opportunities``, ``closed``, ``won``, ``lost``, ``open``, the outcome's columns
        (``win_rate``, ``win_rate_low``, ``win_rate_high`` |
        ``median_cycle_days_won``(``_low``/``_high``) |
        ``portfolio_discount``(``_low``/``_high``) | ``asp``(``_low``/``_high``) |
        ``closes_observed``, ``closes_expected``, ``close_ratio``), ``n_outcome`` (the
        observations behind the value: closed deals for rates and time to close, won deals
        for ASP and cycle, deals with a list price for discount), ``small_n`` (n_outcome <
        MIN_CLOSED) and ``note``. ``test``: across tiers; ``top_vs_bottom``: best tier with
        data against the worst.
    """
    out = _choice("outcome", outcome, _OUTCOMES)
    labels = tier_labels(method)
    strata = stratify(
        data,
        entity=entity,
        measure=measure,
        method=method,
        filters=filters,
        period=tier_period if tier_period is not None else period,
        date_field=date_field,
    )
    t = _tiered_deals(data, strata, entity, filters, period, date_field)
    base = _fill(aggregate(t, ["_tier"], aggregates(t, *_TIER_AGGREGATES)))
    base = base.set_index("_tier").reindex(labels).fillna(0.0)
    cols, n_out, across, vs, pair = _OUTCOMES[out](t, base, labels, confidence)
    n_out = np.asarray(n_out, dtype=float)
    few = small_n(n_out, minimum=min_closed)
    entities = strata["tier"].value_counts().reindex(labels).fillna(0).to_numpy(dtype=int)
    table = pd.DataFrame(
        {
            "tier": pd.Categorical(labels, categories=labels, ordered=True),
            "entities": entities,
            **{c: base[c].to_numpy(dtype=int) for c in _TIER_AGGREGATES},
            **cols,
            "n_outcome": n_out.astype(int),
            "small_n": few,
            "note": np.where(
                base["opportunities"].to_numpy() == 0, "empty tier", np.where(few, TOO_FEW, "")
            ),
        }
    )
    return StrataComparison(table, across, _vs(vs, labels, pair))


# --------------------------------------------------------------------------------------------------
# mix_adjusted


def mix_adjusted(
    data: SalesData,
    *,
    by: str = "tier",
    standardize_on: str = "size_band",
    outcome: str = "win_rate",
    entity: str = "owner_id",
    measure: str = "bookings",
    method: str = "quartile",
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    confidence: float = 0.95,
    min_closed: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Crude and directly standardized outcome per group: does a difference survive the mix?

    Direct standardization (Rothman, Greenland & Lash, *Modern Epidemiology*, 3rd ed., ch. 4):
    each group's stratum-specific rates r_gs are weighted by the whole selection's mix,
    adjusted_g = Σ_s w_s·r_gs with w_s = the overall share of closed deals (win rate) or of won
    deals (ASP) in stratum s. A group that has no deal in the denominator of some stratum gets
    the weights of the strata it has, renormalised to sum to 1 (``weight_coverage`` < 1 says
    how much of the mix that covers); strata with few deals are kept, and their noise shows in
    the interval: Var = Σ_s w_s²·v_gs/n_gs / coverage² with v = r(1 − r) for win rate and the
    sample variance of won amounts for ASP (Wald interval).

    Parameters
    ----------
    by
        ``"tier"`` (the tiers of ``entity``/``measure``/``method``, see :func:`stratify`) or a
        dimension name.
    standardize_on
        The dimension whose mix is held fixed (e.g. ``"size_band"``, ``"industry"``).
    outcome
        ``"win_rate"`` or ``"asp"``.
    entity, measure, method
        The tiers used when ``by="tier"`` (see :func:`stratify`).
    filters, period, date_field
        Which deals count (see :func:`select_deals`).
    confidence, min_closed
        Level of the interval; fewer deals than ``min_closed`` in a group flags it ``small_n``.

    Returns
    -------
    pandas.DataFrame
        One row per group: the group column (``tier`` or the dimension), ``n`` (closed deals
        for win rate, won deals for ASP), ``crude_rate``, ``adjusted_rate``, ``adjusted_low``,
        ``adjusted_high``, ``difference`` (adjusted − crude: how much of the crude rate is
        due to the group's mix), ``overall_rate`` (the whole selection), ``weight_coverage``,
        ``small_n`` and ``note``.
    """
    _choice("outcome", outcome, ("win_rate", "asp"))
    check_dimensions(data, [standardize_on], parameter="standardize_on")
    if by == "tier":
        strata = stratify(
            data,
            entity=entity,
            measure=measure,
            method=method,
            filters=filters,
            period=period,
            date_field=date_field,
        )
        t = _tiered_deals(data, strata, entity, filters, period, date_field)
        group, labels = "_tier", tier_labels(method)
    else:
        check_dimensions(data, [by], parameter="by")
        if by == standardize_on:
            raise ParameterError(
                f"by={by!r} and standardize_on={standardize_on!r} are the same dimension; "
                f"standardize on another one."
            )
        t, group, labels = select_deals(data, filters, period, date_field=date_field), by, None
    if outcome == "win_rate":
        m = aggregates(t, "closed", "won")
        agg = {"n": m["closed"], "num": m["won"]}
    else:
        m = _won_amounts(t)
        agg = {"n": m["won"], "num": m["bookings"], "var": m["var"]}
    cells = aggregate(t, [group, standardize_on], agg)
    cells = cells[cells["n"] > 0].reset_index(drop=True)  # only cells with deals in the rate
    cells = cells.rename(columns={group: "group", standardize_on: "stratum"})
    return _standardize(cells, outcome, labels, confidence, min_closed).rename(
        columns={"group": "tier" if by == "tier" else by}
    )


# outcome -> its rate from (num, n) of a cell: won of closed, or won amount of won deals
_RATES = {"win_rate": lambda won, closed: win_rate(won, closed - won), "asp": asp}


def _standardize(
    cells: pd.DataFrame,
    outcome: str,
    labels: list[str] | None,
    confidence: float,
    min_closed: int,
) -> pd.DataFrame:
    """Direct standardization on cells (group, stratum, n, num[, var])."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    rate_of = _RATES[outcome]
    cells = cells.astype({"n": float, "num": float})
    total_n = cells["n"].sum()
    weights = (cells.groupby("stratum")["n"].sum() / total_n).astype(float)
    rate = rate_of(cells["num"], cells["n"])
    var = rate * (1 - rate) if outcome == "win_rate" else cells["var"].astype(float)
    w = cells["stratum"].map(weights).astype(float)
    cells = cells.assign(w=w, wr=w * rate, wv=w**2 * var / cells["n"])
    g = cells.groupby("group")
    frame = pd.DataFrame(
        {
            "n": g["n"].sum(),
            "num": g["num"].sum(),
            "coverage": g["w"].sum(),
            "wr": g["wr"].sum(),
            "wv": g["wv"].agg(lambda s: s.sum(skipna=False)),  # NaN if a cell has no variance
        }
    )
    if labels is not None:
        frame = frame.reindex(labels).fillna({"n": 0.0, "num": 0.0})
    crude = rate_of(frame["num"], frame["n"])
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = frame["wr"] / frame["coverage"]
        half = z * np.sqrt(frame["wv"]) / frame["coverage"]
    few = small_n(frame["n"], minimum=min_closed)
    note = pd.Series(np.where(few, TOO_FEW, ""), index=frame.index)
    note[frame["n"] == 0] = "no deals"
    partial = (frame["coverage"] < 1 - 1e-9) & (frame["n"] > 0)
    for key in frame.index[partial]:
        mix = f"standardized over {frame.at[key, 'coverage']:.0%} of the mix"
        note[key] = f"{note[key]}; {mix}" if note[key] else mix
    out = pd.DataFrame(
        {
            "group": frame.index,
            "n": frame["n"].to_numpy(dtype=int),
            "crude_rate": crude,
            "adjusted_rate": adjusted.to_numpy(),
            "adjusted_low": (adjusted - half).to_numpy(),
            "adjusted_high": (adjusted + half).to_numpy(),
            "difference": adjusted.to_numpy() - crude,
            "overall_rate": float(rate_of(cells["num"].sum(), total_n)),
            "weight_coverage": frame["coverage"].to_numpy(),
            "small_n": few,
            "note": note.to_numpy(),
        }
    )
    if labels is not None:
        out["group"] = pd.Categorical(out["group"], categories=labels, ordered=True)
    if out.empty:
        out.attrs["reason"] = NO_DEALS
    return out


# --------------------------------------------------------------------------------------------------
# tier_migration


def tier_migration(
    data: SalesData,
    *,
    entity: str = "owner_id",
    measure: str = "bookings",
    method: str = "quartile",
    period_a: tuple[Any, Any] | None = None,
    period_b: tuple[Any, Any] | None = None,
    filters: Mapping[str, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """How entities move between tiers from period A to period B.

    Each period is tiered on its own (see :func:`stratify`). An entity with no deal in A is
    ``"new"``; with no deal in B, ``"gone"``; with deals but an undefined measure (e.g. no
    closed deal for win rate), ``"unranked"``.

    Returns
    -------
    pandas.DataFrame
        One row per cell of the transition matrix, every cell included (zeros too):
        ``tier_a`` (tiers, then "unranked" and "new"), ``tier_b`` (tiers, then "unranked"
        and "gone"), ``entities`` and ``row_share`` (entities / the row's total; NaN for an
        empty row). ``pivot(index="tier_a", columns="tier_b", values="entities")`` gives the
        matrix.
    """
    for name, value in (("period_a", period_a), ("period_b", period_b)):
        if value is None:
            raise ParameterError(
                f"{name} is required: give it as (start, end), e.g. ('2025-01-01', '2025-06-30')."
            )
    labels = tier_labels(method)
    opts = {
        "entity": entity,
        "measure": measure,
        "method": method,
        "filters": filters,
        "date_field": date_field,
    }
    a = stratify(data, period=period_a, **opts)[["entity", "tier"]]
    b = stratify(data, period=period_b, **opts)[["entity", "tier"]]
    both = a.merge(b, on="entity", how="outer", suffixes=("_a", "_b"), indicator=True)
    tier_a = both["tier_a"].astype(object).where(both["tier_a"].notna(), UNRANKED)
    tier_b = both["tier_b"].astype(object).where(both["tier_b"].notna(), UNRANKED)
    tier_a = tier_a.where(both["_merge"] != "right_only", NEW)
    tier_b = tier_b.where(both["_merge"] != "left_only", GONE)
    rows, cols = [*labels, UNRANKED, NEW], [*labels, UNRANKED, GONE]
    cells = pd.MultiIndex.from_product([rows, cols], names=["tier_a", "tier_b"])
    pairs = pd.MultiIndex.from_arrays([tier_a, tier_b], names=["tier_a", "tier_b"])
    counts = pd.Series(1, index=pairs).groupby(level=[0, 1]).sum().reindex(cells, fill_value=0)
    row_total = counts.groupby(level=0).transform("sum")
    out = pd.DataFrame({"entities": counts, "row_share": counts / row_total.where(row_total > 0)})
    out = out.reset_index()
    out["tier_a"] = pd.Categorical(out["tier_a"], categories=rows, ordered=True)
    out["tier_b"] = pd.Categorical(out["tier_b"], categories=cols, ordered=True)
    return out.astype({"entities": int})
