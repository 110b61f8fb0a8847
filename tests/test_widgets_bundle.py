"""The charts' vega bundle: one served copy per page under ``salesops serve``, inline elsewhere,
cached on disk; the JupyterChart API (selections, ``.chart``) either way."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import pytest

from salesops_widgets.widgets import ChartView, _bundle

URL = "/base/salesops/static/jupyterchart-test.js"
KB = 1024


def _chart(field="region", name="pick"):
    frame = pd.DataFrame({field: ["EMEA", "APAC", "LATAM"], "n": [3, 4, 5]})
    pick = alt.selection_point(name=name, fields=[field])
    return alt.Chart(frame).mark_bar().encode(x=f"{field}:N", y="n:Q").add_params(pick)


@pytest.fixture
def served(monkeypatch):
    """A kernel of ``salesops serve``: the server told it where the bundle is."""
    monkeypatch.setenv(_bundle.CHART_BUNDLE_URL_ENV, URL)
    monkeypatch.delenv("SALESOPS_RENDER", raising=False)
    return URL


def test_served_charts_carry_a_small_loader_not_the_bundle(served):
    bundle = _bundle.chart_bundle()
    assert len(bundle) > 500 * KB  # what each chart carried before
    views = [ChartView(_chart()) for _ in range(3)]
    for view in views:
        esm = view.widget._esm
        assert isinstance(view.widget, alt.JupyterChart)
        assert len(esm) < 2 * KB, "a chart still ships its own vega bundle"
        assert json.dumps(served) in esm and "import(" in esm
        assert "https://" not in esm and "esm.sh" not in esm
    # the trait the front end receives: the widget's synced state
    states = [v.widget.get_state() for v in views]
    assert all(len(state["_esm"]) < 2 * KB for state in states)
    assert sum(len(json.dumps(state, default=str)) for state in states) < len(bundle)


def test_served_charts_keep_selections_and_update_in_place(served):
    view = ChartView(_chart(), selection="pick")
    widget = view.widget
    widget._vl_selections = {
        "pick": {"value": {"vlPoint": {"or": [{"region": "EMEA"}]}}, "store": []}
    }
    assert view.selected == {"region": ["EMEA"]}
    assert widget.selections.pick.value == [{"region": "EMEA"}]
    new = _chart(field="team", name="pick")
    view.chart = new
    assert view.widget is widget and widget.chart is new and widget.spec == new.to_dict()


def test_without_a_server_the_chart_carries_the_offline_bundle_inline(monkeypatch):
    """JupyterLab, plain Voilà: nothing serves the URL, so each chart ships the bundle (offline)."""
    monkeypatch.delenv(_bundle.CHART_BUNDLE_URL_ENV, raising=False)
    monkeypatch.delenv("SALESOPS_RENDER", raising=False)
    view = ChartView(_chart())
    assert isinstance(view.widget, alt.JupyterChart)
    assert not isinstance(view.widget, _bundle.SharedBundleChart)
    assert view.widget._esm == _bundle.chart_bundle()
    assert len(view.widget._esm) > 500 * KB and "https://esm.sh" not in view.widget._esm


def test_static_render_makes_no_chart_widget(served, monkeypatch):
    monkeypatch.setenv("SALESOPS_RENDER", "static")
    view = ChartView(_chart())
    assert view.widget is None and view.svg().startswith("<svg")


def test_the_loader_imports_one_absolute_same_origin_url():
    """A blob: module cannot resolve a relative specifier: the loader makes the URL absolute
    from the page's address; a path cannot break out of its JSON string."""
    esm = _bundle.loader_esm('/x/"quoted"</script>.js')
    assert 'const path = "/x/\\"quoted\\"</script>.js";' in esm
    assert "new URL(path, document.baseURI)" in esm
    assert esm.count("import(") == 1 and "export default" in esm
    assert _bundle.chart_bundle_route() == f"salesops/static/{_bundle.bundle_path().name}"


def test_the_served_bundle_is_the_charts_own_javascript():
    """What the server serves is what an inline chart would carry: vega-embed and JupyterChart's
    ``render``, as one ES module with a default export the loader calls."""
    bundle = _bundle.chart_bundle()
    assert "export{__default as default}" in bundle and "function render" in bundle
    assert "vega-embed" in bundle and "vega-lite" in bundle


def test_the_offline_bundle_is_bundled_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(alt.JupyterChart, "_is_offline", False)
    monkeypatch.setattr(alt.JupyterChart, "_esm", alt.JupyterChart._esm)
    calls = []
    real = alt.JupyterChart.enable_offline.__func__

    def bundling(cls, offline=True):
        calls.append(offline)
        real(cls, offline)

    monkeypatch.setattr(alt.JupyterChart, "enable_offline", classmethod(bundling))
    _bundle.enable_offline()
    bundle = alt.JupyterChart._esm
    cached = _bundle.bundle_path()
    assert calls == [True] and cached.parent.parent == tmp_path
    assert cached.read_text(encoding="utf-8") == bundle
    assert "https://esm.sh" not in bundle  # the offline bundle, not the CDN loader
    # a new kernel: offline again from the file, without bundling
    monkeypatch.setattr(alt.JupyterChart, "_is_offline", False)
    monkeypatch.setattr(alt.JupyterChart, "_esm", "")
    _bundle.enable_offline()
    assert calls == [True]
    assert alt.JupyterChart._is_offline and alt.JupyterChart._esm == bundle
