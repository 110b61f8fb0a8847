"""Goal Tracking, display side: the KPI layer's goal frames turned into a status table, one
trend chart per goal, and one sentence per goal. No KPI is computed here; every KPI is named
and formatted by the KPI catalogue."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import charts
from .._catalog import CATALOGUE, TOO_FEW
from ..widgets import format_value
from ..widgets._html import COLORS, esc, style

__all__ = ["STATUS_ORDER", "goal_chart", "goal_sentence", "goals_paragraphs", "summary_display"]

STATUS_ORDER = ("off track", "at risk", TOO_FEW, "no data", "on track")
_MEANING = {
    "on track": "the whole interval is on the good side of the path",
    "at risk": "the interval holds the path's value: it may be on track or not",
    "off track": "the whole interval misses the path",
    TOO_FEW: "too few closed deals in the window to say",
    "no data": "the KPI cannot be computed on the deals of the window",
}


def _text(value: Any, kpi: str, currency: str | None) -> str:
    return format_value(value, CATALOGUE[kpi].kind, currency=currency)


def _interval(row: pd.Series, currency: str | None) -> str:
    if pd.isna(row["low"]) or pd.isna(row["high"]):
        return "–"
    return f"{_text(row['low'], row['kpi'], currency)} – {_text(row['high'], row['kpi'], currency)}"


def summary_display(summary: pd.DataFrame, currency: str | None) -> pd.DataFrame:
    """One row per goal as read in a table: values formatted by the KPI's kind (goals mix
    kinds), the interval as text, and the status."""
    if summary.empty:
        return pd.DataFrame()
    rows = []
    for _, r in summary.iterrows():
        rows.append(
            {
                "goal": r["goal"],
                "KPI": r["label"],
                "status": r["status"],
                "now": TOO_FEW if r["small_n"] else _text(r["value"], r["kpi"], currency),
                "95% interval": _interval(r, currency),
                "n": int(r["n"]),
                "path expects now": _text(r["expected"], r["kpi"], currency),
                "baseline": _text(r["baseline_value"], r["kpi"], currency),
                "target": _text(r["target"], r["kpi"], currency),
                "deadline": r["deadline"].date().isoformat(),
            }
        )
    return pd.DataFrame(rows)


def goal_sentence(row: pd.Series, currency: str | None) -> str:
    """What one goal's status says, in words."""
    kpi, label = row["kpi"], row["label"]
    window = f"{row['start'].date()} to {row['date'].date()}"
    target = f"{_text(row['target'], kpi, currency)} by {row['deadline'].date()}"
    if row["status"] == TOO_FEW:
        measured = f"rests on {int(row['n']):,} deals, {TOO_FEW}"
    else:
        interval = _interval(row, currency)
        spread = f"95% interval {interval}, " if interval != "–" else "no interval, "
        measured = f"is {_text(row['value'], kpi, currency)} ({spread}n = {int(row['n']):,})"
    return (
        f"{row['goal']}: {row['status']}. {label} over {window} {measured}; the path expects "
        f"{_text(row['expected'], kpi, currency)} by then (target {target}): "
        f"{_meaning(row)}."
    )


def _meaning(row: pd.Series) -> str:
    no_interval = pd.isna(row["low"]) or pd.isna(row["high"])
    if no_interval and row["status"] in ("on track", "off track"):
        side = "meets" if row["status"] == "on track" else "misses"
        return f"the value {side} the path (this KPI has no interval: judged on its value)"
    return _MEANING[row["status"]]


def goals_paragraphs(summary: pd.DataFrame, currency: str | None) -> str:
    """The goals' sentences, worst status first, as HTML paragraphs."""
    if summary.empty:
        return ""
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    ordered = summary.assign(_r=summary["status"].map(rank)).sort_values("_r", kind="stable")
    css = style(max_width="900px", color=COLORS["text"])
    return "".join(f"<p {css}>{esc(goal_sentence(r, currency))}</p>" for _, r in ordered.iterrows())


def goal_chart(
    row: pd.Series, trend: pd.DataFrame, paths: pd.DataFrame, currency: str | None
) -> Any:
    """One goal's trend with its interval, its path and each point's status."""
    kpi = CATALOGUE[row["kpi"]]
    return charts.goal_trend(
        trend[trend["goal"] == row["goal"]],
        paths[paths["goal"] == row["goal"]],
        kind=kpi.kind,
        currency=currency,
        value_title=kpi.label,
        title=f"{row['goal']}: {row['status']}",
    )
