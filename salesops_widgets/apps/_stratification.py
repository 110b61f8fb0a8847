"""Stratification Comparisons: tier reps, accounts or products on a measure, compare outcomes
across the tiers with intervals, tests and effect sizes, check the difference survives a
mix adjustment, and see how entities moved between tiers from one period to the next.

Composed from the widget kit; every number comes from salesops_widgets.metrics.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import charts, metrics
from .._catalog import CATALOGUE
from .._dates import date_parameter
from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ..widgets import ChartView, DataTable, ExportBar
from ._base import DRILL, Dashboard, Part
from ._common import Controls, Grid, Panel
from ._stratification_display import (
    mix_chart,
    mix_formats,
    outcome_chart,
    span,
    tests_table,
    tier_summary,
)

__all__ = ["ENTITIES", "MEASURES", "METHODS", "OUTCOMES", "StratificationComparisons"]

ENTITIES = {"owner_id": "reps", "account_id": "accounts", "product_id": "products"}
# measure of stratify -> its KPI column (named and formatted by the KPI catalogue)
_MEASURE_KPI = {
    "bookings": "bookings",
    "opportunities": "opportunities",
    "win_rate": "win_rate",
    "asp": "asp",
    "discount": "portfolio_discount",
}
MEASURES = {measure: CATALOGUE[column].short for measure, column in _MEASURE_KPI.items()}
METHODS = {"quartile": "quartiles", "decile": "deciles", "abc": "ABC", "abcd": "ABCD"}
# outcome -> (value column of compare_strata's table, kind, label, better), from the KPI catalogue
OUTCOMES: dict[str, tuple[str, str, str, str]] = {
    outcome: (kpi.column, kpi.kind, kpi.title, kpi.better)
    for outcome, kpi in (
        ("win_rate", CATALOGUE["win_rate"]),
        ("discount", CATALOGUE["portfolio_discount"]),
        ("cycle_days", CATALOGUE["median_cycle_days_won"]),
        ("asp", CATALOGUE["asp"]),
    )
}
MIX_OUTCOMES = ("win_rate", "asp")


def _default_periods(
    as_of: _dt.date,
) -> tuple[tuple[_dt.date, _dt.date], tuple[_dt.date, _dt.date]]:
    """Two consecutive 182-day periods ending at the as-of date (A before B)."""
    b_start = as_of - _dt.timedelta(days=181)
    a_end = b_start - _dt.timedelta(days=1)
    return (a_end - _dt.timedelta(days=181), a_end), (b_start, as_of)


class StratificationComparisons(Dashboard):
    """Tiers of reps, accounts or products, and how outcomes differ across them.

    Parameters
    ----------
    data
        The loaded data.
    entity, measure, method
        What is tiered (``owner_id``, ``account_id``, ``product_id``), on which measure
        (``MEASURES``), how (``METHODS``).
    outcomes
        The outcomes compared across tiers (``OUTCOMES``).
    standardize_on, mix_outcome
        The mix adjustment: the outcome (win_rate or asp) standardized on this dimension.
    period_a, period_b
        The two periods of the tier migration (default: the two half-years up to the as-of).
    period, date_field, filters, region, debounce, top_n
        The initial filter bar, the debounce and the drill-down's length (see ``Dashboard``).

    Attributes
    ----------
    filter_bar, controls, tier_view, comparisons, tests, mix_view, migration, drilldown,
    quality
        The sections, each displayable on its own (one per notebook cell).
    tiers, entities, mix, mix_table, detail, status
        The widgets inside them.
    """

    _TIERING = ("selection", "entity", "measure", "method")
    PARTS = (
        Part("tiers", on=_TIERING),
        Part("outcomes", on=(*_TIERING, "outcomes")),
        Part("mix", on=(*_TIERING, "standardize_on", "mix_outcome")),
        Part("migration", on=(*_TIERING, "period_a", "period_b")),
        DRILL,
    )

    entity = t.Unicode("owner_id", help=f"What is tiered: {', '.join(ENTITIES)}.")
    measure = t.Unicode("bookings", help=f"Tiered on: {', '.join(MEASURES)}.")
    method = t.Unicode("quartile", help=f"Tiers: {', '.join(METHODS)}.")
    outcomes = t.List(t.Unicode(), help=f"Outcomes compared: {', '.join(OUTCOMES)}.")
    standardize_on = t.Unicode("size_band", help="Dimension of the mix adjustment.")
    mix_outcome = t.Unicode("win_rate", help="Outcome of the mix adjustment (win_rate or asp).")
    period_a = t.Any(
        allow_none=False,
        help="Tier migration from: (start, end) dates; None or '' for the default.",
    )
    period_b = t.Any(
        allow_none=False, help="Tier migration to: (start, end) dates; None or '' for the default."
    )

    def __init__(
        self,
        data: SalesData,
        *,
        entity: str = "owner_id",
        measure: str = "bookings",
        method: str = "quartile",
        outcomes: Sequence[str] = tuple(OUTCOMES),
        standardize_on: str = "size_band",
        mix_outcome: str = "win_rate",
        period_a: tuple[Any, Any] | None = None,
        period_b: tuple[Any, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(data, **options)
        self.period_a, self.period_b = period_a or "", period_b or ""  # "": the default
        self.tiers = DataTable(title="The tiers", small_n="small_n")
        self.entities = DataTable(title="Every ranked entity", small_n="small_n", max_rows=100)
        self.comparisons = Grid()
        self.tests = DataTable(
            small_n=None,
            title="Is the difference real?",
            formats={"effect size": "number", "effect low": "number", "effect high": "number"},
        )
        self.mix = ChartView(selection="tier")
        self.mix_table = DataTable(small_n="small_n", title="Crude and mix-adjusted, per tier")
        self.migration = ChartView(selection="migration")
        self._views: dict[str, ChartView] = {}
        with self.hold_trait_notifications():
            self.entity, self.measure, self.method = entity, measure, method
            self.outcomes = list(outcomes)
            self.standardize_on, self.mix_outcome = standardize_on, mix_outcome
        self.controls = self._build_controls()
        self.tier_view = Panel(
            [self.tiers, self.entities, ExportBar(table=self.entities, name="tiers")]
        )
        self.mix_view = Panel([self.mix, self.mix_table])
        self._follow_clicks(self.mix)
        self._start()

    # ------------------------------------------------------------------------------ validation

    @staticmethod
    def _choice(value: str, name: str, choices: Mapping[str, str] | Sequence[str]) -> str:
        if value not in choices:
            raise ParameterError(f"{name}={value!r}: choose one of {', '.join(choices)}.")
        return value

    @t.validate("period_a", "period_b")
    def _valid_period(self, proposal: dict) -> tuple[_dt.date, _dt.date]:
        name, value = proposal["trait"].name, proposal["value"]
        default_a, default_b = _default_periods(self.data.as_of)
        if value is None or value == "" or (not isinstance(value, str) and len(value) == 0):
            return default_a if name == "period_a" else default_b
        if isinstance(value, str):
            if ".." not in value:
                raise ParameterError(
                    f"{name}={value!r} must be two dates, YYYY-MM-DD..YYYY-MM-DD, or empty for "
                    f"the default half-year."
                )
            value = value.split("..", 1)
        if len(value) != 2:
            raise ParameterError(f"{name}={value!r} must be two dates (start, end).")
        start, end = (date_parameter(v, name) for v in value)
        if start is None or end is None or start > end:
            raise ParameterError(f"{name}: give a start and an end, the start first ({value!r}).")
        return (start, end)

    @t.validate("entity")
    def _valid_entity(self, proposal: dict) -> str:
        value = self._choice(proposal["value"], "entity", ENTITIES)
        if value not in metrics.available_dimensions(self.data):
            raise ParameterError(
                f"entity={value!r} needs {value} on opportunities, which this data does not "
                f"have; map tables.opportunities.columns.{value}, or tier another entity."
            )
        return value

    @t.validate("measure")
    def _valid_measure(self, proposal: dict) -> str:
        return self._choice(proposal["value"], "measure", MEASURES)

    @t.validate("method")
    def _valid_method(self, proposal: dict) -> str:
        return self._choice(proposal["value"], "method", METHODS)

    @t.validate("outcomes")
    def _valid_outcomes(self, proposal: dict) -> list[str]:
        values = list(proposal["value"])
        if not values:
            raise ParameterError(f"outcomes is empty; choose from {', '.join(OUTCOMES)}.")
        return [self._choice(v, "outcomes", OUTCOMES) for v in values]

    @t.validate("standardize_on")
    def _valid_standardize(self, proposal: dict) -> str:
        return self._choice(proposal["value"], "standardize_on", self._options)

    @t.validate("mix_outcome")
    def _valid_mix(self, proposal: dict) -> str:
        return self._choice(proposal["value"], "mix_outcome", MIX_OUTCOMES)

    # ------------------------------------------------------------------------------ controls

    def _build_controls(self) -> Controls:
        def pick(name: str, label: str, options: Any) -> w.Dropdown:
            items = options.items() if isinstance(options, Mapping) else options
            drop = w.Dropdown(options=[(v, k) for k, v in items], description=label)
            w.link((self, name), (drop, "value"))
            return drop

        mix = [(k, OUTCOMES[k][2]) for k in MIX_OUTCOMES]
        return Controls(
            [
                w.VBox([pick("entity", "Tier", ENTITIES), pick("measure", "on", MEASURES)]),
                w.VBox([pick("method", "into", METHODS), pick("mix_outcome", "Adjust", mix)]),
                w.VBox([self._dimension_control("standardize_on", "for mix of")]),
                self.status,
            ]
        )

    # ------------------------------------------------------------------------------ the parts

    def _tiering(self) -> dict[str, Any]:
        return {"entity": self.entity, "measure": self.measure, "method": self.method}

    def _compute_tiers(self) -> pd.DataFrame:
        return metrics.stratify(self.data, **self._tiering(), **self._selection())

    def _apply_tiers(self, strata: pd.DataFrame) -> None:
        kind = CATALOGUE[_MEASURE_KPI[self.measure]].kind
        with self.entities.hold_sync(), self.tiers.hold_sync():
            self.entities.formats = {"value": kind, "bookings": "money", "rank": "count"}
            self.entities.data = strata
            self.tiers.formats = {"lowest": kind, "highest": kind}
            self.tiers.data = tier_summary(strata)

    def _compute_outcomes(self) -> dict[str, Any]:
        """compare_strata per outcome, or the MissingDataError saying what it needs (the other
        outcomes still show)."""
        return {o: self._compare(o) for o in self.outcomes}

    def _compare(self, outcome: str) -> Any:
        try:
            return metrics.compare_strata(
                self.data, **self._tiering(), outcome=outcome, **self._selection()
            )
        except MissingDataError as exc:
            return exc

    def _apply_outcomes(self, comparisons: Mapping[str, Any]) -> None:
        for outcome, comparison in comparisons.items():
            chart = outcome_chart(OUTCOMES[outcome], comparison, self.data.base_currency)
            if outcome in self._views:
                self._views[outcome].chart = chart
            else:
                self._views[outcome] = ChartView(chart, selection="tier")
                self._follow_clicks(self._views[outcome])
        self.comparisons.children = [self._views[o] for o in self.outcomes]
        self.tests.data = tests_table(comparisons, {o: OUTCOMES[o][2] for o in comparisons})

    def _compute_mix(self) -> pd.DataFrame:
        return metrics.mix_adjusted(
            self.data,
            standardize_on=self.standardize_on,
            outcome=self.mix_outcome,
            **self._tiering(),
            **self._selection(),
        )

    def _apply_mix(self, mix: pd.DataFrame) -> None:
        _, kind, label, _ = OUTCOMES[self.mix_outcome]
        currency = self.data.base_currency
        self.mix.chart = mix_chart(mix, kind, label, self.standardize_on, currency)
        with self.mix_table.hold_sync():
            self.mix_table.formats = mix_formats(kind)
            self.mix_table.data = mix

    def _compute_migration(self) -> pd.DataFrame:
        sel = self._selection()
        return metrics.tier_migration(
            self.data,
            **self._tiering(),
            period_a=self.period_a,
            period_b=self.period_b,
            filters=sel["filters"],
            date_field=sel["date_field"],
        )

    def _apply_migration(self, migration: pd.DataFrame) -> None:
        self.migration.chart = charts.transition_heatmap(
            migration,
            title=f"Tier migration of {ENTITIES[self.entity]}",
            from_title=f"Tier in {span(self.period_a)}",
            to_title=f"Tier in {span(self.period_b)}",
        )

    def _apply_drill(self) -> None:
        """A click on a tier: list the deals of that tier's entities."""
        tiers, strata = self.drill.get("tier", []), self._frames["tiers"]
        ids = strata.loc[strata["tier"].astype(str).isin(tiers), "entity"]
        self.detail.extra_filters = {self.entity: [str(i) for i in ids]} if tiers else {}
