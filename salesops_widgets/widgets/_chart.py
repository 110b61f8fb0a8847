"""An Altair chart as a live widget, whose named point selection drives a drill-down.

The chart is shown with ``alt.JupyterChart`` in offline mode: its JavaScript comes from
vl-convert, never from a CDN. (``JupyterChart(chart, offline=True)`` does not do that: the
keyword is ignored with a DeprecationWarning; ``JupyterChart.enable_offline()`` does.) Under
``salesops serve`` every chart of a page shares one served copy of that JavaScript (a
``SharedBundleChart``, see ``_bundle``); elsewhere each chart carries it inline.

Under ``SALESOPS_RENDER=static`` (``salesops run``: no browser) no JupyterChart is created; the
chart is kept for its static SVG only (see ``_static``).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import ipywidgets as w
import pandas as pd
import traitlets as t
from altair.utils.selection import PointSelection

from ..errors import ParameterError
from . import _bundle
from ._html import esc, message_html
from ._refresh import NO_DEALS, EmptyState
from ._static import static_mimebundle, static_only

__all__ = ["ChartView", "chart_is_empty", "selected_values"]


def chart_is_empty(chart: Any) -> bool:
    """True when every DataFrame behind the chart (and its layers or panels) has no row."""
    frames: list[pd.DataFrame] = []
    other = False

    def walk(node: Any) -> None:
        nonlocal other
        data = getattr(node, "data", alt.Undefined)
        if isinstance(data, pd.DataFrame):
            frames.append(data)
        elif data is not alt.Undefined and data is not None:
            other = True  # URL or inline values: assume it has rows
        for prop in ("layer", "hconcat", "vconcat", "concat"):
            children = getattr(node, prop, alt.Undefined)
            for child in children if isinstance(children, list) else ():
                walk(child)
        spec = getattr(node, "spec", alt.Undefined)  # facet / repeat
        if spec is not alt.Undefined and spec is not None:
            walk(spec)

    walk(chart)
    return not other and bool(frames) and all(f.empty for f in frames)


def empty_message_of(chart: Any) -> str | None:
    """The message of a chart built by ``charts.empty_chart`` (its ``usermeta``), else None."""
    meta = getattr(chart, "usermeta", alt.Undefined)
    if isinstance(meta, dict) and meta.get("empty"):
        return str(meta.get("message") or NO_DEALS)
    return None


def selected_values(selection: PointSelection | None) -> dict[str, list[Any]]:
    """A point selection's value as ``{field: [values]}`` (values in click order, unique)."""
    out: dict[str, list[Any]] = {}
    for point in getattr(selection, "value", None) or []:
        for field, value in point.items():
            values = out.setdefault(field, [])
            if value not in values:
                values.append(value)
    return out


def point_selections(chart: alt.TopLevelMixin) -> list[str]:
    """The names of the chart's top-level point selections with fields or encodings: the ones
    ``JupyterChart.selections`` exposes as a ``PointSelection``."""
    names = []
    params = getattr(chart, "params", alt.Undefined)
    for param in params if params is not alt.Undefined else ():
        select = getattr(param, "select", alt.Undefined)
        if select is alt.Undefined:
            continue
        select = select if isinstance(select, dict) else select.to_dict()
        if select["type"] == "point" and (select.get("fields") or select.get("encodings")):
            name = param.name
            names.append(name.to_json().strip('"') if isinstance(name, alt.ParameterName) else name)
    return names


def _jupyter_chart(chart: alt.TopLevelMixin) -> alt.JupyterChart:
    # the page's one shared bundle under salesops serve, else the inline offline bundle
    chart_class = _bundle.chart_class()
    # SVG, not canvas: sharp at any zoom, and the marks are elements a test can find and click
    return chart_class(chart, embed_options={"renderer": "svg", "actions": False})


class ChartView(w.VBox):
    """Shows an Altair chart live; ``selected`` follows its named point selection.

    Parameters
    ----------
    chart
        An ``alt.Chart`` (or layered/concatenated chart); None or a chart on an empty frame
        shows the empty state.
    selection
        The name of the point selection to follow (e.g. "pick"); default: the chart's first
        point selection.

    Examples
    --------
    >>> view = ChartView(chart, selection="pick")  # doctest: +SKIP
    >>> link = lambda change: setattr(detail, "extra_filters", change.new)  # doctest: +SKIP
    >>> view.observe(link, "selected")  # doctest: +SKIP
    """

    chart = t.Any(None, allow_none=True, help="The Altair chart shown (None: empty state).")
    selection = t.Unicode(
        None, allow_none=True, help="Name of the point selection followed (None: the first)."
    )
    selected = t.Dict(
        read_only=True, help="Field -> selected values of the followed selection; {} if none."
    )
    empty_message = t.Unicode(NO_DEALS, help="Shown instead of an empty chart.")

    def __init__(
        self, chart: alt.TopLevelMixin | None = None, *, selection: str | None = None, **kwargs
    ) -> None:
        self._jc: alt.JupyterChart | None = None
        self._followed: str | None = None
        self._svg: tuple[Any, str] | None = None
        self._empty = EmptyState()
        super().__init__(**kwargs)
        self.selection = selection
        self.chart = chart
        self._update()

    @property
    def widget(self) -> alt.JupyterChart | None:
        """The underlying JupyterChart (None until a non-empty chart was shown, and always
        under ``SALESOPS_RENDER=static``)."""
        return self._jc

    @t.validate("chart")
    def _valid_chart(self, proposal: dict) -> Any:
        chart = proposal["value"]
        if chart is not None and not isinstance(chart, alt.TopLevelMixin):
            raise ParameterError(
                f"chart must be an Altair chart (alt.Chart and friends), not "
                f"{type(chart).__name__}."
            )
        return chart

    @t.observe("chart", "selection", "empty_message")
    def _on_change(self, change: dict) -> None:
        self._update()

    def _blank_message(self) -> str | None:
        """What to say instead of the chart, or None when there is a chart to draw."""
        if self.chart is None or chart_is_empty(self.chart):
            return self.empty_message
        return empty_message_of(self.chart)

    def _update(self) -> None:
        self.set_trait("selected", {})
        blank = self._blank_message()
        if blank is not None:
            self._empty.message = blank
            self.children = [self._empty]
            return
        if static_only():  # no browser will show it: keep the chart for its SVG only
            self._followed = self._selection_name(point_selections(self.chart))
            self.children = []
            return
        if self._jc is None:
            self._jc = _jupyter_chart(self.chart)
        elif self._jc.chart is not self.chart:
            self._jc.chart = self.chart  # in place: the same widget, a new spec
        self._follow()
        self.children = [self._jc]

    def _follow(self) -> None:
        """Watch the named point selection of the current chart (a new chart gets a new
        ``selections`` object, so this runs after every chart change)."""
        selections = self._jc.selections
        points = [
            name
            for name in selections.trait_names()
            if isinstance(getattr(selections, name), PointSelection)
        ]
        name = self._followed = self._selection_name(points)
        if name is not None:
            selections.observe(self._on_selection, names=name)

    def _selection_name(self, points: list[str]) -> str | None:
        """The selection to follow among the chart's point selections ``points``."""
        name = self.selection or (points[0] if points else None)
        if name is not None and name not in points:
            raise ParameterError(
                f"selection={name!r} is not a point selection of this chart (its point "
                f"selections: {', '.join(points) or 'none'}). Add "
                f'alt.selection_point(name="{name}", fields=[...]) to the chart.'
            )
        return name

    def _on_selection(self, change: dict) -> None:
        self.set_trait("selected", selected_values(change["new"]))

    # ----------------------------------------------------------------------------- static

    def svg(self) -> str:
        """The current chart as SVG (vl-convert), cached per chart."""
        if self._svg is None or self._svg[0] is not self.chart:
            from ..charts import to_svg

            self._svg = (self.chart, to_svg(self.chart))
        return self._svg[1]

    def _static_svg(self) -> str | None:
        if self._blank_message() is not None:
            return None
        try:
            return self.svg()
        except Exception as exc:  # a spec vl-convert cannot draw: say so, don't break display
            return f"<!-- chart not drawn: {esc(exc)} -->"

    def _static_bundle(self) -> dict[str, str]:
        svg = self._static_svg()
        return {"image/svg+xml": svg} if svg and svg.startswith("<svg") else {}

    def to_static_html(self) -> str:
        svg = self._static_svg()
        if svg is None:
            return message_html(self._blank_message() or self.empty_message, kind="empty")
        return f'<div class="salesops-chart">{svg}</div>'

    _repr_mimebundle_ = static_mimebundle
