"""The Segmentation Explorer: KPIs per segment, a dimension × dimension heatmap, segments
ranked against the average with significance, and the deals behind any clicked segment.

Composed from the widget kit; every number comes from salesops_widgets.metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import charts, metrics
from .._catalog import table_formats, too_few_columns
from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ..widgets import (
    ChartView,
    DataTable,
    DetailView,
    ExportBar,
    FilterBar,
    KPICards,
    QualityPanel,
    Refresher,
    cards_from_kpis,
)
from ._catalog import KPIS, RANKABLE, check_kpis
from ._common import (
    Controls,
    Grid,
    Panel,
    dimension_label,
    dimension_options,
    filter_arguments,
    p_text,
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
_TABLE_COLUMNS = (
    "opportunities",
    "open",
    "won",
    "lost",
    "win_rate",
    "win_rate_low",
    "win_rate_high",
    "bookings",
    "asp",
    "median_cycle_days_won",
    "km_median_days_to_close",
    "portfolio_discount",
    "velocity",
    "open_pipeline",
    "small_n",
)


@dataclass(frozen=True)
class _Frames:
    """Everything one refresh computes (pandas frames from the KPI layer)."""

    segments: pd.DataFrame  # by dimension (and second dimension when the table uses both)
    by_first: pd.DataFrame  # by the first dimension only, for the bar charts
    overall: pd.Series
    previous: pd.Series | None
    cross: pd.DataFrame | None  # dimension × second dimension, for the heatmap
    ranking: pd.DataFrame | MissingDataError


class SegmentationExplorer(t.HasTraits):
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
    period, date_field, filters, region
        The initial filter bar: ``period`` is a preset ("all", "last_90_days", "this_quarter",
        "last_quarter", "ytd", "last_12_months"), "YYYY-MM-DD..YYYY-MM-DD" or a (start, end)
        pair; ``region`` ("All" for every one) is one more filter (see ``FilterBar``).
    debounce
        Seconds of quiet before a change of filters recomputes (0: at once).
    top_n
        Deals listed in the drill-down.

    Attributes
    ----------
    filter_bar, controls, cards, segments, kpi_charts, heatmap_view, ranking_view, drilldown,
    quality
        The sections, each displayable on its own (one per notebook cell).
    table, heatmap, ranking, ranking_table, detail, status
        The widgets inside them.
    """

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
        period: str | tuple[Any, Any] = "all",
        date_field: str = "created_date",
        filters: Mapping[str, Any] | None = None,
        region: str = "All",
        debounce: float = 0.3,
        top_n: int = 50,
    ) -> None:
        super().__init__()
        self.data = data
        self._options = dimension_options(data)
        self.filter_bar = FilterBar(
            data,
            **filter_arguments(period, date_field, filters, region),
        )
        self.status = Refresher(debounce=debounce)
        self.cards = KPICards()
        self.table = DataTable(
            currency=data.base_currency,
            title="KPIs per segment",
            formats=table_formats(_TABLE_COLUMNS),
            small_n_columns=too_few_columns(_TABLE_COLUMNS),
        )
        self.kpi_charts = Grid()
        self.heatmap = ChartView(selection="cell")
        self.ranking = ChartView(selection="pick")
        self.ranking_table = DataTable(small_n="small_n", title="Each segment against the rest")
        self.detail = DetailView(
            data, top_n=top_n, selection=self.filter_bar.selection, debounce=debounce
        )
        self.quality = QualityPanel(data)
        self._views: dict[str, ChartView] = {}
        with self.hold_trait_notifications():
            self.dimension = dimension
            self.second_dimension = second_dimension
            self.kpis = list(kpis)
            self.heatmap_kpi = heatmap_kpi
            self.rank_kpi = rank_kpi
        self.controls = self._build_controls()
        self.segments = Panel([self.table, ExportBar(table=self.table, name="segments")])
        self.heatmap_view = Panel([self.heatmap, ExportBar(chart=self.heatmap, name="heatmap")])
        self.ranking_view = Panel([self.ranking, self.ranking_table])
        self.drilldown = Panel([self.detail, ExportBar(table=self.detail.table, name="deals")])
        self.heatmap.observe(self._on_click, "selected")
        self.ranking.observe(self._on_click, "selected")
        self.filter_bar.observe(self._on_change, "selection")
        self.observe(self._on_change, ["dimension", "second_dimension", "kpis"])
        self.observe(self._on_change, ["heatmap_kpi", "rank_kpi"])
        self._apply(self._compute())  # the first view at once, so static runs show it

    # ------------------------------------------------------------------------------ validation

    def _check_dimension(self, value: str, name: str, allow_empty: bool = False) -> str:
        if allow_empty and value in ("", None):
            return ""
        if value not in self._options:
            raise ParameterError(
                f"{name}={value!r} is not a dimension this data has; choose one of "
                f"{', '.join(self._options)}."
            )
        return value

    @t.validate("dimension")
    def _valid_dimension(self, proposal: dict) -> str:
        return self._check_dimension(proposal["value"], "dimension")

    @t.validate("second_dimension")
    def _valid_second(self, proposal: dict) -> str:
        value = self._check_dimension(proposal["value"], "second_dimension", allow_empty=True)
        if value and value == self.dimension:
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
        dims = [(dimension_label(d), d) for d in self._options]
        kpis = [(KPIS[k].label, k) for k in KPIS]
        first = w.Dropdown(options=dims, description="Segments")
        second = w.Dropdown(options=[("(none)", ""), *dims], description="Crossed with")
        shown = w.SelectMultiple(options=kpis, description="Charts", rows=4)
        heat = w.Dropdown(options=kpis, description="Heatmap of")
        rank = w.Dropdown(options=[(KPIS[k].label, k) for k in RANKABLE], description="Rank on")
        for widget, name in (
            (first, "dimension"),
            (second, "second_dimension"),
            (heat, "heatmap_kpi"),
            (rank, "rank_kpi"),
        ):
            w.link((self, name), (widget, "value"))
        shown.value = tuple(self.kpis)
        shown.observe(lambda c: setattr(self, "kpis", list(c.new) or self.kpis), "value")
        return Controls([w.VBox([first, second]), shown, w.VBox([heat, rank]), self.status])

    # ------------------------------------------------------------------------------ update path

    def _on_change(self, change: dict) -> None:
        self.status.schedule(self._compute, apply=self._apply)

    def _on_click(self, change: dict) -> None:
        """A click on a bar, a heatmap cell or a ranked segment: list the deals behind it."""
        self.detail.extra_filters = dict(change["new"])

    def _selection(self) -> dict[str, Any]:
        return dict(self.filter_bar.selection)

    def _compute(self) -> _Frames:
        sel = self._selection()
        by = [self.dimension, *([self.second_dimension] if self.second_dimension else [])]
        by_first = metrics.segment_kpis(self.data, by=[self.dimension], **sel)
        segments = metrics.segment_kpis(self.data, by=by, **sel) if len(by) > 1 else by_first
        overall = metrics.segment_kpis(self.data, **sel).iloc[0]
        before = self.filter_bar.comparison_selection()
        previous = metrics.segment_kpis(self.data, **before).iloc[0] if before else None
        try:
            ranking = metrics.segments_vs_overall(
                self.data, by=self.dimension, kpi=self.rank_kpi, **sel
            )
        except MissingDataError as exc:  # e.g. no list prices: the rest of the page still shows
            ranking = exc
        return _Frames(
            segments, by_first, overall, previous, segments if len(by) > 1 else None, ranking
        )

    def _apply(self, frames: _Frames) -> None:
        """Turn one refresh's frames into the view (one batch of trait changes)."""
        currency = self.data.base_currency
        cards = cards_from_kpis(frames.overall, frames.previous, currency=currency)
        by = [self.dimension, *([self.second_dimension] if self.second_dimension else [])]
        with self.cards.hold_sync(), self.table.hold_sync():
            self.cards.cards = cards
            self.table.data = frames.segments[[*by, *_TABLE_COLUMNS]]
        self._apply_charts(frames.by_first)
        self.heatmap.chart = self._heatmap_chart(frames.cross)
        self.ranking.chart = self._ranking_chart(frames.ranking)
        self.ranking_table.formats = self._ranking_formats()
        ranked = not isinstance(frames.ranking, Exception)
        self.ranking_table.data = (
            _ranking_display(frames.ranking, self.dimension) if ranked else pd.DataFrame()
        )
        self.detail.selection = self._selection()

    def _apply_charts(self, frame: pd.DataFrame) -> None:
        for kpi in self.kpis:
            chart = self._kpi_chart(frame, KPIS[kpi])
            view = self._views.get(kpi)
            if view is None:
                view = self._views[kpi] = ChartView(chart, selection="pick")
                view.observe(self._on_click, "selected")
            else:
                view.chart = chart
        self.kpi_charts.children = [self._views[k] for k in self.kpis]

    # ------------------------------------------------------------------------------ charts

    def _kpi_chart(self, frame: pd.DataFrame, kpi: Any) -> Any:
        label = dimension_label(self.dimension)
        return charts.kpi_bars(
            frame,
            category=self.dimension,
            value=kpi.column,
            kind=kpi.kind,
            currency=self.data.base_currency,
            low=kpi.low,
            high=kpi.high,
            small_n="small_n" if kpi.small_n else None,
            n="closed",
            value_title=kpi.label,
            title=f"{kpi.title} by {label}",
        )

    def _heatmap_chart(self, cross: pd.DataFrame | None) -> Any:
        if cross is None:
            return charts.empty_chart(
                "Choose a second dimension (Crossed with) to see the heatmap",
                title="Heatmap",
            )
        kpi = KPIS[self.heatmap_kpi]
        return charts.heatmap(
            cross,
            x=self.second_dimension,
            y=self.dimension,
            value=kpi.column,
            kind=kpi.kind,
            currency=self.data.base_currency,
            small_n="small_n" if kpi.small_n else None,
            n="closed",
            title=f"{kpi.title}: {dimension_label(self.dimension)} × "
            f"{dimension_label(self.second_dimension)}",
            x_title=dimension_label(self.second_dimension),
            y_title=dimension_label(self.dimension),
        )

    def _ranking_chart(self, ranking: pd.DataFrame | Exception) -> Any:
        kpi = KPIS[self.rank_kpi]
        if isinstance(ranking, Exception):
            return charts.empty_chart(f"Not available: {ranking}", title=kpi.title)
        overall = float(ranking["overall"].iloc[0]) if len(ranking) else float("nan")
        return charts.vs_average(
            ranking,
            category=self.dimension,
            value="value",
            overall=overall,
            kind=kpi.kind,
            currency=self.data.base_currency,
            significant="significant",
            low="low",
            high="high",
            n="n",
            value_title=kpi.label,
            title=f"{kpi.title} by {dimension_label(self.dimension)} against the overall",
        )

    def _ranking_formats(self) -> dict[str, str]:
        kind = KPIS[self.rank_kpi].kind
        return {c: kind for c in ("value", "low", "high", "overall", "difference")} | {"n": "count"}


def _ranking_display(ranking: pd.DataFrame, dim: str) -> pd.DataFrame:
    """segments_vs_overall's frame as read in a table: p-values as text, yes/no."""
    out = ranking[[dim, "value", "low", "high", "n", "overall", "difference", "small_n"]].copy()
    out["p (adjusted)"] = ranking["p_adjusted"].map(p_text)
    out["significant"] = ranking["significant"].map({True: "yes", False: "no"})
    out["test"] = ranking["test"]
    out["note"] = ranking["note"]
    return out
