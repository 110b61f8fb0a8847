"""Charts of segments and strata: KPI bars, heatmaps, segments against the average, tiers."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ._common import (
    EMPTY_MESSAGE,
    Sort,
    category_sort,
    chart_title,
    dark_cells,
    empty_chart,
    fill,
    humanize,
    inline,
    is_empty,
    order,
    point_selection,
    reference_rule,
    require,
    small_n_subtitle,
    small_n_test,
    tip,
    with_note,
    with_selection,
)
from ._theme import ABOVE, BELOW, INK, MUTED, Kind, get_kind

__all__ = ["heatmap", "kpi_bars", "strata_comparison", "transition_heatmap", "vs_average"]

ABOVE_LABEL = "Above average"
BELOW_LABEL = "Below average"
SIGNIFICANT = "significant at 5%"
NOT_SIGNIFICANT = "not significant"
_VS_HELPERS = ("_overall", "_diff", "_direction", "_significance", "_marker")
_DIRECTION_SCALE = alt.Scale(domain=[ABOVE_LABEL, BELOW_LABEL], range=[ABOVE, BELOW])


def _value_tips(
    value: str,
    kind: Kind,
    label: str,
    *,
    low: str | None = None,
    high: str | None = None,
    n: str | None = None,
) -> list[alt.Tooltip]:
    tips = [tip(value, label, kind)]
    if low is not None and high is not None:
        tips += [tip(low, "95% interval from", kind), tip(high, "95% interval to", kind)]
    if n is not None:
        tips.append(tip(n, humanize(n), get_kind("count")))
    return tips


def _interval(base: alt.Chart, low: str | None, high: str | None, axis_title: str) -> list:
    """Error bars from ``low`` to ``high`` on the x axis (none when either is missing)."""
    if low is None or high is None:
        return []
    bars = base.mark_errorbar(ticks=True, color=INK, thickness=1.5)
    return [bars.encode(x=alt.X(f"{low}:Q", title=axis_title), x2=f"{high}:Q")]


def kpi_bars(
    df: pd.DataFrame,
    *,
    category: str,
    value: str,
    kind: str,
    title: str,
    currency: str | None = None,
    low: str | None = None,
    high: str | None = None,
    small_n: str | None = None,
    overall: float | None = None,
    n: str | None = None,
    selection: str | None = "pick",
    sort: Sort = "-x",
    category_title: str | None = None,
    value_title: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """Horizontal bars of one KPI per category, with intervals and "too few to say" in grey.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per category, e.g. ``metrics.pipeline_kpis(data, by="region")``.
    category, value : str
        Columns of the category (y axis) and of the KPI (bar length).
    kind : str
        A key of ``KINDS`` ("money", "percent", "days", "count", "ratio", "number").
    title : str
        What the chart shows, e.g. "Win rate by region".
    currency : str, optional
        Currency code for money titles ("Bookings (USD)").
    low, high : str, optional
        Columns of the interval (error bars), e.g. ``win_rate_low`` and ``win_rate_high``.
    small_n : str, optional
        Boolean column; True rows are drawn grey with the tooltip "too few to say".
    overall : float, optional
        The overall value, drawn as a dashed rule.
    n : str, optional
        A count column shown in the tooltip (e.g. ``closed``).
    selection : str or None
        Name of the click selection on ``category`` (``JupyterChart.selections.<name>``).
    sort : {"-x", "x", None} or list
        By value (descending, ascending), in the frame's order, or in the given order.
    category_title, value_title : str, optional
        Axis titles (default: from the column names; the unit is added to ``value_title``).
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.LayerChart
        The chart; ``empty_chart(empty_message)`` when there is nothing to draw.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"region": ["EMEA", "NA"], "win_rate": [0.31, 0.4]})
    >>> spec = kpi_bars(df, category="region", value="win_rate", kind="percent",
    ...                 title="Win rate by region").to_dict()
    >>> spec["layer"][0]["mark"]["type"]
    'bar'
    """
    if is_empty(df, value):
        return empty_chart(empty_message, title=title)
    require(df, category=category, value=value, low=low, high=high, small_n=small_n, n=n)
    k = get_kind(kind)
    axis_title = k.title(value_title or humanize(value), currency)
    y = alt.Y(
        f"{category}:N",
        title=category_title or humanize(category),
        **category_sort(df, category, value, sort),
    )
    tips = [tip(category, category_title or humanize(category))]
    tips += _value_tips(value, k, value_title or humanize(value), low=low, high=high, n=n)
    base = alt.Chart().encode(y=y, tooltip=[*tips, tip("_note", "Note")])
    x = alt.X(f"{value}:Q", title=axis_title, axis=alt.Axis(format=k.axis_format))
    bars = base.mark_bar(height={"band": 0.7}).encode(x=x, color=fill(small_n))
    bars = with_selection(bars, point_selection(selection, [category]))
    layers = [bars, *_interval(base, low, high, axis_title)]
    subtitle = [small_n_subtitle(df, small_n)]
    if overall is not None and not pd.isna(overall):
        layers.append(reference_rule(overall, k, axis_title=axis_title, label="Overall"))
        subtitle.append(f"Dashed line: overall {k.format(overall, currency)}")
    data = inline(with_note(df, small_n), [category, value, low, high, small_n, n, "_note"])
    return alt.layer(*layers, data=data, title=chart_title(title, subtitle))


def _heat_frame(df: pd.DataFrame, value: str, small_n: str | None) -> pd.DataFrame:
    frame = with_note(df, small_n)
    small = frame[small_n].fillna(False).astype(bool) if small_n else False
    frame["_dark"] = dark_cells(frame[value]) & ~small
    return frame


def _cell_stroke(selection: alt.Parameter | None) -> dict:
    if selection is None:
        return {}
    chosen = alt.when(selection, empty=False)
    return {
        "stroke": chosen.then(alt.value(INK)).otherwise(alt.value("white")),
        "strokeWidth": chosen.then(alt.value(2.5)).otherwise(alt.value(1)),
    }


def _nominal(column: str, df: pd.DataFrame, axis_title: str, channel: type) -> alt.X | alt.Y:
    """A band axis keeping the frame's order of ``column``."""
    scale = alt.Scale(domain=order(df, column))
    return channel(f"{column}:N", title=axis_title, sort=None, scale=scale)


def heatmap(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    value: str,
    kind: str,
    title: str,
    currency: str | None = None,
    small_n: str | None = None,
    n: str | None = None,
    selection: str | None = "cell",
    x_title: str | None = None,
    y_title: str | None = None,
    value_title: str | None = None,
    small_label: str = "too few",
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """A dimension × dimension heatmap of one KPI, each cell labelled with its value.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per (x, y) cell, e.g. ``metrics.segment_kpis(data, by=("region", "size_band"))``.
    x, y, value : str
        Columns of the two dimensions (in the frame's order) and of the KPI (colour, label).
    kind, currency, title, n, value_title :
        As in :func:`kpi_bars`.
    small_n : str, optional
        Boolean column; True cells are grey and labelled ``small_label``.
    selection : str or None
        Name of the click selection on (x, y).
    x_title, y_title : str, optional
        Axis titles (default: from the column names).
    small_label : str
        Label of the small-n cells.
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.LayerChart
        A rect layer and a text layer; ``empty_chart`` when there is nothing to draw.
    """
    if is_empty(df, value):
        return empty_chart(empty_message, title=title)
    require(df, x=x, y=y, value=value, small_n=small_n, n=n)
    k = get_kind(kind)
    label = value_title or humanize(value)
    tips = [tip(x, x_title or humanize(x)), tip(y, y_title or humanize(y))]
    tips += [*_value_tips(value, k, label, n=n), tip("_note", "Note")]
    base = alt.Chart().encode(
        x=_nominal(x, df, x_title or humanize(x), alt.X).axis(labelAngle=0, orient="top"),
        y=_nominal(y, df, y_title or humanize(y), alt.Y),
        tooltip=tips,
    )
    color = alt.Color(
        f"{value}:Q", title=k.title(label, currency), legend=alt.Legend(format=k.axis_format)
    )
    selection_param = point_selection(selection, [x, y])
    rect = base.mark_rect().encode(
        color=fill(small_n, color=color), **_cell_stroke(selection_param)
    )
    if selection_param is not None:
        rect = rect.add_params(selection_param)
    text = alt.Text(f"{value}:Q", format=k.label_format)
    if small_n is not None:
        text = alt.when(small_n_test(small_n)).then(alt.value(small_label)).otherwise(text)
    ink = alt.when("datum._dark").then(alt.value("white")).otherwise(alt.value(INK))
    labels = base.mark_text().encode(text=text, color=ink)
    data = inline(_heat_frame(df, value, small_n), [x, y, value, small_n, n, "_note", "_dark"])
    subtitle = [small_n_subtitle(df, small_n)]
    chart = alt.layer(rect, labels, data=data, title=chart_title(title, subtitle))
    return chart.properties(width=alt.Step(90), height=alt.Step(32))


def _vs_frame(df: pd.DataFrame, value: str, overall: float, significant: str) -> pd.DataFrame:
    frame = df.copy()
    frame["_overall"] = overall
    frame["_diff"] = frame[value] - overall
    frame["_direction"] = np.where(frame["_diff"] >= 0, ABOVE_LABEL, BELOW_LABEL)
    sig = frame[significant].fillna(False).astype(bool)
    frame["_significance"] = np.where(sig, SIGNIFICANT, NOT_SIGNIFICANT)
    frame["_marker"] = np.where(sig, frame["_direction"] + ", " + SIGNIFICANT, "Not significant")
    return frame


def _marker_channels() -> dict:
    """Outline by direction; fill by direction when significant, white (hollow) when not."""
    markers = [f"{ABOVE_LABEL}, {SIGNIFICANT}", f"{BELOW_LABEL}, {SIGNIFICANT}", "Not significant"]
    legend = alt.Legend(title=None, symbolStrokeColor=INK, symbolStrokeWidth=1.5, orient="bottom")
    return {
        "stroke": alt.Stroke("_direction:N", scale=_DIRECTION_SCALE, legend=None),
        "fill": alt.Fill(
            "_marker:N",
            scale=alt.Scale(domain=markers, range=[ABOVE, BELOW, "white"]),
            legend=legend,
        ),
    }


def vs_average(
    df: pd.DataFrame,
    *,
    category: str,
    value: str,
    overall: float,
    kind: str,
    significant: str,
    title: str,
    currency: str | None = None,
    low: str | None = None,
    high: str | None = None,
    n: str | None = None,
    selection: str | None = "pick",
    sort: Sort = "-x",
    category_title: str | None = None,
    value_title: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """Segments ranked against the overall average, significant differences filled.

    Each segment is a dot at its value joined to the overall (a dashed rule) by a segment
    coloured above or below; the dot is filled when ``significant`` is True ("significant at
    5%") and hollow otherwise.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per segment.
    category, value : str
        Columns of the segment and of its KPI.
    overall : float
        The overall value the segments are compared with.
    kind : str
        A key of ``KINDS``.
    significant : str
        Boolean column: the segment differs from the rest at the 5% level.
    title, currency, low, high, n, selection, sort, category_title, value_title, empty_message :
        As in :func:`kpi_bars`.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, value):
        return empty_chart(empty_message, title=title)
    require(df, category=category, value=value, significant=significant, low=low, high=high, n=n)
    k = get_kind(kind)
    axis_title = k.title(value_title or humanize(value), currency)
    y = alt.Y(
        f"{category}:N",
        title=category_title or humanize(category),
        **category_sort(df, category, value, sort),
    )
    tips = [tip(category, category_title or humanize(category))]
    tips += _value_tips(value, k, value_title or humanize(value), low=low, high=high, n=n)
    tips += [tip("_diff", "Against the overall", k, diff=True), tip("_significance", "Test")]
    base = alt.Chart().encode(y=y, tooltip=tips)
    x = alt.X(
        f"{value}:Q",
        title=axis_title,
        axis=alt.Axis(format=k.axis_format),
        scale=alt.Scale(zero=False),
    )
    gap = base.mark_rule(size=3, opacity=0.5).encode(
        x=alt.X("_overall:Q", title=axis_title, scale=alt.Scale(zero=False)),
        x2=f"{value}:Q",
        color=alt.Color("_direction:N", scale=_DIRECTION_SCALE, legend=None),
    )
    dots = base.mark_point(size=110, strokeWidth=2, opacity=1).encode(x=x, **_marker_channels())
    dots = with_selection(dots, point_selection(selection, [category]))
    intervals = [
        layer.mark_errorbar(ticks=False, color=MUTED, thickness=1)
        for layer in _interval(base, low, high, axis_title)
    ]
    rule = reference_rule(overall, k, axis_title=axis_title, label="Overall")
    frame = _vs_frame(df, value, overall, significant)
    data = inline(frame, [category, value, low, high, n, *_VS_HELPERS])
    subtitle = [f"Dashed line: overall {k.format(overall, currency)}. Filled: {SIGNIFICANT}"]
    return alt.layer(gap, *intervals, rule, dots, data=data, title=chart_title(title, subtitle))


def strata_comparison(
    df: pd.DataFrame,
    *,
    tier: str,
    value: str,
    kind: str,
    low: str,
    high: str,
    title: str,
    currency: str | None = None,
    small_n: str | None = None,
    n: str | None = None,
    overall: float | None = None,
    selection: str | None = "tier",
    tier_title: str = "Tier",
    value_title: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """One outcome across tiers, in the tiers' order: a point and its 95% interval per tier.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per tier, e.g. ``metrics.compare_strata(...).table`` (empty tiers stay on the
        axis, without a point).
    tier, value, low, high : str
        Columns of the tier, the outcome and its interval.
    kind, title, currency, small_n, n, value_title, empty_message :
        As in :func:`kpi_bars`.
    overall : float, optional
        The overall value, drawn as a dashed horizontal rule.
    selection : str or None
        Name of the click selection on ``tier``.
    tier_title : str
        Title of the tier axis.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, value):
        return empty_chart(empty_message, title=title)
    require(df, tier=tier, value=value, low=low, high=high, small_n=small_n, n=n)
    k = get_kind(kind)
    axis_title = k.title(value_title or humanize(value), currency)
    x = _nominal(tier, df, tier_title, alt.X).axis(labelAngle=0)
    tips = [tip(tier, tier_title)]
    tips += _value_tips(value, k, value_title or humanize(value), low=low, high=high, n=n)
    base = alt.Chart().encode(x=x, tooltip=[*tips, tip("_note", "Note")])
    y = alt.Y(f"{value}:Q", title=axis_title, axis=alt.Axis(format=k.axis_format))
    whisker = base.mark_rule(size=2).encode(
        y=alt.Y(f"{low}:Q", title=axis_title), y2=f"{high}:Q", color=fill(small_n)
    )
    dots = base.mark_point(filled=True, size=120).encode(y=y, color=fill(small_n))
    dots = with_selection(dots, point_selection(selection, [tier]))
    layers = [whisker, dots]
    subtitle = ["Vertical bars: 95% intervals", small_n_subtitle(df, small_n)]
    if overall is not None and not pd.isna(overall):
        rule = reference_rule(overall, k, axis_title=axis_title, label="Overall", channel="y")
        layers.insert(0, rule)
        subtitle.append(f"Dashed line: overall {k.format(overall, currency)}")
    data = inline(with_note(df, small_n), [tier, value, low, high, small_n, n, "_note"])
    chart = alt.layer(*layers, data=data, title=chart_title(title, subtitle))
    return chart.properties(width=alt.Step(60))


def transition_heatmap(
    df: pd.DataFrame,
    *,
    from_col: str = "tier_a",
    to_col: str = "tier_b",
    count: str = "entities",
    share: str = "row_share",
    title: str,
    from_title: str = "Tier in period A",
    to_title: str = "Tier in period B",
    selection: str | None = "migration",
    empty_message: str = "No entities in either period",
) -> alt.LayerChart | alt.Chart:
    """The tier migration matrix: rows are the first period's tiers, columns the second's.

    Parameters
    ----------
    df : pandas.DataFrame
        Long form, one row per cell, e.g. ``metrics.tier_migration(...)``.
    from_col, to_col : str
        Columns of the tier in period A (rows) and in period B (columns), kept in order.
    count : str
        Entities in the cell (the label).
    share : str
        The cell's share of its row (the colour, 0 to 100%).
    title : str
        What the chart shows.
    from_title, to_title : str
        Axis titles.
    selection : str or None
        Name of the click selection on (from_col, to_col), to list the entities of a cell.
    empty_message : str
        What an empty frame (or one with no entity) shows.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df) or (count in df.columns and df[count].fillna(0).sum() == 0):
        return empty_chart(empty_message, title=title)
    require(df, from_col=from_col, to_col=to_col, count=count, share=share)
    percent, counts = get_kind("percent"), get_kind("count")
    tips = [tip(from_col, from_title), tip(to_col, to_title)]
    tips += [tip(count, humanize(count), counts), tip(share, "Share of the row", percent)]
    base = alt.Chart().encode(
        x=_nominal(to_col, df, to_title, alt.X).axis(labelAngle=0, orient="top"),
        y=_nominal(from_col, df, from_title, alt.Y),
        tooltip=tips,
    )
    color = alt.Color(
        f"{share}:Q",
        title=percent.title("Share of the row"),
        scale=alt.Scale(domain=[0, 1]),
        legend=alt.Legend(format=percent.axis_format),
    )
    selection_param = point_selection(selection, [from_col, to_col])
    rect = base.mark_rect().encode(color=color, **_cell_stroke(selection_param))
    if selection_param is not None:
        rect = rect.add_params(selection_param)
    ink = alt.when("datum._dark").then(alt.value("white")).otherwise(alt.value(INK))
    labels = base.mark_text().encode(text=alt.Text(f"{count}:Q", format=",d"), color=ink)
    frame = df.copy()
    frame["_dark"] = frame[share].fillna(0) > 0.6
    data = inline(frame, [from_col, to_col, count, share, "_dark"])
    subtitle = ["Colour: share of the row's entities. Label: entities"]
    chart = alt.layer(rect, labels, data=data, title=chart_title(title, subtitle))
    return chart.properties(width=alt.Step(70), height=alt.Step(32))
