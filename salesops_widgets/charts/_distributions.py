"""Distributions and trends from pre-computed numbers: histogram, box, line over time."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ._common import (
    EMPTY_MESSAGE,
    Sort,
    category_sort,
    chart_title,
    empty_chart,
    fill,
    humanize,
    inline,
    is_empty,
    order,
    point_selection,
    require,
    small_n_subtitle,
    tip,
    with_note,
    with_selection,
)
from ._theme import INK, Kind, get_kind

__all__ = ["distribution_box", "histogram", "line_over_time"]


def histogram(
    df: pd.DataFrame,
    *,
    start: str = "band_low",
    end: str = "band_high",
    count: str,
    kind: str,
    title: str,
    group: str | None = None,
    count_kind: str = "count",
    currency: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    label: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """Bars of pre-binned counts, each from its bin's ``start`` to its ``end`` (never raw rows).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per bin (and group), e.g. ``metrics.pocket_price_band``.
    start, end : str
        Columns of the bin edges.
    count : str
        Column of the bar height (``lines``, ``volume``, ``revenue``, ``volume_share``…).
    kind : str
        Kind of the binned values (x axis), a key of ``KINDS``, e.g. "percent".
    title : str
        What the chart shows.
    group : str, optional
        Column of the segment; groups are overlaid in colour.
    count_kind : str
        Kind of ``count`` ("count", or "percent" for shares, "money" for revenue).
    currency : str, optional
        Currency code for money titles.
    x_title, y_title : str, optional
        Axis titles (default: from the column names; units are added).
    label : str, optional
        Column of a bin label shown in the tooltip (e.g. ``band``: "85-90%").
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.Chart
    """
    if is_empty(df, count):
        return empty_chart(empty_message, title=title)
    require(df, start=start, end=end, count=count, group=group, label=label)
    k, kc = get_kind(kind), get_kind(count_kind)
    x_axis = k.title(x_title or humanize(start), currency)
    y_axis = kc.title(y_title or humanize(count), currency)
    tips = [tip(group, humanize(group))] if group else []
    tips += [tip(label, "Bin")] if label else [tip(start, "From", k), tip(end, "To", k)]
    tips.append(tip(count, y_title or humanize(count), kc))
    color = (
        {"color": alt.Color(f"{group}:N", title=humanize(group)), "opacity": alt.value(0.6)}
        if group
        else {}
    )
    chart = alt.Chart(
        inline(df, [start, end, count, group, label]), title=chart_title(title)
    ).mark_bar(stroke="white", strokeWidth=0.5)
    return chart.encode(
        x=alt.X(
            f"{start}:Q",
            title=x_axis,
            axis=alt.Axis(format=k.axis_format),
            scale=alt.Scale(zero=False),
        ),
        x2=f"{end}:Q",
        y=alt.Y(f"{count}:Q", title=y_axis, stack=None, axis=alt.Axis(format=kc.axis_format)),
        y2=alt.datum(0),
        tooltip=tips,
        **color,
    )


def _box_layers(base: alt.Chart, p25: str, median: str, p75: str, axis: alt.Axis) -> list:
    axis_title = axis.title
    box = base.mark_bar(height={"band": 0.6}, opacity=0.75).encode(
        x=alt.X(f"{p25}:Q", title=axis_title, axis=axis), x2=f"{p75}:Q"
    )
    mid = base.mark_tick(thickness=2.5, size=16).encode(
        x=alt.X(f"{median}:Q", title=axis_title), color=alt.value(INK)
    )
    return [box, mid]


def _quantile_tips(
    k: Kind, *, p25: str, median: str, p75: str, low: str | None, high: str | None, n: str | None
) -> list[alt.Tooltip]:
    tips = [
        tip(p25, "25th percentile", k),
        tip(median, "Median", k),
        tip(p75, "75th percentile", k),
    ]
    tips += [tip(low, humanize(low), k), tip(high, humanize(high), k)] if low and high else []
    return tips + ([tip(n, humanize(n), get_kind("count"))] if n else [])


def distribution_box(
    df: pd.DataFrame,
    *,
    category: str,
    p25: str,
    median: str,
    p75: str,
    kind: str,
    title: str,
    low: str | None = None,
    high: str | None = None,
    currency: str | None = None,
    group: str | None = None,
    small_n: str | None = None,
    n: str | None = None,
    selection: str | None = "pick",
    sort: Sort = "-x",
    category_title: str | None = None,
    value_title: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """Box plots from pre-computed quantiles: the IQR box, the median line, optional whiskers.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per category (and group), e.g. ``metrics.deal_discounts(data, by="owner")``
        with ``p25="discount_p25"``, ``median="median_deal_discount"``, ``p75="discount_p75"``.
    category : str
        Column of the category (y axis).
    p25, median, p75 : str
        Columns of the quartiles.
    kind : str
        A key of ``KINDS``.
    title : str
        What the chart shows.
    low, high : str, optional
        Columns of the whisker ends (e.g. p10 and p90).
    currency : str, optional
        Currency code for money titles.
    group : str, optional
        Column of a second dimension (e.g. won / lost); one box per group, side by side.
    small_n, n, category_title, value_title, empty_message :
        As in :func:`kpi_bars`; ``value_title`` defaults to the median's column name.
    selection : str or None
        Name of the click selection on the category (and group).
    sort : {"-x", "x", None} or list
        By median (descending, ascending), in the frame's order, or in the given order.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, median):
        return empty_chart(empty_message, title=title)
    require(df, category=category, p25=p25, median=median, p75=p75, low=low, high=high)
    require(df, group=group, small_n=small_n, n=n)
    k = get_kind(kind)
    axis_title = k.title(value_title or humanize(median), currency)
    y = alt.Y(
        f"{category}:N",
        title=category_title or humanize(category),
        **category_sort(df, category, median, sort),
    )
    tips = [tip(category, category_title or humanize(category))]
    tips += [tip(group, humanize(group))] if group else []
    tips += _quantile_tips(k, p25=p25, median=median, p75=p75, low=low, high=high, n=n)
    offset = {"yOffset": alt.YOffset(f"{group}:N")} if group else {}
    colour = fill(small_n, color=alt.Color(f"{group}:N", title=humanize(group)) if group else None)
    base = alt.Chart().encode(y=y, tooltip=[*tips, tip("_note", "Note")], color=colour, **offset)
    axis = alt.Axis(title=axis_title, format=k.axis_format)
    box, mid = _box_layers(base, p25, median, p75, axis)
    picked = [category, group] if group else [category]
    layers = [with_selection(box, point_selection(selection, picked)), mid]
    subtitle = "Box: 25th to 75th percentile. Line: median"
    if low is not None and high is not None:
        whisker = base.mark_rule(color=INK).encode(
            x=alt.X(f"{low}:Q", title=axis_title), x2=f"{high}:Q"
        )
        layers.insert(0, whisker)
        subtitle += f". Whiskers: {humanize(low).lower()} to {humanize(high).lower()}"
    data = inline(
        with_note(df, small_n), [category, group, p25, median, p75, low, high, small_n, n, "_note"]
    )
    titled = chart_title(title, [subtitle, small_n_subtitle(df, small_n)])
    return alt.layer(*layers, data=data, title=titled)


def _period_axis(df: pd.DataFrame, period: str, axis_title: str) -> alt.X:
    """Time axis for dates; a band axis in the frame's order for labels ("2025-Q1")."""
    if pd.api.types.is_datetime64_any_dtype(df[period]):
        return alt.X(f"{period}:T", title=axis_title)
    scale = alt.Scale(domain=order(df, period))
    return alt.X(
        f"{period}:O", title=axis_title, sort=None, scale=scale, axis=alt.Axis(labelAngle=0)
    )


def line_over_time(
    df: pd.DataFrame,
    *,
    period: str,
    value: str,
    kind: str,
    title: str,
    group: str | None = None,
    currency: str | None = None,
    low: str | None = None,
    high: str | None = None,
    period_title: str | None = None,
    value_title: str | None = None,
    selection: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """A KPI per period as a line with points, one line per group, with an optional band.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per period (and group).
    period : str
        Column of the period: dates (a time axis) or ordered labels such as "2025-Q1".
    value : str
        Column of the KPI.
    kind, title, currency, value_title, empty_message :
        As in :func:`kpi_bars`.
    group : str, optional
        Column of the segment, one line (colour) each.
    low, high : str, optional
        Columns of an interval drawn as a band.
    period_title : str, optional
        Title of the time axis (default: from the column name).
    selection : str or None
        Name of a legend-bound selection on the group.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, value):
        return empty_chart(empty_message, title=title)
    require(df, period=period, value=value, group=group, low=low, high=high)
    k = get_kind(kind)
    axis_title = k.title(value_title or humanize(value), currency)
    x = _period_axis(df, period, period_title or humanize(period))
    colour = {"color": alt.Color(f"{group}:N", title=humanize(group))} if group else {}
    tips = [tip(group, humanize(group))] if group else []
    tips += [tip(period, period_title or humanize(period)), tip(value, humanize(value), k)]
    base = alt.Chart().encode(x=x, **colour)
    y = alt.Y(f"{value}:Q", title=axis_title, axis=alt.Axis(format=k.axis_format))
    line = base.mark_line(point=True).encode(y=y, tooltip=tips)
    if selection is not None and group is not None:
        legend_pick = alt.selection_point(name=selection, fields=[group], bind="legend")
        faded = alt.when(legend_pick).then(alt.value(1)).otherwise(alt.value(0.15))
        line = line.add_params(legend_pick).encode(opacity=faded)
    layers = [line]
    if low is not None and high is not None:
        band = base.mark_area(opacity=0.18).encode(
            y=alt.Y(f"{low}:Q", title=axis_title), y2=f"{high}:Q"
        )
        layers.insert(0, band)
    data = inline(df, [period, group, value, low, high])
    return alt.layer(*layers, data=data, title=chart_title(title)).properties(width=480)
