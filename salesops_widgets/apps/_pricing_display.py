"""Sticker Shock, display side: the KPI layer's frames turned into cards, tables and notes, and
the specs of its tables. No KPI is computed here; every number shown comes from
salesops_widgets.metrics (its charts are in _pricing_charts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd

from ..errors import MissingDataError, ParameterError
from ..metrics import NOT_SET
from ..widgets import DataTable
from ..widgets._html import esc
from ._common import p_text

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
_STEP = 0.05  # discount bins of the heatmap


@dataclass(frozen=True)
class _Frames:
    """The frames of every view but the what-if: frames of the KPI layer, or the
    MissingDataError that says what a view needs."""

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


# the app's tables: attribute -> DataTable options (the app adds the data's currency)
TABLES: dict[str, dict[str, Any]] = {
    "pocket_spread": {
        "small_n": None,
        "title": "Pocket price spread",
        "formats": dict.fromkeys(_SPREAD_PERCENT, "percent") | {"volume": "number"},
    },
    "outliers": {
        "small_n": None,
        "formats": {"discount": "percent", "corridor_high": "percent", "excess": "money"},
        "labels": {"corridor_high": "corridor top", "excess": "given over it"},
    },
    "cell_deals": {
        "small_n": None,
        "formats": {"discount": "percent", "discount_given": "money"},
        "labels": {"discount_given": "given away"},
        "title": "Deals in the clicked cell",
    },
    "band_table": {"title": "Win rate and cycle by discount band"},
    "tests": {"small_n": None, "title": "Does discount buy wins? The tests"},
    "lost_table": {
        "small_n": None,
        "title": "Closed deals lost on price, by discount quoted",
        "formats": dict.fromkeys(
            ("band_low", "band_high", "share_low", "share_high", "share_lost_on_price")
            + ("price_share_of_losses",),
            "percent",
        ),
    },
    "guidance": {
        "title": "Pricing guidance per segment (% of list)",
        "labels": {
            "floor_pct_of_list": "floor",
            "target_pct_of_list": "target",
            "stretch_pct_of_list": "stretch",
        },
        "formats": {"won_deals": "count", "max_discount": "percent"}
        | dict.fromkeys(
            ("floor_pct_of_list", "target_pct_of_list", "stretch_pct_of_list"), "percent"
        ),
    },
    "what_if_table": {
        "small_n": None,
        "title": "Won deals over the cap, by their discount band",
        "formats": {"kept": "percent", "expected_lost_deals": "number"}
        | dict.fromkeys(
            ("bookings_over_cap", "capped_bookings", "gross_recovered", "net_recovered")
            + ("expected_lost_bookings",),
            "money",
        ),
    },
}
LEAKAGE_TABLE: dict[str, Any] = {
    "small_n": None,
    "formats": dict.fromkeys(_LEAKAGE_MONEY, "money") | {"lines_below_floor": "count"},
    "max_rows": 100,
    "labels": _LEAKAGE_LABELS,
}


def _edges(values: Any, name: str, *, low: float, high: float | None, example: str) -> list:
    """Band edges given as a parameter: at least two increasing numbers between ``low`` and
    ``high``; a ParameterError that shows how to write them otherwise."""
    try:
        edges = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name}={values!r} must be a list of numbers, e.g. {example}."
        ) from None
    increasing = all(a < b for a, b in zip(edges[:-1], edges[1:], strict=False))
    inside = all(low <= e and (high is None or e <= high) for e in edges)
    if len(edges) < 2 or not increasing or not inside:
        top = f" and {high}" if high is not None else ""
        raise ParameterError(
            f"{name}={values!r} must be at least two increasing edges between {low}{top}, "
            f"e.g. {example}."
        )
    return edges


def _corridor(value: Any) -> tuple[float, float]:
    """The corridor parameter: two percentiles 0 <= low < high <= 1."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low, high = 1.0, 0.0  # not two numbers: the message below
    if not 0 <= low < high <= 1:
        raise ParameterError(
            f"corridor={value!r} must be two percentiles 0 <= low < high <= 1, e.g. (0.25, 0.75)."
        )
    return (low, high)


def _cap(value: float) -> float:
    """The discount cap of the what-if: a share of list between 0 and 0.99."""
    if not 0 <= value <= 0.99:
        raise ParameterError(f"cap={value!r} must be between 0 and 0.99 (0.2: 20% off).")
    return float(value)


def _largest_two(values: list[tuple[str, int]]) -> list[str]:
    """The two values with the most deals; "(not set)" only when there is nothing else."""
    ranked = sorted(values, key=lambda vn: (vn[0] == NOT_SET, -vn[1]))
    names = [v for v, _ in ranked[:2]]
    return [*names, "(none)", "(no other value)"][:2]


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


def _one_segment(compared: _Result, dim: str, value: str) -> _Result:
    if _missing(compared):
        return compared
    return compared[compared[dim].astype(str) == value].drop(columns=[dim])


def _basis_html(waterfall: _Result) -> str:
    """Where the waterfall's numbers come from, in words."""
    if _missing(waterfall) or waterfall.empty:
        return ""
    return _note_html(f"The waterfalls go from {_BASIS[waterfall['basis'].iloc[0]]}.")


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


def _cards(
    frames: _Frames, what_if: _Result, cap: float, currency: str | None
) -> list[dict[str, Any]]:
    overall, spread, waterfall = frames.overall, frames.spread, frames.waterfall
    cards = []
    if _missing(overall) or overall.empty or not overall["deals_with_list"].iloc[0]:
        note = (
            f"needs {_needs(overall)}"
            if _missing(overall)
            else "no won deal has both a list price and an amount above 0"
        )
        cards.append({"label": "Discount given (dollar-weighted)", "value": None, "note": note})
    else:
        row = overall.iloc[0]
        cards.append(
            {
                "label": "Discount given (dollar-weighted)",
                "value": row["portfolio_discount"],
                "kind": "percent",
                "better": "lower",
                "note": f"of {int(row['deals_with_list']):,} won deals with a list price and an "
                f"amount above 0; a plain mean of per-deal % says {row['mean_deal_discount']:.1%}",
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
