"""The Goal Tracking dashboard, driven without a browser: build it on the example goals file,
choose a goal, point it at a run history, and check its views against the KPI layer and the
raw deals."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import SAMPLES_DIR

from salesops_widgets._catalog import TOO_FEW
from salesops_widgets.apps import GoalTracking
from salesops_widgets.errors import GoalsError, ParameterError
from salesops_widgets.metrics import history_rows, read_goals
from salesops_widgets.runs import append_history

GOALS = SAMPLES_DIR / "goals.yaml"


@pytest.fixture(scope="module")
def app(sample):
    return GoalTracking(sample, goals_path=str(GOALS), debounce=0)


def test_one_row_one_chart_and_one_sentence_per_goal(app):
    names = [g.name for g in read_goals(GOALS)]
    table = app.table.data
    assert table["goal"].tolist() == names
    assert set(table["status"]) <= {"on track", "at risk", "off track", TOO_FEW, "no data"}
    assert len(app.charts.children) == len(names)
    for name in names:
        assert f"{name}: " in app.notes.value
    assert "no run history yet" in app.notes.value


def test_the_win_rate_goal_is_the_raw_deals_win_rate(app, sample_deals):
    # the 91 days to the as-of date 2026-09-30, deals closed in them: won / (won + lost)
    d = sample_deals
    window = d[(d["close_date"] >= "2026-07-02") & (d["close_date"] <= "2026-09-30")]
    closed = window[window["status"] != "open"]
    row = app.table.data.set_index("goal").loc["Win rate up 3%"]
    assert row["now"] == f"{closed['is_won'].mean():.1%}"
    assert row["n"] == len(closed)


def test_choosing_a_goal_lists_its_deals(app):
    app.goal = "Enterprise ASP to $280k"
    sel = app.detail.selection
    assert sel["filters"] == {"size_band": ["Enterprise"]}
    assert sel["date_field"] == "closed_date"
    assert [str(d) for d in sel["period"]] == ["2026-07-02", "2026-09-30"]


def test_with_a_history_the_trend_is_the_runs(sample, tmp_path):
    goals = read_goals(GOALS)
    past = history_rows(sample, goals).assign(as_of=pd.Timestamp("2026-06-30"))
    append_history(tmp_path, past, run="20260630T070000Z", data="sample")
    app = GoalTracking(sample, goals_path=str(GOALS), history_path=str(tmp_path), debounce=0)
    assert "1 past run(s)" in app.notes.value


def test_bad_parameters_and_files_stop_with_a_sentence(sample, tmp_path):
    with pytest.raises(ParameterError, match="goals_path is empty"):
        GoalTracking(sample, debounce=0)
    with pytest.raises(ParameterError, match="freq='week'"):
        GoalTracking(sample, goals_path=str(GOALS), freq="week", debounce=0)
    bad = tmp_path / "goals.yaml"
    bad.write_text("goals:\n  - {name: G, kpi: wins, baseline: 2025-01-01..2025-03-31}\n")
    with pytest.raises(GoalsError, match=r"goal 'G', field `kpi`"):
        GoalTracking(sample, goals_path=str(bad), debounce=0)
