"""Static fallback: a widget's display bundle also carries a plain HTML (and SVG) rendering.

A notebook executed without a browser (papermill, ``salesops run``) keeps only what the kernel
sent: a widget view alone is an empty box there. So each widget of the kit returns the normal
widget bundle PLUS ``text/html`` (tables and cards as HTML, charts as inline SVG). A front end
with the widget manager (JupyterLab, Voilà) shows the live widget; a static HTML report shows
the HTML.

The static part is skipped under Voilà (which sets ``VOILA_*`` variables in its kernels'
environment), where nobody reads it. ``SALESOPS_STATIC=1`` forces it on, ``SALESOPS_STATIC=0`` off.

``SALESOPS_RENDER=static`` goes one step further: no front end will ever show a live widget, so
widgets build only their static rendering. ``salesops run`` sets it for its kernels. A
``ChartView`` then keeps its chart for the SVG and creates no ``alt.JupyterChart``, which saves
the JavaScript bundling of ``enable_offline()`` and about 900 KB of JavaScript per chart in the
executed notebook's widget state. The report shows every chart all the same (as inline SVG).

To give a composed dashboard the same fallback, use ``static_mimebundle`` as its
``_repr_mimebundle_``: it walks the children and joins their static renderings::

    class Dashboard(ipywidgets.VBox):
        _repr_mimebundle_ = static_mimebundle
"""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as w

__all__ = [
    "RENDER_ENV",
    "STATIC_ENV",
    "static_enabled",
    "static_html",
    "static_mimebundle",
    "static_only",
    "under_voila",
]

STATIC_ENV = "SALESOPS_STATIC"
RENDER_ENV = "SALESOPS_RENDER"  # "static": no live widgets at all (set by salesops run)
# set by Voilà 0.5 in every kernel it starts (voila/handler.py and voila_kernel_manager.py)
_VOILA_ENV = ("VOILA_BASE_URL", "VOILA_SERVER_URL", "VOILA_APP_PORT", "VOILA_PREHEAT")


def under_voila() -> bool:
    """True in a kernel started by Voilà."""
    return any(name in os.environ for name in _VOILA_ENV)


def static_only() -> bool:
    """True when no front end will show live widgets (``SALESOPS_RENDER=static``)."""
    return os.environ.get(RENDER_ENV, "").strip().lower() == "static"


def static_enabled() -> bool:
    """Whether bundles carry the static rendering: ``SALESOPS_STATIC``, else always under
    ``SALESOPS_RENDER=static``, else not under Voilà."""
    flag = os.environ.get(STATIC_ENV, "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    return static_only() or not under_voila()


def static_html(widget: Any) -> str:
    """The static HTML of a widget tree: a kit widget's ``to_static_html()``, an HTML widget's
    value, a box's visible children in order; input controls are left out (empty string)."""
    if getattr(widget, "layout", None) is not None and widget.layout.display == "none":
        return ""
    render = getattr(widget, "to_static_html", None)
    if callable(render):
        return render()
    if isinstance(widget, w.HTML | w.HTMLMath):
        return widget.value
    if isinstance(widget, w.Box):
        parts = [static_html(child) for child in widget.children]
        return "<div>" + "".join(p for p in parts if p) + "</div>"
    return ""


def static_mimebundle(self: w.DOMWidget, **kwargs: Any) -> dict[str, Any]:
    """The widget's normal bundle, plus ``text/html`` from ``static_html(self)`` and the
    extra types of ``self._static_bundle()`` when the widget has it (e.g. ``image/svg+xml``)."""
    bundle = w.DOMWidget._repr_mimebundle_(self, **kwargs) or {}
    if not static_enabled():
        return bundle
    extra = getattr(self, "_static_bundle", None)
    if callable(extra):
        bundle.update(extra())
    html = static_html(self)
    if html:
        bundle["text/html"] = html
    return bundle
