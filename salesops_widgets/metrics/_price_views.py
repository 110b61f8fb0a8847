"""Pricing views on opportunities alone (list_amount, no line items needed): discount vs deal
size with a percentile corridor, its outliers and the deals of one heatmap cell; pricing
guidance per segment; price realization over time; deals lost on price against the discount
quoted; and the tests of "does discount buy wins?".

Definitions in docs/metrics.md ("Pricing"). Every figure is aggregated in the engine; only
aggregated rows, or a capped top-N list of deals, come back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ._codes import band_index
from ._deals import DISCOUNT_BANDS, check_dimensions, outcomes, priced, select_deals
from ._measures import aggregate, aggregates, portfolio_discount, price_realization
from ._pricing import check_corridor
from ._significance import Significance, chi_square_test, two_proportion_test
from ._stats import MIN_CLOSED, small_n, wilson_interval

__all__ = [
    "DEAL_SIZE_EDGES",
    "discount_band_tests",
    "discount_cell_deals",
    "discount_outliers",
    "discount_vs_size",
    "lost_on_price",
    "pricing_guidance",
    "realization_over_time",
]

# deal size bands on list_amount (base currency); the last is open-ended
DEAL_SIZE_EDGES = (0, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000)
_STATUS = ("won", "closed", "all")


def _priced(
    data: SalesData,
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    status: str,
    analysis: str,
) -> ibis.Table:
    """Selected deals of ``status`` with list_amount > 0 (the deals a discount exists for)."""
    data.require(analysis, "opportunities", ["list_amount"])
    if status not in _STATUS:
        raise ParameterError(f"status={status!r} must be one of {', '.join(_STATUS)}.")
    t = select_deals(data, filters, period, date_field=date_field)
    if status != "all":
        t = t.filter(outcomes(t)[status])
    return t.filter(priced(t))


def _size_labels(edges: Sequence[float]) -> list[str]:
    def money(v: float) -> str:
        return f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k" if v >= 1e3 else f"{v:g}"

    labels = [f"{money(a)}–{money(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f"{money(edges[-1])}+"]


def _size_index(list_amount: ibis.Value, edges: Sequence[float]) -> ibis.Value:
    cases = [
        ((list_amount >= lo) & (list_amount < hi), i)
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]
    cases.append((list_amount >= edges[-1], len(edges) - 1))
    return ibis.cases(*cases, else_=ibis.null("int64"))


def _check_edges(edges: Sequence[float], name: str) -> list[float]:
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(a >= b for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ParameterError(f"{name}={edges!r} must be at least two increasing edges.")
    return edges


def _check_step(discount_step: float) -> None:
    if not 0 < float(discount_step) <= 0.5:
        raise ParameterError(f"discount_step={discount_step!r} must be in (0, 0.5], e.g. 0.05.")


def _discount_bin(discount: ibis.Value, step: float) -> ibis.Value:
    """The ``step``-wide discount bin from 0 holding each deal's discount (bin k: [k·step,
    (k+1)·step)); a negative discount is a bin below 0."""
    # rounded first: 0.3 / 0.1 is 2.9999999999999996 in floating point, which is bin 3
    return (discount / step).round(9).floor().cast("int64")


def _corridor(t: ibis.Table, corridor: tuple[float, float]) -> pd.DataFrame:
    """Per size band: deals, the corridor percentiles of the per-deal discount, the median."""
    low, high = corridor
    d = t.discount
    agg = t.group_by("_size").aggregate(
        deals=t.count(),
        corridor_low=d.quantile(low),
        median_discount=d.median(),
        corridor_high=d.quantile(high),
    )
    return agg.order_by("_size").execute()


def _sized_with_corridor(
    data: SalesData,
    selection: tuple[Mapping[str, Any] | None, tuple[Any, Any] | None, str, str],
    edges: list[float],
    corridor: tuple[float, float],
    analysis: str,
) -> tuple[ibis.Table, pd.DataFrame, ibis.Table]:
    """(priced deals with their size band ``_size``, the corridor per band, the deals joined to
    their band's ``corridor_high``)."""
    t = _priced(data, *selection, analysis)
    t = t.mutate(_size=_size_index(t.list_amount, edges))
    t = t.filter(t._size.notnull())
    band = _corridor(t, corridor)
    highs = ibis.memtable(band[["_size", "corridor_high"]].rename(columns={"_size": "_s"}))
    return t, band, t.inner_join(highs, t._size == highs._s)


def discount_vs_size(
    data: SalesData,
    *,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
    size_edges: Sequence[float] = DEAL_SIZE_EDGES,
    discount_step: float = 0.05,
    corridor: tuple[float, float] = (0.25, 0.75),
) -> pd.DataFrame:
    """Deals counted per (deal size band, discount bin): the heatmap of discount vs deal size.

    Size bands are on ``list_amount`` (``size_edges``, the last open-ended); discount bins are
    ``discount_step`` wide from 0 (net above list, a negative discount, is its own bin below 0).
    Never returns raw deals, so it works on any number of rows.

    Returns
    -------
    pandas.DataFrame
        ``deal_size`` (label), ``size_index``, ``discount_low``, ``discount_high``, ``deals``,
        ``list_amount``. ``attrs["corridor"]`` holds, per size band, ``deals``,
        ``corridor_low``, ``median_discount``, ``corridor_high`` (the ``corridor`` percentiles
        of per-deal discount) and ``outliers`` (deals above corridor_high).
    """
    edges = _check_edges(size_edges, "size_edges")
    corridor = check_corridor(corridor)
    _check_step(discount_step)
    selection = (filters, period, date_field, status)
    t, band, over = _sized_with_corridor(data, selection, edges, corridor, "Discount vs deal size")
    t = t.mutate(_bin=_discount_bin(t.discount, discount_step))
    cells = t.group_by(["_size", "_bin"]).aggregate(
        deals=t.count(), list_amount=t.list_amount.sum()
    )
    cells = cells.order_by(["_size", "_bin"]).execute()
    labels = _size_labels(edges)
    out = pd.DataFrame(
        {
            "deal_size": [labels[i] for i in cells["_size"]],
            "size_index": cells["_size"].astype(int),
            "discount_low": cells["_bin"].astype(float) * discount_step,
            "discount_high": (cells["_bin"].astype(float) + 1) * discount_step,
            "deals": cells["deals"].astype(int),
            "list_amount": cells["list_amount"].astype(float),
        }
    )
    counted = over.group_by("_size").aggregate(
        outliers=over.count(where=over.discount > over.corridor_high)
    )
    band = band.merge(counted.execute(), on="_size", how="left").fillna({"outliers": 0})
    band.insert(0, "deal_size", [labels[i] for i in band["_size"]])
    out.attrs["corridor"] = band.rename(columns={"_size": "size_index"})
    return out


def discount_outliers(
    data: SalesData,
    *,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
    size_edges: Sequence[float] = DEAL_SIZE_EDGES,
    corridor: tuple[float, float] = (0.25, 0.75),
    top_n: int | None = 50,
) -> pd.DataFrame:
    """Deals discounted above their size band's corridor, most money over the corridor first.

    ``excess`` = (discount − corridor_high) × list_amount: the money given beyond the corridor.
    The corridor is that of :func:`discount_vs_size` on the same selection.
    """
    edges = _check_edges(size_edges, "size_edges")
    corridor = check_corridor(corridor)
    selection = (filters, period, date_field, status)
    _, _, j = _sized_with_corridor(data, selection, edges, corridor, "Discount outliers")
    j = j.filter(j.discount > j.corridor_high)
    j = j.mutate(excess=(j.discount - j.corridor_high) * j.list_amount)
    cols = [c for c in ("opportunity_id", "opportunity_name", "account", "owner") if c in j.columns]
    cols += ["amount", "list_amount", "discount", "corridor_high", "excess", "_size"]
    j = j.select(*cols).order_by([ibis.desc("excess"), "opportunity_id"])
    out = (j.limit(top_n) if top_n else j).execute()
    out.insert(len(cols) - 1, "deal_size", [_size_labels(edges)[i] for i in out["_size"]])
    return out.drop(columns="_size")


def pricing_guidance(
    data: SalesData,
    *,
    by: Sequence[str] = ("size_band",),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    floor: float = 0.25,
    target: float = 0.5,
    stretch: float = 0.75,
    min_deals: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Floor, target and stretch price (as % of list) per segment, from the won deals.

    The ``floor``/``target``/``stretch`` percentiles of price realization (amount /
    list_amount) of the won deals with a list price: a floor at p25 means a quarter of the
    segment's wins closed below it. ``max_discount`` = 1 − floor_pct_of_list.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``won_deals``, ``floor_pct_of_list``, ``target_pct_of_list``,
        ``stretch_pct_of_list``, ``max_discount``, ``target_discount``, ``small_n`` (fewer
        than ``min_deals`` wins: too few to set a guideline on).
    """
    if not 0 <= floor <= target <= stretch <= 1:
        raise ParameterError(
            "floor <= target <= stretch must be percentiles between 0 and 1, e.g. 0.25, 0.5, 0.75."
        )
    by = check_dimensions(data, by)
    t = _priced(data, filters, period, date_field, "won", "Pricing guidance")
    r = t.amount / t.list_amount
    metrics = {
        "won_deals": t.count(),
        "floor_pct_of_list": r.quantile(floor),
        "target_pct_of_list": r.quantile(target),
        "stretch_pct_of_list": r.quantile(stretch),
    }
    out = aggregate(t, by, metrics)
    out["max_discount"] = 1 - out["floor_pct_of_list"]
    out["target_discount"] = 1 - out["target_pct_of_list"]
    out["small_n"] = small_n(out["won_deals"].fillna(0), minimum=min_deals)
    return out


_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}


def realization_over_time(
    data: SalesData,
    *,
    freq: str = "quarter",
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Price realization Σ net / Σ list of won deals per close month, quarter or year.

    Returns
    -------
    pandas.DataFrame
        ``period`` (the first day of the period), the ``by`` columns, ``won_deals``,
        ``net_priced``, ``list_priced``, ``price_realization``, ``portfolio_discount``.
    """
    if freq not in _FREQ:
        raise ParameterError(f"freq={freq!r} must be one of {', '.join(_FREQ)}.")
    by = check_dimensions(data, by)
    t = _priced(data, filters, None, "created_date", "won", "Price realization over time")
    if "closed_date" not in t.columns:
        raise MissingDataError(
            "price realization over time needs close_date on opportunities; map "
            "tables.opportunities.columns.close_date."
        )
    t = t.mutate(period=t.closed_date.truncate(_FREQ[freq]))
    sums = aggregates(t, "won", "net_priced", "list_priced")
    out = aggregate(t, ["period", *by], sums).rename(columns={"won": "won_deals"})
    out["price_realization"] = price_realization(out["net_priced"], out["list_priced"])
    out["portfolio_discount"] = portfolio_discount(out["net_priced"], out["list_priced"])
    return out


def lost_on_price(
    data: SalesData,
    *,
    reason: str = "price",
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    bands: Sequence[float] = DISCOUNT_BANDS,
) -> pd.DataFrame:
    """Closed deals per band of the discount quoted: how many were lost for the price.

    A deal is lost on price when it is lost and its ``loss_reason`` contains ``reason``
    (case-insensitive). If price were why deals are lost, the share would fall as the discount
    quoted rises.

    Returns
    -------
    pandas.DataFrame
        ``band``, ``band_low``, ``band_high``, ``closed``, ``lost``, ``lost_on_price``,
        ``share_lost_on_price`` (of closed deals) with its Wilson interval
        ``share_low``/``share_high``, and ``price_share_of_losses`` (lost_on_price / lost).
    """
    data.require("Lost on price", "opportunities", ["loss_reason", "list_amount"])
    bands = _check_edges(bands, "bands")
    t = select_deals(data, filters, period, date_field=date_field)
    t = t.filter(outcomes(t)["closed"] & priced(t))
    t = t.mutate(_band=band_index(t.discount, bands))
    t = t.filter(t._band.notnull())
    is_ = outcomes(t)
    on_price = is_["lost"] & t.loss_reason.lower().contains(reason.lower()).fill_null(False)
    raw = aggregate(
        t,
        ["_band"],
        {"closed": t.count(), "lost": t.count(where=is_["lost"]), "p": t.count(where=on_price)},
    )
    full = pd.DataFrame({"_band": range(len(bands) - 1)}).merge(raw, on="_band", how="left")
    full = full.fillna(0)
    lo, hi = np.asarray(bands[:-1]), np.asarray(bands[1:])
    closed, lost, p = (full[c].astype(int) for c in ("closed", "lost", "p"))
    low, high = wilson_interval(p, closed)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "band": [f"{a * 100:g}-{b * 100:g}%" for a, b in zip(lo, hi, strict=True)],
                "band_low": lo,
                "band_high": hi,
                "closed": closed,
                "lost": lost,
                "lost_on_price": p,
                "share_lost_on_price": np.where(closed > 0, p / closed, np.nan),
                "share_low": low,
                "share_high": high,
                "price_share_of_losses": np.where(lost > 0, p / lost, np.nan),
            }
        )


# ------------------------------------------------------------------------------------------
# Does discount buy wins?


_TEST_COLUMNS = (
    "comparison",
    "test",
    "statistic",
    "df",
    "p_value",
    "effect",
    "effect_size",
    "effect_low",
    "effect_high",
    "n",
    "reason",
)


# ------------------------------------------------------------------------------------------
# Does discount buy wins?


def _test_row(comparison: str, result: Significance) -> dict[str, Any]:
    row = result.to_frame().iloc[0].to_dict()
    return {"comparison": comparison, **{c: row[c] for c in _TEST_COLUMNS[1:]}}


def discount_band_tests(bands: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Is win rate the same in every discount band, and does the deepest band win more?

    Takes the frame of :func:`discount_bands` (one group: its ``band``, ``won``, ``lost`` and
    ``closed`` columns, bands in increasing order) and tests it from the counts:

    1. Pearson's chi-square test of independence on the bands × (won, lost) table (bands
       without a closed deal are left out), with Cramér's V;
    2. the two-proportion z test of the deepest band with a closed deal against the next
       shallower band with one, with the risk difference (deepest − next) and its Newcombe
       interval.

    Returns
    -------
    pandas.DataFrame
        Two rows: ``comparison`` (in words), ``test``, ``statistic``, ``df``, ``p_value``,
        ``effect``, ``effect_size``, ``effect_low``, ``effect_high``, ``n`` (closed deals
        tested), ``reason`` (why a test could not run, else None).

    Examples
    --------
    >>> bands = pd.DataFrame({"band": ["0-10%", "10-100%"], "won": [30, 20],
    ...                       "lost": [20, 30], "closed": [50, 50]})
    >>> t = discount_band_tests(bands)
    >>> round(float(t.statistic[0]), 4), round(float(t.effect_size[1]), 2)
    (4.0, -0.2)
    """
    missing = [c for c in ("band", "won", "lost", "closed") if c not in bands.columns]
    if missing:
        raise ParameterError(
            "discount_band_tests needs the frame of discount_bands "
            f"(missing: {', '.join(missing)})."
        )
    counts = bands[["won", "lost", "closed"]].fillna(0).astype("int64")
    across = chi_square_test(counts[["won", "lost"]].to_numpy())
    rows = [_test_row("win rate across all discount bands", across)]
    tested = np.flatnonzero(counts["closed"].to_numpy() > 0)
    if len(tested) < 2:
        none = Significance(
            test="two-proportion z",
            effect="risk difference",
            n=int(counts["closed"].sum()),
            reason="fewer than two discount bands with closed deals",
        )
        rows.append(_test_row("deepest discount band against the next", none))
    else:
        deep, nxt = tested[-1], tested[-2]
        result = two_proportion_test(
            counts["won"].iloc[deep],
            counts["closed"].iloc[deep],
            counts["won"].iloc[nxt],
            counts["closed"].iloc[nxt],
            confidence=confidence,
        )
        label = f"deepest band {bands['band'].iloc[deep]} against {bands['band'].iloc[nxt]}"
        rows.append(_test_row(label, result))
    return pd.DataFrame(rows, columns=list(_TEST_COLUMNS))


# ------------------------------------------------------------------------------------------
# The deals of one heatmap cell


def discount_cell_deals(
    data: SalesData,
    *,
    size_index: int,
    discount_low: float,
    size_edges: Sequence[float] = DEAL_SIZE_EDGES,
    discount_step: float = 0.05,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
    top_n: int = 50,
) -> pd.DataFrame:
    """The deals of one cell of :func:`discount_vs_size`: the drill-down of a heatmap click.

    The cell is the deal size band ``size_index`` (of ``size_edges``, on list_amount) and the
    discount bin starting at ``discount_low`` (``discount_step`` wide, binned exactly as
    :func:`discount_vs_size` bins). The most money given away first: ``discount_given`` =
    list_amount − amount.

    Returns
    -------
    pandas.DataFrame
        At most ``top_n`` deals: ``opportunity_id``, ``opportunity_name``, ``account``,
        ``owner`` (those the data has), ``amount``, ``list_amount``, ``discount``,
        ``discount_given``, ``deal_size``.
    """
    edges = _check_edges(size_edges, "size_edges")
    if not 0 <= int(size_index) < len(edges):
        raise ParameterError(
            f"size_index={size_index!r} must be a band of size_edges: 0 to {len(edges) - 1}."
        )
    _check_step(discount_step)
    if int(top_n) < 1:
        raise ParameterError(f"top_n={top_n!r} must be 1 or more.")
    t = _priced(data, filters, period, date_field, status, "The deals of a heatmap cell")
    t = t.mutate(
        _size=_size_index(t.list_amount, edges),
        _bin=_discount_bin(t.discount, discount_step),
    )
    wanted = int(round(float(discount_low) / discount_step))
    t = t.filter((t._size == int(size_index)) & (t._bin == wanted))
    t = t.mutate(discount_given=t.list_amount - t.amount)
    cols = [c for c in ("opportunity_id", "opportunity_name", "account", "owner") if c in t.columns]
    cols += ["amount", "list_amount", "discount", "discount_given"]
    out = t.select(*cols).order_by([ibis.desc("discount_given"), "opportunity_id"])
    out = out.limit(int(top_n)).execute()
    out["deal_size"] = _size_labels(edges)[int(size_index)]
    return out
