"""Tests for salesops_widgets/metrics/_goals.py: goals files read and checked.

A good file gives goals with their targets, milestones and paths; every bad one raises a
GoalsError naming the file, the goal, the field and the fix.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import SAMPLES_DIR

from salesops_widgets.errors import GoalsError, SalesOpsError
from salesops_widgets.metrics import Goal, parse_goals, read_goals

D = dt.date

GOOD = """
goals:
  - name: Win rate up
    kpi: win_rate
    filters: {region: EMEA}
    baseline: 2025-01-01..2025-03-31
    target_change: +10%
    deadline: 2025-12-31
    milestones:
      - {date: 2025-06-30, change: +4%}
      - {date: 2025-09-30, value: 0.45}
  - name: Faster wins
    kpi: median_cycle_days_won
    baseline: {start: 2025-01-01, end: 2025-03-31}
    target: 60
    deadline: 2025-12-31
    window_days: 30
    date_field: created_date
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "goals.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_gives_its_goals(tmp_path):
    win, cycle = read_goals(write(tmp_path, GOOD))
    assert isinstance(win, Goal) and win.name == "Win rate up"
    assert (win.kpi, win.direction, win.date_field, win.window_days) == (
        "win_rate",
        "higher",
        "closed_date",
        91,
    )
    assert win.filters == {"region": ["EMEA"]}  # a single value becomes a list
    assert win.baseline == (D(2025, 1, 1), D(2025, 3, 31))
    assert win.target is None and win.target_change == pytest.approx(0.10)
    # the path from a baseline of 0.40: 0.40, 0.40 × 1.04 = 0.416, 0.45, 0.40 × 1.10 = 0.44
    path = win.path(0.40)
    assert [p[0] for p in path] == [D(2025, 3, 31), D(2025, 6, 30), D(2025, 9, 30), D(2025, 12, 31)]
    assert [p[1] for p in path] == pytest.approx([0.40, 0.416, 0.45, 0.44])
    assert [p[2] for p in path] == ["baseline", "milestone", "milestone", "target"]
    assert (cycle.direction, cycle.target, cycle.window_days) == ("lower", 60.0, 30)
    assert cycle.date_field == "created_date"
    assert win.source == str(tmp_path / "goals.yaml")


def test_the_shipped_example_reads():
    goals = read_goals(SAMPLES_DIR / "goals.yaml")
    assert len(goals) == 4
    assert {g.kpi for g in goals} == {"win_rate", "asp", "median_cycle_days_won", "bookings"}


def _goal(**fields) -> str:
    base = {
        "name": "G",
        "kpi": "win_rate",
        "baseline": "2025-01-01..2025-03-31",
        "target": 0.5,
        "deadline": "2025-12-31",
    }
    lines = [f"    {k}: {v}" for k, v in {**base, **fields}.items() if v is not None]
    return "goals:\n  - " + "\n".join(lines).lstrip()


BAD = {
    # field -> (the goal's fields, what the message must say)
    "unknown KPI": (
        {"kpi": "win_rat"},
        ["`kpi`", "'win_rat' is not a KPI", "did you mean 'win_rate'"],
    ),
    "bad date": ({"deadline": "2025-13-01"}, ["`deadline`", "'2025-13-01'", "YYYY-MM-DD"]),
    "deadline before the baseline": ({"deadline": "2025-02-01"}, ["`deadline`", "not after"]),
    "baseline backwards": ({"baseline": "2025-03-31..2025-01-01"}, ["`baseline`", "earlier"]),
    "not a period": ({"baseline": "2025"}, ["`baseline`", "YYYY-MM-DD..YYYY-MM-DD"]),
    "wrong side (relative)": (
        {"target": None, "target_change": "-10%"},
        ["`target_change`", "wrong side", "higher win_rate is better", "a rise"],
    ),
    "wrong side (lower is better)": (
        {"kpi": "median_cycle_days_won", "target": None, "target_change": "+5%"},
        ["`target_change`", "wrong side", "lower median_cycle_days_won", "a fall"],
    ),
    "both targets": ({"target_change": "+5%"}, ["`target`", "exactly one"]),
    "percent written as 40": ({"target": 40}, ["`target`", "40% is 0.40"]),
    "unknown field": ({"dedline": "2025-12-31"}, ["`dedline`", "did you mean `deadline`"]),
    "neutral KPI": ({"kpi": "opportunities", "target": 500}, ["`direction`", "direction: higher"]),
    "milestone after the deadline": (
        {"milestones": "[{date: 2026-01-31, value: 0.45}]"},
        ["`milestones`", "2026-01-31", "date order"],
    ),
    "bad window": ({"window_days": 0}, ["`window_days`", "positive"]),
    "bad date field": (
        {"date_field": "close_date"},
        ["`date_field`", "closed_date or created_date"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_goal_says_the_file_goal_field_and_fix(case, tmp_path):
    fields, words = BAD[case]
    path = write(tmp_path, _goal(**fields))
    with pytest.raises(GoalsError) as caught:
        read_goals(path)
    message = str(caught.value)
    assert isinstance(caught.value, SalesOpsError)
    for word in [str(path), "goal 'G'", *words]:
        assert word in message, f"{word!r} not in: {message}"


def test_bad_files_say_what_is_wrong(tmp_path):
    with pytest.raises(GoalsError, match=r"no-such\.yaml.*YAML goals file"):
        read_goals(tmp_path / "no-such.yaml")
    with pytest.raises(GoalsError, match="is not valid YAML"):
        read_goals(write(tmp_path, "goals: [unclosed"))
    with pytest.raises(GoalsError, match="expected a list of goals under `goals:`"):
        read_goals(write(tmp_path, "name: just one"))
    two = _goal() + "\n" + _goal().removeprefix("goals:\n")
    with pytest.raises(GoalsError, match=r"goal 'G', field `name`: is used by two goals"):
        parse_goals(__import__("yaml").safe_load(two), source="two.yaml")
