"""``salesops serve``: the Voilà configuration, and the server itself."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError, SalesOpsError
from ._hooks import DashboardIndex, UrlParameters

if TYPE_CHECKING:
    from traitlets.config import Config

__all__ = [
    "ServeOptions",
    "voila_config",
    "voila_argv",
    "find_jupyter_data",
    "parse_pools",
    "serve",
]

TEMPLATE = "salesops"
# What a dashboard shows instead of a failed cell's traceback (show_tracebacks=False).
CELL_ERROR_TEXT = (
    "This part of the dashboard could not be computed. Check the parameters in the address "
    "(URL); if they look right, ask whoever runs the dashboards to look at the server log."
)


@dataclass(frozen=True)
class ServeOptions:
    """What ``salesops serve`` was asked for."""

    notebooks: Path
    host: str = "127.0.0.1"
    port: int = 8866
    token: str | None = None  # None: no token (fine on 127.0.0.1 only)
    base_url: str = "/"
    data: str | None = None  # default data_path for every dashboard
    mapping: str | None = None  # default mapping for every dashboard
    cull_idle_seconds: int = 1200  # shut down kernels idle this long (0: never)
    cull_interval_seconds: int = 60
    preheat: int = 1  # preheated kernels kept per dashboard (0: none, every page starts one)
    pools: tuple[tuple[str, int], ...] = ()  # (dashboard, kernels): other pool sizes for these

    def defaults(self) -> dict[str, Any]:
        """The server-side parameter values: ``data_path`` and ``mapping`` when given."""
        from ..runs._plan import absolute_source

        found = {"data_path": self.data, "mapping": self.mapping}
        return {k: absolute_source(v) for k, v in found.items() if v is not None}


def find_jupyter_data() -> Path:
    """This checkout's ``share/jupyter``, which holds the ``salesops`` Voilà template."""
    share = Path(__file__).resolve().parents[2] / "share" / "jupyter"
    if not (share / "voila" / "templates" / TEMPLATE).is_dir():
        raise SalesOpsError(
            f"the {TEMPLATE!r} Voilà template is not in {share}: run salesops serve from a "
            f"checkout of salesops-widgets (pip install -e .)."
        )
    return share


def voila_argv(options: ServeOptions) -> list[str]:
    """Voilà's command line: the notebooks folder (everything else is in :func:`voila_config`)."""
    return [str(options.notebooks)]


def voila_config(options: ServeOptions) -> Config:
    """The traitlets ``Config`` of the Voilà server.

    Sources stripped, tracebacks hidden, our offline ``salesops`` template (it cannot be
    swapped from the URL), ``preheat`` preheated kernels per dashboard, URL parameters through
    a prelaunch hook (and, on a preheated kernel, through the dashboard's state: see
    ``_app.py``), idle kernels culled, and a token only if given.
    """
    from traitlets.config import Config

    c = Config()
    c.Voila.ip = options.host
    c.Voila.port = options.port
    c.Voila.port_retries = 0
    c.Voila.open_browser = False
    c.Voila.base_url = _slashed(options.base_url)
    if options.token:
        c.Voila.token = options.token
    c.VoilaConfiguration.template = TEMPLATE
    c.VoilaConfiguration.allow_template_override = "NO"
    c.VoilaConfiguration.strip_sources = True
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaConfiguration.preheat_kernel = options.preheat > 0 or any(n for _, n in options.pools)
    c.VoilaConfiguration.default_pool_size = max(options.preheat, 0)
    if options.pools:
        pools = {"default": {"pool_size": max(options.preheat, 0)}}
        pools |= {_notebook_name(name): {"pool_size": n} for name, n in options.pools}
        c.VoilaKernelManager.kernel_pools_config = pools
    c.VoilaConfiguration.prelaunch_hook = UrlParameters(options.defaults())
    c.VoilaConfiguration.page_config_hook = DashboardIndex(options.notebooks)
    c.VoilaExecutor.cell_error_instruction = CELL_ERROR_TEXT
    c.MappingKernelManager.cull_idle_timeout = options.cull_idle_seconds
    c.MappingKernelManager.cull_interval = options.cull_interval_seconds
    c.MappingKernelManager.cull_connected = True  # a forgotten open tab does not hold a kernel
    return c


def serve(options: ServeOptions) -> None:
    """Run the Voilà server in this process until it is stopped (Ctrl-C or SIGTERM).

    Raises
    ------
    SalesOpsError
        The template or the notebooks folder cannot be found, or the port is taken.
    """
    _check(options)
    share = str(find_jupyter_data())
    current = os.environ.get("JUPYTER_PATH", "")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (share, current) if p)
    from ._app import SalesOpsVoila

    app = SalesOpsVoila(config=voila_config(options))
    app.initialize(voila_argv(options))
    try:
        app.start()
    except OSError as exc:
        raise SalesOpsError(
            f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}. "
            f"Choose another --port."
        ) from None


def _check(options: ServeOptions) -> None:
    if not options.notebooks.is_dir():
        raise ParameterError(f"--notebooks {options.notebooks}: no such folder.")
    if options.data is not None and "://" not in options.data and not Path(options.data).exists():
        raise ParameterError(f"--data {options.data}: no such file or folder.")
    if options.preheat < 0:
        raise ParameterError(f"--preheat {options.preheat}: give 0 (none) or more kernels.")
    for name, size in options.pools:
        if not (options.notebooks / _notebook_name(name)).is_file() or size < 0:
            raise ParameterError(
                f"--pool {name}={size}: give a dashboard of {options.notebooks} "
                f"(e.g. segmentation_explorer) and 0 or more kernels."
            )
    if not options.token and not _is_loopback(options.host):
        raise ParameterError(
            f"--host {options.host} lets other machines in: set --token TOKEN (or serve on "
            f"127.0.0.1 behind a reverse proxy that authenticates, see docs/deploy.md)."
        )


def _notebook_name(name: str) -> str:
    """A dashboard's notebook file name, given with or without ``.ipynb``."""
    return name if name.endswith(".ipynb") else f"{name}.ipynb"


def parse_pools(texts: list[str]) -> tuple[tuple[str, int], ...]:
    """``--pool NAME=N`` options as (name, kernels) pairs."""
    pools = []
    for text in texts:
        name, _, size = text.partition("=")
        if not name.strip() or not size.strip().isdigit():
            raise ParameterError(
                f"--pool {text!r}: write DASHBOARD=KERNELS, e.g. --pool segmentation_explorer=4."
            )
        pools.append((name.strip(), int(size)))
    return tuple(pools)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _slashed(url: str) -> str:
    return "/" + url.strip("/") + "/" if url.strip("/") else "/"
