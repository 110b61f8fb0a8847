"""Sales-Cycle Acceleration, its charts: the KPI layer's frames in, an Altair chart out. No KPI
is computed here; the histogram only adds up the KPI layer's band counts of the clicked
segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from .. import charts
from .._catalog import CATALOGUE
from ._common import dimension_label
from ._cycle_display import _flow_bars, _labelled, _segments

__all__ = [
    "LEVERS",
    "aging_chart",
    "box_chart",
    "cif_chart",
    "flow_chart",
    "funnel_chart",
    "histogram_chart",
    "km_chart",
    "levers_chart",
    "velocity_chart",
]

LEVERS = {
    "open_with_amount_ratio": "Open deals (with an amount)",
    "win_rate_ratio": "Win rate",
    "asp_ratio": "ASP",
    "km_median_days_to_close_ratio": "Speed",
}


def _compact_axis(chart: Any) -> Any:
    """Amounts on the x axis as "300M" or "400k", not "300,000,000": the full numbers of a
    money axis run into each other in a static SVG (measured with vl-convert's fonts)."""
    if not isinstance(chart, alt.LayerChart):  # an empty chart: a sentence, no axis
        return chart
    for layer in chart.layer:
        x = layer.encoding.x if layer.encoding is not alt.Undefined else alt.Undefined
        if x is not alt.Undefined and x.axis is not alt.Undefined:
            x.axis = alt.Axis(format="~s")
    return chart


def box_chart(quantiles: pd.DataFrame, dim: str) -> Any:
    whiskers = {"p10_cycle_days": "10th_percentile", "p90_cycle_days": "90th_percentile"}
    return charts.distribution_box(
        quantiles.rename(columns=whiskers),
        category=dim,
        p25="p25_cycle_days",
        median="median_cycle_days",
        p75="p75_cycle_days",
        low="10th_percentile",
        high="90th_percentile",
        group="outcome",
        kind="days",
        small_n="small_n",
        n="deals",
        sort=None,
        category_title=dimension_label(dim),
        value_title="Days from created to closed",
        title=f"Cycle days of won and lost deals by {_segments(dim)}",
    )


def histogram_chart(histogram: pd.DataFrame, dim: str, segment: Sequence[Any]) -> Any:
    """Shares of the won and of the lost deals per band of cycle days, of the clicked segments
    (every segment when none is)."""
    part = histogram[histogram[dim].isin(segment)] if segment else histogram
    which = ", ".join(map(str, segment)) if segment else "every segment"
    top = int(histogram["band_low"].max()) if len(histogram) else 0
    counts = part.groupby(["outcome", "band_low", "band_high", "band"], sort=False)["deals"]
    frame = counts.sum().reset_index()
    totals = frame.groupby("outcome")["deals"].transform("sum")
    frame["share"] = frame["deals"] / totals.where(totals > 0)
    return charts.histogram(
        frame,
        count="share",
        count_kind="percent",
        kind="days",
        group="outcome",
        label="band",
        x_title=f"Days from created to closed (last bar: {top} or more)",
        y_title="Share of the outcome's deals",
        title=f"How long closed deals took: {which}",
    )


def km_chart(curves: pd.DataFrame, dim: str) -> Any:
    return charts.survival_curves(
        _labelled(curves, dim),
        value="share_closed",
        low="share_closed_low",
        high="share_closed_high",
        group=dimension_label(dim),
        n="at_risk",
        reference=0.5,
        selection="segment",
        y_title="Share of deals closed (won or lost)",
        title=f"Time to close by {_segments(dim)}, open deals counted until today",
    )


def cif_chart(curves: pd.DataFrame, dim: str) -> Any:
    return charts.survival_curves(
        _labelled(curves, dim),
        value=("share_won", "share_lost"),
        group=dimension_label(dim),
        n="at_risk",
        selection="segment",
        y_title="Share of deals",
        title=f"Share won and share lost by day, by {_segments(dim)}",
    )


def funnel_chart(stages: pd.DataFrame | Exception, dim: str) -> Any:
    """Stage to stage per segment, the bottleneck highlighted; the reason when there is no
    stage history."""
    title = f"Stage to stage by {_segments(dim)}: who moves on, how long it takes"
    if isinstance(stages, Exception):
        return charts.empty_chart(f"Not available: {stages}", title=title)
    chart = charts.funnel(
        _labelled(stages, dim), group=dimension_label(dim), highlight="is_bottleneck", title=title
    )
    # room on the right for the labels past the longest bar (a static SVG is cut at its width,
    # which vl-convert measures with its own fonts)
    return chart.properties(padding={"left": 8, "top": 8, "right": 48})


def aging_chart(aging: pd.DataFrame, dim: str) -> Any:
    return charts.heatmap(
        aging,
        x="age_band",
        y=dim,
        value="deals",
        kind="count",
        n="deals",
        x_title="Age of the open deal (days since created)",
        y_title=dimension_label(dim),
        value_title="Open deals",
        title=f"How old the open deals are, by {_segments(dim)}",
        empty_message="No open deal matches these filters",
    )


def flow_chart(flow: pd.DataFrame, start: Any, end: Any, currency: str | None) -> Any:
    """The pipeline's movements between the two dates, outflows below zero."""
    chart = charts.kpi_bars(
        _flow_bars(flow),
        category="movement",
        value="amount",
        kind="money",
        currency=currency,
        n="deals",
        selection=None,
        sort=None,
        category_title="Movement",
        value_title="Amount",
        title=f"Open pipeline from the end of {start} to the end of {end}",
    )
    return _compact_axis(chart)


def velocity_chart(
    levers: pd.DataFrame, dim: str, currency: str | None, why: Sequence[str] = ()
) -> Any:
    """Velocity per segment; without a value, why it cannot be computed on this data."""
    chart = charts.kpi_bars(
        levers,
        category=dim,
        value="velocity",
        kind="money",
        currency=currency,
        small_n="small_n",
        n="open",
        sort=None,
        category_title=dimension_label(dim),
        value_title=CATALOGUE["velocity"].label,
        title=f"Sales velocity by {_segments(dim)}",
        **({"empty_message": why[0][:1].upper() + why[0][1:]} if why else {}),
    )
    return _compact_axis(chart)


def levers_chart(levers: pd.DataFrame, dim: str) -> Any:
    long = levers.melt(
        id_vars=[dim, "small_n"],
        value_vars=list(LEVERS),
        var_name="lever",
        value_name="ratio",
    )
    long["lever"] = long["lever"].map(LEVERS)
    return charts.heatmap(
        long,
        x="lever",
        y=dim,
        value="ratio",
        kind="ratio",
        small_n="small_n",
        x_title="Segment ÷ whole selection (above 1 helps velocity)",
        y_title=dimension_label(dim),
        value_title="Ratio",
        selection=None,
        title="Velocity's levers by segment",
    )
