"""Segmentation Explorer, display side: the KPI layer's frames turned into its charts and
tables. No KPI is computed here; every number comes from salesops_widgets.metrics, and every
KPI is named and formatted by the KPI catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .. import charts
from .._catalog import KPI
from ._common import dimension_label, p_text

__all__ = [
    "TABLE_COLUMNS",
    "heatmap_chart",
    "kpi_chart",
    "ranking_chart",
    "ranking_display",
    "ranking_formats",
]

TABLE_COLUMNS = (
    "opportunities",
    "open",
    "won",
    "lost",
    "win_rate",
    "win_rate_low",
    "win_rate_high",
    "bookings",
    "asp",
    "median_cycle_days_won",
    "km_median_days_to_close",
    "portfolio_discount",
    "velocity",
    "open_pipeline",
    "small_n",
)


def kpi_chart(
    frame: pd.DataFrame, kpi: KPI, dim: str, currency: str | None, why: Sequence[str] = ()
) -> Any:
    """Bars of one KPI per segment of ``dim``, with its interval and "too few to say";
    without a value, the reason it cannot be computed on this data (``why``), in words."""
    return charts.kpi_bars(
        frame,
        category=dim,
        value=kpi.column,
        kind=kpi.kind,
        currency=currency,
        low=kpi.low,
        high=kpi.high,
        small_n="small_n" if kpi.small_n else None,
        n="closed",
        value_title=kpi.label,
        title=f"{kpi.title} by {dimension_label(dim)}",
        **({"empty_message": why[0][:1].upper() + why[0][1:]} if why else {}),
    )


def heatmap_chart(cross: pd.DataFrame | None, kpi: KPI, dims: list[str], currency: Any) -> Any:
    """One KPI over the first dimension × the second; a sentence when there is no second."""
    if cross is None:
        return charts.empty_chart(
            "Choose a second dimension (Crossed with) to see the heatmap", title="Heatmap"
        )
    first, second = dims
    return charts.heatmap(
        cross,
        x=second,
        y=first,
        value=kpi.column,
        kind=kpi.kind,
        currency=currency,
        small_n="small_n" if kpi.small_n else None,
        n="closed",
        title=f"{kpi.title}: {dimension_label(first)} × {dimension_label(second)}",
        x_title=dimension_label(second),
        y_title=dimension_label(first),
    )


def ranking_chart(ranking: pd.DataFrame | Exception, kpi: KPI, dim: str, currency: Any) -> Any:
    """Each segment against the overall, the significant ones marked."""
    if isinstance(ranking, Exception):
        return charts.empty_chart(f"Not available: {ranking}", title=kpi.title)
    overall = float(ranking["overall"].iloc[0]) if len(ranking) else float("nan")
    return charts.vs_average(
        ranking,
        category=dim,
        value="value",
        overall=overall,
        kind=kpi.kind,
        currency=currency,
        significant="significant",
        low="low",
        high="high",
        n="n",
        value_title=kpi.label,
        title=f"{kpi.title} by {dimension_label(dim)} against the overall",
    )


def ranking_formats(kpi: KPI) -> dict[str, str]:
    """The ranking table's formats: the KPI's kind for its values."""
    return {c: kpi.kind for c in ("value", "low", "high", "overall", "difference")} | {"n": "count"}


def ranking_display(ranking: pd.DataFrame | Exception, dim: str) -> pd.DataFrame:
    """segments_vs_overall's frame as read in a table: p-values as text, yes/no (an empty
    frame when the ranking is not available)."""
    if isinstance(ranking, Exception):
        return pd.DataFrame()
    out = ranking[[dim, "value", "low", "high", "n", "overall", "difference", "small_n"]].copy()
    out["p (adjusted)"] = ranking["p_adjusted"].map(p_text)
    out["significant"] = ranking["significant"].map({True: "yes", False: "no"})
    out["test"] = ranking["test"]
    out["note"] = ranking["note"]
    return out
