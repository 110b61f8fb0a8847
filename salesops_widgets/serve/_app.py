"""The Voilà application of ``salesops serve``: Voilà's, with preheated kernels that honour
URL parameters, its page handler setting the ``_xsrf`` cookie, and one route more: the charts'
shared vega bundle.

Preheated kernels: Voilà runs each dashboard in a pool of kernels before any request, and
refuses a ``prelaunch_hook`` with them, since such a kernel cannot know the request's
parameters. Ours can: the hook gives the preheated notebook the server's defaults, the page
handler uses a preheated kernel only when the URL asks for nothing it cannot apply afterwards
(another as-of date needs a fresh kernel, :func:`~._hooks.preheated_kernel_serves`), and the
dashboard in the kernel takes the URL's parameters through its own traits when the request
arrives (``apps/_preheated.py``).

A dashboard page shuts its kernel down when it is closed: on ``beforeunload`` it posts to
``/voila/api/shutdown/<kernel>`` with the ``_xsrf`` cookie's value as the form's ``_xsrf``.
Voilà 0.5 never sets that cookie, so the request is refused (403, "'_xsrf' argument missing",
voila-dashboards/voila#1458) and every closed page leaves its kernel (about 500 MB) running
until the idle culler stops it. Setting the cookie when the page is served makes the
shutdown pass tornado's XSRF check as designed; nothing is relaxed.

The charts' JavaScript (the offline vega bundle, about 900 KB) is served once, at
``{base_url}salesops/static/jupyterchart-<versions>.js`` (:class:`ChartBundleHandler`: that one
file from memory, no path taken from the request), and the server tells its kernels that URL
in ``SALESOPS_CHART_BUNDLE_URL`` (Voilà starts kernels, preheated ones too, with the server's
environment). Every chart of a page then imports that one URL instead of carrying its own copy
(``widgets/_bundle.py``). The name carries the versions, so the file is cached as immutable.
"""

from __future__ import annotations

import asyncio
import os
import re

import voila.app
from jupyter_server.utils import url_path_join
from tornado.web import RequestHandler
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from ._hooks import preheated_kernel_serves

__all__ = ["ChartBundleHandler", "DashboardHandler", "SalesOpsVoila"]

YEAR_S = 365 * 24 * 3600


class DashboardHandler(TornadoVoilaHandler):
    """Voilà's dashboard page, with the ``_xsrf`` cookie its shutdown request sends back."""

    async def get(self, path=None):
        self.xsrf_token  # noqa: B018 - reading it sets the cookie (before the page streams)
        return await super().get(path)

    def should_use_rendered_notebook(self, notebook_data, pool_size, *args, **kwargs) -> bool:
        """Voilà's rule (a kernel in the pool, same template), and the URL's parameters are
        ones the preheated dashboard can apply (a bad one is a 400 error here)."""
        if not super().should_use_rendered_notebook(notebook_data, pool_size, *args, **kwargs):
            return False
        return preheated_kernel_serves(self.request, notebook_data["notebook"])


class ChartBundleHandler(RequestHandler):
    """The charts' offline vega bundle: one file, held in memory, cached as immutable."""

    def initialize(self, body: bytes) -> None:
        self.body = body

    def get(self) -> None:
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", f"public, max-age={YEAR_S}, immutable")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(self.body)  # tornado adds an ETag and answers 304 to a revalidation


class SalesOpsVoila(Voila):
    """Voilà, serving dashboards with :class:`DashboardHandler`, and the charts' bundle."""

    _bundle_route: tuple | None = None

    def init_settings(self) -> dict:
        """Voilà's settings, with our prelaunch hook kept beside preheated kernels (Voilà's
        check refuses the pair; the handler and the hook above make it sound), and a kernel
        manager that preheats one kernel at a time (:func:`one_preheat_at_a_time`). The
        bundle's URL is set first: the kernel manager made here copies the environment for its
        pool."""
        self._bundle_route = self._chart_bundle_route()
        hook, factory = (
            self.voila_configuration.prelaunch_hook,
            voila.app.voila_kernel_manager_factory,
        )
        self.voila_configuration.prelaunch_hook = None
        voila.app.voila_kernel_manager_factory = lambda *a, **k: one_preheat_at_a_time(
            factory(*a, **k)
        )
        try:
            return super().init_settings()
        finally:
            self.voila_configuration.prelaunch_hook = hook
            voila.app.voila_kernel_manager_factory = factory

    def init_handlers(self) -> list:
        routes = [
            (route[0], DashboardHandler, *route[2:]) if route[1] is TornadoVoilaHandler else route
            for route in super().init_handlers()
        ]
        return [self._bundle_route or self._chart_bundle_route(), *routes]

    def _chart_bundle_route(self) -> tuple:
        """The bundle's route; sets ``SALESOPS_CHART_BUNDLE_URL`` for the kernels to come."""
        from ..widgets import CHART_BUNDLE_URL_ENV, chart_bundle, chart_bundle_route

        route = chart_bundle_route()
        body = chart_bundle().encode("utf-8")  # the disk cache, or bundled once here
        # the browser's URL is under base_url; the server's route under server_url (a proxy)
        os.environ[CHART_BUNDLE_URL_ENV] = url_path_join(self.base_url, route)
        served = url_path_join(self.server_url or self.base_url, route)
        return (re.escape(served), ChartBundleHandler, {"body": body})


def one_preheat_at_a_time(manager_class: type) -> type:
    """Voilà's preheating kernel manager, running one pool kernel's notebook at a time.

    Voilà refills a pool as soon as a page takes a kernel from it: when 25 readers open a link
    at once, 25 kernels start running the notebook together and take the cores from the 25
    pages being served (measured: load 52 on 2 cores, first charts after 35-60 s). One at a
    time, the pool refills in the background on about one core and the pages keep the other.
    (A class without pools, ``--preheat 0``, is returned as it is.)
    """
    if not hasattr(manager_class, "get_rendered_notebook"):
        return manager_class

    class OnePreheatAtATime(manager_class):
        _gate: asyncio.Semaphore | None = None

        async def _initialize(self, notebook_path: str, kernel_id: str | None = None, **kwargs):
            if OnePreheatAtATime._gate is None:
                OnePreheatAtATime._gate = asyncio.Semaphore(1)
            async with OnePreheatAtATime._gate:
                content = await super()._initialize(notebook_path, kernel_id, **kwargs)
                await asyncio.wait([content["task"]])  # its notebook ran (or failed: the page says)
            return content

    return OnePreheatAtATime
