"""Sticker Shock: list prices, discounts, price realization and leakage. Who discounts, how
much, whether it buys anything, and what a pricing corridor or a discount cap would recover.

Composed from the widget kit; every number comes from salesops_widgets.metrics. Views that
need a table or column the data lacks (line items, list prices, loss reasons) say which one,
and the rest of the page still shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import charts, metrics
from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ..metrics._deals import NOT_SET
from ..widgets import (
    ChartView,
    DataTable,
    DetailView,
    ExportBar,
    FilterBar,
    KPICards,
    QualityPanel,
    Refresher,
)
from ..widgets._detail import merge_filters
from ..widgets._filters import filter_options
from ._common import (
    Controls,
    Grid,
    Panel,
    dimension_label,
    dimension_options,
    filter_arguments,
)
from ._pricing_display import (
    _LEAKAGE_LABELS,
    _LEAKAGE_MONEY,
    _SPREAD_PERCENT,
    _STEP,
    _assumptions_html,
    _band_display,
    _basis_html,
    _cards,
    _cycle_chart,
    _dispersion_chart,
    _Frames,
    _heatmap_chart,
    _leakage_chart,
    _leakage_display,
    _lost_chart,
    _missing,
    _note_html,
    _once,
    _one_segment,
    _percent,
    _pocket_chart,
    _realization_chart,
    _Result,
    _show_table,
    _tests_display,
    _trend_chart,
    _waterfall_chart,
    _what_if_cards,
    _win_rate_chart,
    _without,
)

__all__ = ["StickerShock"]


def _attempt(fn: Callable[..., pd.DataFrame], *args: Any, **kwargs: Any) -> _Result:
    """The frame, or the MissingDataError saying what the view needs (the page still shows)."""
    try:
        return fn(*args, **kwargs)
    except MissingDataError as exc:
        return exc


def _edges(values: Any, name: str, *, low: float, high: float | None, example: str) -> list:
    try:
        edges = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name}={values!r} must be a list of numbers, e.g. {example}."
        ) from None
    increasing = all(a < b for a, b in zip(edges[:-1], edges[1:], strict=False))
    inside = all(low <= e and (high is None or e <= high) for e in edges)
    if len(edges) < 2 or not increasing or not inside:
        top = f" and {high}" if high is not None else ""
        raise ParameterError(
            f"{name}={values!r} must be at least two increasing edges between {low}{top}, "
            f"e.g. {example}."
        )
    return edges


class StickerShock(t.HasTraits):
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
    period, date_field, filters, region
        The initial filter bar (as in ``SegmentationExplorer``).
    debounce
        Seconds of quiet before a change recomputes (0: at once).
    top_n
        Deals listed in the outliers, a heatmap cell and the drill-down.

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
    """

    segment = t.Unicode(help="Dimension of the compared waterfalls, dispersion and guidance.")
    compare_segments = t.List(t.Unicode(), help="Two segment values compared side by side.")
    corridor = t.Tuple(help="Corridor percentiles (low, high), e.g. (0.25, 0.75).")
    discount_bands = t.List(t.Float(), help="Discount band edges (shares of list).")
    size_edges = t.List(t.Float(), help="Deal size band edges on list_amount.")
    cap = t.Float(0.2, help="Discount cap of the what-if (share of list).")

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
        period: str | tuple[Any, Any] = "all",
        date_field: str = "created_date",
        filters: Mapping[str, Any] | None = None,
        region: str = "All",
        debounce: float = 0.3,
        top_n: int = 50,
    ) -> None:
        super().__init__()
        self.data = data
        self.top_n = int(top_n)
        self._options = dimension_options(data)
        self._last: _Frames | None = None
        self._cells = pd.DataFrame()
        self.filter_bar = FilterBar(
            data,
            **filter_arguments(period, date_field, filters, region),
        )
        self.status = Refresher(debounce=debounce)
        self._build_widgets()
        with self.hold_trait_notifications():
            self.segment = segment
            self.corridor = tuple(corridor)
            self.discount_bands = list(discount_bands)
            self.size_edges = list(size_edges)
            self.cap = cap
        self._values = self._segment_values()
        self.compare_segments = list(compare_segments) or self._largest_two()
        self.controls = self._build_controls()
        self._build_sections()
        self.filter_bar.observe(self._on_change, "selection")
        self.observe(self._on_segment, "segment")
        self.observe(self._on_change, ["compare_segments", "corridor", "discount_bands"])
        self.observe(self._on_change, ["size_edges", "cap"])
        self._apply(self._compute())  # the first view at once, so static runs show it

    # ------------------------------------------------------------------------------ validation

    @t.validate("segment")
    def _valid_segment(self, proposal: dict) -> str:
        value = proposal["value"]
        if value not in self._options:
            raise ParameterError(
                f"segment={value!r} is not a dimension this data has; choose one of "
                f"{', '.join(self._options)}."
            )
        return value

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
        try:
            low, high = (float(v) for v in proposal["value"])
        except (TypeError, ValueError):
            low, high = 1.0, 0.0  # not two numbers: the message below
        if not 0 <= low < high <= 1:
            raise ParameterError(
                f"corridor={proposal['value']!r} must be two percentiles 0 <= low < high <= 1, "
                "e.g. (0.25, 0.75)."
            )
        return (low, high)

    @t.validate("discount_bands")
    def _valid_bands(self, proposal: dict) -> list[float]:
        example = "[0, 0.05, 0.1, 0.2, 0.3, 1.0]"
        return _edges(proposal["value"], "discount_bands", low=0.0, high=1.0, example=example)

    @t.validate("size_edges")
    def _valid_size_edges(self, proposal: dict) -> list[float]:
        example = "[0, 10000, 50000, 250000]"
        return _edges(proposal["value"], "size_edges", low=0.0, high=None, example=example)

    @t.validate("cap")
    def _valid_cap(self, proposal: dict) -> float:
        value = proposal["value"]
        if not 0 <= value <= 0.99:
            raise ParameterError(f"cap={value!r} must be between 0 and 0.99 (0.2: 20% off).")
        return float(value)

    def _segment_values(self) -> list[tuple[str, int]]:
        return filter_options(self.data, [self.segment])[self.segment]

    def _largest_two(self) -> list[str]:
        # the most deals first; "(not set)" only when there is nothing else to compare
        values = getattr(self, "_values", [])
        ranked = sorted(values, key=lambda vn: (vn[0] == NOT_SET, -vn[1]))
        names = [v for v, _ in ranked[:2]]
        return [*names, "(none)", "(no other value)"][:2]

    # ------------------------------------------------------------------------------ widgets

    def _build_widgets(self) -> None:
        currency = self.data.base_currency
        self.cards = KPICards()
        self.waterfall = ChartView(selection=None)
        self.waterfall_note = w.HTML()
        self.waterfalls = Grid([ChartView(selection=None), ChartView(selection=None)])
        self.pocket_band = ChartView(selection=None)
        self.pocket_spread = DataTable(
            currency=currency,
            small_n=None,
            title="Pocket price spread",
            formats=dict.fromkeys(_SPREAD_PERCENT, "percent") | {"volume": "number"},
        )
        self.dispersion = {
            dim: ChartView(selection="pick") for dim in ("segment", "owner", "product_family")
        }
        self.heatmap = ChartView(selection="cell")
        self.outliers = DataTable(
            currency=currency,
            small_n=None,
            formats={"discount": "percent", "corridor_high": "percent", "excess": "money"},
            labels={"corridor_high": "corridor top", "excess": "given over it"},
        )
        self.cell_deals = DataTable(
            currency=currency,
            small_n=None,
            formats={"discount": "percent", "discount_given": "money"},
            labels={"discount_given": "given away"},
            title="Deals in the clicked cell",
        )
        self.cell_deals.empty_message = "Click a cell of the heatmap to list its deals here."
        self.win_rates = ChartView(selection=None)
        self.cycle = ChartView(selection=None)
        self.band_table = DataTable(title="Win rate and cycle by discount band")
        self.tests = DataTable(small_n=None, title="Does discount buy wins? The tests")
        self.lost = ChartView(selection=None)
        self.lost_table = DataTable(
            small_n=None,
            title="Closed deals lost on price, by discount quoted",
            formats=dict.fromkeys(
                ("band_low", "band_high", "share_low", "share_high", "share_lost_on_price")
                + ("price_share_of_losses",),
                "percent",
            ),
        )
        self.leakage_chart = ChartView(selection="pick")
        formats = dict.fromkeys(_LEAKAGE_MONEY, "money") | {"lines_below_floor": "count"}
        self.leakage_tables = {
            key: DataTable(
                currency=currency,
                small_n=None,
                formats=formats,
                max_rows=100,
                labels=_LEAKAGE_LABELS,
            )
            for key in ("owner", "segment", "product")
        }
        self.realization = ChartView(selection="pick")
        self.trend = ChartView(selection=None)
        self.guidance = DataTable(
            title="Pricing guidance per segment (% of list)",
            labels={
                "floor_pct_of_list": "floor",
                "target_pct_of_list": "target",
                "stretch_pct_of_list": "stretch",
            },
            formats={
                "won_deals": "count",
                "floor_pct_of_list": "percent",
                "target_pct_of_list": "percent",
                "stretch_pct_of_list": "percent",
                "max_discount": "percent",
            },
        )
        self.what_if_cards = KPICards()
        self.what_if_notes = w.HTML()
        self.what_if_table = DataTable(
            currency=currency,
            small_n=None,
            title="Won deals over the cap, by their discount band",
            formats={"kept": "percent", "expected_lost_deals": "number"}
            | dict.fromkeys(
                ("bookings_over_cap", "capped_bookings", "gross_recovered", "net_recovered")
                + ("expected_lost_bookings",),
                "money",
            ),
        )
        # most discounted first (deal_list cannot sort on a discount the data does not have)
        sort = "discount" if self.data.has("opportunities", "list_amount") else "amount"
        self.detail = DetailView(
            self.data, top_n=self.top_n, sort=sort, selection=self.filter_bar.selection
        )
        self.quality = QualityPanel(self.data)
        for view in (*self.dispersion.values(), self.leakage_chart, self.realization):
            view.observe(self._on_click, "selected")
        self.heatmap.observe(self._on_cell, "selected")

    def _build_controls(self) -> Controls:
        dims = [(dimension_label(d), d) for d in self._options]
        segment = w.Dropdown(options=dims, description="Segments")
        w.link((self, "segment"), (segment, "value"))
        self._compare = [w.Dropdown(description=d) for d in ("Compare", "with")]
        self._sync_compare()
        for drop in self._compare:
            drop.observe(self._on_compare, "value")
        return Controls([segment, w.VBox(self._compare), self.status])

    def _cap_slider(self) -> w.SelectionSlider:
        self._slider = w.SelectionSlider(
            options=[(_percent(self.cap), self.cap)],
            description="Cap discount at",
            style={"description_width": "initial"},
            layout=w.Layout(width="420px"),
        )
        self._sync_cap()
        self._slider.observe(lambda change: setattr(self, "cap", change["new"]), "value")
        self.observe(self._sync_cap, "cap")
        return self._slider

    def _sync_cap(self, change: dict | None = None) -> None:
        """The slider offers 0% to 50% by whole points, and the cap itself."""
        steps = sorted({i / 100 for i in range(51)} | {self.cap})
        with self._slider.hold_sync():
            self._slider.options = [(_percent(c), c) for c in steps]
            self._slider.value = self.cap

    def _build_sections(self) -> None:
        self.waterfall_view = Panel(
            [
                self.waterfall_note,
                self.waterfall,
                self.waterfalls,
                ExportBar(chart=self.waterfall, name="waterfall"),
            ]
        )
        self.pocket_view = Panel([self.pocket_band, self.pocket_spread])
        views = self.dispersion
        self.dispersion_view = Panel(
            [Grid([views["segment"], views["product_family"]]), views["owner"]]
        )
        self.size_view = Panel(
            [
                self.heatmap,
                self.outliers,
                ExportBar(table=self.outliers, name="discount_outliers"),
                self.cell_deals,
            ]
        )
        self.wins_view = Panel([Grid([self.win_rates, self.cycle]), self.tests, self.band_table])
        self.lost_view = Panel([self.lost, self.lost_table])
        tables = self.leakage_tables
        self.leakage_view = Panel(
            [
                self.leakage_chart,
                tables["owner"],
                ExportBar(table=tables["owner"], name="leakage_by_rep"),
                tables["segment"],
                tables["product"],
            ]
        )
        self.realization_view = Grid([self.realization, self.trend])
        self.guidance_view = Panel(
            [self.guidance, ExportBar(table=self.guidance, name="pricing_guidance")]
        )
        self.what_if_view = Panel(
            [Controls([self._cap_slider()]), self.what_if_cards, self.what_if_notes]
            + [self.what_if_table]
        )
        self.drilldown = Panel([self.detail, ExportBar(table=self.detail.table, name="deals")])

    # ------------------------------------------------------------------------------ update path

    def _on_change(self, change: dict) -> None:
        self.status.schedule(self._compute, apply=self._apply)

    def _on_segment(self, change: dict) -> None:
        """A new segment dimension: offer its values, and compare its two largest."""
        self._values = self._segment_values()
        names = {v for v, _ in self._values}
        self._sync_compare()
        if set(self.compare_segments) <= names:
            self._on_change(change)
        else:
            self.compare_segments = self._largest_two()  # recomputes through _on_change
            self._sync_compare()

    def _sync_compare(self) -> None:
        names = [v for v, _ in self._values]
        for drop, value in zip(self._compare, self.compare_segments, strict=True):
            with drop.hold_sync():
                drop.options = list(dict.fromkeys([*names, value]))
                drop.value = value

    def _on_compare(self, change: dict) -> None:
        chosen = [drop.value for drop in self._compare]
        if chosen[0] != chosen[1] and chosen != self.compare_segments:
            self.compare_segments = chosen

    def _on_click(self, change: dict) -> None:
        """A click on a segment, a rep or a product family: list its deals, most discounted
        first."""
        self.detail.extra_filters = dict(change["new"])

    def _on_cell(self, change: dict) -> None:
        """A click on a heatmap cell: list the deals of that deal size and discount."""
        picked = change["new"]
        if not picked or self._cells.empty:
            self.cell_deals.data = pd.DataFrame()
            return
        size, low = picked.get("deal_size", [None])[0], picked.get("discount_low", [None])[0]
        match = self._cells[self._cells["deal_size"] == size]
        if match.empty or low is None:
            return
        deals = metrics.discount_cell_deals(
            self.data,
            size_index=int(match["size_index"].iloc[0]),
            discount_low=float(low),
            discount_step=_STEP,
            size_edges=self.size_edges,
            top_n=self.top_n,
            **self._selection(),
        )
        self.cell_deals.data = _without(deals, "opportunity_name")
        high = float(low) + _STEP
        self.cell_deals.title = f"Deals of {size} discounted {_percent(low)} to {_percent(high)}"

    def _selection(self) -> dict[str, Any]:
        return dict(self.filter_bar.selection)

    def _key(self) -> str:
        state = (self.segment, self.compare_segments, self.corridor)
        return repr((self._selection(), *state, self.discount_bands, self.size_edges))

    def _compute(self) -> _Frames:
        """Every view's frames; when only the cap moved, the last frames with a new what-if."""
        what_if = _attempt(
            metrics.discount_cap_what_if,
            self.data,
            cap=self.cap,
            bands=self.discount_bands,
            **self._selection(),
        )
        key = self._key()
        if self._last is not None and self._last.key == key:
            return dataclasses.replace(self._last, what_if=what_if)
        return self._compute_all(key, what_if)

    def _compute_all(self, key: str, what_if: _Result) -> _Frames:
        sel, seg, data = self._selection(), self.segment, self.data
        bands = _attempt(metrics.discount_bands, data, bands=self.discount_bands, **sel)
        low, high = self.corridor
        size = {"size_edges": self.size_edges, "corridor": self.corridor}
        return _Frames(
            key=key,
            overall=_attempt(metrics.deal_discounts, data, status="won", **sel),
            waterfall=_attempt(metrics.price_waterfall, data, **sel),
            compared=self._compared(sel),
            band=_attempt(metrics.pocket_price_band, data, **sel),
            spread=_attempt(metrics.pocket_price_spread, data, **sel),
            dispersion={
                d: _attempt(metrics.deal_discounts, data, by=[d], status="won", **sel)
                for d in dict.fromkeys([seg, "owner", "product_family"])
            },
            size=_attempt(metrics.discount_vs_size, data, discount_step=_STEP, **size, **sel),
            outliers=_attempt(metrics.discount_outliers, data, top_n=self.top_n, **size, **sel),
            bands=bands,
            tests=bands if _missing(bands) else metrics.discount_band_tests(bands),
            lost=_attempt(metrics.lost_on_price, data, bands=self.discount_bands, **sel),
            leakage={d: self._leakage(d, sel) for d in dict.fromkeys(["owner", seg, "product"])},
            realization=_attempt(
                metrics.deal_discounts, data, by=["product_family"], status="won", **sel
            ),
            trend=_attempt(metrics.realization_over_time, data, filters=sel["filters"]),
            guidance=_attempt(
                metrics.pricing_guidance,
                data,
                by=[seg],
                floor=low,
                target=(low + high) / 2,
                stretch=high,
                **sel,
            ),
            what_if=what_if,
        )

    def _compared(self, sel: Mapping[str, Any]) -> _Result:
        """The waterfall of each compared segment (an empty frame when the filters exclude
        them)."""
        filters = merge_filters(sel["filters"] or {}, {self.segment: self.compare_segments})
        if filters is None:
            return pd.DataFrame(columns=[self.segment, "element", "amount"])
        narrowed = {**sel, "filters": filters}
        return _attempt(metrics.price_waterfall, self.data, by=[self.segment], **narrowed)

    def _leakage(self, dim: str, sel: Mapping[str, Any]) -> _Result:
        by_size = ["size_band"] if "size_band" in self._options else []
        return _attempt(
            metrics.leakage, self.data, by=[dim], corridor=self.corridor, corridor_by=by_size, **sel
        )

    def _apply(self, frames: _Frames) -> None:
        """Turn one refresh's frames into the view."""
        if self._last is None or frames.key != self._last.key:
            self._apply_prices(frames)
            self._apply_discounts(frames)
            self._apply_wins(frames)
            self._apply_leakage(frames)
            self.detail.selection = self._selection()
        self._last = frames
        self._apply_what_if(frames.what_if)
        self.cards.cards = _cards(frames, self.cap, self.data.base_currency)

    # ------------------------------------------------------------------------------ views

    def _apply_prices(self, frames: _Frames) -> None:
        currency = self.data.base_currency
        self.waterfall_note.value = _basis_html(frames.waterfall)
        overall = "Price waterfall: all won deals"
        self.waterfall.chart = _waterfall_chart(frames.waterfall, overall, currency)
        names = [v for v, _ in self._values]
        for view, value in zip(self.waterfalls.children, self.compare_segments, strict=True):
            title = f"{dimension_label(self.segment)}: {value}"
            if value not in names:
                view.chart = charts.empty_chart(
                    f"No deal has {self.segment} = {value!r}; its values are "
                    f"{', '.join(names[:12])}. Choose another in compare_segments.",
                    title=title,
                )
                continue
            view.chart = _waterfall_chart(
                _one_segment(frames.compared, self.segment, value), title, currency
            )
        self.pocket_band.chart = _pocket_chart(frames.band, frames.spread, frames.waterfall)
        _show_table(self.pocket_spread, frames.spread)
        first, second = self.waterfalls.children
        _once(
            (self.waterfall, frames.waterfall), (first, frames.compared), (second, frames.compared)
        )
        _once((self.pocket_band, frames.band), (self.pocket_spread, frames.spread))

    def _apply_discounts(self, frames: _Frames) -> None:
        for key, dim in self._dispersion_dims():
            self.dispersion[key].chart = _dispersion_chart(frames.dispersion[dim], dim)
        size = frames.size
        self._cells = pd.DataFrame() if _missing(size) else size
        self.heatmap.chart = _heatmap_chart(size, self.corridor, self.data.base_currency)
        high = self.corridor[1]
        self.outliers.title = (
            f"Deals discounted above the p{high * 100:g} of their deal size band "
            f"(top {self.top_n} by money over it)"
        )
        _show_table(self.outliers, _without(frames.outliers, "opportunity_name"))
        _once(*((self.dispersion[k], frames.dispersion[d]) for k, d in self._dispersion_dims()))
        _once((self.heatmap, size), (self.outliers, frames.outliers), (self.cell_deals, size))
        self.cell_deals.data = pd.DataFrame()
        self.cell_deals.title = "Deals in the clicked cell"
        _show_table(self.guidance, frames.guidance)

    def _dispersion_dims(self) -> list[tuple[str, str]]:
        """(view, dimension) of the dispersion charts, in the order shown."""
        return [("segment", self.segment), ("product_family", "product_family"), ("owner", "owner")]

    def _apply_wins(self, frames: _Frames) -> None:
        bands, tests = frames.bands, frames.tests
        self.win_rates.chart = _win_rate_chart(bands, tests)
        self.cycle.chart = _cycle_chart(bands)
        _show_table(self.band_table, bands if _missing(bands) else _band_display(bands))
        _show_table(self.tests, tests if _missing(tests) else _tests_display(tests))
        self.lost.chart = _lost_chart(frames.lost)
        _show_table(self.lost_table, frames.lost)
        self.realization.chart = _realization_chart(frames.realization)
        self.trend.chart = _trend_chart(frames.trend)
        wins = ((self.win_rates, bands), (self.cycle, bands), (self.tests, tests))
        _once(*wins, (self.band_table, bands))
        _once((self.lost, frames.lost), (self.lost_table, frames.lost))
        _once((self.realization, frames.realization), (self.trend, frames.trend))

    def _apply_leakage(self, frames: _Frames) -> None:
        by_rep = frames.leakage["owner"]
        self.leakage_chart.chart = _leakage_chart(by_rep, self.data.base_currency)
        for key, table in self.leakage_tables.items():
            dim = self.segment if key == "segment" else key
            table.title = f"What you are missing, by {dimension_label(dim).lower()}"
            _show_table(table, _leakage_display(frames.leakage[dim], dim))
        tables = self.leakage_tables
        _once(
            (self.leakage_chart, by_rep),
            (tables["owner"], by_rep),
            (tables["segment"], frames.leakage[self.segment]),
            (tables["product"], frames.leakage["product"]),
        )

    def _apply_what_if(self, result: _Result) -> None:
        currency = self.data.base_currency
        if _missing(result):
            self.what_if_cards.cards = []
            self.what_if_notes.value = _note_html(f"Not available: {result}")
            _show_table(self.what_if_table, result)
            self.what_if_table.layout.display = "none"
            return
        self.what_if_table.layout.display = ""
        row = result.iloc[0]
        self.what_if_cards.cards = _what_if_cards(row, currency)
        self.what_if_notes.value = _assumptions_html(result)
        by_band = result.attrs["by_band"]
        self.what_if_table.data = by_band
        if by_band.empty:
            self.what_if_table.empty_message = "No won deal is discounted more than the cap."
