"""Charts of the sales cycle: survival / cumulative incidence curves and the stage funnel."""

from __future__ import annotations

from collections.abc import Sequence

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
    reference_rule,
    require,
    tip,
)
from ._theme import ACCENT, INK, PRIMARY, get_kind

__all__ = ["funnel", "survival_curves"]

SERIES = "_series"
VALUE = "_value"


def _long_curves(
    df: pd.DataFrame, time: str, values: list[str], group: str | None, n: str | None = None
) -> pd.DataFrame:
    """Several curve columns (e.g. share_won, share_lost) as one value column and a series
    (the count ``n`` of the tooltip kept on each row)."""
    ids = [c for c in (group, time, n) if c is not None]
    frame = df.melt(id_vars=ids, value_vars=values, var_name=SERIES, value_name=VALUE)
    frame[SERIES] = frame[SERIES].map(humanize)
    return frame


def _curve_channels(group: str | None, several: bool) -> dict:
    """Colour by group (dashes by series when both), else by series, else one colour."""
    if group is not None and several:
        return {
            "color": alt.Color(f"{group}:N", title=humanize(group)),
            "strokeDash": alt.StrokeDash(f"{SERIES}:N", title=None),
        }
    if group is not None:
        return {"color": alt.Color(f"{group}:N", title=humanize(group))}
    if several:
        return {"color": alt.Color(f"{SERIES}:N", title=None)}
    return {}


def _legend_selection(name: str | None, group: str | None, several: bool) -> alt.Parameter | None:
    field = group if group is not None else (SERIES if several else None)
    if name is None or field is None:
        return None
    return alt.selection_point(name=name, fields=[field], bind="legend")


def survival_curves(
    df: pd.DataFrame,
    *,
    time: str = "day",
    value: str | Sequence[str] = "survival",
    low: str | None = None,
    high: str | None = None,
    group: str | None = None,
    title: str,
    y_title: str,
    x_title: str = "Days since created",
    n: str | None = None,
    reference: float | None = None,
    selection: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """Step curves over days with their interval bands: Kaplan–Meier or cumulative incidence.

    Parameters
    ----------
    df : pandas.DataFrame
        Long form, one row per (group, day): ``metrics.time_to_close_curves`` (``survival``,
        ``ci_low``, ``ci_high``; or ``share_closed`` and its limits) or
        ``metrics.time_to_win_curves`` (``share_won``, ``share_lost``).
    time : str
        Column of the day (x axis).
    value : str or sequence of str
        Column(s) of the curve, a share between 0 and 1. Several columns (e.g.
        ``("share_won", "share_lost")``) are drawn as several series.
    low, high : str, optional
        Columns of the pointwise 95% band (one value column only).
    group : str, optional
        Column of the segment, one curve (colour) each.
    title, y_title : str
        Chart title and y axis title ("(%)" is added).
    x_title : str
        X axis title ("(days)" is added unless it already says days).
    n : str, optional
        A count shown in the tooltip, e.g. ``at_risk``.
    reference : float, optional
        A dashed horizontal rule at this share, e.g. 0.5 to read medians.
    selection : str or None
        Name of a legend-bound selection on the group (or the series).
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.LayerChart
    """
    values = [value] if isinstance(value, str) else list(value)
    several = len(values) > 1
    if several and (low is not None or high is not None):
        msg = "chart parameters low=/high= need a single value= column, not several"
        raise ParameterError(msg)
    if is_empty(df):
        return empty_chart(empty_message, title=title)
    require(df, time=time, low=low, high=high, group=group, n=n)
    require(df, **{f"value[{i}]": v for i, v in enumerate(values)})
    if df[values].isna().all().all():
        return empty_chart(empty_message, title=title)
    percent = get_kind("percent")
    frame, y_field = (
        (_long_curves(df, time, values, group, n), VALUE) if several else (df, values[0])
    )
    y_axis = percent.title(y_title)
    y = alt.Y(
        f"{y_field}:Q", title=y_axis, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")
    )
    days = get_kind("days")
    x = alt.X(f"{time}:Q", title=days.title(x_title), axis=alt.Axis(format=days.axis_format))
    base = alt.Chart().encode(x=x, **_curve_channels(group, several))
    tips = _curve_tips(time, y_field, y_title, group=group, several=several, low=low, high=high)
    tips += [tip(n, humanize(n), get_kind("count"))] if n else []
    line = base.mark_line(interpolate="step-after").encode(y=y, tooltip=tips)
    selection_param = _legend_selection(selection, group, several)
    if selection_param is not None:
        faded = alt.when(selection_param).then(alt.value(1)).otherwise(alt.value(0.15))
        line = line.add_params(selection_param).encode(opacity=faded)
    layers = [*_band(base, low, high, group, y_axis), line]
    if reference is not None:
        rule = reference_rule(reference, percent, axis_title=y_axis, label="Reference", channel="y")
        layers.append(rule.mark_rule(strokeDash=[2, 3], color=INK, size=1))
    subtitle = ["Bands: 95% pointwise intervals"] if low else []
    keep = [time, group, y_field, low, high, n, SERIES if several else None]
    return alt.layer(*layers, data=inline(frame, keep), title=chart_title(title, subtitle))


def _curve_tips(
    time: str,
    y_field: str,
    y_title: str,
    *,
    group: str | None,
    several: bool,
    low: str | None,
    high: str | None,
) -> list[alt.Tooltip]:
    percent = get_kind("percent")
    tips = [tip(group, humanize(group))] if group else []
    tips += [tip(SERIES, "Curve")] if several else []
    tips += [tip(time, "Day", get_kind("days")), tip(y_field, y_title, percent)]
    if low is not None and high is not None:
        tips += [tip(low, "95% band from", percent), tip(high, "95% band to", percent)]
    return tips


def _band(
    base: alt.Chart, low: str | None, high: str | None, group: str | None, y_axis: str
) -> list[alt.Chart]:
    """The step-shaped interval band (none without ``low`` and ``high``)."""
    if low is None or high is None:
        return []
    band = base.mark_area(interpolate="step-after", opacity=0.18).encode(
        y=alt.Y(f"{low}:Q", title=y_axis), y2=f"{high}:Q"
    )
    if group is not None:  # the band comes first: its legend entries are drawn as lines
        legend = alt.Legend(symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1)
        band = band.encode(color=alt.Color(f"{group}:N", title=humanize(group), legend=legend))
    return [band]


def _funnel_frame(
    df: pd.DataFrame, conversion: str, median_days: str, highlight: str | None
) -> pd.DataFrame:
    frame = df.copy()
    conv = frame[conversion].map(lambda v: "n/a" if pd.isna(v) else f"{v:.0%}")
    days = frame[median_days].map(lambda v: "not reached" if pd.isna(v) else f"{v:,.0f} days")
    frame["_label"] = conv + " move on · median " + days
    flagged = frame[highlight].fillna(False).astype(bool) if highlight else False
    frame["_highlight"] = flagged
    frame["_label"] = np.where(flagged, frame["_label"] + " · bottleneck", frame["_label"])
    return frame


def _funnel_colors(group: str | None, highlight: str | None) -> dict:
    """Bottleneck in the accent colour (one series) or outlined (several groups)."""
    chosen = alt.when("datum._highlight === true")
    if group is not None:
        return {
            "color": alt.Color(
                f"{group}:N", title=humanize(group), legend=alt.Legend(orient="bottom")
            ),
            "stroke": chosen.then(alt.value(INK)).otherwise(alt.value(None)),
            "strokeWidth": chosen.then(alt.value(2.5)).otherwise(alt.value(0)),
        }
    if highlight is not None:
        return {"color": chosen.then(alt.value(ACCENT)).otherwise(alt.value(PRIMARY))}
    return {"color": alt.value(PRIMARY)}


def funnel(
    df: pd.DataFrame,
    *,
    stage: str = "stage",
    conversion: str = "conversion_to_next",
    median_days: str = "median_days_in_stage",
    highlight: str | None = None,
    group: str | None = None,
    title: str,
    stage_title: str = "Stage",
    selection: str | None = "stage",
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """Stage-to-stage conversion bars labelled with the median days in stage.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per stage (and group), in stage order: ``metrics.stage_durations``.
    stage, conversion, median_days : str
        Columns of the stage, of its conversion to the next stage (0 to 1) and of the median
        days in the stage.
    highlight : str, optional
        Boolean column of the stage to highlight, e.g. ``"is_bottleneck"``.
    group : str, optional
        Column of the segment; each stage then has one bar per segment.
    title : str
        What the chart shows.
    stage_title : str
        Title of the stage axis.
    selection : str or None
        Name of the click selection on the stage (and group).
    empty_message : str
        What an empty frame shows.

    Returns
    -------
    altair.LayerChart
    """
    if is_empty(df, conversion):
        return empty_chart(empty_message, title=title)
    require(df, stage=stage, conversion=conversion, median_days=median_days)
    require(df, highlight=highlight, group=group)
    percent, days = get_kind("percent"), get_kind("days")
    axis_title = percent.title("Conversion to the next stage")
    y = alt.Y(f"{stage}:N", title=stage_title, sort=None, scale=alt.Scale(domain=order(df, stage)))
    offset = {"yOffset": alt.YOffset(f"{group}:N")} if group else {}
    tips = [tip(stage, stage_title), *([tip(group, humanize(group))] if group else [])]
    tips += [tip(conversion, "Conversion to next", percent)]
    tips += [tip(median_days, "Median days in stage", days)]
    base = alt.Chart().encode(y=y, tooltip=tips, **offset)
    x = alt.X(
        f"{conversion}:Q",
        title=axis_title,
        scale=alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format=percent.axis_format),
    )
    bars = base.mark_bar().encode(x=x, **_funnel_colors(group, highlight))
    fields = [stage, group] if group else [stage]
    selection_param = point_selection(selection, fields)
    if selection_param is not None:
        faded = alt.when(selection_param).then(alt.value(1)).otherwise(alt.value(0.35))
        bars = bars.add_params(selection_param).encode(opacity=faded)
    labels = base.mark_text(align="left", dx=4).encode(
        x=alt.X(f"{conversion}:Q", title=axis_title), text="_label:N"
    )
    frame = _funnel_frame(df, conversion, median_days, highlight)
    data = inline(frame, [stage, group, conversion, median_days, "_label", "_highlight"])
    subtitle = ["Label: share that moved on to the next stage, and the median days in the stage"]
    chart = alt.layer(bars, labels, data=data, title=chart_title(title, subtitle))
    return chart.properties(width=360)
