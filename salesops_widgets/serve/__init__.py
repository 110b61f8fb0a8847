"""The dashboards server (``salesops serve``): Voilà over the notebooks, offline, with URL
parameters mapped onto each notebook's parameters cell."""

from ._config import (
    ServeOptions,
    find_jupyter_data,
    parse_pools,
    serve,
    voila_argv,
    voila_config,
)
from ._hooks import (
    DashboardIndex,
    UrlParameters,
    parameterize,
    preheated_kernel_serves,
    url_parameters,
)
from ._index import dashboards, describe

__all__ = [
    "ServeOptions",
    "serve",
    "voila_config",
    "voila_argv",
    "parse_pools",
    "find_jupyter_data",
    "UrlParameters",
    "DashboardIndex",
    "url_parameters",
    "parameterize",
    "preheated_kernel_serves",
    "dashboards",
    "describe",
]
