"""The standalone HTML report of an executed notebook: no code, every chart, no network request."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

__all__ = ["render_report", "external_references", "STATIC_PRIORITY"]

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_NAME = "salesops_report"

# Output types in the order the report prefers them. The widget view
# (application/vnd.jupyter.widget-view+json) is left out on purpose: a static file has no kernel,
# so a widget shows the static text/html or image/svg+xml fallback its display bundle carries.
# application/javascript is left out too: it would run code from the notebook in the reader's
# browser, and the scripts it loads usually come from a CDN.
STATIC_PRIORITY = [
    "text/html",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "text/markdown",
    "text/latex",
    "text/plain",
]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_STATIC_TYPES = ("text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown")
NO_STATIC_VIEW = (
    '<p class="salesops-no-static"><em>An interactive view is here: open this notebook as a '
    "dashboard (<code>salesops serve</code>) to use it.</em></p>"
)

# A script, stylesheet, image or frame loaded from another host (http:, https: or //host).
_EXTERNAL_TAG = re.compile(
    r"<(script|link|img|iframe|source|embed)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?"
    r"(?:https?:)?//(?!127\.0\.0\.1[:/])[^>]*>(?:\s*</\1>)?",
    re.IGNORECASE,
)
_EXTERNAL_REF = re.compile(
    r"(?:\b(?:src|href)\s*=\s*[\"']?|url\(\s*[\"']?|@import\s+[\"'])"
    r"((?:https?:)?//(?!127\.0\.0\.1[:/])[^\"'\s)>]+)",
    re.IGNORECASE,
)


def render_report(nb: nbformat.NotebookNode, *, footer: str = "") -> str:
    """Render an executed notebook as one standalone HTML page.

    Parameters
    ----------
    nb
        The executed notebook.
    footer
        A line shown at the bottom (what was run, on which data, when).

    Returns
    -------
    str
        HTML with no code cells and no prompts, charts as inline SVG, and no reference to any
        other host: the page makes no network request.
    """
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config({"NbConvertBase": {"display_data_priority": STATIC_PRIORITY}})
    exporter = HTMLExporter(
        config=config,
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {"salesops_run": footer, "metadata": {"name": _title(nb)}}
    html, _ = exporter.from_notebook_node(static_outputs(nb), resources=resources)
    return _EXTERNAL_TAG.sub("", html)


def static_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` ready for a static page.

    Widget outputs without a static fallback get a note instead of their text repr
    (``VBox(children=...)``), and the saved widget state is dropped (no widget manager runs).
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data and not any(t in data for t in _STATIC_TYPES):
                data["text/html"] = NO_STATIC_VIEW
    return nb


def external_references(html: str) -> list[str]:
    """Every URL of another host that a page would load (src, stylesheet href, CSS url/import).

    Links a reader may click (``<a href>``) are not loads and are not listed.
    """
    html = re.sub(r"<a\b[^>]*>", "", html, flags=re.IGNORECASE)
    return _EXTERNAL_REF.findall(html)


def _title(nb: nbformat.NotebookNode) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return nb.metadata.get("title", "Report")
