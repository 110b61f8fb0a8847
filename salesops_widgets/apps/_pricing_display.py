"""Sticker Shock, display side: the KPI layer's frames turned into cards, charts and tables.
No KPI is computed here; every number shown comes from salesops_widgets.metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd

from .. import charts
from ..errors import MissingDataError
from ..widgets import DataTable
from ..widgets._html import esc
from ._common import (
    dimension_label,
    p_text,
)

_Result = pd.DataFrame | MissingDataError
_LEAKAGE_MONEY = (
    "list_amount",
    "pocket_amount",
    "on_invoice_discount",
    "rebate",
    "freight",
    "payment_terms_cost",
    "leakage",
    "corridor_leakage",
)
_LEAKAGE_LABELS = {
    "leakage": "list − pocket",
    "leakage_share": "% of list",
    "corridor_leakage": "below the floor",
    "corridor_leakage_share": "below, % of list",
    "lines_below_floor": "lines below",
}
_TOP_REPS = 20  # reps in the leakage chart (the table has them all)
_MAX_BOXES = 30  # categories in a dispersion chart; beyond, the highest medians are shown
_STEP = 0.05  # discount bins of the heatmap


@dataclass(frozen=True)
class _Frames:
    """Everything one refresh computes: frames of the KPI layer, or the MissingDataError that
    says what a view needs. ``key`` is what they were computed for, the cap aside."""

    key: str
    overall: _Result  # deal_discounts of the won deals, one row
    waterfall: _Result
    compared: _Result  # price_waterfall by the segment, the two compared values only
    band: _Result
    spread: _Result
    dispersion: dict[str, _Result]  # dimension -> deal_discounts by it
    size: _Result  # discount_vs_size, attrs["corridor"]
    outliers: _Result
    bands: _Result  # discount_bands
    tests: _Result
    lost: _Result
    leakage: dict[str, _Result]  # dimension -> leakage by it
    realization: _Result  # deal_discounts by product_family
    trend: _Result
    guidance: _Result
    what_if: _Result


def _missing(result: Any) -> bool:
    return isinstance(result, Exception)


# --------------------------------------------------------------------------------------------------
# Frames -> cards, charts and tables (display only: the numbers come from the KPI layer)

_SPREAD_PERCENT = ("pocket_realization", "pocket_p10", "pocket_p50", "pocket_p90", "pocket_spread")
_BASIS = {
    "line_items": "list to pocket price, from the line items",
    "line_items_invoice": "list to invoice price (the line items have no rebate, freight or "
    "payment terms columns, so there is no pocket price)",
    "opportunities": "list to net price (no line_items table: list_amount to amount of the "
    "opportunities)",
}


def _percent(share: float) -> str:
    """0.2 -> "20%", 0.125 -> "12.5%"."""
    return f"{share * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _show_table(table: DataTable, result: _Result) -> None:
    """A frame in a table, or the message of what the view needs."""
    if _missing(result):
        table.empty_message = f"Not available: {result}"
        table.data = pd.DataFrame()
    else:
        table.data = result


def _needs(result: Exception) -> str:
    """What a MissingDataError says is missing: "column(s) list_amount in opportunities"."""
    found = re.search(r"needs (.+?), which", str(result))
    return found.group(1) if found else str(result)


def _once(*views: tuple[w.Widget, _Result]) -> None:
    """Say what a section needs once: a view missing the same data as one before it in the
    section is hidden; the others are shown."""
    said: set[str] = set()
    for view, result in views:
        key = _needs(result) if _missing(result) else None
        view.layout.display = "none" if key in said else ""
        if key is not None:
            said.add(key)


def _note_html(text: str) -> str:
    return f'<p class="salesops-note" style="color: #52606d">{esc(text)}</p>'


def _unavailable(result: Exception, title: str) -> Any:
    return charts.empty_chart(f"Not available: {result}", title=title)


def _one_segment(compared: _Result, dim: str, value: str) -> _Result:
    if _missing(compared):
        return compared
    return compared[compared[dim].astype(str) == value].drop(columns=[dim])


def _waterfall_chart(frame: _Result, what: str, currency: str | None) -> Any:
    if _missing(frame):
        return _unavailable(frame, what)
    return charts.waterfall(
        frame,
        currency=currency,
        title=what,
        empty_message=f"No won deals with a list price: {what}",
    )


def _basis_html(waterfall: _Result) -> str:
    """Where the waterfall's numbers come from, in words."""
    if _missing(waterfall) or waterfall.empty:
        return ""
    return _note_html(f"The waterfalls go from {_BASIS[waterfall['basis'].iloc[0]]}.")


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


def _leakage_display(leakage: _Result, dim: str) -> _Result:
    """The leakage table without the element columns (the waterfall has them)."""
    if _missing(leakage):
        return leakage
    columns = [dim, "lines", "list_amount", "pocket_amount", "leakage", "leakage_share"]
    columns += ["corridor_leakage", "corridor_leakage_share", "lines_below_floor"]
    return leakage[columns]


def _band_display(bands: pd.DataFrame) -> pd.DataFrame:
    columns = ["band", "opportunities", "won", "lost", "win_rate", "win_rate_low"]
    columns += ["win_rate_high", "median_cycle_days_won", "portfolio_discount", "small_n"]
    return bands[columns]


def _tests_display(tests: pd.DataFrame) -> pd.DataFrame:
    """discount_band_tests as read in a table: p-values as text, yes/no."""
    return pd.DataFrame(
        {
            "comparison": tests["comparison"],
            "test": tests["test"],
            "p": tests["p_value"].map(p_text),
            "significant": (tests["p_value"] < 0.05).map({True: "yes", False: "no"}),
            "effect": tests["effect"],
            "effect size": [_effect_text(row) for row in tests.itertuples()],
            "closed deals": tests["n"],
            "why no test": tests["reason"].fillna(""),
        }
    )


def _effect_text(row: Any) -> str:
    """Cramér's V as a number; a risk difference in points with its 95% interval."""
    if pd.isna(row.effect_size):
        return "–"
    if row.effect != "risk difference":
        return f"{row.effect_size:.2f}"
    low, high = (f"{v * 100:+.1f}" for v in (row.effect_low, row.effect_high))
    return f"{row.effect_size * 100:+.1f} pts (95%: {low} to {high})"


def _without(result: _Result, *columns: str) -> _Result:
    return result if _missing(result) else result.drop(columns=list(columns), errors="ignore")


def _total(result: _Result, column: str) -> float | None:
    """A column's sum over an aggregated frame's groups (None when the view is missing)."""
    if _missing(result) or column not in result:
        return None
    return float(result[column].sum())


def _cards(frames: _Frames, cap: float, currency: str | None) -> list[dict[str, Any]]:
    overall, spread, waterfall = frames.overall, frames.spread, frames.waterfall
    cards = []
    if _missing(overall) or overall.empty:
        note = f"needs {_needs(overall)}" if _missing(overall) else "no won deal with a list price"
        cards.append({"label": "Discount given (dollar-weighted)", "value": None, "note": note})
    else:
        row = overall.iloc[0]
        cards.append(
            {
                "label": "Discount given (dollar-weighted)",
                "value": row["portfolio_discount"],
                "kind": "percent",
                "better": "lower",
                "note": f"{int(row['deals_with_list']):,} won deals; a plain mean of "
                f"per-deal % says {row['mean_deal_discount']:.1%}",
            }
        )
    given = None
    if not _missing(waterfall):
        given = _total(waterfall[waterfall["kind"] == "deduction"], "amount")
    cards.append(
        {
            "label": "Given away, list to pocket",
            "value": given,
            "kind": "money",
            "currency": currency,
            "better": "lower",
            "note": "" if given is not None else f"needs {_needs(waterfall)}",
        }
    )
    cards.append(_pocket_card(spread))
    leak = frames.leakage.get("owner")
    cards.append(
        {
            "label": "Below the corridor floor",
            "value": _total(leak, "corridor_leakage"),
            "kind": "money",
            "currency": currency,
            "better": "lower",
            "note": "what you are missing" if not _missing(leak) else f"needs {_needs(leak)}",
        }
    )
    what_if = frames.what_if
    recovered = None if _missing(what_if) else what_if["net_recovered"].iloc[0]
    cards.append(
        {
            "label": f"Recovered by a {cap:.0%} cap",
            "value": recovered,
            "kind": "money",
            "currency": currency,
            "note": "net of the deals it would lose"
            if recovered is not None
            else f"needs {_needs(what_if)}",
        }
    )
    return cards


def _pocket_card(spread: _Result) -> dict[str, Any]:
    card: dict[str, Any] = {"label": "Pocket price (% of list)", "kind": "percent"}
    if _missing(spread) or spread.empty or pd.isna(spread["pocket_realization"].iloc[0]):
        note = f"needs {_needs(spread)}" if _missing(spread) else "no line items selected"
        return {**card, "value": None, "note": note}
    s = spread.iloc[0]
    spread_note = f"p10–p90 of volume: {s.pocket_p10:.0%} to {s.pocket_p90:.0%}"
    return {**card, "value": s["pocket_realization"], "note": spread_note}


def _what_if_cards(row: pd.Series, currency: str | None) -> list[dict[str, Any]]:
    money = {"kind": "money", "currency": currency}
    return [
        {
            "label": "Recovered, net",
            "value": row["net_recovered"],
            **money,
            "note": f"{row['net_recovered_share']:.1%} of bookings"
            if pd.notna(row["net_recovered_share"])
            else "",
        },
        {"label": "If no deal were lost", "value": row["gross_recovered"], **money},
        {
            "label": "Won deals over the cap",
            "value": row["deals_over_cap"],
            "kind": "count",
            "note": f"{row['expected_lost_deals']:,.1f} expected to be lost",
        },
        {"label": "Bookings expected lost", "value": row["expected_lost_bookings"], **money},
    ]


def _assumptions_html(result: pd.DataFrame) -> str:
    """What the estimate assumes, with the win rates by band it rests on."""
    rates = result.attrs["band_rates"]
    shown = ", ".join(
        f"{band} {rate:.1%}" if pd.notna(rate) else f"{band} –"
        for band, rate in zip(rates["band"], rates["win_rate"], strict=True)
    )
    items = [*result.attrs["assumptions"], f"observed win rate by discount band: {shown}"]
    lines = "".join(f"<li>{esc(item)}</li>" for item in items)
    return f'<div class="salesops-assumptions"><b>Assumptions</b><ul>{lines}</ul></div>'
