"""ChartView: offline JupyterChart, the named selection as a browser sets it, empty state."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import ChartView, EmptyState


def _chart(frame=None, name="pick", field="region"):
    frame = (
        pd.DataFrame({"region": ["EMEA", "APAC", "LATAM"], "n": [3, 4, 5]})
        if frame is None
        else frame
    )
    pick = alt.selection_point(name=name, fields=[field])
    return alt.Chart(frame).mark_bar().encode(x=f"{field}:N", y="n:Q").add_params(pick)


def _click(view, name, points):
    """What the browser sends when points of selection ``name`` are clicked."""
    value = {"vlPoint": {"or": points}} if points else None
    view.widget._vl_selections = {name: {"value": value, "store": []}}


def test_the_chart_is_offline():
    view = ChartView(_chart())
    assert isinstance(view.widget, alt.JupyterChart)
    assert view.children == (view.widget,)
    assert "esm.sh" not in view.widget._esm and "https://" not in view.widget._esm[:2000]


def test_a_click_sets_selected():
    view = ChartView(_chart(), selection="pick")
    assert view.selected == {}
    _click(view, "pick", [{"region": "EMEA"}])
    assert view.selected == {"region": ["EMEA"]}
    _click(view, "pick", [{"region": "EMEA"}, {"region": "LATAM"}])
    assert view.selected == {"region": ["EMEA", "LATAM"]}
    _click(view, "pick", [])
    assert view.selected == {}


def test_the_first_point_selection_is_followed_by_default():
    view = ChartView(_chart(name="segment"))
    _click(view, "segment", [{"region": "APAC"}])
    assert view.selected == {"region": ["APAC"]}


def test_changing_the_chart_updates_in_place():
    view = ChartView(_chart())
    widget = view.widget
    _click(view, "pick", [{"region": "EMEA"}])
    new = _chart(pd.DataFrame({"team": ["T1", "T2"], "n": [1, 2]}), field="team")
    view.chart = new
    assert view.widget is widget  # same widget, new spec
    assert widget.spec == new.to_dict()
    assert view.selected == {}  # a new chart starts unselected
    _click(view, "pick", [{"team": "T2"}])
    assert view.selected == {"team": ["T2"]}


def test_empty_or_missing_chart_shows_the_empty_state():
    view = ChartView(_chart(pd.DataFrame({"region": [], "n": []})))
    assert isinstance(view.children[0], EmptyState)
    assert view.widget is None  # no JupyterChart built for nothing
    view.chart = None
    assert isinstance(view.children[0], EmptyState)
    assert "No deals match" in view.to_static_html()
    view.chart = _chart()
    assert view.children == (view.widget,)


def test_unknown_selection_name_and_non_charts_are_refused():
    with pytest.raises(ParameterError, match="selection_point"):
        ChartView(_chart(), selection="brush")
    with pytest.raises(ParameterError, match="Altair chart"):
        ChartView(pd.DataFrame())


def test_static_rendering_is_svg():
    view = ChartView(_chart())
    bundle = view._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg")
    assert "<svg" in bundle["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_a_message_chart_shows_its_message_not_a_chart():
    from salesops_widgets.charts import empty_chart

    view = ChartView(empty_chart("Choose a second dimension"), selection="cell")
    assert isinstance(view.children[0], EmptyState)
    assert view.children[0].message == "Choose a second dimension"
    assert "Choose a second dimension" in view.to_static_html()


def test_static_only_keeps_the_chart_for_its_svg(monkeypatch):
    """SALESOPS_RENDER=static (salesops run's kernels): no JupyterChart, the SVG all the same."""
    monkeypatch.setenv("SALESOPS_RENDER", "static")
    view = ChartView(_chart(), selection="pick")
    assert view.widget is None and view.children == ()
    bundle = view._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg") and "EMEA" in bundle["image/svg+xml"]
    assert "<svg" in bundle["text/html"]
    view.chart = _chart(pd.DataFrame({"team": ["T1", "T2"], "n": [1, 2]}), field="team")
    assert view.widget is None and "T2" in view.svg()
    view.chart = None
    assert isinstance(view.children[0], EmptyState)
    # a selection the chart does not have is refused as it is with a live chart
    with pytest.raises(ParameterError, match="selection_point"):
        ChartView(_chart(), selection="brush")
    with pytest.raises(ParameterError, match="point selections: segment"):
        ChartView(_chart(name="segment"), selection="pick")
