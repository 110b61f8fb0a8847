"""Static renderings of a chart (SVG, PNG) through vl-convert: no browser, no network."""

from __future__ import annotations

import altair as alt

__all__ = ["to_png", "to_svg"]


def _spec(chart: alt.TopLevelMixin) -> dict:
    return chart.to_dict()


def _vl_version() -> str:
    # altair's schema version ("v6.4.1") in vl-convert's spelling ("6.4")
    major, minor = alt.SCHEMA_VERSION.lstrip("v").split(".")[:2]
    return f"{major}.{minor}"


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as a standalone SVG document (text).

    Examples
    --------
    >>> import altair as alt, pandas as pd
    >>> to_svg(alt.Chart(pd.DataFrame({"x": [1]})).mark_bar().encode(x="x:Q")).startswith("<svg")
    True
    """
    import vl_convert as vlc

    return vlc.vegalite_to_svg(_spec(chart), vl_version=_vl_version())


def to_png(chart: alt.TopLevelMixin, *, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes (``scale`` 2 for a sharp image on high-density screens)."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(_spec(chart), vl_version=_vl_version(), scale=scale)
