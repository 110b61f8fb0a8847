"""Reusable ipywidgets components: filter bar, KPI cards, tables, charts, drill-down,
data-quality panel, export, empty and busy states.

Each holds its state in traits, recomputes through the KPI layer in one ``_update()``, and
displays with a static HTML fallback for notebooks executed without a browser (see
``static_mimebundle``)::

    from salesops_widgets import load, metrics
    from salesops_widgets.widgets import FilterBar, DataTable
    data = load("data/samples/default")
    bar = FilterBar(data, preset="last_12_months")
    DataTable(metrics.segment_kpis(data, by=["region"], **bar.selection), currency="USD")

Names are imported on first use, so importing the package does not import altair.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "FilterBar",
    "period_for_preset",
    "previous_period",
    "PRESETS",
    "FILTER_DIMENSIONS",
    "KPICards",
    "KPI_CARDS",
    "cards_from_kpis",
    "DataTable",
    "ChartView",
    "CHART_BUNDLE_URL_ENV",
    "chart_bundle",
    "chart_bundle_route",
    "DetailView",
    "QualityPanel",
    "ExportBar",
    "neutralize_formulas",
    "to_csv_bytes",
    "to_xlsx_bytes",
    "EmptyState",
    "NO_DEALS",
    "Refresher",
    "static_enabled",
    "static_html",
    "static_mimebundle",
    "format_value",
    "format_delta",
]

_WHERE = {
    "FilterBar": "_filters",
    "period_for_preset": "_filters",
    "previous_period": "_filters",
    "PRESETS": "_filters",
    "FILTER_DIMENSIONS": "_filters",
    "KPICards": "_cards",
    "KPI_CARDS": "_cards",
    "cards_from_kpis": "_cards",
    "DataTable": "_table",
    "ChartView": "_chart",
    "CHART_BUNDLE_URL_ENV": "_bundle",
    "chart_bundle": "_bundle",
    "chart_bundle_route": "_bundle",
    "DetailView": "_detail",
    "QualityPanel": "_quality",
    "ExportBar": "_export",
    "neutralize_formulas": "_export",
    "to_csv_bytes": "_export",
    "to_xlsx_bytes": "_export",
    "EmptyState": "_refresh",
    "NO_DEALS": "_refresh",
    "Refresher": "_refresh",
    "static_enabled": "_static",
    "static_html": "_static",
    "static_mimebundle": "_static",
    "format_value": "_format",
    "format_delta": "_format",
}

if TYPE_CHECKING:
    from ._bundle import CHART_BUNDLE_URL_ENV, chart_bundle, chart_bundle_route
    from ._cards import KPI_CARDS, KPICards, cards_from_kpis
    from ._chart import ChartView
    from ._detail import DetailView
    from ._export import ExportBar, neutralize_formulas, to_csv_bytes, to_xlsx_bytes
    from ._filters import (
        FILTER_DIMENSIONS,
        PRESETS,
        FilterBar,
        period_for_preset,
        previous_period,
    )
    from ._format import format_delta, format_value
    from ._quality import QualityPanel
    from ._refresh import NO_DEALS, EmptyState, Refresher
    from ._static import static_enabled, static_html, static_mimebundle
    from ._table import DataTable


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
