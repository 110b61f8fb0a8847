"""Sticker Shock, its charts: the KPI layer's frames in, an Altair chart out (or the sentence
of what a view needs). No KPI is computed here."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import charts
from ._common import dimension_label, p_text
from ._pricing_display import _missing, _one_segment, _Result

_TOP_REPS = 20  # reps in the leakage chart (the table has them all)
_MAX_BOXES = 30  # categories in a dispersion chart; beyond, the highest medians are shown


def _unavailable(result: Exception, title: str) -> Any:
    return charts.empty_chart(f"Not available: {result}", title=title)


def _waterfall_chart(frame: _Result, what: str, currency: str | None) -> Any:
    if _missing(frame):
        return _unavailable(frame, what)
    return charts.waterfall(
        frame,
        currency=currency,
        title=what,
        empty_message=f"No won deals with a list price: {what}",
    )


def _compared_chart(
    compared: _Result, dim: str, value: str, values: list[str], currency: str | None
) -> Any:
    """The waterfall of one compared value of ``dim``; what to do when no deal has it."""
    title = f"{dimension_label(dim)}: {value}"
    if value not in values:
        return charts.empty_chart(
            f"No deal has {dim} = {value!r}; its values are {', '.join(values[:12])}. "
            "Choose another in compare_segments.",
            title=title,
        )
    return _waterfall_chart(_one_segment(compared, dim, value), title, currency)


def _pocket_chart(band: _Result, spread: _Result, waterfall: _Result) -> Any:
    price = "Pocket"
    if not _missing(waterfall) and len(waterfall) and waterfall["basis"].iloc[0] != "line_items":
        price = "Invoice"  # no off-invoice columns: the pocket price is the invoice price
    title = f"{price} price band"
    if _missing(band):
        return _unavailable(band, title)
    if not _missing(spread) and len(spread) and pd.notna(spread["pocket_p10"].iloc[0]):
        s = spread.iloc[0]
        title += f" (p10 {s.pocket_p10:.0%}, p50 {s.pocket_p50:.0%}, p90 {s.pocket_p90:.0%})"
    return charts.histogram(
        band,
        count="volume_share",
        kind="percent",
        count_kind="percent",
        label="band",
        x_title=f"{price} price (% of list)",
        y_title="Share of volume",
        title=title,
    )


def _dispersion_chart(frame: _Result, dim: str) -> Any:
    title = f"Discount per won deal by {dimension_label(dim).lower()}"
    if _missing(frame):
        return _unavailable(frame, title)
    if len(frame) > _MAX_BOXES:  # a box per rep of thousands reads as nothing
        title += f": the {_MAX_BOXES} of {len(frame):,} with the highest median discount"
        frame = frame.nlargest(_MAX_BOXES, "median_deal_discount")
    return charts.distribution_box(
        frame,
        category=dim,
        p25="discount_p25",
        median="median_deal_discount",
        p75="discount_p75",
        kind="percent",
        n="deals_with_list",
        category_title=dimension_label(dim),
        value_title="Discount per deal",
        title=title,
    )


def _heatmap_chart(size: _Result, corridor: tuple[float, float], currency: str | None) -> Any:
    title = "Won deals by deal size and discount"
    if _missing(size):
        return _unavailable(size, title)
    low, high = (f"p{c * 100:g}" for c in corridor)
    band = size.attrs.get("corridor", pd.DataFrame())
    band = band.rename(columns={"corridor_low": low, "corridor_high": high})
    return charts.binned_scatter(
        size,
        x_bin="deal_size",
        y_bin="discount_low",
        y_end="discount_high",
        count="deals",
        currency=currency,
        x_title="Deal size (list price)",
        y_title="Discount",
        corridor=band,
        corridor_low=low,
        corridor_high=high,
        title=f"{title} ({low}–{high} corridor)",
    )


def _win_rate_chart(bands: _Result, tests: _Result) -> Any:
    title = "Win rate by discount band"
    if _missing(bands):
        return _unavailable(bands, title)
    if not _missing(tests):
        title += f" (test: p {p_text(tests['p_value'].iloc[0])})"
    return charts.strata_comparison(
        bands,
        tier="band",
        value="win_rate",
        low="win_rate_low",
        high="win_rate_high",
        kind="percent",
        small_n="small_n",
        n="closed",
        selection=None,
        tier_title="Discount band",
        value_title="Win rate",
        title=title,
    )


def _cycle_chart(bands: _Result) -> Any:
    title = "Median days to win by discount band"
    if _missing(bands):
        return _unavailable(bands, title)
    return charts.kpi_bars(
        bands,
        category="band",
        value="median_cycle_days_won",
        kind="days",
        small_n="small_n",
        n="won",
        selection=None,
        sort=None,
        category_title="Discount band",
        value_title="Median days to win",
        title=title,
    )


def _lost_chart(lost: _Result) -> Any:
    title = "Lost on price, by discount quoted"
    if _missing(lost):
        return _unavailable(lost, title)
    return charts.strata_comparison(
        lost,
        tier="band",
        value="share_lost_on_price",
        low="share_low",
        high="share_high",
        kind="percent",
        n="closed",
        selection=None,
        tier_title="Discount quoted",
        value_title="Lost on price",
        title=title,
    )


def _leakage_chart(by_rep: _Result, currency: str | None) -> Any:
    title = f"Money below the corridor floor: the {_TOP_REPS} reps with the most"
    if _missing(by_rep):
        return _unavailable(by_rep, title)
    return charts.kpi_bars(
        by_rep.head(_TOP_REPS),
        category="owner",
        value="corridor_leakage",
        kind="money",
        currency=currency,
        n="lines_below_floor",
        category_title="Rep",
        value_title="Below the corridor floor",
        title=title,
    )


def _realization_chart(frame: _Result) -> Any:
    title = "Price realization (Σ net / Σ list) by product family"
    if _missing(frame):
        return _unavailable(frame, title)
    return charts.kpi_bars(
        frame,
        category="product_family",
        value="price_realization",
        kind="percent",
        n="deals_with_list",
        category_title="Product family",
        value_title="Price realization",
        title=title,
    )


def _trend_chart(frame: _Result) -> Any:
    title = "Price realization by quarter of close (won deals)"
    if _missing(frame):
        return _unavailable(frame, title)
    periods = pd.to_datetime(frame["period"])
    # "23-Q4": short enough for a dozen quarters side by side
    quarters = (periods.dt.year % 100).map("{:02d}".format) + "-Q" + periods.dt.quarter.astype(str)
    return charts.line_over_time(
        frame.assign(quarter=quarters),
        period="quarter",
        value="price_realization",
        kind="percent",
        period_title="Quarter of close",
        value_title="Price realization",
        title=title,
    )
