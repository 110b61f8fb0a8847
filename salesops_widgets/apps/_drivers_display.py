"""Driver Tree, display side: the bridges and the drill of the KPI layer turned into charts and
sentences. No KPI is computed here; every number comes from salesops_widgets.metrics."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import charts
from ..widgets import format_value
from ..widgets._html import COLORS, esc, style
from ._common import dimension_label

__all__ = [
    "SHOWN",
    "asp_chart",
    "asp_sentence",
    "bridge_chart",
    "bridge_sentence",
    "contributions_chart",
    "discount_chart",
    "discount_sentence",
    "level_sentence",
    "paragraph",
    "period_text",
]

SHOWN = 12  # segments shown per chart (the largest contributors)


def paragraph(text: str) -> str:
    return f"<p {style(max_width='900px', color=COLORS['text'])}>{esc(text)}</p>"


def period_text(period: tuple[Any, Any]) -> str:
    return f"{period[0]} to {period[1]}"


def _money(value: Any, currency: str | None) -> str:
    return format_value(value, "money", currency=currency)


def _signed(value: Any, currency: str | None) -> str:
    text = _money(abs(value), currency) if pd.notna(value) else "–"
    return ("+" if value >= 0 else "−") + text if pd.notna(value) else text


def bridge_chart(row: pd.Series, currency: str | None) -> Any:
    """Bookings of period A, the volume, win-rate and ASP effects, bookings of period B."""
    steps = pd.DataFrame(
        {
            "step": ["Period A", "Volume", "Win rate", "ASP", "Period B"],
            "amount": [
                row["bookings_a"],
                row["volume_effect"],
                row["win_rate_effect"],
                row["asp_effect"],
                row["bookings_b"],
            ],
        }
    )
    return charts.bridge(steps, currency=currency, title="Bookings bridge: A to B")


def bridge_sentence(row: pd.Series, periods: tuple, currency: str | None) -> str:
    """The bookings bridge in words: the change and its largest effect."""
    effects = {
        "volume (more or fewer deals closed)": row["volume_effect"],
        "win rate": row["win_rate_effect"],
        "ASP": row["asp_effect"],
    }
    name, value = max(effects.items(), key=lambda kv: abs(kv[1]))
    rest = ", ".join(f"{k.split(' (')[0]} {_signed(v, currency)}" for k, v in effects.items())
    return (
        f"Bookings went from {_money(row['bookings_a'], currency)} ({period_text(periods[0])}) "
        f"to {_money(row['bookings_b'], currency)} ({period_text(periods[1])}), "
        f"{_signed(row['change'], currency)}. The largest part is {name}: "
        f"{_signed(value, currency)} ({rest}; {row['method']})."
        + (f" Note: {row['note']}." if row.get("note") else "")
    )


def asp_chart(frame: pd.DataFrame, currency: str | None) -> Any:
    """ASP of period A, the price and mix effects, ASP of period B."""
    total = frame.iloc[-1]
    steps = pd.DataFrame(
        {
            "step": ["ASP in A", "Price", "Mix", "ASP in B"],
            "amount": [total["asp_a"], total["price_effect"], total["mix_effect"], total["asp_b"]],
        }
    )
    return charts.bridge(
        steps, currency=currency, title="ASP: price and mix", value_title="ASP", zoom=True
    )


def asp_sentence(frame: pd.DataFrame, dim: str, currency: str | None) -> str:
    """The ASP bridge in words: price against mix, and the segment that moved it most."""
    total, rows = frame.iloc[-1], frame.iloc[:-1]
    if pd.isna(total["price_effect"]):
        return f"ASP cannot be split: {total['note']}."
    top = rows.loc[rows["change"].abs().idxmax()] if len(rows) else None
    lead = (
        f" The largest part comes from {top[dim]} ({_signed(top['change'], currency)}: price "
        f"{_signed(top['price_effect'], currency)}, mix {_signed(top['mix_effect'], currency)})."
        if top is not None
        else ""
    )
    return (
        f"ASP went from {_money(total['asp_a'], currency)} to {_money(total['asp_b'], currency)} "
        f"({_signed(total['change'], currency)}): price {_signed(total['price_effect'], currency)}"
        f" (each {dimension_label(dim).lower()} selling at its own new ASP), mix "
        f"{_signed(total['mix_effect'], currency)} (won deals moving between values of "
        f"{dimension_label(dim).lower()}; method: {total['method']}).{lead}"
    )


def contributions_chart(frame: pd.DataFrame, dim: str, chosen: Any, currency: str | None) -> Any:
    """Each segment's part of the change in bookings (the largest SHOWN)."""
    shown = frame.reindex(frame["change"].abs().sort_values(ascending=False).index[:SHOWN])
    return charts.kpi_bars(
        shown,
        category=dim,
        value="change",
        kind="money",
        currency=currency,
        value_title="Change in bookings",
        title=f"Change in bookings by {dimension_label(dim)} (drilled into: {chosen})",
    )


def level_sentence(step: pd.Series, currency: str | None) -> str:
    """One level of the drill in words."""
    effects = {
        "volume": step["volume_effect"],
        "win rate": step["win_rate_effect"],
        "ASP": step["asp_effect"],
    }
    name, value = max(effects.items(), key=lambda kv: abs(kv[1]))
    share = f"{step['share']:.0%} of" if pd.notna(step["share"]) else "part of"
    return (
        f"Level {int(step['level'])}, {dimension_label(step['dimension'])}: {step['segment']} "
        f"moved bookings by {_signed(step['change'], currency)}, {share} the "
        f"{_signed(step['parent_change'], currency)} above it (the largest of "
        f"{int(step['segments'])}); within it, {name} did most ({_signed(value, currency)})."
    )


def discount_chart(frame: pd.DataFrame, dim: str) -> Any:
    """Each segment's points of portfolio discount beyond the average rate (the largest)."""
    shown = frame.head(SHOWN)
    return charts.kpi_bars(
        shown,
        category=dim,
        value="rate_effect",
        kind="percent",
        value_title="Points of discount beyond the average",
        title=f"Who pulls the price down: discount beyond the average, by {dimension_label(dim)}",
    )


def discount_sentence(frame: pd.DataFrame, dim: str, currency: str | None) -> str:
    """The segment that discounts most beyond the average, in words."""
    if frame.empty:
        return "No won deal with a list price in period B: the discount cannot be split."
    top = frame.iloc[0]
    return (
        f"{dimension_label(dim)} {top[dim]} gives {top['discount']:.1%} off list on won deals "
        f"against {top['average_discount']:.1%} overall: "
        f"{top['rate_effect'] * 100:+.2f} points of the portfolio discount, and "
        f"{_signed(top['asp_effect'], currency)} of ASP per won deal ({top['method']})."
    )
