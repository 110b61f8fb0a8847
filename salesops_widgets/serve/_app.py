"""The Voilà application of ``salesops serve``: Voilà's, with its page handler setting the
``_xsrf`` cookie.

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

__all__ = ["DashboardHandler", "SalesOpsVoila"]


class DashboardHandler(TornadoVoilaHandler):
    """Voilà's dashboard page, with the ``_xsrf`` cookie its shutdown request sends back."""

    async def get(self, path=None):
        self.xsrf_token  # noqa: B018 - reading it sets the cookie (before the page streams)
        return await super().get(path)


class SalesOpsVoila(Voila):
    """Voilà, serving dashboards with :class:`DashboardHandler`."""

    def init_handlers(self) -> list:
        return [
            (route[0], DashboardHandler, *route[2:]) if route[1] is TornadoVoilaHandler else route
            for route in super().init_handlers()
        ]
