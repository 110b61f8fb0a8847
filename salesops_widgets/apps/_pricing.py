"""Sticker Shock: list prices, discounts, price realization and leakage. Who discounts, how
much, whether it buys anything, and what a pricing corridor or a discount cap would recover.

Composed from the widget kit; every number comes from salesops_widgets.metrics. Views that
need a table or column the data lacks (line items, list prices, loss reasons) say which one,
and the rest of the page still shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import metrics
from ..data import SalesData
from ..errors import ParameterError
from ..widgets import ChartView, DataTable, ExportBar, KPICards
from ..widgets._detail import merge_filters
from ..widgets._filters import filter_options
from . import _pricing_charts as plot
from . import _pricing_display as show
from ._base import DRILL, Dashboard, Part
from ._common import Controls, Grid, Panel, attempt, dimension_label
from ._pricing_controls import cap_slider, compare_controls

__all__ = ["StickerShock"]


class StickerShock(Dashboard):
    """List prices, discounts, price realization and leakage, with what-ifs and drill-down.

    Parameters
    ----------
    data
        The loaded data. Works on opportunities with ``list_amount``; the pocket price views
        need ``line_items``; each view says what it needs when the data lacks it.
    segment
        The dimension the waterfalls compare, the dispersion and leakage are split by, and the
        pricing guidance is given per.
    compare_segments
        Two values of ``segment`` whose waterfalls are shown side by side (empty: the two with
        the most deals).
    corridor
        The corridor percentiles (low, high): of per-deal discount per deal size band, of
        pocket price % of list for leakage, and the floor and stretch of the pricing guidance.
    discount_bands
        Edges of the discount bands of "does discount buy wins?" and of the what-if.
    size_edges
        Edges of the deal size bands (on list_amount) of the discount × deal size heatmap.
    cap
        The discount cap of the what-if (0.2: at most 20% off list).
    period, date_field, filters, region, debounce, top_n
        The initial filter bar, the debounce, and the deals listed in the outliers, a heatmap
        cell and the drill-down (see ``Dashboard``).

    Attributes
    ----------
    filter_bar, controls, cards, waterfall_view, pocket_view, dispersion_view, size_view,
    wins_view, lost_view, leakage_view, realization_view, guidance_view, what_if_view,
    drilldown, quality
        The sections, each displayable on its own (one per notebook cell).
    waterfall_note, waterfall, waterfalls, pocket_band, pocket_spread, dispersion, heatmap,
    outliers, cell_deals, win_rates, cycle, band_table, tests, lost, lost_table, leakage_chart,
    leakage_tables, realization, trend, guidance, what_if_cards, what_if_notes, what_if_table,
    detail, status
        The widgets inside them.
    segment_values
        The values of ``segment`` with their deal counts (what ``compare_segments`` offers).
    """

    PARTS = (
        # every view but the what-if; a new segment refreshes it through _on_segment
        Part(
            "views",
            on=("selection", "compare_segments", "corridor", "discount_bands", "size_edges"),
        ),
        Part("what_if", on=("selection", "cap", "discount_bands")),
        Part("cards", on=("views", "what_if"), computes=False),
        Part("cell", on=("cell",)),  # a click on the heatmap lists the cell's deals
        DRILL,
    )

    segment = t.Unicode(help="Dimension of the compared waterfalls, dispersion and guidance.")
    compare_segments = t.List(t.Unicode(), help="Two segment values compared side by side.")
    corridor = t.Tuple(help="Corridor percentiles (low, high), e.g. (0.25, 0.75).")
    discount_bands = t.List(t.Float(), help="Discount band edges (shares of list).")
    size_edges = t.List(t.Float(), help="Deal size band edges on list_amount.")
    cap = t.Float(0.2, help="Discount cap of the what-if (share of list).")
    cell = t.Dict(help="The clicked heatmap cell: deal_size and discount_low -> values.")

    def __init__(
        self,
        data: SalesData,
        *,
        segment: str = "size_band",
        compare_segments: Sequence[str] = (),
        corridor: Sequence[float] = (0.25, 0.75),
        discount_bands: Sequence[float] = metrics.DISCOUNT_BANDS,
        size_edges: Sequence[float] = metrics.DEAL_SIZE_EDGES,
        cap: float = 0.2,
        **options: Any,
    ) -> None:
        # most discounted first (deal_list cannot sort on a discount the data does not have)
        sort = "discount" if data.has("opportunities", "list_amount") else "amount"
        super().__init__(data, sort=sort, **options)
        self._build_widgets(data.base_currency)
        with self.hold_trait_notifications():
            self._set_parameters(
                segment=segment,
                corridor=corridor,
                discount_bands=discount_bands,
                size_edges=size_edges,
                cap=cap,
            )
        self.segment_values = self._segment_values()
        self._set_parameters(compare_segments=compare_segments)
        self.observe(self._on_segment, "segment")  # before the controls: they show its values
        self.controls = Controls([self._dimension_control("segment"), compare_controls(self)])
        self.controls.children = [*self.controls.children, self.status]
        self._build_sections()
        self._follow_clicks(*self.dispersion.values(), self.leakage_chart, self.realization)
        self.heatmap.observe(self._on_cell, "selected")
        self._start()

    def _set_parameters(self, **values: Any) -> None:
        """Notebook-style values (lists) as the traits take them; no compared segments: the
        segment's two largest."""
        for name, convert in (("corridor", tuple), ("discount_bands", list), ("size_edges", list)):
            if name in values:
                values[name] = convert(values[name])
        if "compare_segments" in values:
            values["compare_segments"] = list(values["compare_segments"]) or self._largest_two()
        super()._set_parameters(**values)

    # ------------------------------------------------------------------------------ validation

    @t.validate("segment")
    def _valid_segment(self, proposal: dict) -> str:
        return self._dimension(proposal["value"], "segment")

    @t.validate("compare_segments")
    def _valid_compare(self, proposal: dict) -> list[str]:
        values = [str(v) for v in proposal["value"]]
        if len(values) != 2 or values[0] == values[1]:
            raise ParameterError(
                f"compare_segments={proposal['value']!r} must be two different values of "
                f"{self.segment}, e.g. {self._largest_two()!r}."
            )
        return values

    @t.validate("corridor")
    def _valid_corridor(self, proposal: dict) -> tuple[float, float]:
        return show._corridor(proposal["value"])

    @t.validate("discount_bands")
    def _valid_bands(self, proposal: dict) -> list[float]:
        example = "[0, 0.05, 0.1, 0.2, 0.3, 1.0]"
        return show._edges(proposal["value"], "discount_bands", low=0.0, high=1.0, example=example)

    @t.validate("size_edges")
    def _valid_size_edges(self, proposal: dict) -> list[float]:
        example = "[0, 10000, 50000, 250000]"
        return show._edges(proposal["value"], "size_edges", low=0.0, high=None, example=example)

    @t.validate("cap")
    def _valid_cap(self, proposal: dict) -> float:
        return show._cap(proposal["value"])

    def _segment_values(self) -> list[tuple[str, int]]:
        return filter_options(self.data, [self.segment])[self.segment]

    def _largest_two(self) -> list[str]:
        return show._largest_two(getattr(self, "segment_values", []))

    # ------------------------------------------------------------------------------ widgets

    def _build_widgets(self, currency: str | None) -> None:
        self.cards = KPICards()
        self.waterfall_note = w.HTML()
        self.waterfalls = Grid([ChartView(selection=None), ChartView(selection=None)])
        for name in ("waterfall", "pocket_band", "win_rates", "cycle", "lost", "trend"):
            setattr(self, name, ChartView(selection=None))
        self.heatmap = ChartView(selection="cell")
        self.leakage_chart = ChartView(selection="pick")
        self.realization = ChartView(selection="pick")
        dims = ("segment", "owner", "product_family")
        self.dispersion = {dim: ChartView(selection="pick") for dim in dims}
        for name, table in show.TABLES.items():
            setattr(self, name, DataTable(currency=currency, **table))
        self.cell_deals.empty_message = "Click a cell of the heatmap to list its deals here."
        keys = ("owner", "segment", "product")
        self.leakage_tables = {
            key: DataTable(currency=currency, **show.LEAKAGE_TABLE) for key in keys
        }
        self.what_if_cards = KPICards()
        self.what_if_notes = w.HTML()

    def _build_sections(self) -> None:
        waterfall_csv = ExportBar(chart=self.waterfall, name="waterfall")
        self.waterfall_view = Panel(
            [self.waterfall_note, self.waterfall, self.waterfalls, waterfall_csv]
        )
        self.pocket_view = Panel([self.pocket_band, self.pocket_spread])
        views = self.dispersion
        self.dispersion_view = Panel(
            [Grid([views["segment"], views["product_family"]]), views["owner"]]
        )
        outliers_csv = ExportBar(table=self.outliers, name="discount_outliers")
        self.size_view = Panel([self.heatmap, self.outliers, outliers_csv, self.cell_deals])
        self.wins_view = Panel([Grid([self.win_rates, self.cycle]), self.tests, self.band_table])
        self.lost_view = Panel([self.lost, self.lost_table])
        tables = self.leakage_tables
        reps_csv = ExportBar(table=tables["owner"], name="leakage_by_rep")
        self.leakage_view = Panel(
            [self.leakage_chart, tables["owner"], reps_csv, tables["segment"], tables["product"]]
        )
        self.realization_view = Grid([self.realization, self.trend])
        guidance_csv = ExportBar(table=self.guidance, name="pricing_guidance")
        self.guidance_view = Panel([self.guidance, guidance_csv])
        cap = Controls([cap_slider(self)])
        self.what_if_view = Panel([cap, self.what_if_cards, self.what_if_notes, self.what_if_table])

    # ------------------------------------------------------------------------------ update path

    def _on_segment(self, change: dict) -> None:
        """A new segment dimension: offer its values, and compare its two largest."""
        self.segment_values = self._segment_values()
        if set(self.compare_segments) <= {v for v, _ in self.segment_values}:
            self._schedule(["views"])
        else:
            self.compare_segments = self._largest_two()  # refreshes the views

    def _on_cell(self, change: dict) -> None:
        self.cell = dict(change["new"])

    def _compute_views(self) -> show._Frames:
        sel, seg, data = self._selection(), self.segment, self.data
        bands = attempt(metrics.discount_bands, data, bands=self.discount_bands, **sel)
        low, high = self.corridor
        guide = {"floor": low, "target": (low + high) / 2, "stretch": high}
        size = {"size_edges": self.size_edges, "corridor": self.corridor}
        return show._Frames(
            overall=attempt(metrics.deal_discounts, data, status="won", **sel),
            waterfall=attempt(metrics.price_waterfall, data, **sel),
            compared=self._compared(sel),
            band=attempt(metrics.pocket_price_band, data, **sel),
            spread=attempt(metrics.pocket_price_spread, data, **sel),
            dispersion={
                d: attempt(metrics.deal_discounts, data, by=[d], status="won", **sel)
                for d in dict.fromkeys([seg, "owner", "product_family"])
            },
            size=attempt(metrics.discount_vs_size, data, discount_step=show._STEP, **size, **sel),
            outliers=attempt(metrics.discount_outliers, data, top_n=self.top_n, **size, **sel),
            bands=bands,
            tests=bands if show._missing(bands) else metrics.discount_band_tests(bands),
            lost=attempt(metrics.lost_on_price, data, bands=self.discount_bands, **sel),
            leakage={d: self._leakage(d, sel) for d in dict.fromkeys(["owner", seg, "product"])},
            realization=attempt(
                metrics.deal_discounts, data, by=["product_family"], status="won", **sel
            ),
            trend=attempt(metrics.realization_over_time, data, filters=sel["filters"]),
            guidance=attempt(metrics.pricing_guidance, data, by=[seg], **guide, **sel),
        )

    def _compared(self, sel: Mapping[str, Any]) -> show._Result:
        """The waterfall of each compared segment (an empty frame when the filters exclude
        them)."""
        filters = merge_filters(sel["filters"] or {}, {self.segment: self.compare_segments})
        if filters is None:
            return pd.DataFrame(columns=[self.segment, "element", "amount"])
        narrowed = {**sel, "filters": filters}
        return attempt(metrics.price_waterfall, self.data, by=[self.segment], **narrowed)

    def _leakage(self, dim: str, sel: Mapping[str, Any]) -> show._Result:
        by_size = ["size_band"] if "size_band" in self._options else []
        return attempt(
            metrics.leakage, self.data, by=[dim], corridor=self.corridor, corridor_by=by_size, **sel
        )

    def _apply_views(self, frames: show._Frames) -> None:
        self._draw_prices(frames)
        self._draw_discounts(frames)
        self._draw_wins(frames)
        self._draw_leakage(frames)

    def _compute_what_if(self) -> show._Result:
        what_if = {"cap": self.cap, "bands": self.discount_bands}
        return attempt(metrics.discount_cap_what_if, self.data, **what_if, **self._selection())

    def _apply_cards(self) -> None:
        views, what_if = self._frames["views"], self._frames["what_if"]
        self.cards.cards = show._cards(views, what_if, self.cap, self.data.base_currency)

    def _compute_cell(self) -> tuple[pd.DataFrame, str] | None:
        """The deals of the clicked cell and their title (None: no cell clicked)."""
        if not self.cell:
            return None
        size = self._frames["views"].size
        deal_size, low = (self.cell.get(k, [None])[0] for k in ("deal_size", "discount_low"))
        if show._missing(size) or low is None:
            return None
        match = size[size["deal_size"] == deal_size]
        if match.empty:
            return None
        cell = {"size_index": int(match["size_index"].iloc[0]), "discount_low": float(low)}
        options = {"discount_step": show._STEP, "size_edges": self.size_edges, "top_n": self.top_n}
        deals = metrics.discount_cell_deals(self.data, **cell, **options, **self._selection())
        high = float(low) + show._STEP
        title = f"Deals of {deal_size} discounted {show._percent(low)} to {show._percent(high)}"
        return show._without(deals, "opportunity_name"), title

    def _apply_cell(self, cell: tuple[pd.DataFrame, str] | None) -> None:
        deals, title = cell or (pd.DataFrame(), "Deals in the clicked cell")
        with self.cell_deals.hold_sync():
            self.cell_deals.title = title
            self.cell_deals.data = deals

    # ------------------------------------------------------------------------------ views

    def _draw_prices(self, frames: show._Frames) -> None:
        currency = self.data.base_currency
        self.waterfall_note.value = show._basis_html(frames.waterfall)
        overall = "Price waterfall: all won deals"
        self.waterfall.chart = plot._waterfall_chart(frames.waterfall, overall, currency)
        names = [v for v, _ in self.segment_values]
        for view, value in zip(self.waterfalls.children, self.compare_segments, strict=True):
            view.chart = plot._compared_chart(frames.compared, self.segment, value, names, currency)
        self.pocket_band.chart = plot._pocket_chart(frames.band, frames.spread, frames.waterfall)
        show._show_table(self.pocket_spread, frames.spread)
        first, second = self.waterfalls.children
        show._once(
            (self.waterfall, frames.waterfall), (first, frames.compared), (second, frames.compared)
        )
        show._once((self.pocket_band, frames.band), (self.pocket_spread, frames.spread))

    def _draw_discounts(self, frames: show._Frames) -> None:
        for key, dim in self._dispersion_dims():
            self.dispersion[key].chart = plot._dispersion_chart(frames.dispersion[dim], dim)
        size = frames.size
        self.heatmap.chart = plot._heatmap_chart(size, self.corridor, self.data.base_currency)
        high = self.corridor[1]
        self.outliers.title = (
            f"Deals discounted above the p{high * 100:g} of their deal size band "
            f"(top {self.top_n} by money over it)"
        )
        show._show_table(self.outliers, show._without(frames.outliers, "opportunity_name"))
        show._once(
            *((self.dispersion[k], frames.dispersion[d]) for k, d in self._dispersion_dims())
        )
        show._once((self.heatmap, size), (self.outliers, frames.outliers), (self.cell_deals, size))
        show._show_table(self.guidance, frames.guidance)

    def _dispersion_dims(self) -> list[tuple[str, str]]:
        """(view, dimension) of the dispersion charts, in the order shown."""
        return [("segment", self.segment), ("product_family", "product_family"), ("owner", "owner")]

    def _draw_wins(self, frames: show._Frames) -> None:
        bands, tests = frames.bands, frames.tests
        self.win_rates.chart = plot._win_rate_chart(bands, tests)
        self.cycle.chart = plot._cycle_chart(bands)
        show._show_table(
            self.band_table, bands if show._missing(bands) else show._band_display(bands)
        )
        show._show_table(self.tests, tests if show._missing(tests) else show._tests_display(tests))
        self.lost.chart = plot._lost_chart(frames.lost)
        show._show_table(self.lost_table, frames.lost)
        self.realization.chart = plot._realization_chart(frames.realization)
        self.trend.chart = plot._trend_chart(frames.trend)
        wins = ((self.win_rates, bands), (self.cycle, bands), (self.tests, tests))
        show._once(*wins, (self.band_table, bands))
        show._once((self.lost, frames.lost), (self.lost_table, frames.lost))
        show._once((self.realization, frames.realization), (self.trend, frames.trend))

    def _draw_leakage(self, frames: show._Frames) -> None:
        by_rep = frames.leakage["owner"]
        self.leakage_chart.chart = plot._leakage_chart(by_rep, self.data.base_currency)
        for key, table in self.leakage_tables.items():
            dim = self.segment if key == "segment" else key
            table.title = f"What you are missing, by {dimension_label(dim).lower()}"
            show._show_table(table, show._leakage_display(frames.leakage[dim], dim))
        tables = self.leakage_tables
        show._once(
            (self.leakage_chart, by_rep),
            (tables["owner"], by_rep),
            (tables["segment"], frames.leakage[self.segment]),
            (tables["product"], frames.leakage["product"]),
        )

    def _apply_what_if(self, result: show._Result) -> None:
        currency = self.data.base_currency
        if show._missing(result):
            self.what_if_cards.cards = []
            self.what_if_notes.value = show._note_html(f"Not available: {result}")
            show._show_table(self.what_if_table, result)
            self.what_if_table.layout.display = "none"
            return
        self.what_if_table.layout.display = ""
        row = result.iloc[0]
        self.what_if_cards.cards = show._what_if_cards(row, currency)
        self.what_if_notes.value = show._assumptions_html(result)
        by_band = result.attrs["by_band"]
        self.what_if_table.data = by_band
        if by_band.empty:
            self.what_if_table.empty_message = "No won deal is discounted more than the cap."
