"""Stratification Comparisons: tier reps, accounts or products on a measure, compare outcomes
across the tiers with intervals, tests and effect sizes, check the difference survives a
mix adjustment, and see how entities moved between tiers from one period to the next.

Composed from the widget kit; every number comes from salesops_widgets.metrics.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import charts, metrics
from .._catalog import CATALOGUE
from ..data import SalesData
from ..errors import MissingDataError, ParameterError
from ..widgets import (
    ChartView,
    DataTable,
    DetailView,
    ExportBar,
    FilterBar,
    QualityPanel,
    Refresher,
)
from ._common import (
    Controls,
    Grid,
    Panel,
    dimension_label,
    dimension_options,
    filter_arguments,
    p_text,
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


@dataclass(frozen=True)
class _Frames:
    strata: pd.DataFrame
    comparisons: dict[str, metrics.StrataComparison]
    mix: pd.DataFrame
    migration: pd.DataFrame


def _default_periods(
    as_of: _dt.date,
) -> tuple[tuple[_dt.date, _dt.date], tuple[_dt.date, _dt.date]]:
    """Two consecutive 182-day periods ending at the as-of date (A before B)."""
    b_start = as_of - _dt.timedelta(days=181)
    a_end = b_start - _dt.timedelta(days=1)
    return (a_end - _dt.timedelta(days=181), a_end), (b_start, as_of)


class StratificationComparisons(t.HasTraits):
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
    period, date_field, filters, region
        The initial filter bar (as in ``SegmentationExplorer``).

    Attributes
    ----------
    filter_bar, controls, tier_view, comparisons, tests, mix_view, migration, drilldown,
    quality
        The sections, each displayable on its own (one per notebook cell).
    tiers, entities, mix, mix_table, detail, status
        The widgets inside them.
    """

    entity = t.Unicode("owner_id", help=f"What is tiered: {', '.join(ENTITIES)}.")
    measure = t.Unicode("bookings", help=f"Tiered on: {', '.join(MEASURES)}.")
    method = t.Unicode("quartile", help=f"Tiers: {', '.join(METHODS)}.")
    outcomes = t.List(t.Unicode(), help=f"Outcomes compared: {', '.join(OUTCOMES)}.")
    standardize_on = t.Unicode("size_band", help="Dimension of the mix adjustment.")
    mix_outcome = t.Unicode("win_rate", help="Outcome of the mix adjustment (win_rate or asp).")

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
        period: str | tuple[Any, Any] = "all",
        date_field: str = "created_date",
        filters: Mapping[str, Any] | None = None,
        region: str = "All",
        debounce: float = 0.3,
        top_n: int = 50,
    ) -> None:
        super().__init__()
        self.data = data
        default_a, default_b = _default_periods(data.as_of)
        self.period_a = tuple(period_a) if period_a else default_a
        self.period_b = tuple(period_b) if period_b else default_b
        self.filter_bar = FilterBar(
            data,
            **filter_arguments(period, date_field, filters, region),
        )
        self.status = Refresher(debounce=debounce)
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
        self.detail = DetailView(
            data, top_n=top_n, selection=self.filter_bar.selection, debounce=debounce
        )
        self.quality = QualityPanel(data)
        self._views: dict[str, ChartView] = {}
        self._strata = pd.DataFrame()
        with self.hold_trait_notifications():
            self.entity, self.measure, self.method = entity, measure, method
            self.outcomes = list(outcomes)
            self.standardize_on, self.mix_outcome = standardize_on, mix_outcome
        self.controls = self._build_controls()
        self.tier_view = Panel(
            [self.tiers, self.entities, ExportBar(table=self.entities, name="tiers")]
        )
        self.mix_view = Panel([self.mix, self.mix_table])
        self.drilldown = Panel([self.detail, ExportBar(table=self.detail.table, name="deals")])
        self.mix.observe(self._on_click, "selected")
        self.filter_bar.observe(self._on_change, "selection")
        self.observe(self._on_change, ["entity", "measure", "method", "outcomes"])
        self.observe(self._on_change, ["standardize_on", "mix_outcome"])
        self._apply(self._compute())

    # ------------------------------------------------------------------------------ validation

    @staticmethod
    def _choice(value: str, name: str, choices: Mapping[str, str] | Sequence[str]) -> str:
        if value not in choices:
            raise ParameterError(f"{name}={value!r}: choose one of {', '.join(choices)}.")
        return value

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
        return self._choice(proposal["value"], "standardize_on", dimension_options(self.data))

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

        dims = [(d, dimension_label(d)) for d in dimension_options(self.data)]
        mix = [(k, OUTCOMES[k][2]) for k in MIX_OUTCOMES]
        return Controls(
            [
                w.VBox([pick("entity", "Tier", ENTITIES), pick("measure", "on", MEASURES)]),
                w.VBox([pick("method", "into", METHODS), pick("mix_outcome", "Adjust", mix)]),
                w.VBox([pick("standardize_on", "for mix of", dims)]),
                self.status,
            ]
        )

    # ------------------------------------------------------------------------------ update path

    def _on_change(self, change: dict) -> None:
        self.status.schedule(self._compute, apply=self._apply)

    def _on_click(self, change: dict) -> None:
        """A click on a tier: list the deals of that tier's entities."""
        tiers = change["new"].get("tier", [])
        ids = self._strata.loc[self._strata["tier"].astype(str).isin(tiers), "entity"]
        self.detail.extra_filters = {self.entity: [str(i) for i in ids]} if tiers else {}

    def _tiering(self) -> dict[str, Any]:
        return {"entity": self.entity, "measure": self.measure, "method": self.method}

    def _compute(self) -> _Frames:
        sel = dict(self.filter_bar.selection)
        strata = metrics.stratify(self.data, **self._tiering(), **sel)
        comparisons = {o: self._compare(o, sel) for o in self.outcomes}
        mix = metrics.mix_adjusted(
            self.data,
            standardize_on=self.standardize_on,
            outcome=self.mix_outcome,
            **self._tiering(),
            **sel,
        )
        migration = metrics.tier_migration(
            self.data,
            **self._tiering(),
            period_a=self.period_a,
            period_b=self.period_b,
            filters=sel["filters"],
            date_field=sel["date_field"],
        )
        return _Frames(strata, comparisons, mix, migration)

    def _compare(self, outcome: str, sel: Mapping[str, Any]) -> Any:
        """compare_strata for one outcome, or the MissingDataError saying what it needs (the
        other outcomes still show)."""
        try:
            return metrics.compare_strata(self.data, **self._tiering(), outcome=outcome, **sel)
        except MissingDataError as exc:
            return exc

    def _apply(self, frames: _Frames) -> None:
        self._strata = frames.strata
        kind = CATALOGUE[_MEASURE_KPI[self.measure]].kind
        self.entities.formats = {"value": kind, "bookings": "money", "rank": "count"}
        self.entities.data = frames.strata
        self.tiers.formats = {"lowest": kind, "highest": kind}
        self.tiers.data = _tier_summary(frames.strata)
        self._apply_comparisons(frames.comparisons)
        self.tests.data = _tests_table(frames.comparisons)
        self.mix.chart = self._mix_chart(frames.mix)
        mix_kind = "percent" if self.mix_outcome == "win_rate" else "money"
        columns = ("crude_rate", "adjusted_rate", "adjusted_low", "adjusted_high", "difference")
        self.mix_table.formats = {c: mix_kind for c in (*columns, "overall_rate")} | {
            "weight_coverage": "percent"
        }
        self.mix_table.data = frames.mix
        self.migration.chart = charts.transition_heatmap(
            frames.migration,
            title=f"Tier migration of {ENTITIES[self.entity]}",
            from_title=f"Tier in {_span(self.period_a)}",
            to_title=f"Tier in {_span(self.period_b)}",
        )
        self.detail.selection = dict(self.filter_bar.selection)

    def _apply_comparisons(self, comparisons: Mapping[str, Any]) -> None:
        for outcome, comparison in comparisons.items():
            chart = self._outcome_chart(outcome, comparison)
            view = self._views.get(outcome)
            if view is None:
                view = self._views[outcome] = ChartView(chart, selection="tier")
                view.observe(self._on_click, "selected")
            else:
                view.chart = chart
        self.comparisons.children = [self._views[o] for o in self.outcomes]

    # ------------------------------------------------------------------------------ charts

    def _outcome_chart(self, outcome: str, comparison: Any) -> Any:
        column, kind, label, _ = OUTCOMES[outcome]
        if isinstance(comparison, Exception):
            return charts.empty_chart(f"Not available: {comparison}", title=label)
        test = comparison.top_vs_bottom
        vs = test.details.get("comparison", "top vs bottom")
        p = "" if test.reason else f" · {vs}: p {p_text(test.p_value)}"
        return charts.strata_comparison(
            comparison.table,
            tier="tier",
            value=column,
            low=f"{column}_low",
            high=f"{column}_high",
            kind=kind,
            currency=self.data.base_currency,
            small_n="small_n",
            n="n_outcome",
            title=f"{label} per tier{p}",
        )

    def _mix_chart(self, mix: pd.DataFrame) -> Any:
        kind = "percent" if self.mix_outcome == "win_rate" else "money"
        overall = float(mix["overall_rate"].iloc[0]) if len(mix) else None
        return charts.strata_comparison(
            mix,
            tier="tier",
            value="adjusted_rate",
            low="adjusted_low",
            high="adjusted_high",
            kind=kind,
            currency=self.data.base_currency,
            small_n="small_n",
            n="n",
            overall=overall,
            title=f"{OUTCOMES[self.mix_outcome][2]}, adjusted to the overall mix of "
            f"{dimension_label(self.standardize_on).lower()}",
        )


def _span(period: tuple[Any, Any]) -> str:
    return f"{period[0]} to {period[1]}"


def _tier_summary(strata: pd.DataFrame) -> pd.DataFrame:
    """One row per tier: how many entities, the range of the measure and its share."""
    ranked = strata[strata["tier"].notna()]
    if ranked.empty:
        return pd.DataFrame(columns=["tier", "entities", "lowest", "highest", "share", "small_n"])
    g = ranked.groupby("tier", observed=True, sort=False)
    out = pd.DataFrame(
        {
            "entities": g.size(),
            "lowest": g["value"].min(),
            "highest": g["value"].max(),
            "share": g["share"].sum(),
            "opportunities": g["opportunities"].sum(),
            "closed": g["closed"].sum(),
        }
    ).reset_index()
    out["small_n"] = out["closed"] < metrics.MIN_CLOSED
    return out


def _tests_table(comparisons: Mapping[str, Any]) -> pd.DataFrame:
    """Both tests of every outcome, one row each, with the outcome named."""
    frames = []
    for outcome, comparison in comparisons.items():
        if isinstance(comparison, Exception):
            continue
        frame = comparison.tests
        frame.insert(0, "outcome", OUTCOMES[outcome][2])
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if out.empty:
        return out
    return pd.DataFrame(
        {
            "outcome": out["outcome"],
            "comparison": out["comparison"],
            "test": out["test"],
            "p": out["p_value"].map(p_text),
            "significant": (out["p_value"] < 0.05).map({True: "yes", False: "no"}),
            "effect": out["effect"],
            "effect size": out["effect_size"],
            "effect low": out["effect_low"],
            "effect high": out["effect_high"],
            "n": out["n"],
            "why no test": out["reason"].fillna(""),
        }
    )
