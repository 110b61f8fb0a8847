"""Voilà hooks: URL parameters onto the parameters cell, and the index page's dashboard list."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat

from ..errors import ParameterError
from ..runs._parameters import check_values, declared_parameters, parse_texts
from ._index import dashboards

__all__ = ["UrlParameters", "DashboardIndex", "url_parameters", "parameterize"]

# Query keys that Voilà or Jupyter Server read themselves: never notebook parameters.
VOILA_KEYS = frozenset({"token", "template", "theme", "classic-tree", "_xsrf"})
# Parameters the server sets for every dashboard: a URL must not point them elsewhere.
LOCKED = {
    "data_path": "--data",
    "mapping": "--mapping",
    "goals_path": "--goals",
    "history_path": "--history",
}


def url_parameters(
    query: Mapping[str, list[bytes | str]],
    nb: nbformat.NotebookNode,
    *,
    defaults: Mapping[str, Any],
    notebook: str,
) -> dict[str, Any]:
    """The typed parameters for one dashboard request.

    Parameters
    ----------
    query
        The request's query arguments (``{"region": [b"EMEA"]}``, as tornado gives them).
    nb
        The notebook being rendered.
    defaults
        Server-side values (``data_path``, ``mapping``) for the notebooks that declare them.
    notebook
        The notebook's name, for messages.

    Raises
    ------
    ParameterError
        An unknown name, a value of the wrong type, or a locked parameter (``data_path``,
        ``mapping``) in the URL.
    """
    texts = {}
    for key, raw in query.items():
        if key in VOILA_KEYS:
            continue
        if key in LOCKED:
            raise ParameterError(
                f"{key} cannot be set in the address: the server sets it for every dashboard "
                f"(salesops serve {LOCKED[key]})."
            )
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in raw]
        texts[key] = values if len(values) > 1 else values[0]
    declared = declared_parameters(nb)
    mine = {k: v for k, v in defaults.items() if k in declared}
    return check_values(declared, mine, notebook=notebook) | parse_texts(
        declared, texts, notebook=notebook
    )


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
    """

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self.defaults = dict(defaults or {})

    def __call__(self, handler, notebook: nbformat.NotebookNode, cwd: str):
        from tornado.web import HTTPError

        name = PurePosixPath(handler.request.path).name
        try:
            params = url_parameters(
                handler.request.query_arguments, notebook, defaults=self.defaults, notebook=name
            )
        except ParameterError as exc:
            raise HTTPError(400, "%s", str(exc), reason="Bad parameter") from None
        return parameterize(notebook, params) if params else None


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
