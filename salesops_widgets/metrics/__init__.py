"""The KPI layer: one definition per metric (documented in docs/metrics.md).

Every function takes a SalesData plus keyword-only options (``by``, ``filters``, ``period``,
``date_field``), runs its aggregation in the engine, and returns a new pandas DataFrame whose
columns are named as in docs/metrics.md.
"""

from ._deals import DIMENSIONS, available_dimensions, deals, select_deals
from ._stats import MIN_CLOSED, wilson_interval

__all__ = [
    "DIMENSIONS",
    "MIN_CLOSED",
    "available_dimensions",
    "deals",
    "select_deals",
    "wilson_interval",
]
