"""Cycle days of closed deals: counts, means and quantiles of won and lost deals, a pre-binned
histogram, and the age of the open deals in bands.

These describe finished deals (and how old the open ones are); the time to close of the
pipeline, with open deals censored, is :mod:`._time_to_close`. Every function selects deals
with ``select_deals``, aggregates in the engine and brings back only aggregated rows. Formulas:
docs/metrics.md, "Cycle".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._deals import check_dimensions, dimension_labels, outcomes, select_coded_deals, select_deals
from ._groups import NO_DEALS, frame, group_keys, iter_groups, notes
from ._measures import aggregate, median_cycle_days
from ._stats import MIN_CLOSED

__all__ = [
    "AGE_EDGES",
    "CYCLE_QUANTILES",
    "cycle_deals",
    "cycle_histogram",
    "cycle_quantiles",
    "cycle_stats",
    "cycle_summary",
    "open_deal_aging",
]

OUTCOMES = ("won", "lost")
# quantile -> column of cycle_quantiles
CYCLE_QUANTILES = {
    0.1: "p10_cycle_days",
    0.25: "p25_cycle_days",
    0.5: "median_cycle_days",
    0.75: "p75_cycle_days",
    0.9: "p90_cycle_days",
}
AGE_EDGES = (30, 90, 180, 365)


def cycle_deals(
    data: SalesData,
    analysis: str,
    by: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
) -> tuple[ibis.Table, list[str]]:
    keys = check_dimensions(data, by)
    data.require(analysis, "opportunities", ("close_date",))
    return select_coded_deals(data, filters, period, date_field=date_field), keys


# -- cycle days of closed deals -----------------------------------------------------------------

_STAT_COLUMNS = ["deals", "mean_cycle_days", "median_cycle_days", "p90_cycle_days"]


def cycle_stats(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """Cycle days (close − created) of won and of lost deals: count, mean, median and p90.

    Closed deals only, so these describe finished deals; they are not the time to close of the
    pipeline (see :func:`time_to_close`). Quantiles are the engine's exact, interpolated
    ``quantile`` (``percentile_cont``).

    Returns
    -------
    pandas.DataFrame
        Long form: one row per group and ``outcome`` (``won``, ``lost``; both always present for
        every group that has a deal): ``deals`` (closed deals with a cycle), ``mean_cycle_days``,
        ``median_cycle_days``, ``p90_cycle_days`` (NaN when ``deals`` is 0), ``small_n``
        (fewer than ``MIN_CLOSED`` deals) and ``note``. :func:`cycle_summary` has the wide form.
    """
    t, keys = cycle_deals(data, "cycle days", by, filters, period, date_field)
    agg = aggregate(
        t,
        [*keys, "status"],
        {
            "deals": t.cycle_days.count(),
            "mean_cycle_days": t.cycle_days.mean(),
            "median_cycle_days": median_cycle_days(t),
            "p90_cycle_days": t.cycle_days.quantile(0.9),
        },
        labels=dimension_labels(data),
    )
    groups = [k for k, _ in iter_groups(agg, keys)] if keys else [()]
    found = {(*_key(r, keys), r["status"]): r for r in agg.to_dict("records")}
    rows = []
    for g in groups:
        for outcome in OUTCOMES:
            r = found.get((*g, outcome))
            row = dict(zip(keys, g, strict=True))
            row["outcome"] = outcome
            row.update({c: (r[c] if r is not None else np.nan) for c in _STAT_COLUMNS})
            row["deals"] = int(r["deals"]) if r is not None else 0
            row["small_n"] = row["deals"] < MIN_CLOSED
            row["note"] = notes(
                f"no {outcome} deals" if row["deals"] == 0 else "",
                "too few to say" if 0 < row["deals"] < MIN_CLOSED else "",
            )
            rows.append(row)
    return frame(rows, [*keys, "outcome", *_STAT_COLUMNS, "small_n", "note"], NO_DEALS)


def _key(row: Mapping[str, Any], keys: list[str]) -> tuple:
    return tuple(row[k] for k in keys)


def cycle_summary(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """:func:`cycle_stats` in wide form: one row per group.

    Returns
    -------
    pandas.DataFrame
        For each outcome ``o`` in (won, lost): ``deals_o``, ``mean_cycle_days_o``,
        ``median_cycle_days_o``, ``p90_cycle_days_o``, ``small_n_o``. E.g.
        ``median_cycle_days_won``.
    """
    long = cycle_stats(data, by=by, filters=filters, period=period, date_field=date_field)
    keys = [by] if isinstance(by, str) else list(by)
    columns = [f"{c}_{o}" for o in OUTCOMES for c in [*_STAT_COLUMNS, "small_n"]]
    rows = []
    for g, sub in iter_groups(long, keys):
        row = dict(zip(keys, g, strict=True))
        for r in sub.to_dict("records"):
            row.update({f"{c}_{r['outcome']}": r[c] for c in [*_STAT_COLUMNS, "small_n"]})
        rows.append(row)
    return frame(rows, [*keys, *columns], NO_DEALS)


# -- cycle quantiles, histogram and open-deal aging ------------------------------------------


def _closed_with_cycle(
    data: SalesData,
    analysis: str,
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
) -> Any:
    """The selected closed deals that have a cycle (won or lost, with a close date)."""
    data.require(analysis, "opportunities", ("close_date",))
    t = select_deals(data, filters, period, date_field=date_field)
    return t.filter(outcomes(t)["closed"] & t.cycle_days.notnull())


def _groups_and_outcomes(agg: pd.DataFrame, keys: list[str]) -> list[tuple]:
    """Every (group..., outcome) pair: both outcomes for each group that has a closed deal."""
    return [(*g, o) for g in group_keys(agg, keys) for o in OUTCOMES]


def cycle_quantiles(
    data: SalesData,
    *,
    by: Sequence[str] | str = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """The 10th, 25th, 50th, 75th and 90th percentiles of the cycle days of won and lost deals.

    The quartiles a box plot needs, next to the median and p90 of :func:`cycle_stats` (the same
    engine quantile, ``quantile_cont`` with linear interpolation, so the same numbers). Closed
    deals only: they describe finished deals, not the pipeline's time to close.

    Returns
    -------
    pandas.DataFrame
        Long form, one row per group and ``outcome`` (``won``, ``lost``; both present for every
        group with a closed deal): ``deals``, ``p10_cycle_days``, ``p25_cycle_days``,
        ``median_cycle_days``, ``p75_cycle_days``, ``p90_cycle_days`` (NaN when ``deals`` is
        0) and ``small_n`` (fewer than 30 deals).

    Examples
    --------
    >>> from salesops_widgets import load  # doctest: +SKIP
    >>> cycle_quantiles(load("data/samples/default"), by="size_band")  # doctest: +SKIP
    """
    keys = check_dimensions(data, by)
    t = _closed_with_cycle(data, "cycle days", filters, period, date_field)
    measures: dict[str, Any] = {"deals": t.count()}
    for q, column in CYCLE_QUANTILES.items():
        measures[column] = median_cycle_days(t) if q == 0.5 else t.cycle_days.quantile(q)
    agg = aggregate(t, [*keys, "status"], measures)
    found = {tuple(r[k] for k in [*keys, "status"]): r for r in agg.to_dict("records")}
    rows = []
    for key in _groups_and_outcomes(agg, keys):
        r = found.get(key, {})
        row = dict(zip([*keys, "outcome"], key, strict=True))
        row["deals"] = int(r.get("deals", 0))
        row.update({c: float(r.get(c, np.nan)) for c in CYCLE_QUANTILES.values()})
        row["small_n"] = row["deals"] < MIN_CLOSED
        rows.append(row)
    columns = [*keys, "outcome", "deals", *CYCLE_QUANTILES.values(), "small_n"]
    return pd.DataFrame(rows, columns=columns)


def _check_bins(bin_days: Any, max_days: Any) -> tuple[int, int]:
    try:
        width, top = int(bin_days), int(max_days)
    except (TypeError, ValueError):
        raise ParameterError(
            f"bin_days={bin_days!r} and max_days={max_days!r} must be whole days, e.g. 30 and 360."
        ) from None
    if width < 1 or top < width:
        raise ParameterError(
            f"bin_days={bin_days!r} must be ≥ 1 and max_days={max_days!r} at least one bin, "
            "e.g. bin_days=30, max_days=360."
        )
    return width, top


def cycle_histogram(
    data: SalesData,
    *,
    by: Sequence[str] | str = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    bin_days: int = 30,
    max_days: int = 360,
) -> pd.DataFrame:
    """Won and lost deals counted by cycle days in bins of ``bin_days``: a histogram, pre-binned.

    Bin i holds the cycles from i × bin_days to (i + 1) × bin_days − 1 days; the last bin holds
    every cycle of ``max_days`` or more (rounded down to a whole bin), so a long tail does not
    stretch the axis.

    Returns
    -------
    pandas.DataFrame
        One row per group, ``outcome`` and bin, every bin present (0 when empty): ``band_low``,
        ``band_high`` (the bin's days, ``band_high`` exclusive; the last bin's is its start +
        bin_days), ``band`` (e.g. "30–59 days", "360+ days"), ``deals`` and ``share`` (of the
        group's deals of that outcome; NaN when it has none).
    """
    width, top = _check_bins(bin_days, max_days)
    keys = check_dimensions(data, by)
    t = _closed_with_cycle(data, "cycle days", filters, period, date_field)
    last = top // width
    binned = t.mutate(_bin=(t.cycle_days // width).clip(lower=0, upper=last).cast("int64"))
    agg = aggregate(binned, [*keys, "status", "_bin"], {"deals": binned.count()})
    counts = {
        tuple(r[k] for k in [*keys, "status", "_bin"]): r["deals"] for r in agg.to_dict("records")
    }
    rows = []
    for key in _groups_and_outcomes(agg, keys):
        n = [int(counts.get((*key, b), 0)) for b in range(last + 1)]
        total = sum(n)
        for b, deals in enumerate(n):
            low = b * width
            band = f"{low}+ days" if b == last else f"{low}–{low + width - 1} days"
            row = dict(zip([*keys, "outcome"], key, strict=True))
            share = deals / total if total else np.nan
            row.update(band_low=low, band_high=low + width, band=band, deals=deals, share=share)
            rows.append(row)
    columns = [*keys, "outcome", "band_low", "band_high", "band", "deals", "share"]
    return pd.DataFrame(rows, columns=columns)


def _age_bands(edges: Sequence[int]) -> list[tuple[int, float, str]]:
    """(low, high, label) of each age band: [0, e1], (e1, e2], ..., (e_last, inf)."""
    bounds = [int(e) for e in edges]
    if not bounds or bounds != sorted(set(bounds)) or bounds[0] < 1:
        raise ParameterError(
            f"edges={tuple(edges)!r} must be increasing whole days ≥ 1, e.g. (30, 90, 180, 365)."
        )
    bands = [(0, bounds[0], f"0–{bounds[0]} days")]
    bands += [(a + 1, b, f"{a + 1}–{b} days") for a, b in zip(bounds, bounds[1:], strict=False)]
    return [*bands, (bounds[-1] + 1, np.inf, f"over {bounds[-1]} days")]


def open_deal_aging(
    data: SalesData,
    *,
    by: Sequence[str] | str = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    edges: Sequence[int] = AGE_EDGES,
) -> pd.DataFrame:
    """Open deals by age (as-of date − created date) in bands: how old the pipeline is.

    Needs only opportunities (no stage history). The bands are 0–e₁ days, e₁+1–e₂ days, …, and
    over the last edge.

    Returns
    -------
    pandas.DataFrame
        One row per group and band, every band present: ``age_band`` (label, in order),
        ``band_low``, ``band_high`` (inclusive; inf for the last), ``deals``, ``amount`` (Σ of
        their amounts), ``share`` (of the group's open deals) and ``amount_share``. Empty with
        ``attrs["note"]`` when no open deal matches.
    """
    bands = _age_bands(edges)
    keys = check_dimensions(data, by)
    t = select_deals(data, filters, period, date_field=date_field)
    t = t.filter(outcomes(t)["open"] & t.age_days.notnull())
    cuts = [int(b[1]) for b in bands[:-1]]
    band = ibis.literal(0, type="int64")
    for cut in cuts:  # the band's index: how many edges the age is over
        band = band + (t.age_days > cut).cast("int32")
    t = t.mutate(_band=band)
    agg = aggregate(t, [*keys, "_band"], {"deals": t.count(), "amount": t.amount.sum()})
    columns = [*keys, "age_band", "band_low", "band_high", "deals", "amount", "share"]
    columns.append("amount_share")
    if agg.empty:
        out = pd.DataFrame(columns=columns)
        out.attrs["note"] = "no open deal matches the filters"
        return out
    found = {tuple(r[k] for k in [*keys, "_band"]): r for r in agg.to_dict("records")}
    rows = []
    for g in group_keys(agg, keys):
        cells = [found.get((*g, i), {}) for i in range(len(bands))]
        deals = [int(c.get("deals", 0)) for c in cells]
        amounts = [float(c.get("amount") or 0.0) for c in cells]
        n, total = sum(deals), sum(amounts)
        for (low, high, label), d, a in zip(bands, deals, amounts, strict=True):
            row = dict(zip(keys, g, strict=True))
            row.update(age_band=label, band_low=low, band_high=high, deals=d, amount=a)
            row.update(share=d / n if n else np.nan, amount_share=a / total if total else np.nan)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)
