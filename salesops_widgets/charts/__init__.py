"""Altair chart builders and the one theme. Builders take a DataFrame and return a chart.

They never display anything; widgets and notebooks do. Importing this package registers the
"salesops" theme with Altair and enables it. Every builder takes a pandas frame (the output of a
``salesops_widgets.metrics`` function) plus keyword-only options, puts its data inline (never a
URL), and returns ``empty_chart(message)`` when there is nothing to draw.
"""

from ._common import empty_chart
from ._cycle import funnel, survival_curves
from ._distributions import distribution_box, histogram, line_over_time
from ._goals import STATUS_COLORS, bridge, goal_trend
from ._pricing import binned_scatter, waterfall
from ._render import to_png, to_svg
from ._segments import heatmap, kpi_bars, strata_comparison, transition_heatmap, vs_average
from ._theme import KINDS

__all__ = [
    "KINDS",
    "STATUS_COLORS",
    "bridge",
    "goal_trend",
    "binned_scatter",
    "distribution_box",
    "empty_chart",
    "funnel",
    "heatmap",
    "histogram",
    "kpi_bars",
    "line_over_time",
    "strata_comparison",
    "survival_curves",
    "to_png",
    "to_svg",
    "transition_heatmap",
    "vs_average",
    "waterfall",
]
