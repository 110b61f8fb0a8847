"""Voilà hooks: URL parameters onto the parameters cell, and the index page's dashboard list."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat

from ..errors import ParameterError
from ..runs._parameters import LOAD_PARAMETERS, declared_parameters, url_parameters
from ._index import dashboards

__all__ = [
    "UrlParameters",
    "DashboardIndex",
    "url_parameters",
    "parameterize",
    "preheated_kernel_serves",
]


def parameterize(nb: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """A copy of ``nb`` with papermill's injected-parameters cell after its parameters cell."""
    from papermill.parameterize import parameterize_notebook

    nb = copy.deepcopy(nb)
    nb.metadata.setdefault("papermill", nbformat.NotebookNode())
    for cell in nb.cells:  # papermill reads cell.metadata.tags of every cell
        cell.metadata.setdefault("tags", [])
    return parameterize_notebook(nb, dict(parameters))


class UrlParameters:
    """Voilà's ``prelaunch_hook``: URL query parameters (and the server's defaults) onto the
    notebook's parameters cell, the way papermill does it for ``salesops run``.

    A bad parameter stops the request with a 400 page that says what is wrong; no kernel starts.
    A preheated kernel's notebook (``handler`` is None: no request yet) gets the server's
    defaults only; the request's parameters reach it later (see ``apps/_preheated.py``).
    """

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self.defaults = dict(defaults or {})

    def __call__(self, handler, notebook: nbformat.NotebookNode, cwd: str):
        if handler is None:
            params = url_parameters({}, notebook, defaults=self.defaults, notebook="(preheated)")
        else:
            params = request_parameters(handler.request, notebook, self.defaults)
        return parameterize(notebook, params) if params else None


def request_parameters(request, notebook: nbformat.NotebookNode, defaults: Mapping[str, Any]):
    """The typed parameters of a tornado request for ``notebook``; a 400 error if one is bad."""
    from tornado.web import HTTPError

    name = PurePosixPath(request.path).name
    try:
        return url_parameters(request.query_arguments, notebook, defaults=defaults, notebook=name)
    except ParameterError as exc:
        raise HTTPError(400, "%s", str(exc), reason="Bad parameter") from None


def preheated_kernel_serves(request, notebook: nbformat.NotebookNode) -> bool:
    """Whether a preheated kernel of ``notebook`` can show what ``request`` asks for.

    It ran the notebook with its defaults before the request came, and takes the URL's
    dashboard parameters afterwards through the dashboard's own state; but it has loaded its
    data, so a URL that asks for another as-of date (a load parameter) needs a fresh kernel.
    A bad parameter raises the 400 error here, before any kernel is used.
    """
    asked = request_parameters(request, notebook, {})
    declared = declared_parameters(notebook)
    return all(
        asked[name] == declared[name].default for name in LOAD_PARAMETERS.intersection(asked)
    )


class DashboardIndex:
    """Voilà's ``page_config_hook``: adds ``salesopsDashboards`` (title and one line per
    notebook) to the page config of a folder page, for our index template."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def __call__(self, page_config: dict, notebook_path: str = "", **_: Any) -> dict:
        folder = (self.root / (notebook_path or "")).resolve()
        if folder.is_dir() and folder.is_relative_to(self.root):
            page_config["salesopsDashboards"] = dashboards(folder)
        return page_config
