"""The Segmentation Explorer: KPIs per segment, a dimension × dimension heatmap, segments
ranked against the average with significance, and the deals behind any clicked segment.

Composed from the widget kit; every number comes from salesops_widgets.metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import metrics
from .._catalog import table_formats, too_few_columns
from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ..widgets import ChartView, DataTable, ExportBar, KPICards, cards_from_kpis
from ._base import DRILL, Dashboard, Part
from ._catalog import KPIS, RANKABLE, check_kpis
from ._common import Controls, Grid, Panel
from ._segmentation_display import (
    TABLE_COLUMNS,
    heatmap_chart,
    kpi_chart,
    ranking_chart,
    ranking_display,
    ranking_formats,
)

__all__ = ["DEFAULT_KPIS", "SegmentationExplorer"]

DEFAULT_KPIS = (
    "win_rate",
    "asp",
    "median_cycle_days_won",
    "portfolio_discount",
    "bookings",
    "velocity",
)


@dataclass(frozen=True)
class _Segments:
    """The KPI rows of one refresh (pandas frames from the KPI layer)."""

    segments: pd.DataFrame  # by dimension (and second dimension when the table uses both)
    by_first: pd.DataFrame  # by the first dimension only, for the bar charts
    overall: pd.Series
    previous: pd.Series | None
    cross: pd.DataFrame | None  # dimension × second dimension, for the heatmap


class SegmentationExplorer(Dashboard):
    """KPIs per segment of one or two dimensions, with drill-down to the deals.

    Parameters
    ----------
    data
        The loaded data.
    dimension, second_dimension
        The segments (``second_dimension`` "" for none). The table is by both; the bar charts by
        ``dimension``; the heatmap crosses the two.
    kpis
        The KPI charts shown (columns of ``metrics.segment_kpis``, see ``KPIS``).
    heatmap_kpi, rank_kpi
        The KPI of the heatmap, and the one segments are ranked and tested on.
    period, date_field, filters, region, debounce, top_n
        The initial filter bar, the debounce and the drill-down's length (see ``Dashboard``).

    Attributes
    ----------
    filter_bar, controls, cards, segments, kpi_charts, heatmap_view, ranking_view, drilldown,
    quality
        The sections, each displayable on its own (one per notebook cell).
    table, heatmap, ranking, ranking_table, detail, status
        The widgets inside them.
    """

    PARTS = (
        Part("table", on=("selection", "dimension", "second_dimension")),
        Part("charts", on=("table", "kpis"), computes=False),
        Part("heatmap", on=("table", "heatmap_kpi"), computes=False),
        Part("ranking", on=("selection", "dimension", "rank_kpi")),
        DRILL,
    )

    dimension = t.Unicode(help="First segment dimension (bar charts, table, heatmap rows).")
    second_dimension = t.Unicode("", help="Second dimension ('' for none): table and heatmap.")
    kpis = t.List(t.Unicode(), help="KPIs charted per segment.")
    heatmap_kpi = t.Unicode("win_rate", help="KPI colored in the heatmap.")
    rank_kpi = t.Unicode("win_rate", help=f"KPI segments are ranked on: {', '.join(RANKABLE)}.")

    def __init__(
        self,
        data: SalesData,
        *,
        dimension: str = "size_band",
        second_dimension: str = "",
        kpis: Sequence[str] = DEFAULT_KPIS,
        heatmap_kpi: str = "win_rate",
        rank_kpi: str = "win_rate",
        **options: Any,
    ) -> None:
        super().__init__(data, **options)
        self.cards = KPICards()
        self.table = DataTable(
            currency=data.base_currency,
            title="KPIs per segment",
            formats=table_formats(TABLE_COLUMNS),
            small_n_columns=too_few_columns(TABLE_COLUMNS),
        )
        self.kpi_charts = Grid()
        self.heatmap = ChartView(selection="cell")
        self.ranking = ChartView(selection="pick")
        self.ranking_table = DataTable(small_n="small_n", title="Each segment against the rest")
        self._views: dict[str, ChartView] = {}
        with self.hold_trait_notifications():
            self._set_parameters(
                dimension=dimension,
                second_dimension=second_dimension,
                kpis=kpis,
                heatmap_kpi=heatmap_kpi,
                rank_kpi=rank_kpi,
            )
        self.controls = self._build_controls()
        self.segments = Panel([self.table, ExportBar(table=self.table, name="segments")])
        self.heatmap_view = Panel([self.heatmap, ExportBar(chart=self.heatmap, name="heatmap")])
        self.ranking_view = Panel([self.ranking, self.ranking_table])
        self._follow_clicks(self.heatmap, self.ranking)
        self._start()

    def _set_parameters(self, **values: Any) -> None:
        if "kpis" in values:
            values["kpis"] = list(values["kpis"])
        super()._set_parameters(**values)

    # ------------------------------------------------------------------------------ validation

    @t.validate("dimension")
    def _valid_dimension(self, proposal: dict) -> str:
        return self._dimension(proposal["value"], "dimension")

    @t.validate("second_dimension")
    def _valid_second(self, proposal: dict) -> str:
        if proposal["value"] in ("", None):
            return ""
        value = self._dimension(proposal["value"], "second_dimension")
        if value == self.dimension:
            raise ParameterError(
                f"second_dimension={value!r} is the same as dimension; choose another one, or "
                f"'' for none."
            )
        return value

    @t.validate("kpis")
    def _valid_kpis(self, proposal: dict) -> list[str]:
        return check_kpis(proposal["value"], "kpis", tuple(KPIS))

    @t.validate("heatmap_kpi")
    def _valid_heatmap_kpi(self, proposal: dict) -> str:
        return check_kpis(proposal["value"], "heatmap_kpi", tuple(KPIS))[0]

    @t.validate("rank_kpi")
    def _valid_rank_kpi(self, proposal: dict) -> str:
        return check_kpis(proposal["value"], "rank_kpi", RANKABLE)[0]

    # ------------------------------------------------------------------------------ controls

    def _build_controls(self) -> Controls:
        kpis = [(KPIS[k].label, k) for k in KPIS]
        first = self._dimension_control("dimension")
        second = w.Dropdown(options=[("(none)", ""), *first.options], description="Crossed with")
        w.link((self, "second_dimension"), (second, "value"))
        shown = w.SelectMultiple(options=kpis, value=tuple(self.kpis), description="Charts", rows=4)
        shown.observe(lambda c: setattr(self, "kpis", list(c.new) or self.kpis), "value")
        heat = w.Dropdown(options=kpis, description="Heatmap of")
        rank = w.Dropdown(options=[(KPIS[k].label, k) for k in RANKABLE], description="Rank on")
        w.link((self, "heatmap_kpi"), (heat, "value"))
        w.link((self, "rank_kpi"), (rank, "value"))
        return Controls([w.VBox([first, second]), shown, w.VBox([heat, rank]), self.status])

    # ------------------------------------------------------------------------------ the parts

    def _by(self) -> list[str]:
        return [self.dimension, *([self.second_dimension] if self.second_dimension else [])]

    def _compute_table(self) -> _Segments:
        sel, by = self._selection(), self._by()
        by_first = metrics.segment_kpis(self.data, by=[self.dimension], **sel)
        segments = metrics.segment_kpis(self.data, by=by, **sel) if len(by) > 1 else by_first
        overall = metrics.segment_kpis(self.data, **sel).iloc[0]
        before = self.filter_bar.comparison_selection()
        previous = metrics.segment_kpis(self.data, **before).iloc[0] if before else None
        cross = segments if len(by) > 1 else None
        return _Segments(segments, by_first, overall, previous, cross)

    def _apply_table(self, frames: _Segments) -> None:
        cards = cards_from_kpis(
            frames.overall,
            frames.previous,
            currency=self.data.base_currency,
            report=self.data.report,
        )
        with self.cards.hold_sync(), self.table.hold_sync():
            self.cards.cards = cards
            self.table.data = frames.segments[[*self._by(), *TABLE_COLUMNS]]

    def _apply_charts(self) -> None:
        frame, currency = self._frames["table"].by_first, self.data.base_currency
        for kpi in self.kpis:
            why = self.data.report.warnings_for(kpi)
            chart = kpi_chart(frame, KPIS[kpi], self.dimension, currency, why)
            if kpi in self._views:
                self._views[kpi].chart = chart
            else:
                self._views[kpi] = ChartView(chart, selection="pick")
                self._follow_clicks(self._views[kpi])
        self.kpi_charts.children = [self._views[k] for k in self.kpis]

    def _apply_heatmap(self) -> None:
        cross, kpi = self._frames["table"].cross, KPIS[self.heatmap_kpi]
        dims = [self.dimension, self.second_dimension]
        self.heatmap.chart = heatmap_chart(cross, kpi, dims, self.data.base_currency)

    def _compute_ranking(self) -> pd.DataFrame | MissingDataError:
        try:
            return metrics.segments_vs_overall(
                self.data, by=self.dimension, kpi=self.rank_kpi, **self._selection()
            )
        except MissingDataError as exc:  # e.g. no list prices: the rest of the page still shows
            return exc

    def _apply_ranking(self, ranking: pd.DataFrame | MissingDataError) -> None:
        kpi = KPIS[self.rank_kpi]
        self.ranking.chart = ranking_chart(ranking, kpi, self.dimension, self.data.base_currency)
        with self.ranking_table.hold_sync():
            self.ranking_table.formats = ranking_formats(kpi)
            self.ranking_table.data = ranking_display(ranking, self.dimension)
