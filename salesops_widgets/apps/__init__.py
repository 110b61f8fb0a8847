"""Dashboards: one class per notebook, composed from the widget kit.

Each part of a dashboard (filter bar, KPI cards, tables, charts, drill-down, data quality) is
an attribute that a notebook cell displays on its own; all of them share one update path.
"""

from ._catalog import KPIS
from ._cycle import SalesCycleAcceleration
from ._drivers import DEFAULT_PATH, DriverTree
from ._goals import GoalTracking
from ._pricing import StickerShock
from ._segmentation import DEFAULT_KPIS, SegmentationExplorer
from ._stratification import StratificationComparisons

__all__ = [
    "DEFAULT_KPIS",
    "DEFAULT_PATH",
    "DriverTree",
    "GoalTracking",
    "KPIS",
    "SalesCycleAcceleration",
    "SegmentationExplorer",
    "StickerShock",
    "StratificationComparisons",
]
