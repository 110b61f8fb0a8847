"""Sales-Cycle Acceleration: where the time goes between created and closed, and what winning
it back would be worth.

Cycle days of won and lost deals, time to close with open deals censored (Kaplan–Meier) next to
the biased closed-only median, won and lost as competing outcomes, the stage funnel with its
bottleneck, aging and stuck open deals, the pipeline's flow between two dates, velocity split
into its levers, and a what-if on those levers. Composed from the widget kit; every number comes
from salesops_widgets.metrics.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import metrics
from .._catalog import CATALOGUE, TOO_FEW
from .._dates import date_parameter
from ..data import SalesData
from ..errors import ParameterError
from ..widgets import ChartView, DataTable, ExportBar, KPICards, cards_from_kpis, period_for_preset
from . import _cycle_charts as plot
from . import _cycle_display as show
from ._base import Dashboard, Part
from ._common import Controls, Grid, Panel, attempt, dimension_label
from ._cycle_controls import flow_controls, stuck_controls, what_if_controls

__all__ = ["SalesCycleAcceleration"]

CURVE_DAYS = 365  # the curves stop here: past a year few deals are left to say much
# the cards, named by what each counts: this dashboard sets the two medians side by side
CARDS = tuple(
    CATALOGUE[c].card(titled=True)
    for c in (
        "km_median_days_to_close",
        "naive_median_days_closed_only",
        "median_cycle_days_won",
        "win_rate",
        "asp",
        "velocity",
        "open",
    )
)
_POINTS = "0.02 for two points"
_DRILLED = ("outcome", "stage", "age_band")  # what a click can narrow, besides the segment


@dataclass(frozen=True)
class _Cycle:
    """The cycle part's frames (pandas frames from the KPI layer), by ``dimension``."""

    dimension: str
    overall: pd.Series  # segment_kpis of the selection + the naive median
    previous: pd.Series | None
    quantiles: pd.DataFrame
    histogram: pd.DataFrame
    ttc: pd.DataFrame  # time_to_close by segment, the selection first
    curves: pd.DataFrame
    cif: pd.DataFrame  # time_to_win by segment
    cif_curves: pd.DataFrame
    aging: pd.DataFrame
    levers: pd.DataFrame


def _next_quarter(as_of: _dt.date) -> tuple[_dt.date, _dt.date]:
    """The calendar quarter after the one holding ``as_of``."""
    index = as_of.year * 4 + (as_of.month - 1) // 3 + 1
    start = _dt.date(index // 4, 3 * (index % 4) + 1, 1)
    after = index + 1
    return start, _dt.date(after // 4, 3 * (after % 4) + 1, 1) - _dt.timedelta(days=1)


class SalesCycleAcceleration(Dashboard):
    """Where the sales cycle's time goes, per segment, and what winning it back is worth.

    Parameters
    ----------
    data
        The loaded data. The stage views need ``stage_history``; without it they say so and the
        others still show.
    dimension
        The segments every view is split by (e.g. ``size_band``).
    stage_order
        The open stages in order ([] or None: inferred from the stage history).
    stuck_threshold
        When an open deal is stuck: ``"p90"`` (over the 90th percentile of its stage's time in
        this segment), any ``"pNN"``, ``"median"``, or a number of days for every stage.
    flow_start, flow_end
        The two dates of the pipeline flow ("" for the last full quarter's).
    cycle_cut, win_rate_points, asp_lift
        The what-if: cycle days cut by this fraction, win rate up this many points (0.02 = two
        points), ASP up this fraction.
    period, date_field, filters, region, debounce, top_n
        The initial filter bar, the debounce and the drill-down's length (see ``Dashboard``).

    Attributes
    ----------
    filter_bar, controls, cards, distribution, time_to_close, won_lost, funnel, open_deals,
    flow, velocity, what_if, drilldown, quality
        The sections, each displayable on its own (one per notebook cell).
    box, histogram, distribution_table, km, km_note, km_table, cif, cif_table, funnel_chart,
    bottlenecks, stage_table, aging, deals_table, flow_chart, flow_note, flow_table,
    velocity_chart, levers_chart, levers_table, what_if_note, what_if_table, detail, status
        The widgets inside them.
    """

    PARTS = (
        Part("cycle", on=("selection", "dimension")),
        Part("stages", on=("selection", "dimension", "stage_order", "stuck_threshold")),
        Part("flow", on=("selection", "dimension", "flow_start", "flow_end")),
        Part("what_if", on=("selection", "dimension", "cycle_cut", "win_rate_points", "asp_lift")),
        # a click narrows the histogram, the open deals and the drill-down (no recomputation)
        Part("drill", on=("cycle", "stages", "drill", "only_stuck"), computes=False),
    )

    dimension = t.Unicode(help="Segment dimension every view is split by.")
    stage_order = t.List(t.Unicode(), help="Open stages in order ([]: from the stage history).")
    stuck_threshold = t.Any("p90", help="'p90', 'pNN', 'median', or a number of days.")
    only_stuck = t.Bool(True, help="List only stuck open deals (False: every open deal).")
    flow_start = t.Unicode("", help="First date of the pipeline flow ('' = last quarter's).")
    flow_end = t.Unicode("", help="Second date of the pipeline flow ('' = last quarter's).")
    cycle_cut = t.Float(0.1, help="What-if: fraction of cycle days cut (0.1 = 10% shorter).")
    win_rate_points = t.Float(0.02, help="What-if: win rate points added (0.02 = two points).")
    asp_lift = t.Float(0.05, help="What-if: fraction added to the ASP (0.05 = 5% higher).")
    drill = t.Dict(help="The clicked segment, outcome, stage or age band: field -> values.")

    def __init__(
        self,
        data: SalesData,
        *,
        dimension: str = "size_band",
        stage_order: Sequence[str] | None = None,
        stuck_threshold: str | float = "p90",
        flow_start: str = "",
        flow_end: str = "",
        cycle_cut: float = 0.1,
        win_rate_points: float = 0.02,
        asp_lift: float = 0.05,
        **options: Any,
    ) -> None:
        super().__init__(data, **options)
        self._build_widgets(data.base_currency)
        with self.hold_trait_notifications():
            self._set_parameters(
                dimension=dimension,
                stage_order=stage_order,
                stuck_threshold=stuck_threshold,
                flow_start=flow_start,
                flow_end=flow_end,
                cycle_cut=cycle_cut,
                win_rate_points=win_rate_points,
                asp_lift=asp_lift,
            )
        self._build_sections()
        self._follow_clicks(self.box, self.funnel_chart, self.aging, self.velocity_chart)
        self._start()

    def _set_parameters(self, **values: Any) -> None:
        """Notebook parameters, of any type, checked and converted here."""
        convert = {
            "dimension": str,
            "stage_order": _stage_list,
            "flow_start": _date_text,
            "flow_end": _date_text,
            "cycle_cut": lambda v: show._number(v, "cycle_cut", "0.1 for 10% shorter"),
            "win_rate_points": lambda v: show._number(v, "win_rate_points", _POINTS),
            "asp_lift": lambda v: show._number(v, "asp_lift", "0.05 for 5% higher"),
        }
        super()._set_parameters(
            **{name: convert.get(name, _same)(value) for name, value in values.items()}
        )

    def _build_widgets(self, currency: str | None) -> None:
        self.cards = KPICards()
        self.box = ChartView(selection="pick")
        self.histogram = ChartView()
        self.km = ChartView(selection="segment")
        self.km_note = w.HTML()
        self.cif = ChartView(selection="segment")
        self.funnel_chart = ChartView(selection="stage")
        self.aging = ChartView(selection="cell")
        self.flow_chart = ChartView()
        self.flow_note = w.HTML()
        self.velocity_chart = ChartView(selection="pick")
        self.levers_chart = ChartView()
        self.what_if_note = w.HTML()
        for name, table in show.TABLES.items():
            setattr(self, name, DataTable(currency=currency, **table))

    def _build_sections(self) -> None:
        self.controls = Controls([self._dimension_control("dimension"), self.status])
        self.distribution = Panel([Grid([self.box, self.histogram]), self.distribution_table])
        self.time_to_close = Panel([self.km, self.km_note, self.km_table])
        self.won_lost = Panel([self.cif, self.cif_table])
        stage_export = ExportBar(table=self.stage_table, name="stages")
        self.funnel = Panel([self.funnel_chart, self.bottlenecks, self.stage_table, stage_export])
        deals_export = ExportBar(table=self.deals_table, name="open-deals")
        self.open_deals = Panel([stuck_controls(self), self.aging, self.deals_table, deals_export])
        self.flow = Panel([flow_controls(self), self.flow_note, self.flow_chart, self.flow_table])
        self.velocity = Panel([Grid([self.velocity_chart, self.levers_chart]), self.levers_table])
        self.what_if = Panel([what_if_controls(self), self.what_if_note, self.what_if_table])

    # ------------------------------------------------------------------------------ validation

    @t.validate("dimension")
    def _valid_dimension(self, proposal: dict) -> str:
        return self._dimension(proposal["value"], "dimension")

    @t.validate("stage_order")
    def _valid_stage_order(self, proposal: dict) -> list[str]:
        names = [str(s).strip() for s in proposal["value"]]
        if any(not s for s in names) or len(set(names)) != len(names):
            raise ParameterError(
                f"stage_order={proposal['value']!r} must list each open stage once, e.g. "
                "['Prospecting', 'Qualification', 'Proposal', 'Negotiation'], or [] to infer it."
            )
        return names

    @t.validate("stuck_threshold")
    def _valid_threshold(self, proposal: dict) -> str | float:
        return show._threshold(proposal["value"])

    @t.validate("flow_start", "flow_end")
    def _valid_flow_date(self, proposal: dict) -> str:
        name = proposal["trait"].name
        day = date_parameter(proposal["value"], name)
        if day is not None and day > self.data.as_of:
            raise ParameterError(
                f"{name}={proposal['value']!r} is after the as-of date {self.data.as_of}: the "
                "data cannot say yet; choose an earlier date, or '' for last quarter."
            )
        return "" if day is None else day.isoformat()

    @t.validate("cycle_cut")
    def _valid_cut(self, proposal: dict) -> float:
        return show._within(proposal["value"], "cycle_cut", 0.0, 0.9, "0.1 for 10% shorter")

    @t.validate("win_rate_points")
    def _valid_points(self, proposal: dict) -> float:
        return show._within(proposal["value"], "win_rate_points", -1.0, 1.0, _POINTS)

    @t.validate("asp_lift")
    def _valid_lift(self, proposal: dict) -> float:
        return show._within(proposal["value"], "asp_lift", -0.9, 10.0, "0.05 for 5% higher")

    def flow_dates(self) -> tuple[_dt.date, _dt.date]:
        """The pipeline flow's two dates: the parameters, or the last full quarter's."""
        start, end = period_for_preset("last_quarter", self.data.as_of)
        first = date_parameter(self.flow_start, "flow_start") or start - _dt.timedelta(days=1)
        second = date_parameter(self.flow_end, "flow_end") or end
        if first >= second:
            raise ParameterError(
                f"flow_start {first} must be before flow_end {second}; swap them, or leave them "
                "'' for last quarter."
            )
        return first, second

    def next_quarter(self) -> tuple[_dt.date, _dt.date]:
        """The quarter the what-if projects bookings over (the one after the as-of date's)."""
        return _next_quarter(self.data.as_of)

    # ------------------------------------------------------------------------------ the parts

    def _compute_cycle(self) -> _Cycle:
        sel, by = self._selection(), [self.dimension]
        overall, ttc_all = self._overall(sel)
        before = self.filter_bar.comparison_selection()
        ttc = metrics.time_to_close(self.data, by=by, **sel)
        curves = dict(by=by, max_day=CURVE_DAYS, **sel)
        return _Cycle(
            dimension=self.dimension,
            overall=overall,
            previous=self._overall(before)[0] if before else None,
            quantiles=metrics.cycle_quantiles(self.data, by=by, **sel),
            histogram=metrics.cycle_histogram(self.data, by=by, **sel),
            ttc=pd.concat([ttc_all.assign(**{by[0]: "All deals"}), ttc], ignore_index=True),
            curves=metrics.time_to_close_curves(self.data, **curves),
            cif=metrics.time_to_win(self.data, by=by, **sel),
            cif_curves=metrics.time_to_win_curves(self.data, **curves),
            aging=metrics.open_deal_aging(self.data, by=by, **sel),
            levers=metrics.velocity_levers(self.data, by=by, **sel),
        )

    def _overall(self, sel: Mapping[str, Any]) -> tuple[pd.Series, pd.DataFrame]:
        """The selection's KPI row with the naive median, and its time_to_close row."""
        row = metrics.segment_kpis(self.data, **sel).iloc[0].copy()
        ttc = metrics.time_to_close(self.data, **sel)
        row["naive_median_days_closed_only"] = ttc["naive_median_days_closed_only"].iloc[0]
        return row, ttc

    def _apply_cycle(self, frames: _Cycle) -> None:
        dim, currency = frames.dimension, self.data.base_currency
        self.cards.cards = cards_from_kpis(
            frames.overall, frames.previous, CARDS, currency=currency, report=self.data.report
        )
        self.box.chart = plot.box_chart(frames.quantiles, dim)
        self.distribution_table.data = show._distribution_display(frames.quantiles, dim)
        self.km.chart = plot.km_chart(frames.curves, dim)
        notes = [show._gap_sentence(frames.ttc, dim)]
        notes += self.data.report.warnings_for("km_median_days_to_close")
        self.km_note.value = "".join(show._paragraph(n[:1].upper() + n[1:]) for n in notes)
        self.km_table.data = show._ttc_display(frames.ttc, dim)
        self.cif.chart = plot.cif_chart(frames.cif_curves, dim)
        self.cif_table.data = show._cif_display(frames.cif, dim)
        self.aging.chart = plot.aging_chart(frames.aging, dim)
        why = self.data.report.warnings_for("velocity")
        self.velocity_chart.chart = plot.velocity_chart(frames.levers, dim, currency, why)
        self.levers_chart.chart = plot.levers_chart(frames.levers, dim)
        self.levers_table.data = show._levers_display(frames.levers, dim)

    def _compute_stages(self) -> dict[str, Any]:
        sel, by, order = self._selection(), [self.dimension], self.stage_order or None
        stuck = {"threshold": self.stuck_threshold, "top_n": None, "only_stuck": False}
        return {  # no stage history: these say so, the other views still show
            "stages": attempt(metrics.stage_durations, self.data, by=by, stage_order=order, **sel),
            "open_deals": attempt(
                metrics.stuck_deals, self.data, by=by, stage_order=order, **stuck, **sel
            ),
        }

    def _apply_stages(self, frames: Mapping[str, Any]) -> None:
        stages, dim = frames["stages"], self.dimension
        self.funnel_chart.chart = plot.funnel_chart(stages, dim)
        if isinstance(stages, Exception):
            for table in (self.bottlenecks, self.stage_table):
                table.empty_message = f"Not available: {stages}"
                table.data = pd.DataFrame()
            return
        self.bottlenecks.empty_message = (
            f"No stage has {metrics.MIN_CLOSED} stays or more in any segment: {TOO_FEW}."
        )
        self.bottlenecks.data = show._bottlenecks(stages, dim)
        self.stage_table.data = show._stages_display(stages, dim)

    def _compute_flow(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        start, end = self.flow_dates()
        flow = {"start": start, "end": end, "filters": self._selection()["filters"]}
        by_segment = metrics.pipeline_flow(self.data, by=[self.dimension], **flow)
        return metrics.pipeline_flow(self.data, **flow), by_segment

    def _apply_flow(self, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
        (flow, flow_by), (start, end) = frames, self.flow_dates()
        self.flow_chart.chart = plot.flow_chart(flow, start, end, self.data.base_currency)
        self.flow_note.value = show._paragraph(show._flow_sentence(flow, start, end, self.data))
        self.flow_table.data = show._flow_display(flow_by, self.dimension)

    def _compute_what_if(self) -> pd.DataFrame:
        sel, by = self._selection(), [self.dimension]
        start, end = self.next_quarter()
        scenario = {
            "cycle_cut": self.cycle_cut,
            "win_rate_points": self.win_rate_points,
            "asp_lift": self.asp_lift,
            "horizon_days": (end - start).days + 1,
        }
        total = metrics.velocity_what_if(self.data, **scenario, **sel)
        per = metrics.velocity_what_if(self.data, by=by, **scenario, **sel)
        out = pd.concat([total.assign(**{by[0]: "All deals"}), per], ignore_index=True)
        out.attrs = dict(total.attrs)
        return out

    def _apply_what_if(self, what_if: pd.DataFrame) -> None:
        start, end = self.next_quarter()
        why = self.data.report.warnings_for("velocity")
        self.what_if_note.value = show._what_if_html(
            what_if, start, end, self.data.base_currency, why
        )
        self.what_if_table.data = show._what_if_display(what_if, self.dimension)

    # ------------------------------------------------------------------------------ clicks

    def _on_click(self, change: dict) -> None:
        """A click on a box, a funnel bar, an aging cell or a velocity bar: the open deals
        table, the histogram and the drill-down follow it."""
        dim = self._frames["cycle"].dimension
        label = dimension_label(dim)  # the curves and the funnel name the segment by its label
        self.drill = {dim if k == label else k: v for k, v in change["new"].items()}

    def _apply_drill(self) -> None:
        cycle = self._frames["cycle"]
        dim = cycle.dimension
        # a click on the charts of another dimension no longer applies
        drill = {k: v for k, v in self.drill.items() if k in (dim, *_DRILLED)}
        self.histogram.chart = plot.histogram_chart(cycle.histogram, dim, drill.get(dim) or [])
        self._show_open_deals(drill, dim, cycle.aging)
        status = (drill.get("outcome") or [None])[0]
        if "stage" in drill or "age_band" in drill:
            status = "open"
        with self.detail.hold_trait_notifications():
            self.detail.status = status
            self.detail.extra_filters = {k: v for k, v in drill.items() if k in (dim, "stage")}

    def _show_open_deals(self, drill: Mapping[str, Any], dim: str, aging: pd.DataFrame) -> None:
        deals = self._frames["stages"]["open_deals"]
        if isinstance(deals, Exception):
            self.deals_table.empty_message = f"Not available: {deals}"
            self.deals_table.title = "Stuck open deals"
            self.deals_table.data = pd.DataFrame()
            return
        shown = show._narrow(deals, drill, dim, aging)
        if self.only_stuck:
            shown = shown[shown["stuck"]]
        self.deals_table.title = show._deals_title(
            self.stuck_threshold, self.only_stuck, drill, len(shown)
        )
        self.deals_table.empty_message = "No open deal here is over its stage's threshold."
        self.deals_table.data = show._deals_display(shown, dim)


def _same(value: Any) -> Any:
    return value


def _stage_list(stages: Any) -> list[str]:
    """A stage order from a notebook parameter: a list, one stage name, or empty."""
    stages = [stages] if isinstance(stages, str) else list(stages or [])
    return [str(s) for s in stages]


def _date_text(value: Any) -> str:
    return str(value or "")
