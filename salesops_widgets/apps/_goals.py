"""Goal Tracking: which goals are on track, at risk or off track, judged with the interval;
each goal's trend across scheduled runs (or per period of the data) and its path to the target;
and the deals behind a goal.

Composed from the widget kit; every number comes from salesops_widgets.metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import metrics
from ..data import SalesData
from ..errors import ParameterError
from ..runs import read_history
from ..widgets import ChartView, DataTable, ExportBar
from ._base import Dashboard, Part
from ._common import Controls, Grid, Panel
from ._goals_display import goal_chart, goals_paragraphs, summary_display

__all__ = ["GoalTracking"]

_FREQS = tuple(metrics.FREQS)


@dataclass(frozen=True)
class _Tracked:
    """The frames of one refresh: the goals, their summary, trend and paths, and where the
    trend comes from."""

    goals: tuple[metrics.Goal, ...]
    summary: pd.DataFrame
    trend: pd.DataFrame
    paths: pd.DataFrame
    runs: int  # past runs in the history (0: the trend is per period of the data)


class GoalTracking(Dashboard):
    """Goals of a goals file, each measured with its interval and judged against its path.

    Parameters
    ----------
    data
        The loaded data.
    goals_path
        The YAML goals file (see docs/goals.md).
    history_path
        The run history folder (``OUT/history`` of ``salesops run``; "" for none): the trend is
        the stored measurements of past runs plus the one now. Without history, the trend is the
        KPI per ``freq`` from the data itself.
    freq
        "quarter" or "month": the periods of the trend when there is no history.
    goal
        The goal whose deals the drill-down lists ("" for the first).
    debounce, top_n
        As in ``Dashboard``.

    Attributes
    ----------
    controls, status_view, trends, drilldown, quality
        The sections, each displayable on its own.
    table, notes, charts, detail, status
        The widgets inside them.
    """

    PARTS = (
        Part("goals", on=("goals_path", "history_path", "freq")),
        Part("focus", on=("goal", "goals"), computes=False),
    )

    goals_path = t.Unicode(help="The YAML goals file.")
    history_path = t.Unicode("", help="The run history folder ('' for none).")
    freq = t.Unicode("quarter", help=f"Trend periods without history: {', '.join(_FREQS)}.")
    goal = t.Unicode("", help="The goal whose deals are listed ('' for the first).")

    def __init__(
        self,
        data: SalesData,
        *,
        goals_path: str = "",
        history_path: str = "",
        freq: str = "quarter",
        goal: str = "",
        **options: Any,
    ) -> None:
        if not str(goals_path or "").strip():
            raise ParameterError(
                "goals_path is empty: give the path of a YAML goals file (see docs/goals.md; "
                "data/samples/goals.yaml is an example)."
            )
        self._goals: tuple[metrics.Goal, ...] = ()
        super().__init__(data, date_field="closed_date", **options)
        self.table = DataTable(title="Goals", small_n=None)
        self.notes = w.HTML()
        self.charts = Grid()
        self._chosen = w.Dropdown(description="Deals of")
        self._chosen.observe(lambda c: setattr(self, "goal", c.new or self.goal), "value")
        with self.hold_trait_notifications():
            self.goals_path = str(goals_path)
            self.history_path = str(history_path or "")
            self.freq = freq
            self.goal = str(goal or "")
        self.controls = Controls([self._chosen, self.status])
        self.status_view = Panel(
            [self.table, self.notes, ExportBar(table=self.table, name="goals")]
        )
        self.trends = Panel([self.charts])
        self._start()

    @t.validate("freq")
    def _valid_freq(self, proposal: dict) -> str:
        if proposal["value"] not in _FREQS:
            raise ParameterError(f"freq={proposal['value']!r}: choose one of {', '.join(_FREQS)}.")
        return proposal["value"]

    # ------------------------------------------------------------------------------ the parts

    def _selection(self) -> dict[str, Any]:
        """The deals of the chosen goal's latest window (before goals are read: the filter
        bar's)."""
        goal = next((g for g in self._goals if g.name == self.goal), None)
        if goal is None:
            return super()._selection()
        start = self.data.as_of - pd.Timedelta(days=goal.window_days - 1)
        period = (start, self.data.as_of)
        return {"filters": dict(goal.filters), "period": period, "date_field": goal.date_field}

    def _compute_goals(self) -> _Tracked:
        goals = metrics.read_goals(Path(self.goals_path))
        history = read_history(self.history_path or None)
        summary, trend, paths = metrics.track_goals(
            self.data, goals, history=history, freq=self.freq
        )
        return _Tracked(goals, summary, trend, paths, history["run"].nunique())

    def _apply_goals(self, frames: _Tracked) -> None:
        currency = self.data.base_currency
        self._goals = frames.goals
        names = [g.name for g in frames.goals]
        if self.goal not in names:
            self.goal = names[0]
        self._chosen.options = names
        self._chosen.value = self.goal
        where = (
            f"Trend: {frames.runs} past run(s) of salesops run, and now."
            if frames.runs
            else f"Trend: per {self.freq} of the data (no run history yet)."
        )
        with self.table.hold_sync():
            self.table.data = summary_display(frames.summary, currency)
        self.notes.value = f"<p><i>{where}</i></p>" + goals_paragraphs(frames.summary, currency)
        self.charts.children = [
            ChartView(goal_chart(row, frames.trend, frames.paths, currency))
            for _, row in frames.summary.iterrows()
        ]

    def _apply_focus(self) -> None:
        """The chosen goal's deals: ``_selection`` gives them to the drill-down."""
        self.detail.extra_filters = {}
