"""A dashboard in a preheated Voilà kernel takes the URL parameters of the page that uses it.

``salesops serve`` keeps kernels that have run a dashboard's notebook with its defaults before
any request. When a page is opened, Voilà hands it one of them and sends the request (its query
string) to the kernel over a websocket (``voila.utils.wait_for_request``). Here a thread waits
for it; the query string is then read against the notebook's parameters cell (the same parser
as the server's, so a value means the same in both) and applied, on the kernel's event loop, to
every dashboard of the kernel through ``Dashboard.apply_parameters``: the traits the controls
set, one refresh. The server only hands out a preheated kernel when the URL asks for nothing
that needs the data loaded again (``serve/_hooks.preheated_kernel_serves``).

Outside a preheated kernel (JupyterLab, papermill, a fresh Voilà kernel, whose notebook got
the URL's parameters before it ran) nothing here runs.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs

__all__ = ["follow_page", "page_parameters"]

_dashboards: list[weakref.ref] = []  # the dashboards of this kernel
_request: dict[str, Any] = {}  # "query": the page's query string, once it came
_lock = threading.Lock()


def follow_page(dashboard: Any) -> None:
    """Apply the page's URL parameters to ``dashboard`` when its request comes (at once if it
    has come); nothing outside a preheated Voilà kernel."""
    if os.environ.get("VOILA_PREHEAT") != "True":
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # not in a kernel's event loop
    with _lock:
        _dashboards.append(weakref.ref(dashboard))
        came = "query" in _request
        first = len(_dashboards) == 1
    if came:
        _apply([dashboard])
    elif first:
        threading.Thread(target=_wait, args=(loop,), name="salesops-page", daemon=True).start()


def _wait(loop: asyncio.AbstractEventLoop) -> None:
    from voila.utils import wait_for_request

    wait_for_request()  # blocks until Voilà sends the request's info (into os.environ)
    with _lock:
        _request["query"] = os.environ.get("QUERY_STRING", "")
        _request["script"] = os.environ.get("SCRIPT_NAME", "")
        dashboards = [d for d in (ref() for ref in _dashboards) if d is not None]
    loop.call_soon_threadsafe(_apply, dashboards)


def page_parameters(query: str, notebook: Path) -> dict[str, Any]:
    """The dashboard parameters a query string sets for ``notebook``: typed by its parameters
    cell, with the ones not in the query at their defaults; load parameters (``as_of``: the
    kernel has loaded its data) left out. ``{}`` for an empty query."""
    import nbformat

    from ..runs._parameters import LOAD_PARAMETERS, declared_parameters, url_parameters

    arguments = parse_qs(query, keep_blank_values=True)
    if not arguments:
        return {}
    nb = nbformat.read(notebook, as_version=4)
    asked = url_parameters(arguments, nb, defaults={}, notebook=notebook.name)
    declared = declared_parameters(nb)
    values = {name: p.default for name, p in declared.items()} | asked
    return {k: v for k, v in values.items() if k not in LOAD_PARAMETERS}


def _apply(dashboards: list[Any]) -> None:
    """Apply the page's parameters; a bad one is shown in the dashboard's status line."""
    from ..errors import SalesOpsError

    notebook = Path.cwd() / PurePosixPath(_request.get("script", "")).name
    for dashboard in dashboards:
        try:
            values = page_parameters(_request["query"], notebook)
            if values:
                dashboard.apply_parameters(values)
        except (SalesOpsError, OSError) as exc:
            dashboard.status.message = f"Could not apply the address's parameters: {exc}"
