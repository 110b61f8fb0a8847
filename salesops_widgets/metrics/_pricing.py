"""Pricing KPIs: discounts weighted by dollars, the pocket price waterfall, band and leakage,
and win rate by discount band.

Documented one by one in docs/metrics.md (section "Pricing"). Line items are joined to the
selected deals and summed in the engine; percentiles are engine quantiles (or, weighted by
volume, a cumulative window); only one row per group (or per element, or per band) comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._codes import band_index
from ._deals import (
    DISCOUNT_BANDS,
    check_dimensions,
    deals,
    dimension_labels,
    outcomes,
    priced,
    select_coded_deals,
    selection_key,
    won_duration,
)
from ._engine import run_query
from ._measures import (
    MEDIAN_WON,
    OUTCOME_COLUMNS,
    aggregate,
    aggregates,
    combine,
    outcome_sums_query,
    portfolio_discount,
    price_realization,
    ratio,
    win_rate_columns,
)
from ._stats import MIN_CLOSED

__all__ = [
    "DISCOUNT_BANDS",
    "check_corridor",
    "deal_discounts",
    "discount_bands",
    "leakage",
    "pocket_price_band",
    "pocket_price_spread",
    "price_corridor",
    "price_waterfall",
]

# Off-invoice elements per unit, in waterfall order (canonical line_items columns).
OFF_INVOICE = ("rebate", "freight", "payment_terms_cost")
_STATUSES = ("all", "won", "closed", "open", "lost")


def _deals(
    data: SalesData,
    dims: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    status: str,
) -> ibis.Table:
    """The selected deals of one status ("all", "won", "closed", "open", "lost")."""
    check_dimensions(data, dims)
    t = select_coded_deals(data, filters, period, date_field=date_field)
    keep = {"all": None, **outcomes(t)}
    if status not in keep:
        raise ParameterError(f"status={status!r} must be one of {', '.join(_STATUSES)}.")
    return t if keep[status] is None else t.filter(keep[status])


# ------------------------------------------------------------------------------------------
# Deal-level discounts


def deal_discounts(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
) -> pd.DataFrame:
    """Discounts per group, weighted by dollars, with the per-deal distribution for contrast.

    Only deals with a list price and an amount above 0 count (``_deals.priced``: a lost deal at
    $0 was not discounted to nothing; the others are in the data-quality report's
    populations). ``status`` picks the deals: "won" (default: the price realized), "closed",
    "open", "lost" or "all" (the discount quoted on every deal).

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``deals_with_list``, ``list_amount``, ``net_amount``,
        ``portfolio_discount`` (1 − Σnet/Σlist), ``price_realization`` (Σnet/Σlist),
        ``mean_deal_discount``, ``median_deal_discount``, ``discount_p25``, ``discount_p75``.

    Examples
    --------
    >>> import pandas as pd
    >>> from salesops_widgets import load
    >>> opps = pd.DataFrame({
    ...     "opportunity_id": ["a", "b"], "stage": ["Closed Won", "Closed Won"],
    ...     "created_date": pd.to_datetime(["2025-01-02"] * 2),
    ...     "amount": [90.0, 500.0], "list_amount": [100.0, 1000.0]})
    >>> d = deal_discounts(load({"opportunities": opps}))
    >>> round(float(d.portfolio_discount[0]), 4), round(float(d.mean_deal_discount[0]), 4)
    (0.4636, 0.3)
    """
    data.require("deal discounts", "opportunities", ["list_amount"])
    by = check_dimensions(data, by)
    t = _deals(data, by, filters, period, date_field, status)
    t = t.filter(priced(t))
    d = t.discount
    m = aggregates(t, "opportunities", "list_priced", "net_priced")
    raw = aggregate(
        t,
        by,
        {
            "deals_with_list": m["opportunities"],
            "list_amount": m["list_priced"],
            "net_amount": m["net_priced"],
            "mean_deal_discount": d.mean(),
            "median_deal_discount": d.median(),
            "discount_p25": d.quantile(0.25),
            "discount_p75": d.quantile(0.75),
        },
        labels=dimension_labels(data),
    )
    raw["deals_with_list"] = raw["deals_with_list"].fillna(0).astype("int64")
    raw[["list_amount", "net_amount"]] = raw[["list_amount", "net_amount"]].astype(float).fillna(0)
    net, list_ = raw["net_amount"], raw["list_amount"]
    raw.insert(len(by) + 3, "portfolio_discount", portfolio_discount(net, list_))
    raw.insert(len(by) + 4, "price_realization", price_realization(net, list_))
    return raw


# ------------------------------------------------------------------------------------------
# Line items: the pocket price waterfall


def _line_items(
    data: SalesData, deals: ibis.Table, dims: Sequence[str], analysis: str
) -> ibis.Table:
    """Line items (list price > 0) of the given deals, with the deal's dimensions.

    Per line: ``quantity``, money per unit ``list_price``, ``invoice_price``, the off-invoice
    elements present (missing values as 0), ``pocket_price`` and ``pocket_pct`` (of list).
    """
    li = data.require(analysis, "line_items", ["quantity", "list_price", "invoice_price"])
    off = [c for c in OFF_INVOICE if c in li.columns]
    li = li.filter(li.list_price > 0)
    li = li.select(
        _oid=li.opportunity_id,
        quantity=li.quantity,
        list_price=li.list_price,
        invoice_price=li.invoice_price,
        **{c: li[c].fill_null(0) for c in off},
    )
    d = deals.select("opportunity_id", *dims)
    j = li.join(d, li._oid == d.opportunity_id).drop("_oid", "opportunity_id")
    pocket = j.invoice_price
    for c in off:
        pocket = pocket - j[c]
    return j.mutate(pocket_price=pocket, pocket_pct=pocket / j.list_price)


def _element_sums(lines: ibis.Table, by: Sequence[str]) -> pd.DataFrame:
    """Σ money per unit × quantity per group: list, invoice, each off-invoice element, pocket."""
    q = lines.quantity
    sums = {
        "lines": lines.count(),
        "list": (lines.list_price * q).sum(),
        "invoice": (lines.invoice_price * q).sum(),
    }
    sums.update({c: (lines[c] * q).sum() for c in OFF_INVOICE if c in lines.columns})
    raw = aggregate(lines, by, sums)
    raw = raw[raw["lines"] > 0].reset_index(drop=True)
    money = [c for c in sums if c != "lines"]
    raw[money] = raw[money].astype(float).fillna(0.0)
    raw["on_invoice_discount"] = raw["list"] - raw["invoice"]
    raw["pocket"] = raw["invoice"] - raw[[c for c in OFF_INVOICE if c in raw]].sum(axis=1)
    return raw


def _opportunity_sums(deals: ibis.Table, by: Sequence[str]) -> pd.DataFrame:
    """The same sums from opportunities (list_amount vs amount), when there are no line items."""
    t = deals.filter(priced(deals))
    m = aggregates(t, "opportunities", "list_priced", "net_priced")
    raw = aggregate(
        t, by, {"lines": m["opportunities"], "list": m["list_priced"], "invoice": m["net_priced"]}
    )
    raw = raw[raw["lines"] > 0].reset_index(drop=True)
    raw[["list", "invoice"]] = raw[["list", "invoice"]].astype(float)
    raw["on_invoice_discount"] = raw["list"] - raw["invoice"]
    return raw


def price_waterfall(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
) -> pd.DataFrame:
    """The pocket price waterfall: list → on-invoice discount → invoice → off-invoice → pocket.

    Money per unit × quantity, summed over the line items (list price > 0) of the selected deals
    (``status``: "won" by default, the invoiced deals). Deductions are positive amounts, and
    list − Σ deductions = pocket.

    Returns
    -------
    pandas.DataFrame
        Long format: the ``by`` columns, ``element`` (list, on_invoice_discount, invoice,
        rebate, freight, payment_terms_cost, pocket), ``kind`` ("price" for list/invoice/pocket,
        "deduction" for the others), ``amount``, ``share_of_list`` (amount / list) and
        ``basis``: "line_items" (full waterfall), "line_items_invoice" (line items without
        off-invoice columns: list to invoice only) or "opportunities" (no line_items table:
        list_amount to amount, deals with list_amount > 0).
    """
    by = check_dimensions(data, by)
    deals = _deals(data, by, filters, period, date_field, status)
    if data.has("line_items"):
        wide = _element_sums(_line_items(data, deals, by, "The price waterfall"), by)
        has_off = any(c in wide for c in OFF_INVOICE)
        basis = "line_items" if has_off else "line_items_invoice"
    else:
        data.require("The price waterfall (without line_items)", "opportunities", ["list_amount"])
        wide, basis = _opportunity_sums(deals, by), "opportunities"
    return _long_waterfall(wide, by, basis)


def _long_waterfall(wide: pd.DataFrame, by: list[str], basis: str) -> pd.DataFrame:
    """One row per group and element, in waterfall order."""
    columns = [*by, "element", "kind", "amount", "share_of_list", "basis"]
    if wide.empty:  # nothing selected
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    elements = ["list", "on_invoice_discount", "invoice"]
    if basis == "line_items":
        elements += [c for c in OFF_INVOICE if c in wide] + ["pocket"]
    long = wide.melt(id_vars=by, value_vars=elements, var_name="element", value_name="amount")
    long["element"] = pd.Categorical(long["element"], categories=elements, ordered=True)
    long = long.merge(wide[[*by, "list"]], on=by) if by else long.assign(list=wide["list"].iloc[0])
    long["share_of_list"] = ratio(long["amount"], long["list"])
    prices = long["element"].isin(["list", "invoice", "pocket"])
    long["kind"] = np.where(prices, "price", "deduction")
    long["basis"] = basis
    long = long.sort_values([*by, "element"]).reset_index(drop=True)
    long["element"] = long["element"].astype(str)
    return long[columns]


# ------------------------------------------------------------------------------------------
# Pocket price band and spread


def _band_labels(low: Any, high: Any) -> list[str]:
    """Labels such as "85-90%" for bands [low, high) given as shares."""
    # + 0.0 turns -0.0 into 0.0
    return [f"{a * 100 + 0.0:g}-{b * 100 + 0.0:g}%" for a, b in zip(low, high, strict=True)]


def _pocket_lines(
    data: SalesData,
    dims: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    status: str,
    analysis: str,
) -> ibis.Table:
    deals = _deals(data, dims, filters, period, date_field, status)
    return _line_items(data, deals, dims, analysis)


def pocket_price_band(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
    bin_width: float = 0.05,
) -> pd.DataFrame:
    """How volume and revenue spread over pocket price as a share of list price.

    Each line item (list price > 0) of the selected deals falls in the bin
    [low, low + bin_width) of its pocket price / list price. Bins without a line are left out.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``band`` (e.g. "85-90%"), ``band_low``, ``band_high``, ``lines``,
        ``volume`` (Σ quantity), ``revenue`` (Σ invoice price × quantity), ``volume_share`` and
        ``revenue_share`` (of the group's total).
    """
    if not 0 < bin_width <= 1:
        raise ParameterError(
            f"bin_width={bin_width!r} must be above 0 and at most 1 (0.05 = 5 points)."
        )
    by = check_dimensions(data, by)
    lines = _pocket_lines(data, by, filters, period, date_field, status, "The pocket price band")
    # a tiny epsilon so that e.g. 0.85 / 0.05 = 16.999999... still falls in the 85% bin
    lines = lines.mutate(_bin=(lines.pocket_pct / bin_width + 1e-9).floor().cast("int64"))
    raw = aggregate(
        lines,
        [*by, "_bin"],
        {
            "lines": lines.count(),
            "volume": lines.quantity.sum(),
            "revenue": (lines.invoice_price * lines.quantity).sum(),
        },
    )
    low = raw["_bin"].astype(float) * bin_width
    raw.insert(len(by), "band_low", low.round(10))
    raw.insert(len(by) + 1, "band_high", (low + bin_width).round(10))
    raw.insert(len(by), "band", _band_labels(raw.band_low, raw.band_high))
    for col in ("volume", "revenue"):
        total = raw.groupby(by)[col].transform("sum") if by else raw[col].sum()
        raw[f"{col}_share"] = ratio(raw[col], total)
    return raw.drop(columns="_bin")


def pocket_price_spread(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
) -> pd.DataFrame:
    """Summary of the pocket price band: volume-weighted percentiles of pocket price / list.

    The volume-weighted p-th percentile is the smallest pocket % of list at which the
    cumulative quantity (lines in increasing pocket %) reaches p × the group's quantity.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``lines``, ``volume``, ``revenue``, ``pocket_realization``
        (Σ pocket × qty / Σ list × qty), ``pocket_p10``, ``pocket_p50``, ``pocket_p90`` and
        ``pocket_spread`` (p90 − p10). NaN percentiles where the volume is 0.
    """
    by = check_dimensions(data, by)
    lines = _pocket_lines(data, by, filters, period, date_field, status, "The pocket price spread")
    cum = ibis.window(group_by=list(by), order_by=[lines.pocket_pct], rows=(None, 0))
    lines = lines.mutate(
        _cum=lines.quantity.sum().over(cum),
        _total=lines.quantity.sum().over(ibis.window(group_by=list(by))),
    )
    q = {
        f"pocket_p{p}": lines.pocket_pct.min(where=lines._cum >= p / 100 * lines._total)
        for p in (10, 50, 90)
    }
    raw = aggregate(
        lines,
        by,
        {
            "lines": lines.count(),
            "volume": lines.quantity.sum(),
            "revenue": (lines.invoice_price * lines.quantity).sum(),
            "_list": (lines.list_price * lines.quantity).sum(),
            "_pocket": (lines.pocket_price * lines.quantity).sum(),
            **q,
        },
    )
    raw["lines"] = raw["lines"].fillna(0).astype("int64")
    raw[["volume", "revenue"]] = raw[["volume", "revenue"]].astype(float).fillna(0.0)
    realization = price_realization(raw.pop("_pocket"), raw.pop("_list"))
    raw.insert(len(by) + 3, "pocket_realization", realization)
    raw.loc[~(raw["volume"].astype(float) > 0), list(q)] = np.nan
    raw["pocket_spread"] = raw["pocket_p90"].astype(float) - raw["pocket_p10"].astype(float)
    return raw


# ------------------------------------------------------------------------------------------
# Price corridor and leakage


def check_corridor(corridor: Sequence[float]) -> tuple[float, float]:
    """A guideline corridor (low, high) of percentiles, as floats: 0 <= low < high <= 1.

    The one check for every view that takes a corridor (price corridor, leakage, discount vs
    deal size and its outliers); a ParameterError that says what to write otherwise.
    """
    try:
        low, high = (float(c) for c in corridor)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not 0 <= low < high <= 1:
        raise ParameterError(
            f"corridor={corridor!r} must be two percentiles 0 <= low < high <= 1, "
            "e.g. (0.25, 0.75)."
        )
    return low, high


def _corridor_table(
    data: SalesData,
    corridor_by: Sequence[str],
    corridor: tuple[float, float],
    period: tuple[Any, Any] | None,
    date_field: str,
    status: str,
) -> ibis.Table:
    """Floor/median/ceiling of pocket % of list per corridor group (no dimension filters)."""
    lines = _pocket_lines(data, corridor_by, None, period, date_field, status, "The price corridor")
    p = lines.pocket_pct
    metrics = {
        "corridor_lines": lines.count(),
        "corridor_floor": p.quantile(corridor[0]),
        "corridor_median": p.median(),
        "corridor_ceiling": p.quantile(corridor[1]),
    }
    if corridor_by:
        return lines.group_by(list(corridor_by)).aggregate(**metrics)
    return lines.aggregate(**metrics)


def price_corridor(
    data: SalesData,
    *,
    corridor_by: Sequence[str] = ("size_band",),
    corridor: tuple[float, float] = (0.25, 0.75),
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
) -> pd.DataFrame:
    """The guideline corridor of pocket price / list price per ``corridor_by`` group.

    Floor and ceiling are the ``corridor`` percentiles (linear interpolation, unweighted over
    line items with list price > 0) of the deals of ``status`` in the period, with no dimension
    filter, so that filtering to one rep or region never moves the guideline.

    Returns
    -------
    pandas.DataFrame
        The ``corridor_by`` columns, ``corridor_lines``, ``corridor_floor``,
        ``corridor_median``, ``corridor_ceiling``.
    """
    corridor = check_corridor(corridor)
    corridor_by = check_dimensions(data, corridor_by, parameter="corridor_by")
    t = _corridor_table(data, corridor_by, corridor, period, date_field, status)
    return (t.order_by(corridor_by) if corridor_by else t).execute()


def leakage(
    data: SalesData,
    *,
    by: Sequence[str] = ("owner",),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
    corridor: tuple[float, float] = (0.25, 0.75),
    corridor_by: Sequence[str] = ("size_band",),
    floor: float | None = None,
) -> pd.DataFrame:
    """Price leakage per group: list − pocket by element, and below the guideline corridor.

    ``corridor_leakage`` = Σ max(0, floor × list price − pocket price) × quantity, the floor
    being the corridor's lower percentile of pocket % of list in the line's ``corridor_by``
    group (see :func:`price_corridor`), or the fixed share ``floor`` (e.g. 0.8) when given.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``lines``, ``list_amount``, ``pocket_amount``,
        ``on_invoice_discount`` and each off-invoice element present (rebate, freight,
        payment_terms_cost), ``leakage`` (list − pocket), ``leakage_share`` (of list),
        ``corridor_leakage``, ``corridor_leakage_share`` and ``lines_below_floor``;
        sorted by ``corridor_leakage``, largest first.
    """
    corridor = check_corridor(corridor)
    if floor is not None and not 0 <= floor <= 1:
        raise ParameterError(f"floor={floor!r} must be a share of list price between 0 and 1.")
    by = check_dimensions(data, by)
    corridor_by = (
        [] if floor is not None else check_dimensions(data, corridor_by, parameter="corridor_by")
    )
    dims = list(dict.fromkeys([*by, *corridor_by]))
    lines = _pocket_lines(data, dims, filters, period, date_field, status, "Price leakage")
    lines = _with_floor(lines, data, corridor_by, corridor, floor, period, date_field, status)
    gap = lines._floor * lines.list_price - lines.pocket_price
    below = lines.mutate(_gap=ibis.ifelse(gap > 0, gap * lines.quantity, 0.0), _below=gap > 0)
    extra = aggregate(
        below,
        by,
        {
            "corridor_leakage": below._gap.sum(),
            "lines_below_floor": below.count(where=below._below),
        },
    )
    wide = _element_sums(lines, by)
    return _leakage_frame(wide, extra, by)


def _with_floor(
    lines: ibis.Table,
    data: SalesData,
    corridor_by: list[str],
    corridor: tuple[float, float],
    floor: float | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    status: str,
) -> ibis.Table:
    """Add ``_floor`` (share of list) to each line: fixed, or from its corridor group."""
    if floor is not None:
        return lines.mutate(_floor=ibis.literal(float(floor)))
    c = _corridor_table(data, corridor_by, corridor, period, date_field, status)
    c = c.select(*corridor_by, _floor=c.corridor_floor)
    if not corridor_by:
        return lines.cross_join(c)
    c = c.rename({f"_c_{d}": d for d in corridor_by})
    pred = [lines[d] == c[f"_c_{d}"] for d in corridor_by]
    return lines.left_join(c, pred).drop(*[f"_c_{d}" for d in corridor_by])


def _leakage_frame(wide: pd.DataFrame, extra: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Element sums + corridor leakage -> the leakage table, largest corridor leakage first."""
    out = wide.merge(extra, on=by, how="left") if by else wide.assign(**extra.iloc[0].to_dict())
    out = out.rename(columns={"list": "list_amount", "pocket": "pocket_amount"})
    off = [c for c in OFF_INVOICE if c in out]
    out["leakage"] = out["list_amount"] - out["pocket_amount"]
    out["leakage_share"] = ratio(out["leakage"], out["list_amount"])
    out["corridor_leakage"] = out["corridor_leakage"].astype(float).fillna(0.0)
    out["corridor_leakage_share"] = ratio(out["corridor_leakage"], out["list_amount"])
    out["lines_below_floor"] = out["lines_below_floor"].fillna(0).astype("int64")
    columns = [
        *by,
        "lines",
        "list_amount",
        "pocket_amount",
        "on_invoice_discount",
        *off,
        "leakage",
        "leakage_share",
        "corridor_leakage",
        "corridor_leakage_share",
        "lines_below_floor",
    ]
    out = out.sort_values(["corridor_leakage", *by], ascending=[False] + [True] * len(by))
    return out[columns].reset_index(drop=True)


# ------------------------------------------------------------------------------------------
# Win rate and cycle by discount band


def discount_bands(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    bands: Sequence[float] = DISCOUNT_BANDS,
    min_closed: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Win rate, cycle and portfolio discount per band of per-deal discount (1 − net/list).

    Deals count in the band [low, high) of their discount (the last band includes its upper
    edge); deals without list_amount > 0 or outside the bands are left out. Every band is
    listed for every group present, with 0 counts and NaN rates where it is empty.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``band`` (e.g. "0-5%"), ``band_low``, ``band_high``,
        ``opportunities``, ``won``, ``lost``, ``closed``, ``win_rate``, ``win_rate_low``,
        ``win_rate_high``, ``median_cycle_days_won``, ``portfolio_discount``, ``small_n``.
    """
    bands = [float(b) for b in bands]
    if len(bands) < 2 or any(b >= c for b, c in zip(bands[:-1], bands[1:], strict=True)):
        raise ParameterError(
            f"bands={bands!r} must be at least two increasing edges, e.g. (0, 0.1, 1)."
        )
    data.require("Discount bands", "opportunities", ["list_amount"])
    by = check_dimensions(data, by)
    cycle = ["duration_days"] if "cycle_days" in deals(data).columns else []
    keys = [*by, "_band"]
    names = ["opportunities", "won", "lost", "net_realized", "list_realized"]
    names += [MEDIAN_WON] if cycle else []

    def query():
        used = [*by, *OUTCOME_COLUMNS, "discount", *cycle]
        t = select_coded_deals(data, filters, period, date_field=date_field, columns=used)
        if tuple(bands) == DISCOUNT_BANDS and "_discount_band" in t.columns:
            band = t._discount_band.name("_band")  # kept with the deals (_deals.band_index)
        else:
            band = band_index(t.discount, bands).name("_band")  # deals() rounds it to 9 places
        # one query: deals and amounts per group, band, outcome (and the won deals' duration,
        # for their median; _measures.outcome_sums). Deals outside the bands come back as the
        # NULL band and are dropped here: a filter on the band would make the engine compute it
        # twice.
        days = [won_duration(t)] if cycle else []
        return outcome_sums_query(t, [*by, band, *days], *names, labels=dimension_labels(data))

    selection = selection_key(filters, period, date_field)
    key = ("discount_bands", tuple(by), selection, tuple(bands), tuple(names))
    parts = run_query(data, key, query)
    parts = parts[parts["_band"].notna()].astype({"_band": "int64"})
    raw = combine(parts, keys, *names)
    raw = _complete_bands(raw, by, len(bands) - 1)
    return _band_frame(raw, by, bands, min_closed)


def _complete_bands(raw: pd.DataFrame, by: list[str], n: int) -> pd.DataFrame:
    """Every band for every group present (by=(): every band), empty ones with NaN."""
    raw = raw.astype({"_band": "int64"})
    if not by:  # one row per band, in order
        return raw.set_index("_band").reindex(range(n)).rename_axis("_band").reset_index()
    groups = raw[by].drop_duplicates()
    full = groups.merge(pd.DataFrame({"_band": range(n)}), how="cross")
    return full.merge(raw, on=[*by, "_band"], how="left").sort_values([*by, "_band"])


def _band_frame(
    raw: pd.DataFrame, by: list[str], bands: list[float], min_closed: int
) -> pd.DataFrame:
    idx = raw["_band"].to_numpy()
    low, high = np.asarray(bands[:-1])[idx], np.asarray(bands[1:])[idx]
    out = raw[by].copy()
    out["band"] = _band_labels(low, high)
    out["band_low"], out["band_high"] = low, high
    counts = raw[["opportunities", "won", "lost"]].fillna(0).astype("int64")
    out[["opportunities", "won", "lost"]] = counts
    rates = win_rate_columns(counts["won"], counts["lost"], min_closed=min_closed)
    small = rates.pop("small_n")
    out = out.assign(**rates)
    out["median_cycle_days_won"] = raw.get("median_cycle_days_won", np.nan)
    out["portfolio_discount"] = portfolio_discount(raw["net_realized"], raw["list_realized"])
    out["small_n"] = small
    return out.reset_index(drop=True)
