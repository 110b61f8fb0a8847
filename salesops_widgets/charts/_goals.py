"""Goal charts: a goal's KPI over time with its interval, its path to the target, and the
status of each measurement; the driver bridge from one period to the next."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ._common import (
    EMPTY_MESSAGE,
    chart_title,
    empty_chart,
    inline,
    is_empty,
    point_selection,
    require,
    tip,
)
from ._theme import get_kind

__all__ = ["STATUS_COLORS", "goal_trend", "bridge"]

# the status of a measurement, as colour (colorblind-safe: blue, orange, vermillion, greys)
STATUS_COLORS = {
    "on track": "#0072B2",
    "at risk": "#E69F00",
    "off track": "#D55E00",
    "too few to say": "#999999",
    "no data": "#CCCCCC",
}


def goal_trend(
    trend: pd.DataFrame,
    path: pd.DataFrame,
    *,
    kind: str,
    title: str,
    currency: str | None = None,
    value_title: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """A goal's measurements as points coloured by status, with their 95% interval as a band
    and whiskers, and the path to the target (baseline, milestones, target) as a dashed line.

    Parameters
    ----------
    trend
        One row per measurement: ``date``, ``value``, ``low``, ``high``, ``status``, ``n``,
        ``source`` (``metrics.track_goals``'s trend, for one goal).
    path
        ``date``, ``value``, ``point`` (the goal's path).
    """
    if is_empty(trend, "value") and is_empty(path, "value"):
        return empty_chart(empty_message, title=title)
    require(trend, date="date", value="value", low="low", high="high", status="status")
    k = get_kind(kind)
    axis = alt.Axis(format=k.axis_format)
    zoom = alt.Scale(zero=False)  # the path and the points, not the distance from 0
    y_title = k.title(value_title or "value", currency)
    x = alt.X("date:T", title="Measured on (end of the window)")
    status = alt.Color(
        "status:N",
        title="Status",
        scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
    )
    tips = [
        tip("source", "Measured"),
        tip("value", value_title or "Value", k),
        tip("low", "95% low", k),
        tip("high", "95% high", k),
        tip("n", "n"),
        tip("expected", "Path expects", k),
        tip("status", "Status"),
    ]
    base = alt.Chart(
        inline(trend, ["date", "value", "low", "high", "n", "expected", "status", "source"])
    ).encode(x=x)
    whiskers = base.mark_rule(opacity=0.6).encode(
        y=alt.Y("low:Q", title=y_title, scale=zoom), y2="high:Q"
    )
    line = base.mark_line(color="#777777", opacity=0.5).encode(y=alt.Y("value:Q", axis=axis))
    points = base.mark_point(filled=True, size=70).encode(
        y=alt.Y("value:Q", title=y_title, axis=axis), color=status, tooltip=tips
    )
    target = (
        alt.Chart(inline(path, ["date", "value", "point"]))
        .mark_line(
            strokeDash=[6, 4], color="#009E73", point={"color": "#009E73", "shape": "diamond"}
        )
        .encode(
            x=x,
            y=alt.Y("value:Q", title=y_title),
            tooltip=[tip("point", "Path"), tip("date", "Date"), tip("value", "Value", k)],
        )
    )
    subtitle = ["Dashed green: the path to the target (baseline, milestones, target)"]
    return alt.layer(whiskers, line, target, points, title=chart_title(title, subtitle)).properties(
        width=480
    )


def bridge(
    steps: pd.DataFrame,
    *,
    kind: str = "money",
    title: str,
    currency: str | None = None,
    value_title: str = "Bookings",
    zoom: bool = False,
    selection: str | None = None,
    empty_message: str = EMPTY_MESSAGE,
) -> alt.LayerChart | alt.Chart:
    """A bridge (waterfall) from period A's value through each effect to period B's.

    Parameters
    ----------
    steps
        One row per bar, in order: ``step`` (its name), ``amount`` (the level for the first and
        last rows, the signed effect for the others).
    zoom
        Start the axis near the lowest level instead of at 0, so that effects small against
        the levels (an ASP's price and mix) show; the level bars then start at the axis.
    selection
        Name of a click selection on ``step``.
    """
    if is_empty(steps, "amount"):
        return empty_chart(empty_message, title=title)
    require(steps, step="step", amount="amount")
    k = get_kind(kind)
    f = steps[["step", "amount"]].reset_index(drop=True).copy()
    levels = f.index.isin([0, len(f) - 1])
    running = f["amount"].where(~levels, 0.0).cumsum() + f["amount"].iloc[0]
    f["top"] = running.where(~levels, f["amount"])
    f["bottom"] = (running - f["amount"]).where(~levels, 0.0)
    f["kind"] = [
        "level" if lvl else ("up" if a >= 0 else "down")
        for lvl, a in zip(levels, f["amount"], strict=True)
    ]
    f.loc[len(f) - 1, "bottom"] = 0.0
    if zoom:
        ends = pd.concat([f["top"], f.loc[~levels, "bottom"]])
        floor = max(0.0, ends.min() - 2 * (ends.max() - ends.min()))
        f.loc[levels, "bottom"] = floor
    colors = alt.Scale(domain=["level", "up", "down"], range=["#56B4E9", "#009E73", "#D55E00"])
    chart = (
        alt.Chart(inline(f, ["step", "amount", "top", "bottom", "kind"]))
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=list(f["step"]), title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "bottom:Q",
                title=k.title(value_title, currency),
                axis=alt.Axis(format=k.axis_format),
                scale=alt.Scale(zero=not zoom),
            ),
            y2="top:Q",
            color=alt.Color("kind:N", scale=colors, legend=None),
            tooltip=[tip("step", "Step"), tip("amount", "Amount", k)],
        )
    )
    pick = point_selection(selection, ["step"])
    if pick is not None:
        chart = chart.add_params(pick)
    note = ["The axis does not start at 0: the levels are cut to show the effects"] if zoom else []
    return chart.properties(title=chart_title(title, note), width=420)
