"""Driver Tree ("why did it move"): the change in bookings between two periods split into
volume, win rate and ASP; ASP split into price and mix; a drill one level at a time into the
largest contributor; who pulls the price down; and the deals behind any bar.

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
from .._dates import date_parameter
from ..data import SalesData
from ..errors import ParameterError
from ..widgets import ChartView, DataTable, ExportBar, previous_period
from ._base import DRILL, Dashboard, Part
from ._common import Controls, Grid, Panel
from ._drivers_display import (
    asp_chart,
    asp_sentence,
    bridge_chart,
    bridge_sentence,
    contributions_chart,
    discount_chart,
    discount_sentence,
    level_sentence,
    paragraph,
)

__all__ = ["DEFAULT_PATH", "DriverTree"]

DEFAULT_PATH = ("size_band", "owner")


@dataclass(frozen=True)
class _Levels:
    """The drill: one row per level, and each level's segments."""

    path: pd.DataFrame
    levels: list[pd.DataFrame]


class DriverTree(Dashboard):
    """Why bookings moved from period A to period B, one level at a time.

    Parameters
    ----------
    data
        The loaded data.
    period
        Period B (the filter bar's period, deals closed in it by default): a preset,
        "YYYY-MM-DD..YYYY-MM-DD" or (start, end).
    period_a
        Period A, "YYYY-MM-DD..YYYY-MM-DD"; "" for the period of the same length just before B.
    path
        The dimensions drilled, in order (e.g. segment, then rep): each level splits the
        largest contributor of the level above.
    asp_dimension
        The dimension ASP is split over into price and mix.
    discount_dimension
        Who pulls the price down in period B: the dimension of the discount split.
    date_field, filters, region, debounce, top_n
        As in ``Dashboard``; by default the deals *closed* in each period (how bookings are
        booked).

    Attributes
    ----------
    filter_bar, controls, bridge_view, asp_view, drill_view, discount_view, drilldown, quality
        The sections, each displayable on its own.
    """

    PARTS = (
        Part("bridge", on=("selection", "period_a")),
        Part("asp", on=("selection", "period_a", "asp_dimension")),
        Part("levels", on=("selection", "period_a", "path")),
        Part("discount", on=("selection", "discount_dimension")),
        DRILL,
    )

    period_a = t.Unicode("", help="Period A as 'YYYY-MM-DD..YYYY-MM-DD'; '' for the one before B.")
    path = t.List(t.Unicode(), help="The dimensions drilled, in order.")
    asp_dimension = t.Unicode("product_family", help="ASP split into price and mix over it.")
    discount_dimension = t.Unicode("owner", help="The discount split over it, in period B.")

    def __init__(
        self,
        data: SalesData,
        *,
        period: str | tuple[Any, Any] = "last_12_months",
        period_a: str = "",
        path: Sequence[str] = DEFAULT_PATH,
        asp_dimension: str = "product_family",
        discount_dimension: str = "owner",
        date_field: str = "closed_date",
        **options: Any,
    ) -> None:
        super().__init__(data, period=period, date_field=date_field, **options)
        self.bridge_chart, self.asp_chart = ChartView(), ChartView()
        self.bridge_note, self.asp_note, self.drill_note = w.HTML(), w.HTML(), w.HTML()
        self.discount_chart, self.discount_note = ChartView(selection="pick"), w.HTML()
        self.levels = Grid()
        self.path_table = DataTable(title="The drill, level by level", small_n=None)
        self._level_views: list[ChartView] = []
        self._reached: dict[str, list[Any]] = {}  # the filters of the drill's last segment
        self._parents: list[dict[str, Any]] = []  # the filters each drill level splits
        with self.hold_trait_notifications():
            self.period_a = str(period_a or "")
            self.path = [str(p) for p in path]
            self.asp_dimension = asp_dimension
            self.discount_dimension = discount_dimension
        self.controls = self._build_controls()
        self.bridge_view = Panel([self.bridge_note, self.bridge_chart])
        self.asp_view = Panel([self.asp_note, self.asp_chart])
        self.drill_view = Panel(
            [
                self.drill_note,
                self.levels,
                self.path_table,
                ExportBar(table=self.path_table, name="drill"),
            ]
        )
        self.discount_view = Panel([self.discount_note, self.discount_chart])
        self._follow_clicks(self.discount_chart)
        self._start()

    # ------------------------------------------------------------------------------ validation

    @t.validate("path")
    def _valid_path(self, proposal: dict) -> list[str]:
        dims = [self._dimension(d, "path") for d in proposal["value"]]
        if not dims or len(set(dims)) < len(dims):
            raise ParameterError(
                f"path={dims!r}: give one or more different dimensions, e.g. "
                f"{list(DEFAULT_PATH)!r} (segment, then rep)."
            )
        return dims

    @t.validate("asp_dimension", "discount_dimension")
    def _valid_dimensions(self, proposal: dict) -> str:
        return self._dimension(proposal["value"], proposal["trait"].name)

    @t.validate("period_a")
    def _valid_period_a(self, proposal: dict) -> str:
        value = str(proposal["value"]).strip()
        if value:
            self._parse_period(value)
        return value

    @staticmethod
    def _parse_period(value: str) -> tuple[Any, Any]:
        start, sep, end = value.partition("..")
        hint = "write period_a as YYYY-MM-DD..YYYY-MM-DD, or '' for the period before B"
        first, last = date_parameter(start, "period_a", hint=hint), None
        last = date_parameter(end, "period_a", hint=hint) if sep else None
        if first is None or last is None or first > last:
            raise ParameterError(f"period_a={value!r}: {hint}.")
        return first, last

    def _build_controls(self) -> Controls:
        asp = self._dimension_control("asp_dimension", "ASP over")
        discount = self._dimension_control("discount_dimension", "Discount by")
        return Controls([asp, discount, self.status])

    # ------------------------------------------------------------------------------ the periods

    def _periods(self) -> tuple[tuple[Any, Any], tuple[Any, Any], dict[str, Any]]:
        """(period A, period B, the rest of the selection: filters and date field)."""
        sel = self._selection()
        period_b = sel.pop("period")
        if period_b is None:
            raise ParameterError(
                "the period is 'all': choose a period B (e.g. last_12_months or "
                "2026-01-01..2026-06-30) to compare with the period before it."
            )
        if self.period_a:
            return self._parse_period(self.period_a), period_b, sel
        return previous_period(*period_b), period_b, sel

    # ------------------------------------------------------------------------------ the parts

    def _compute_bridge(self) -> tuple[pd.DataFrame, tuple]:
        a, b, sel = self._periods()
        return metrics.bookings_bridge(self.data, period_a=a, period_b=b, **sel), (a, b)

    def _apply_bridge(self, frames: tuple[pd.DataFrame, tuple]) -> None:
        bridge, periods = frames
        row, currency = bridge.iloc[0], self.data.base_currency
        self.bridge_chart.chart = bridge_chart(row, currency)
        self.bridge_note.value = paragraph(bridge_sentence(row, periods, currency))

    def _compute_asp(self) -> pd.DataFrame:
        a, b, sel = self._periods()
        return metrics.asp_bridge(
            self.data, period_a=a, period_b=b, dimension=self.asp_dimension, **sel
        )

    def _apply_asp(self, frame: pd.DataFrame) -> None:
        currency = self.data.base_currency
        self.asp_chart.chart = asp_chart(frame, currency)
        self.asp_note.value = paragraph(asp_sentence(frame, self.asp_dimension, currency))

    def _compute_levels(self) -> _Levels:
        a, b, sel = self._periods()
        path = metrics.drill_path(self.data, period_a=a, period_b=b, path=self.path, **sel)
        levels, filters = [], dict(sel.get("filters") or {})
        for step in path.itertuples(index=False):
            levels.append(
                metrics.bookings_contributions(
                    self.data,
                    period_a=a,
                    period_b=b,
                    by=step.dimension,
                    filters=filters,
                    date_field=sel["date_field"],
                )
            )
            filters = step.filters
        return _Levels(path, levels)

    def _apply_levels(self, frames: _Levels) -> None:
        currency = self.data.base_currency
        while len(self._level_views) < len(frames.levels):
            view = ChartView(selection="pick")
            view.observe(self._level_click(len(self._level_views)), "selected")
            self._level_views.append(view)
        self._parents = self._parent_filters(frames.path)
        for view, step, frame in zip(
            self._level_views, frames.path.itertuples(index=False), frames.levels, strict=False
        ):
            view.chart = contributions_chart(frame, step.dimension, step.segment, currency)
        self.levels.children = self._level_views[: len(frames.levels)]
        sentences = [level_sentence(step, currency) for _, step in frames.path.iterrows()]
        self.drill_note.value = "".join(paragraph(s) for s in sentences)
        with self.path_table.hold_sync():
            self.path_table.formats = dict.fromkeys(
                ["parent_change", "change", "volume_effect", "win_rate_effect", "asp_effect"],
                "money",
            ) | {"share": "percent"}
            self.path_table.data = frames.path.drop(columns=["filters"])
        self._reached = dict(frames.path.iloc[-1]["filters"]) if len(frames.path) else {}
        self.detail.extra_filters = self._reached

    def _parent_filters(self, path: pd.DataFrame) -> list[dict[str, Any]]:
        """The filters each level splits: the selection's, then each level's segment."""
        first = dict(self._selection().get("filters") or {})
        return [first, *(dict(f) for f in path["filters"].iloc[:-1])] if len(path) else []

    def _level_click(self, level: int):
        """A click on a bar of drill level ``level``: its segment within the segments above."""

        def on_click(change: dict) -> None:
            parents = self._parents[level] if level < len(self._parents) else {}
            self.drill = {**parents, **change["new"]} if change["new"] else {}

        return on_click

    def _apply_drill(self) -> None:
        """The deals of the bar clicked last; before any click, of the segment the drill
        reached."""
        self.detail.extra_filters = dict(self.drill) or dict(self._reached)

    def _compute_discount(self) -> pd.DataFrame:
        sel = self._selection()
        return metrics.discount_contributions(
            self.data,
            by=self.discount_dimension,
            period=sel["period"],
            filters=sel["filters"],
            date_field=sel["date_field"],
        )

    def _apply_discount(self, frame: pd.DataFrame) -> None:
        dim = self.discount_dimension
        self.discount_chart.chart = discount_chart(frame, dim)
        self.discount_note.value = paragraph(discount_sentence(frame, dim, self.data.base_currency))
