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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import charts, metrics
from .._catalog import CATALOGUE
from .._dates import date_parameter
from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ..metrics._stats import TOO_FEW
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
    period_for_preset,
)
from ._common import (
    Controls,
    Grid,
    Panel,
    dimension_label,
    dimension_options,
    filter_arguments,
)
from ._cycle_display import (
    _DAY_COLUMNS,
    _LEVER_RATIOS,
    MOVEMENTS,
    _bottlenecks,
    _cif_display,
    _compact_axis,
    _deals_display,
    _distribution_display,
    _flow_bars,
    _flow_display,
    _flow_sentence,
    _gap_sentence,
    _labelled,
    _levers_display,
    _narrow,
    _number,
    _ordinal,
    _paragraph,
    _segments,
    _stages_display,
    _threshold_text,
    _ttc_display,
    _what_if_display,
    _what_if_html,
    _within,
)

__all__ = ["PARTS", "SalesCycleAcceleration"]

# what one refresh can recompute; a change recomputes only the parts that depend on it
PARTS = ("cycle", "stages", "flow", "what_if")
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
LEVERS = {
    "open_ratio": "Open deals",
    "win_rate_ratio": "Win rate",
    "asp_ratio": "ASP",
    "km_median_days_to_close_ratio": "Speed",
}
_LABELS = {
    "p10_cycle_days": "10th percentile",
    "p25_cycle_days": "25th percentile",
    "median_cycle_days": "median",
    "p75_cycle_days": "75th percentile",
    "p90_cycle_days": "90th percentile",
    "median_days_to_close": "median days to close",
    "interval_low_days": "95% interval from",
    "interval_high_days": "to",
    "closed_only_median_days": "closed-only median",
    "gap_days": "gap",
    "closed_by_day_90": "closed by day 90",
    "closed_by_day_365": "closed by day 365",
    "median_days_in_stage": "median days in stage",
    "p90_days_in_stage": "90th percentile",
    "next_stage_median_days": "its median days",
    "conversion_to_next": "moved on to the next stage",
    "still_in_stage": "still in stage",
    "open_deals_ratio": "open deals ratio",
    "speed_ratio": "speed ratio",
    "velocity_what_if": "velocity what-if",
    "velocity_change": "change",
    "extra_bookings": "extra bookings next quarter",
    "win_rate_what_if": "win rate what-if",
    "asp_what_if": "ASP what-if",
    "cycle_days_what_if": "days to close what-if",
    "asp": "ASP",
    "asp_ratio": "ASP ratio",
}
_POINTS = "0.02 for two points"
_THRESHOLD = re.compile(r"p(\d{1,2}(\.\d+)?)|median")
_SLIDERS = {  # trait -> (label, min, max) of the slider, in percent or points
    "cycle_cut": ("Cycle days cut (%)", 0, 50),
    "win_rate_points": ("Win rate gain (points)", -10, 20),
    "asp_lift": ("ASP increase (%)", -20, 30),
}


@dataclass(frozen=True)
class _Frames:
    """What one refresh computed (pandas frames from the KPI layer); None: not recomputed."""

    parts: frozenset[str]
    dimension: str
    overall: pd.Series | None = None  # segment_kpis of the selection + the naive median
    previous: pd.Series | None = None
    quantiles: pd.DataFrame | None = None
    histogram: pd.DataFrame | None = None
    ttc: pd.DataFrame | None = None  # time_to_close by segment, the selection first
    curves: pd.DataFrame | None = None
    cif: pd.DataFrame | None = None  # time_to_win by segment
    cif_curves: pd.DataFrame | None = None
    aging: pd.DataFrame | None = None
    levers: pd.DataFrame | None = None
    stages: pd.DataFrame | MissingDataError | None = None
    open_deals: pd.DataFrame | MissingDataError | None = None
    flow: pd.DataFrame | None = None
    flow_by: pd.DataFrame | None = None
    what_if: pd.DataFrame | None = None  # by segment, the selection first


def _next_quarter(as_of: _dt.date) -> tuple[_dt.date, _dt.date]:
    """The calendar quarter after the one holding ``as_of``."""
    index = as_of.year * 4 + (as_of.month - 1) // 3 + 1
    start = _dt.date(index // 4, 3 * (index % 4) + 1, 1)
    after = index + 1
    return start, _dt.date(after // 4, 3 * (after % 4) + 1, 1) - _dt.timedelta(days=1)


class SalesCycleAcceleration(t.HasTraits):
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
    period, date_field, filters, region
        The initial filter bar (as in ``SegmentationExplorer``).
    debounce
        Seconds of quiet before a change recomputes (0: at once).
    top_n
        Deals listed in the drill-down.

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
        self._dirty: set[str] = set()
        self._last: dict[str, Any] = {}
        self.filter_bar = FilterBar(
            data,
            **filter_arguments(period, date_field, filters, region),
        )
        self.status = Refresher(debounce=debounce)
        self._build_widgets(data, top_n)
        stages = [stage_order] if isinstance(stage_order, str) else list(stage_order or [])
        with self.hold_trait_notifications():  # notebook parameters: any type, checked here
            self.dimension = str(dimension)
            self.stage_order = [str(s) for s in stages]
            self.stuck_threshold = stuck_threshold
            self.flow_start, self.flow_end = str(flow_start or ""), str(flow_end or "")
            self.cycle_cut = _number(cycle_cut, "cycle_cut", "0.1 for 10% shorter")
            self.win_rate_points = _number(win_rate_points, "win_rate_points", _POINTS)
            self.asp_lift = _number(asp_lift, "asp_lift", "0.05 for 5% higher")
        self._build_sections()
        self._observe()
        self._apply(self._compute(frozenset(PARTS)))  # the first view at once, for static runs

    def _build_widgets(self, data: SalesData, top_n: int) -> None:
        currency = data.base_currency
        self.cards = KPICards()
        self.box = ChartView(selection="pick")
        self.histogram = ChartView()
        days = {c: "days" for c in _DAY_COLUMNS}
        self.distribution_table = DataTable(
            title="Days from created to closed, won and lost deals (percentiles)",
            formats=days,
            labels=_LABELS,
        )
        self.km = ChartView(selection="segment")
        self.km_note = w.HTML()
        self.km_table = DataTable(
            title="Median days to close: open deals counted (Kaplan–Meier) and closed only",
            formats={**days, "closed_by_day_90": "percent", "closed_by_day_365": "percent"},
            labels=_LABELS,
        )
        self.cif = ChartView(selection="segment")
        self.cif_table = DataTable(
            title="Share of the deals won, and lost, by day 90 and day 365",
            formats={f"{o}_by_day_{d}": "percent" for o in ("won", "lost") for d in (90, 365)},
        )
        self.funnel_chart = ChartView(selection="stage")
        stage_formats = {**days, "conversion_to_next": "percent", "stays": "count"}
        self.bottlenecks = DataTable(
            title="The bottleneck stage of each segment, and the next slowest stage",
            small_n=None,
            formats=stage_formats,
            labels=_LABELS,
        )
        self.stage_table = DataTable(
            title="Every stage", small_n=None, formats=stage_formats, labels=_LABELS
        )
        self.aging = ChartView(selection="cell")
        self.deals_table = DataTable(
            currency=currency,
            small_n=None,
            max_rows=100,
            formats={**days, "close_date_pushes": "count"},
            labels=_LABELS,
        )
        self.flow_chart = ChartView()
        self.flow_note = w.HTML()
        self.flow_table = DataTable(
            currency=currency,
            small_n=None,
            title="Flow per segment (amounts)",
            formats={m: "money" for m in MOVEMENTS},
            labels={m: label.split(" (")[0].lower() for m, label in MOVEMENTS.items()},
        )
        self.velocity_chart = ChartView(selection="pick")
        self.levers_chart = ChartView()
        self.levers_table = DataTable(
            currency=currency,
            title="Velocity and its four levers (ratios: the segment against the selection)",
            formats={**days, **{c: "ratio" for c in _LEVER_RATIOS.values()}},
            labels=_LABELS,
        )
        self.what_if_note = w.HTML()
        money = ("velocity_what_if", "velocity_change", "extra_bookings", "asp_what_if")
        self.what_if_table = DataTable(
            currency=currency,
            title="What-if per segment (velocity per day; extra bookings over next quarter)",
            formats={
                **{c: "money" for c in money},
                "win_rate_what_if": "percent",
                "cycle_days_what_if": "days",
            },
            labels=_LABELS,
        )
        self.detail = DetailView(data, top_n=top_n, selection=self.filter_bar.selection)
        self.quality = QualityPanel(data)

    def _build_sections(self) -> None:
        dims = [(dimension_label(d), d) for d in self._options]
        segments = w.Dropdown(options=dims, description="Segments")
        w.link((self, "dimension"), (segments, "value"))
        self.controls = Controls([segments, self.status])
        self.distribution = Panel([Grid([self.box, self.histogram]), self.distribution_table])
        self.time_to_close = Panel([self.km, self.km_note, self.km_table])
        self.won_lost = Panel([self.cif, self.cif_table])
        self.funnel = Panel(
            [
                self.funnel_chart,
                self.bottlenecks,
                self.stage_table,
                ExportBar(table=self.stage_table, name="stages"),
            ]
        )
        self.open_deals = Panel(
            [
                self._stuck_controls(),
                self.aging,
                self.deals_table,
                ExportBar(table=self.deals_table, name="open-deals"),
            ]
        )
        self.flow = Panel([self._flow_controls(), self.flow_note, self.flow_chart, self.flow_table])
        self.velocity = Panel([Grid([self.velocity_chart, self.levers_chart]), self.levers_table])
        self.what_if = Panel([self._what_if_controls(), self.what_if_note, self.what_if_table])
        self.drilldown = Panel([self.detail, ExportBar(table=self.detail.table, name="deals")])

    def _observe(self) -> None:
        for view in (self.box, self.funnel_chart, self.aging, self.velocity_chart):
            view.observe(self._on_click, "selected")
        self.filter_bar.observe(self._on_change, "selection")
        self.observe(self._on_change, ["dimension"])
        self.observe(self._on_stages, ["stage_order", "stuck_threshold"])
        self.observe(self._on_flow, ["flow_start", "flow_end"])
        self.observe(self._on_what_if, ["cycle_cut", "win_rate_points", "asp_lift"])
        self.observe(self._on_drill, ["drill", "only_stuck"])

    # ------------------------------------------------------------------------------ validation

    @t.validate("dimension")
    def _valid_dimension(self, proposal: dict) -> str:
        if proposal["value"] not in self._options:
            raise ParameterError(
                f"dimension={proposal['value']!r} is not a dimension this data has; choose one "
                f"of {', '.join(self._options)}."
            )
        return proposal["value"]

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
        value = proposal["value"]
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        text = str(value).strip().lower()
        match = _THRESHOLD.fullmatch(text)
        if match is None or (match.group(1) and not 0 < float(match.group(1)) < 100):
            raise ParameterError(
                f"stuck_threshold={proposal['value']!r}: use a percentile of the stage's usual "
                "time such as 'p90', 'p75' or 'median', or a number of days such as 60."
            )
        return text

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
        return _within(proposal["value"], "cycle_cut", 0.0, 0.9, "0.1 for 10% shorter")

    @t.validate("win_rate_points")
    def _valid_points(self, proposal: dict) -> float:
        return _within(proposal["value"], "win_rate_points", -1.0, 1.0, _POINTS)

    @t.validate("asp_lift")
    def _valid_lift(self, proposal: dict) -> float:
        return _within(proposal["value"], "asp_lift", -0.9, 10.0, "0.05 for 5% higher")

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

    # ------------------------------------------------------------------------------ controls

    def _stuck_controls(self) -> Controls:
        options = [(_threshold_text(v), v) for v in ("p90", "p75", "median")]
        threshold = w.Dropdown(options=options, description="Stuck over")

        def show(change: Any = None) -> None:
            value = self.stuck_threshold
            if value not in [v for _, v in threshold.options]:
                threshold.options = [*threshold.options, (_threshold_text(value), value)]
            threshold.value = value

        show()
        self.observe(show, "stuck_threshold")
        threshold.observe(lambda c: setattr(self, "stuck_threshold", c.new), "value")
        shown = w.ToggleButtons(options=[("Stuck deals", True), ("Every open deal", False)])
        w.link((self, "only_stuck"), (shown, "value"))
        return Controls([threshold, shown])

    def _flow_controls(self) -> Controls:
        pickers = {
            "flow_start": w.DatePicker(description="From"),
            "flow_end": w.DatePicker(description="To"),
        }

        def show(change: Any = None) -> None:
            try:
                days = self.flow_dates()
            except ParameterError:  # half-way through setting both: the refresh will say so
                return
            for picker, day in zip(pickers.values(), days, strict=True):
                picker.value = day

        def pick(change: dict, name: str) -> None:
            try:
                shown = self.flow_dates()[0 if name == "flow_start" else 1]
            except ParameterError:
                shown = None
            if change["new"] != shown:  # a date picked, not the default shown
                setattr(self, name, change["new"].isoformat() if change["new"] else "")

        show()
        self.observe(show, ["flow_start", "flow_end"])
        for name, picker in pickers.items():
            picker.observe(lambda c, name=name: pick(c, name), "value")
        return Controls(list(pickers.values()))

    def _what_if_controls(self) -> Controls:
        """One slider per lever, in percent (points for the win rate); the traits hold
        fractions. A value set in code outside a slider's range widens the range."""
        sliders = {}
        for name, (label, low, high) in _SLIDERS.items():
            sliders[name] = w.IntSlider(
                min=low,
                max=high,
                description=label,
                style={"description_width": "initial"},
                continuous_update=False,
            )

        def show(change: Any = None) -> None:
            for name, slider in sliders.items():
                value = round(getattr(self, name) * 100)
                with slider.hold_sync():
                    slider.min, slider.max = min(slider.min, value), max(slider.max, value)
                    slider.value = value

        def slide(change: dict, name: str) -> None:
            if round(getattr(self, name) * 100) != change["new"]:
                setattr(self, name, change["new"] / 100)

        show()
        self.observe(show, list(_SLIDERS))
        for name, slider in sliders.items():
            slider.observe(lambda c, name=name: slide(c, name), "value")
        return Controls(list(sliders.values()))

    # ------------------------------------------------------------------------------ update path

    def _schedule(self, parts: Sequence[str]) -> None:
        """Recompute ``parts`` after the debounce (parts of a pending refresh are kept)."""
        self._dirty.update(parts)
        self.status.schedule(self._compute_dirty, apply=self._apply)

    def _on_change(self, change: dict) -> None:
        self._schedule(PARTS)

    def _on_stages(self, change: dict) -> None:
        self._schedule(["stages"])

    def _on_flow(self, change: dict) -> None:
        self._schedule(["flow"])

    def _on_what_if(self, change: dict) -> None:
        self._schedule(["what_if"])

    def _compute_dirty(self) -> _Frames:
        parts, self._dirty = frozenset(self._dirty), set()
        return self._compute(parts)

    def _on_click(self, change: dict) -> None:
        """A click on a box, a funnel bar, an aging cell or a velocity bar: the open deals
        table, the histogram and the drill-down follow it."""
        dim = self._last.get("dimension", self.dimension)
        label = dimension_label(dim)  # the curves and the funnel name the segment by its label
        self.drill = {dim if k == label else k: v for k, v in change["new"].items()}

    def _compute(self, parts: frozenset[str]) -> _Frames:
        sel = dict(self.filter_bar.selection)
        by = [self.dimension]
        out: dict[str, Any] = {"parts": parts, "dimension": self.dimension}
        if "cycle" in parts:
            out.update(self._compute_cycle(by, sel))
        if "stages" in parts:
            out.update(self._compute_stages(by, sel))
        if "flow" in parts:
            start, end = self.flow_dates()
            flow = {"start": start, "end": end, "filters": sel["filters"]}
            out["flow"] = metrics.pipeline_flow(self.data, **flow)
            out["flow_by"] = metrics.pipeline_flow(self.data, by=by, **flow)
        if "what_if" in parts:
            out["what_if"] = self._compute_what_if(by, sel)
        return _Frames(**out)

    def _compute_cycle(self, by: list[str], sel: dict[str, Any]) -> dict[str, Any]:
        overall = metrics.segment_kpis(self.data, **sel).iloc[0].copy()
        ttc_all = metrics.time_to_close(self.data, **sel)
        overall["naive_median_days_closed_only"] = ttc_all["naive_median_days_closed_only"].iloc[0]
        before = self.filter_bar.comparison_selection()
        previous = None
        if before:
            previous = metrics.segment_kpis(self.data, **before).iloc[0].copy()
            naive = metrics.time_to_close(self.data, **before)["naive_median_days_closed_only"]
            previous["naive_median_days_closed_only"] = naive.iloc[0]
        ttc = metrics.time_to_close(self.data, by=by, **sel)
        curves = dict(by=by, max_day=CURVE_DAYS, **sel)
        return {
            "overall": overall,
            "previous": previous,
            "quantiles": metrics.cycle_quantiles(self.data, by=by, **sel),
            "histogram": metrics.cycle_histogram(self.data, by=by, **sel),
            "ttc": pd.concat([ttc_all.assign(**{by[0]: "All deals"}), ttc], ignore_index=True),
            "curves": metrics.time_to_close_curves(self.data, **curves),
            "cif": metrics.time_to_win(self.data, by=by, **sel),
            "cif_curves": metrics.time_to_win_curves(self.data, **curves),
            "aging": metrics.open_deal_aging(self.data, by=by, **sel),
            "levers": metrics.velocity_levers(self.data, by=by, **sel),
        }

    def _compute_stages(self, by: list[str], sel: dict[str, Any]) -> dict[str, Any]:
        order = self.stage_order or None
        out: dict[str, Any] = {}
        try:
            out["stages"] = metrics.stage_durations(self.data, by=by, stage_order=order, **sel)
        except MissingDataError as exc:  # no stage history: the other views still show
            out["stages"] = exc
        try:
            out["open_deals"] = metrics.stuck_deals(
                self.data,
                by=by,
                threshold=self.stuck_threshold,
                stage_order=order,
                top_n=None,
                only_stuck=False,
                **sel,
            )
        except MissingDataError as exc:
            out["open_deals"] = exc
        return out

    def _compute_what_if(self, by: list[str], sel: dict[str, Any]) -> pd.DataFrame:
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

    def _apply(self, frames: _Frames) -> None:
        """Turn one refresh's frames into the view (the parts it recomputed)."""
        self._last.update({k: v for k, v in vars(frames).items() if v is not None})
        dim = frames.dimension
        if "cycle" in frames.parts:
            self._apply_cycle(frames, dim)
        if "stages" in frames.parts:
            self._apply_stages(frames.stages, dim)
        if "flow" in frames.parts:
            self._apply_flow(frames.flow, frames.flow_by, dim)
        if "what_if" in frames.parts:
            self._apply_what_if(frames.what_if, dim)
        if "cycle" in frames.parts or "stages" in frames.parts:
            self._apply_drill()

    def _on_drill(self, change: dict) -> None:
        self._apply_drill()

    # ------------------------------------------------------------------------------ views

    def _apply_cycle(self, frames: _Frames, dim: str) -> None:
        currency = self.data.base_currency
        cards = cards_from_kpis(frames.overall, frames.previous, CARDS, currency=currency)
        with self.cards.hold_sync():
            self.cards.cards = cards
        self.box.chart = self._box_chart(frames.quantiles, dim)
        self.distribution_table.data = _distribution_display(frames.quantiles, dim)
        self.km.chart = self._km_chart(frames.curves, dim)
        self.km_note.value = _paragraph(_gap_sentence(frames.ttc, dim))
        self.km_table.data = _ttc_display(frames.ttc, dim)
        self.cif.chart = self._cif_chart(frames.cif_curves, dim)
        self.cif_table.data = _cif_display(frames.cif, dim)
        self.velocity_chart.chart = _compact_axis(self._velocity_chart(frames.levers, dim))
        self.levers_chart.chart = self._levers_chart(frames.levers, dim)
        self.levers_table.data = _levers_display(frames.levers, dim)
        self.detail.selection = dict(self.filter_bar.selection)

    def _apply_stages(self, stages: pd.DataFrame | MissingDataError, dim: str) -> None:
        title = f"Stage to stage by {_segments(dim)}: who moves on, how long it takes"
        if isinstance(stages, Exception):
            message = f"Not available: {stages}"
            self.funnel_chart.chart = charts.empty_chart(message, title=title)
            for table in (self.bottlenecks, self.stage_table):
                table.empty_message = message
                table.data = pd.DataFrame()
            return
        chart = charts.funnel(
            _labelled(stages, dim),
            group=dimension_label(dim),
            highlight="is_bottleneck",
            title=title,
        )
        # room on the right for the labels past the longest bar (a static SVG is cut at its
        # width, which vl-convert measures with its own fonts)
        self.funnel_chart.chart = chart.properties(padding={"left": 8, "top": 8, "right": 48})
        self.bottlenecks.empty_message = (
            f"No stage has {metrics.MIN_CLOSED} stays or more in any segment: {TOO_FEW}."
        )
        self.bottlenecks.data = _bottlenecks(stages, dim)
        self.stage_table.data = _stages_display(stages, dim)

    def _apply_flow(self, flow: pd.DataFrame, flow_by: pd.DataFrame, dim: str) -> None:
        start, end = self.flow_dates()
        chart = charts.kpi_bars(
            _flow_bars(flow),
            category="movement",
            value="amount",
            kind="money",
            currency=self.data.base_currency,
            n="deals",
            selection=None,
            sort=None,
            category_title="Movement",
            value_title="Amount",
            title=f"Open pipeline from the end of {start} to the end of {end}",
        )
        self.flow_chart.chart = _compact_axis(chart)
        self.flow_note.value = _paragraph(_flow_sentence(flow, start, end, self.data))
        self.flow_table.data = _flow_display(flow_by, dim)

    def _apply_what_if(self, what_if: pd.DataFrame, dim: str) -> None:
        start, end = self.next_quarter()
        self.what_if_note.value = _what_if_html(what_if, start, end, self.data.base_currency)
        self.what_if_table.data = _what_if_display(what_if, dim)

    def _apply_drill(self) -> None:
        """The clicked segment / stage / age band narrows the open deals, the histogram and the
        drill-down (no recomputation)."""
        dim = self._last.get("dimension", self.dimension)
        # a click on the charts of another dimension no longer applies
        drill = {k: v for k, v in self.drill.items() if k in (dim, "outcome", "stage", "age_band")}
        if "histogram" in self._last:
            segment = drill.get(dim) or []
            self.histogram.chart = self._histogram_chart(self._last["histogram"], dim, segment)
        self._apply_open_deals(drill, dim)
        extra = {k: v for k, v in drill.items() if k in (dim, "stage")}
        status = (drill.get("outcome") or [None])[0]
        if "stage" in drill or "age_band" in drill:
            status = "open"
        with self.detail.hold_trait_notifications():
            self.detail.status = status
            self.detail.extra_filters = extra

    def _apply_open_deals(self, drill: Mapping[str, list[Any]], dim: str) -> None:
        aging = self._last.get("aging")
        if aging is not None:
            self.aging.chart = self._aging_chart(aging, dim)
        deals = self._last.get("open_deals")
        if isinstance(deals, Exception) or deals is None:
            self.deals_table.empty_message = f"Not available: {deals}"
            self.deals_table.title = "Stuck open deals"
            self.deals_table.data = pd.DataFrame()
            return
        shown = _narrow(deals, drill, dim, aging)
        if self.only_stuck:
            shown = shown[shown["stuck"]]
        self.deals_table.title = self._deals_title(drill, len(shown))
        self.deals_table.empty_message = "No open deal here is over its stage's threshold."
        self.deals_table.data = _deals_display(shown, dim)

    def _deals_title(self, drill: Mapping[str, list[Any]], n: int) -> str:
        """ "Stuck open deals: in their stage longer than its 90th percentile (1,107)"."""
        value = self.stuck_threshold
        if isinstance(value, float):
            rule = f"in their stage longer than {value:,.0f} days"
        elif value == "median":
            rule = "in their stage longer than its median in the segment"
        else:
            rule = f"in their stage longer than its {_ordinal(value[1:])} percentile in the segment"
        what = f"Stuck open deals: {rule}" if self.only_stuck else f"Open deals (stuck: {rule})"
        keys = [k for k in drill if k not in ("stage", "age_band", "outcome")]
        keys += [k for k in ("stage", "age_band") if k in drill]
        where = ", ".join(str(v) for key in keys for v in drill[key])
        return f"{what}{' — ' + where if where else ''} ({n:,})"

    # ------------------------------------------------------------------------------ charts

    def _box_chart(self, quantiles: pd.DataFrame, dim: str) -> Any:
        whiskers = {"p10_cycle_days": "10th_percentile", "p90_cycle_days": "90th_percentile"}
        return charts.distribution_box(
            quantiles.rename(columns=whiskers),
            category=dim,
            p25="p25_cycle_days",
            median="median_cycle_days",
            p75="p75_cycle_days",
            low="10th_percentile",
            high="90th_percentile",
            group="outcome",
            kind="days",
            small_n="small_n",
            n="deals",
            sort=None,
            category_title=dimension_label(dim),
            value_title="Days from created to closed",
            title=f"Cycle days of won and lost deals by {_segments(dim)}",
        )

    def _histogram_chart(self, histogram: pd.DataFrame, dim: str, segment: Sequence[Any]) -> Any:
        part = histogram[histogram[dim].isin(segment)] if segment else histogram
        which = ", ".join(map(str, segment)) if segment else "every segment"
        top = int(histogram["band_low"].max()) if len(histogram) else 0
        counts = part.groupby(["outcome", "band_low", "band_high", "band"], sort=False)["deals"]
        frame = counts.sum().reset_index()
        totals = frame.groupby("outcome")["deals"].transform("sum")
        frame["share"] = frame["deals"] / totals.where(totals > 0)
        return charts.histogram(
            frame,
            count="share",
            count_kind="percent",
            kind="days",
            group="outcome",
            label="band",
            x_title=f"Days from created to closed (last bar: {top} or more)",
            y_title="Share of the outcome's deals",
            title=f"How long closed deals took: {which}",
        )

    def _km_chart(self, curves: pd.DataFrame, dim: str) -> Any:
        return charts.survival_curves(
            _labelled(curves, dim),
            value="share_closed",
            low="share_closed_low",
            high="share_closed_high",
            group=dimension_label(dim),
            n="at_risk",
            reference=0.5,
            selection="segment",
            y_title="Share of deals closed (won or lost)",
            title=f"Time to close by {_segments(dim)}, open deals counted until today",
        )

    def _cif_chart(self, curves: pd.DataFrame, dim: str) -> Any:
        return charts.survival_curves(
            _labelled(curves, dim),
            value=("share_won", "share_lost"),
            group=dimension_label(dim),
            n="at_risk",
            selection="segment",
            y_title="Share of deals",
            title=f"Share won and share lost by day, by {_segments(dim)}",
        )

    def _aging_chart(self, aging: pd.DataFrame, dim: str) -> Any:
        return charts.heatmap(
            aging,
            x="age_band",
            y=dim,
            value="deals",
            kind="count",
            n="deals",
            x_title="Age of the open deal (days since created)",
            y_title=dimension_label(dim),
            value_title="Open deals",
            title=f"How old the open deals are, by {_segments(dim)}",
            empty_message="No open deal matches these filters",
        )

    def _velocity_chart(self, levers: pd.DataFrame, dim: str) -> Any:
        return charts.kpi_bars(
            levers,
            category=dim,
            value="velocity",
            kind="money",
            currency=self.data.base_currency,
            small_n="small_n",
            n="open",
            sort=None,
            category_title=dimension_label(dim),
            value_title="Velocity per day",
            title=f"Sales velocity by {_segments(dim)}",
        )

    def _levers_chart(self, levers: pd.DataFrame, dim: str) -> Any:
        long = levers.melt(
            id_vars=[dim, "small_n"],
            value_vars=list(LEVERS),
            var_name="lever",
            value_name="ratio",
        )
        long["lever"] = long["lever"].map(LEVERS)
        return charts.heatmap(
            long,
            x="lever",
            y=dim,
            value="ratio",
            kind="ratio",
            small_n="small_n",
            x_title="Segment ÷ whole selection (above 1 helps velocity)",
            y_title=dimension_label(dim),
            value_title="Ratio",
            selection=None,
            title="Velocity's levers by segment",
        )
