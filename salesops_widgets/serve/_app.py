"""The Voilà application of ``salesops serve``: Voilà's, with preheated kernels that honour
URL parameters, and its page handler setting the ``_xsrf`` cookie.

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
"""

from __future__ import annotations

from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from ._hooks import preheated_kernel_serves

__all__ = ["DashboardHandler", "SalesOpsVoila"]


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


class SalesOpsVoila(Voila):
    """Voilà, serving dashboards with :class:`DashboardHandler`."""

    def init_settings(self) -> dict:
        """Voilà's settings, with our prelaunch hook kept beside preheated kernels (Voilà's
        check refuses the pair; the handler and the hook above make it sound)."""
        hook = self.voila_configuration.prelaunch_hook
        self.voila_configuration.prelaunch_hook = None
        try:
            return super().init_settings()
        finally:
            self.voila_configuration.prelaunch_hook = hook

    def init_handlers(self) -> list:
        return [
            (route[0], DashboardHandler, *route[2:]) if route[1] is TornadoVoilaHandler else route
            for route in super().init_handlers()
        ]
