"""The static fallback: widget bundles carry text/html (and SVG for charts) for papermill."""

from __future__ import annotations

import altair as alt
import ipywidgets as w
import pandas as pd
import pytest

from salesops_widgets.widgets import (
    ChartView,
    DataTable,
    DetailView,
    KPICards,
    QualityPanel,
    static_enabled,
    static_mimebundle,
)

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(autouse=True)
def outside_voila(monkeypatch):
    for name in ("VOILA_BASE_URL", "VOILA_SERVER_URL", "VOILA_APP_PORT", "VOILA_PREHEAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SALESOPS_STATIC", raising=False)


def _chart():
    frame = pd.DataFrame({"region": ["EMEA", "APAC"], "n": [1, 2]})
    return ChartView(alt.Chart(frame).mark_bar().encode(x="region", y="n"))


def _widgets(small):
    return {
        "table": DataTable(pd.DataFrame({"segment": ["<A>"], "win_rate": [0.5]})),
        "cards": KPICards([{"label": "Win rate", "value": 0.5, "kind": "percent"}]),
        "chart": _chart(),
        "detail": DetailView(small, debounce=0),
        "quality": QualityPanel(small),
    }


def test_every_bundle_has_the_widget_and_static_html(small_canonical):
    expected = {
        "table": "&lt;A&gt;",
        "cards": "50.0%",
        "chart": "<svg",
        "detail": "Globex renewal",  # the largest used deal: 4,000 (tests/_helpers.py)
        "quality": "<details",
    }
    for name, widget in _widgets(small_canonical).items():
        bundle = widget._repr_mimebundle_()
        assert WIDGET in bundle, name
        assert expected[name] in bundle["text/html"], name
    assert _chart()._repr_mimebundle_()["image/svg+xml"].startswith("<svg")


def test_voila_skips_the_static_part(monkeypatch, small_canonical):
    monkeypatch.setenv("VOILA_BASE_URL", "/")
    assert not static_enabled()
    bundle = _chart()._repr_mimebundle_()
    assert WIDGET in bundle and "text/html" not in bundle and "image/svg+xml" not in bundle
    monkeypatch.setenv("SALESOPS_STATIC", "1")
    assert "text/html" in _chart()._repr_mimebundle_()


def test_env_var_turns_it_off(monkeypatch, small_canonical):
    monkeypatch.setenv("SALESOPS_STATIC", "0")
    assert "text/html" not in QualityPanel(small_canonical)._repr_mimebundle_()


def test_a_composed_dashboard_gets_the_fallback_of_its_parts():
    class Dashboard(w.VBox):
        _repr_mimebundle_ = static_mimebundle

    hidden = DataTable(pd.DataFrame({"x": ["secret-row"]}), layout=w.Layout(display="none"))
    board = Dashboard(
        [
            w.HTML("<h2>Segments</h2>"),
            w.HBox([DataTable(pd.DataFrame({"segment": ["EMEA"]})), _chart()]),
            w.Dropdown(options=["a", "b"]),  # a control: nothing to show in a report
            hidden,
        ]
    )
    html = board._repr_mimebundle_()["text/html"]
    assert html.index("<h2>Segments</h2>") < html.index(">EMEA<") < html.index("<svg")
    assert "secret-row" not in html
