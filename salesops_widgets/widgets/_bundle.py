"""The offline vega JavaScript of the charts: one copy per page where a server serves it.

An ``alt.JupyterChart`` carries its whole JavaScript (the offline vega / vega-lite / vega-embed
bundle from vl-convert, about 900 KB) in its synced ``_esm`` trait, and anywidget imports each
model's ``_esm`` from a fresh blob URL: a page of 14 charts downloads and compiles the bundle
14 times.

``salesops serve`` serves the bundle once, at a same-origin URL whose name carries the
versions (``chart_bundle_route``), and tells its kernels that URL in ``SALESOPS_CHART_BUNDLE_URL``.
A chart made in such a kernel is a :class:`SharedBundleChart`: a JupyterChart (same traits,
``selections``, ``.chart``) whose ``_esm`` is a loader of about 1 KB that ``import``s the served
bundle by its absolute URL. The browser's module map fetches and compiles one URL once per
page, so every chart of the page shares one copy, and the HTTP cache keeps it across pages.

Anywhere else (JupyterLab, a plain Voilà, papermill with live charts) the variable is unset and
a chart is a plain JupyterChart carrying the inline bundle, as before: nothing there serves the
URL. Under ``SALESOPS_RENDER=static`` no JupyterChart is made at all (see ``_static``).
Never a CDN: the bundle comes from vl-convert, through a disk cache (:func:`enable_offline`).
"""

from __future__ import annotations

import json
import os
from importlib.metadata import version
from pathlib import Path

import altair as alt

__all__ = [
    "CHART_BUNDLE_URL_ENV",
    "SharedBundleChart",
    "bundle_path",
    "chart_bundle",
    "chart_bundle_route",
    "chart_class",
    "enable_offline",
    "loader_esm",
]

CHART_BUNDLE_URL_ENV = "SALESOPS_CHART_BUNDLE_URL"
# Where salesops serve serves the bundle, under its base URL (the file name carries the versions).
BUNDLE_ROUTE = "salesops/static/"

# The ESM of a SharedBundleChart. __PATH__: the bundle's URL path as a JSON string. The URL is
# made absolute from the page's own address: a module loaded from a blob: URL cannot resolve a
# relative specifier. Every chart's loader imports the same URL, so the page holds one module.
_LOADER = """\
// salesops-widgets: this chart's vega JavaScript is the page's one shared copy (served by
// `salesops serve`, imported once per page), not a bundle of its own.
const path = __PATH__;
let bundle = null;
function load() {
  bundle ??= import(/* webpackIgnore: true */ new URL(path, document.baseURI).href);
  return bundle;
}
function failed(el, error) {
  console.warn(`salesops-widgets: the chart library ${path} did not load`, error);
  const box = document.createElement("div");
  box.style.color = "#b00020";
  box.textContent = `This chart cannot be drawn: its library (${path}) did not load. ` +
    "Reload the page; if it persists, ask whoever runs the dashboards to look at the server.";
  el.replaceChildren(box);
}
export default {
  async render(context) {
    let mod;
    try {
      mod = await load();
    } catch (error) {
      bundle = null;  // a later chart tries again
      failed(context.el, error);
      return;
    }
    return mod.default.render(context);
  },
};
"""


def bundle_path() -> Path:
    """Where the offline JavaScript bundle of this altair / vl-convert / Vega-Lite is kept: the
    user's own cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``), never a shared temp folder,
    since the file's JavaScript runs in every dashboard page."""
    from altair.utils._importers import vl_version_for_vl_convert

    versions = f"altair-{alt.__version__}_vlc-{version('vl-convert-python')}"
    versions += f"_vl-{vl_version_for_vl_convert()}"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "salesops-widgets" / f"jupyterchart-{versions}.js"


def enable_offline() -> None:
    """``alt.JupyterChart.enable_offline()``, with its bundle kept on disk.

    Bundling runs vl-convert's JavaScript engine: 1.7 s and 100 MB of kernel memory on a quiet
    machine, 5 s under load, in every dashboard kernel. The bundle depends only on the versions
    in its file name, so later kernels read it (a few ms) and never start that engine.
    """
    chart_class = alt.JupyterChart
    if chart_class._is_offline:
        return
    path = bundle_path()
    try:
        chart_class._esm = path.read_text(encoding="utf-8")
        chart_class._is_offline = True
        return
    except (OSError, UnicodeDecodeError):
        pass
    chart_class.enable_offline()
    try:  # best effort: a read-only home only costs the bundling again next time
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(chart_class._esm, encoding="utf-8")
        partial.replace(path)  # atomic: a concurrent kernel reads the old file or the whole new one
    except OSError:
        pass


def chart_bundle() -> str:
    """The offline bundle's JavaScript (from the disk cache, or bundled once)."""
    enable_offline()
    return str(alt.JupyterChart._esm)


def chart_bundle_route() -> str:
    """The bundle's URL path under a server's base URL: ``salesops/static/jupyterchart-...js``."""
    return BUNDLE_ROUTE + bundle_path().name


def loader_esm(url: str) -> str:
    """The ESM of a chart whose vega JavaScript is the shared bundle at ``url`` (an absolute path
    on the page's server, or an absolute URL)."""
    return _LOADER.replace("__PATH__", json.dumps(url))


class SharedBundleChart(alt.JupyterChart):
    """A JupyterChart whose ``_esm`` loads the page's one shared vega bundle (see the module
    docstring); everything else is JupyterChart's. Made by :func:`chart_class`."""

    _esm = loader_esm("")


def chart_class() -> type[alt.JupyterChart]:
    """The JupyterChart class for this kernel: :class:`SharedBundleChart` pointed at
    ``$SALESOPS_CHART_BUNDLE_URL`` when a server set it, else an offline ``alt.JupyterChart``
    (its inline bundle from the disk cache)."""
    url = os.environ.get(CHART_BUNDLE_URL_ENV, "").strip()
    if not url:
        enable_offline()  # once per process: the JS bundle from vl-convert, or the disk cache
        return alt.JupyterChart
    SharedBundleChart._esm = loader_esm(url)
    return SharedBundleChart
