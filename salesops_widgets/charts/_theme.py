"""The one chart theme ("salesops") and the value kinds every builder formats with.

Importing this module registers the theme with Altair and enables it. It uses Vega's built-in
colour schemes and the system font stack only, so charts render offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import altair as alt

from ..errors import ParameterError

__all__ = [
    "ABOVE",
    "ACCENT",
    "BELOW",
    "CATEGORY",
    "DIVERGING_SCHEME",
    "FONT",
    "INK",
    "KINDS",
    "Kind",
    "MUTED",
    "PRIMARY",
    "SEQUENTIAL_SCHEME",
    "SMALL_N_GREY",
    "THEME_NAME",
    "get_kind",
    "theme",
]

THEME_NAME = "salesops"

# Okabe & Ito (2008) "Color Universal Design": distinguishable with every common colour-vision
# deficiency. Blue first (the single-series colour), yellow last (weak contrast on white).
CATEGORY = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
PRIMARY = CATEGORY[0]
ACCENT = CATEGORY[3]  # highlighted items (the bottleneck stage)
ABOVE = "#2166AC"  # above the overall average (blue end of the diverging scheme)
BELOW = "#E08214"  # below it (orange end)
SMALL_N_GREY = "#B3B3B3"  # "too few to say"
INK = "#333333"  # text, reference rules
MUTED = "#666666"  # secondary text
SEQUENTIAL_SCHEME = "blues"  # heatmaps: light (low) to dark (high)
DIVERGING_SCHEME = "blueorange"  # differences from an average
FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)


@dataclass(frozen=True)
class Kind:
    """How values of one kind are formatted (d3 format strings) and titled.

    Attributes
    ----------
    axis_format, tooltip_format, label_format, diff_format : str
        d3 formats for axis labels, tooltips, labels printed on marks, and signed differences.
    python_format : str
        The same as ``tooltip_format`` for Python's ``format()`` (subtitles).
    unit : str
        Title suffix; ``{currency}`` is replaced by the caller's currency code.
    """

    axis_format: str
    tooltip_format: str
    label_format: str
    diff_format: str
    python_format: str
    unit: str

    def title(self, label: str, currency: str | None = None) -> str:
        """The axis title with its unit: ``KINDS["money"].title("Bookings", "USD")``.

        Examples
        --------
        >>> KINDS["money"].title("Bookings", "USD")
        'Bookings (USD)'
        >>> KINDS["days"].title("Median cycle")
        'Median cycle (days)'
        >>> KINDS["days"].title("Days since created")  # the unit is already there
        'Days since created'
        """
        if "{currency}" in self.unit:
            return f"{label} ({currency})" if currency and currency not in label else label
        core = self.unit.strip("()")
        return f"{label} {self.unit}" if core and core not in label.lower() else label

    def format(self, value: float, currency: str | None = None) -> str:
        """A value formatted for text outside the chart (subtitles), e.g. ``"36.9%"``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        text = format(value, self.python_format)
        if "{currency}" in self.unit and currency:
            return f"{text} {currency}"
        return f"{text} days" if self.unit == "(days)" else text


KINDS: MappingProxyType[str, Kind] = MappingProxyType(
    {
        "money": Kind(",.0f", ",.0f", ".3~s", "+,.0f", ",.0f", "({currency})"),
        "percent": Kind(".0%", ".1%", ".0%", "+.1%", ".1%", "(%)"),
        "days": Kind(",.0f", ",.0f", ",.0f", "+,.0f", ",.0f", "(days)"),
        "count": Kind(",d", ",d", ",d", "+,d", ",.0f", ""),
        "ratio": Kind(".2f", ".2f", ".2f", "+.2f", ".2f", ""),
        "number": Kind(",.2~f", ",.2~f", ".3~s", "+,.2~f", ",.2f", ""),
    }
)


def get_kind(kind: str) -> Kind:
    """The :class:`Kind` named ``kind``; a ``ParameterError`` listing the kinds otherwise."""
    try:
        return KINDS[kind]
    except KeyError:
        known = ", ".join(KINDS)
        msg = f"chart parameter kind={kind!r} is unknown; use one of: {known}"
        raise ParameterError(msg) from None


def _axis_config() -> dict:
    return {
        "labelFontSize": 12,
        "titleFontSize": 13,
        "titleFontWeight": "normal",
        "labelColor": INK,
        "titleColor": INK,
        "gridColor": "#E5E5E5",
        "domainColor": "#999999",
        "tickColor": "#999999",
        "labelLimit": 220,
        "titlePadding": 8,
    }


@alt.theme.register(THEME_NAME, enable=True)
def theme() -> alt.theme.ThemeConfig:
    """The salesops theme: colourblind-safe colours, system fonts, dashboard-sized text."""
    return {
        "config": {
            "font": FONT,
            "background": "white",
            "padding": 8,
            "view": {
                "continuousWidth": 480,
                "continuousHeight": 300,
                "discreteWidth": {"step": 40},
                "discreteHeight": {"step": 26},
                "stroke": None,
            },
            "title": {
                "fontSize": 16,
                "fontWeight": "bold",
                "anchor": "start",
                "color": INK,
                "subtitleFontSize": 12,
                "subtitleColor": MUTED,
                "offset": 10,
            },
            "axis": _axis_config(),
            "axisQuantitative": {"tickCount": 6},
            "legend": {
                "labelFontSize": 12,
                "titleFontSize": 12,
                "titleFontWeight": "normal",
                "labelColor": INK,
                "titleColor": INK,
                "labelLimit": 220,
            },
            "header": {"labelFontSize": 12, "titleFontSize": 13},
            "range": {
                "category": list(CATEGORY),
                "heatmap": {"scheme": SEQUENTIAL_SCHEME},
                "ramp": {"scheme": SEQUENTIAL_SCHEME},
                "ordinal": {"scheme": SEQUENTIAL_SCHEME},
                "diverging": {"scheme": DIVERGING_SCHEME},
            },
            "mark": {"color": PRIMARY},
            "bar": {"color": PRIMARY},
            "line": {"strokeWidth": 2},
            "point": {"size": 70, "strokeWidth": 2},
            "rule": {"color": INK},
            "text": {"fontSize": 12, "color": INK},
        }
    }
