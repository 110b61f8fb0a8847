"""Pricing charts: the price waterfall and discount against deal size as a binned heatmap."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..errors import ParameterError
from ._common import (
    EMPTY_MESSAGE,
    chart_title,
    empty_chart,
    humanize,
    inline,
    is_empty,
    order,
    point_selection,
    require,
    tip,
)
from ._theme import BELOW, INK, PRIMARY, Kind, get_kind

__all__ = ["binned_scatter", "waterfall"]

ELEMENT_LABELS = {
    "list": "List price",
    "on_invoice_discount": "On-invoice discount",
    "invoice": "Invoice price",
    "rebate": "Rebates",
    "freight": "Freight",
    "payment_terms_cost": "Payment terms",
    "pocket": "Pocket price",
    "net": "Net price",
}
PRICE, DEDUCTION = "Price level", "Deduction"


def _is_level(frame: pd.DataFrame, element_kind: str | None) -> pd.Series:
    """Which rows are price levels (bars from 0): ``kind == "price"``, else first and last."""
    if element_kind is not None:
        return frame[element_kind].astype(str).str.lower().eq("price")
    level = pd.Series(False, index=frame.index)
    level.iloc[[0, -1]] = True
    return level


def _steps(
    df: pd.DataFrame, amount: str, element_kind: str | None, share: str | None
) -> pd.DataFrame:
    """Running totals: each deduction falls from the level reached so far."""
    frame = df.reset_index(drop=True).copy()
    level = _is_level(frame, element_kind)
    starts, ends, running = [], [], 0.0
    for value, is_level in zip(frame[amount].fillna(0.0), level, strict=True):
        start, end = (0.0, value) if is_level else (running, running - value)
        starts.append(start)
        ends.append(end)
        running = end
    frame["_start"], frame["_end"] = starts, ends
    frame["_top"] = np.maximum(frame["_start"], frame["_end"])
    frame["_step"] = np.where(level, PRICE, DEDUCTION)
    shown = frame[share] if share is not None else frame[amount]
    frame["_signed"] = np.where(level, shown, -shown)
    return frame


def waterfall(
    df: pd.DataFrame,
    *,
    element: str = "element",
    amount: str = "amount",
    kind: str = "money",
    currency: str | None = None,
    title: str,
    element_kind: str | None = "kind",
    share: str | None = "share_of_list",
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """The price waterfall: from list price through each deduction down to pocket price.

    Price levels (list, invoice, pocket) are bars from zero; each deduction is a bar falling
    from the level reached so far, in another colour. Labels give each step as a share of
    list (or as an amount when ``share`` is None).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per element, in order: ``metrics.price_waterfall`` (for one group).
    element, amount : str
        Columns of the element name and of its amount (deductions as positive amounts).
    kind : str
        Kind of the amounts: "money", or "percent" when ``amount="share_of_list"``.
    currency : str, optional
        Currency code for money titles.
    title : str
        What the chart shows.
    element_kind : str or None
        Column saying "price" (a level) or "deduction"; None: the first and last rows are
        the levels, every other row a deduction.
    share : str or None
        Column of the share of list, used for the labels and the tooltip.
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, amount):
        return empty_chart(empty_message, title=title)
    require(df, element=element, amount=amount, element_kind=element_kind, share=share)
    k = get_kind(kind)
    frame = _steps(df, amount, element_kind, share)
    frame["_element"] = frame[element].map(lambda e: ELEMENT_LABELS.get(e, humanize(e)))
    x = alt.X(
        "_element:N",
        title=None,
        sort=None,
        scale=alt.Scale(domain=frame["_element"].tolist()),
        axis=alt.Axis(labelAngle=0, labelExpr="split(datum.label, ' ')"),
    )
    tips = [tip("_element", "Element"), tip(amount, humanize(amount), k)]
    tips += [tip(share, "Share of list", get_kind("percent"))] if share else []
    base = alt.Chart().encode(x=x, tooltip=tips)
    colour = alt.Scale(domain=[PRICE, DEDUCTION], range=[PRIMARY, BELOW])
    axis_title = k.title(humanize(amount) if amount != "amount" else "Price", currency)
    bars = base.mark_bar(width={"band": 0.7}).encode(
        y=alt.Y("_start:Q", title=axis_title, axis=alt.Axis(format=k.axis_format)),
        y2="_end:Q",
        color=alt.Color("_step:N", scale=colour, title=None, legend=alt.Legend(orient="bottom")),
    )
    label_format = get_kind("percent").tooltip_format if share else k.label_format
    labels = base.mark_text(baseline="bottom", dy=-4, color=INK).encode(
        y=alt.Y("_top:Q", title=axis_title), text=alt.Text("_signed:Q", format=label_format)
    )
    columns = ["_element", amount, share, "_start", "_end", "_top", "_step", "_signed"]
    subtitle = ["Labels: share of list price" if share else ""]
    chart = alt.layer(bars, labels, data=inline(frame, columns), title=chart_title(title, subtitle))
    return chart.properties(width=alt.Step(85))


def _bin_channel(
    df: pd.DataFrame, start: str, end: str | None, kind: Kind, axis_title: str, channel: str
) -> dict:
    """Quantitative bins from ``start`` to ``end``, or ordered bands when ``end`` is None."""
    pos, pos2 = (alt.X, alt.X2) if channel == "x" else (alt.Y, alt.Y2)
    if end is not None:
        axis = alt.Axis(format=kind.axis_format)
        return {
            channel: pos(f"{start}:Q", title=axis_title, axis=axis),
            f"{channel}2": pos2(f"{end}:Q"),
        }
    domain = order(df, start)
    if pd.api.types.is_numeric_dtype(df[start]):
        domain = sorted(domain, reverse=channel == "y")
    axis = alt.Axis(labelAngle=0) if channel == "x" else alt.Axis()
    scale = alt.Scale(domain=domain)
    return {channel: pos(f"{start}:N", title=axis_title, sort=None, scale=scale, axis=axis)}


def _corridor_layer(
    corridor: pd.DataFrame, x: alt.X, x_field: str, low: str, high: str, axis_title: str
) -> alt.Chart:
    """Dashed lines through the corridor's lower and upper percentile per x bin."""
    long = corridor.melt(id_vars=[x_field], value_vars=[low, high], var_name="_bound")
    long["_bound"] = "Corridor " + long["_bound"].astype(str)
    long = long.rename(columns={"value": "_corridor"})
    return (
        alt.Chart(inline(long, [x_field, "_bound", "_corridor"]))
        .mark_line(point=alt.OverlayMarkDef(color=INK), color=INK, strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("_corridor:Q", title=axis_title),
            strokeDash=alt.StrokeDash("_bound:N", title=None),
            tooltip=[tip("_bound", "Line"), tip("_corridor", "Value", get_kind("percent"))],
        )
    )


def binned_scatter(
    df: pd.DataFrame,
    *,
    x_bin: str,
    y_bin: str,
    count: str,
    title: str,
    x_end: str | None = None,
    y_end: str | None = None,
    x_kind: str = "money",
    y_kind: str = "percent",
    currency: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    corridor: pd.DataFrame | None = None,
    corridor_low: str = "p25",
    corridor_high: str = "p75",
    selection: str | None = "cell",
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """A 2-D binned heatmap of counts (e.g. discount against deal size), never raw points.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per (x bin, y bin) with a count; empty bins may be left out.
    x_bin, y_bin : str
        Columns of the bins: their lower edges (with ``x_end``/``y_end``) or labels.
    count : str
        Column of the number of deals (or lines) in the cell: the colour.
    title : str
        What the chart shows.
    x_end, y_end : str, optional
        Columns of the upper edges; without them the bins are ordered bands.
    x_kind, y_kind : str
        Kinds of the two axes (keys of ``KINDS``): by default money (deal size) and percent
        (discount).
    currency : str, optional
        Currency code for money titles.
    x_title, y_title : str, optional
        Axis titles (default: from the column names; units are added).
    corridor : pandas.DataFrame, optional
        The corridor per x bin: columns ``x_bin``, ``corridor_low`` and ``corridor_high`` (in
        the y axis' units), drawn as dashed lines. Needs a quantitative y (``y_end``).
    corridor_low, corridor_high : str
        Columns of the corridor's lower and upper percentile.
    selection : str or None
        Name of the click selection on (x_bin, y_bin), to list the deals of a cell.
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, count):
        return empty_chart(empty_message, title=title)
    require(df, x_bin=x_bin, y_bin=y_bin, count=count, x_end=x_end, y_end=y_end)
    kx, ky = get_kind(x_kind), get_kind(y_kind)
    x_axis = kx.title(x_title or humanize(x_bin), currency)
    y_axis = ky.title(y_title or humanize(y_bin), currency)
    x_channels = _bin_channel(df, x_bin, x_end, kx, x_axis, "x")
    y_channels = _bin_channel(df, y_bin, y_end, ky, y_axis, "y")
    tips = [tip(x_bin, humanize(x_bin), kx if x_end else None)]
    tips += [tip(y_bin, humanize(y_bin), ky if y_end else None)]
    tips.append(tip(count, humanize(count), get_kind("count")))
    colour = alt.Color(f"{count}:Q", title=humanize(count), scale=alt.Scale(type="sqrt"))
    rect = alt.Chart().mark_rect().encode(**x_channels, **y_channels, color=colour, tooltip=tips)
    selection_param = point_selection(selection, [x_bin, y_bin])
    if selection_param is not None:
        chosen = alt.when(selection_param, empty=False)
        rect = rect.add_params(selection_param).encode(
            stroke=chosen.then(alt.value(INK)).otherwise(alt.value(None)),
            strokeWidth=chosen.then(alt.value(2)).otherwise(alt.value(0)),
        )
    layers = [rect]
    if corridor is not None and not corridor.empty:
        if y_end is None:
            msg = "binned_scatter: corridor= needs a quantitative y axis; pass y_end="
            raise ParameterError(msg)
        require(corridor, x_bin=x_bin, corridor_low=corridor_low, corridor_high=corridor_high)
        x = x_channels["x"]
        layers.append(_corridor_layer(corridor, x, x_bin, corridor_low, corridor_high, y_axis))
    data = inline(df, [x_bin, x_end, y_bin, y_end, count])
    chart = alt.layer(*layers, data=data, title=chart_title(title))
    return chart if x_end is not None else chart.properties(width=alt.Step(80))
