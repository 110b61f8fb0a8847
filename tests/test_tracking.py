"""Tests for salesops_widgets/metrics/_tracking.py: goals measured with their interval and n,
their path, and judged on track / at risk / off track / too few to say.

The fixture is small enough to derive by hand (in the comments); the Wilson intervals come from
statsmodels, not from the package.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets import load
from salesops_widgets._catalog import TOO_FEW
from salesops_widgets.errors import GoalsError
from salesops_widgets.metrics import (
    expected_value,
    history_rows,
    judge,
    parse_goals,
    track_goals,
)

D = dt.date
_IDS = itertools.count(1)


def deals(region: str, won: int, lost: int, closed_on: str) -> list[dict]:
    return [
        {
            "opportunity_id": f"O-{next(_IDS)}",
            "created_date": pd.Timestamp("2024-12-01"),
            "close_date": pd.Timestamp(closed_on),
            "amount": 1000.0,
            "is_closed": True,
            "is_won": i < won,
            "lead_source": region,
        }
        for i in range(won + lost)
    ]


@pytest.fixture(scope="module")
def data():
    # baseline (closed 2025-02-15): NA 40 won of 100 closed (0.40); APAC 3 of 10 (0.30)
    # window now (the 91 days 2025-04-01..2025-06-30, closed 2025-05-15): NA 60 of 100 (0.60);
    #   APAC 5 of 10: fewer than 30 closed deals, too few to say
    rows = deals("NA", 40, 60, "2025-02-15") + deals("APAC", 3, 7, "2025-02-15")
    rows += deals("NA", 60, 40, "2025-05-15") + deals("APAC", 5, 5, "2025-05-15")
    return load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")


# The baseline ends 2025-03-31; the deadline 2025-09-28 is 181 days later and the as-of date
# 2025-06-30 is 91 days later, so the path expects baseline + (target − baseline) × 91/181 now.
GOALS = """
goals:
  - name: ahead
    kpi: win_rate
    filters: {lead_source: [NA]}
    baseline: 2025-01-01..2025-03-31
    target: 0.58
    deadline: 2025-09-28
  - name: risky
    kpi: win_rate
    filters: {lead_source: [NA]}
    baseline: 2025-01-01..2025-03-31
    target: 0.80
    deadline: 2025-09-28
  - name: behind
    kpi: win_rate
    filters: {lead_source: [NA]}
    baseline: 2025-01-01..2025-03-31
    target: 0.80
    deadline: 2025-09-28
    milestones:
      - {date: 2025-06-30, value: 0.75}
  - name: few
    kpi: win_rate
    filters: {lead_source: [APAC]}
    baseline: 2025-01-01..2025-03-31
    target: 0.50
    deadline: 2025-09-28
"""


def goals(text: str = GOALS):
    import yaml

    return parse_goals(yaml.safe_load(text), source="test.yaml")


def test_one_goal_on_track_one_at_risk_one_off_track_one_too_few(data):
    summary, _, _ = track_goals(data, goals())
    s = summary.set_index("goal")
    low, high = proportion_confint(60, 100, method="wilson")  # 0.5020, 0.6906
    assert s.loc["ahead", "value"] == pytest.approx(0.60)
    assert s.loc["ahead", "low"] == pytest.approx(low)
    assert s.loc["ahead", "high"] == pytest.approx(high)
    assert s.loc["ahead", "n"] == 100 and s.loc["few", "n"] == 10
    assert s.loc["ahead", "baseline_value"] == pytest.approx(0.40)
    # ahead:  0.40 + 0.18 × 91/181 = 0.4905 ≤ low 0.5020: on track
    # risky:  0.40 + 0.40 × 91/181 = 0.6011, inside [0.5020, 0.6906]: at risk
    # behind: the milestone of 2025-06-30 expects 0.75 > high 0.6906: off track
    assert s.loc["ahead", "expected"] == pytest.approx(0.40 + 0.18 * 91 / 181)
    assert s.loc["risky", "expected"] == pytest.approx(0.40 + 0.40 * 91 / 181)
    assert s.loc["behind", "expected"] == pytest.approx(0.75)
    assert s["status"].to_dict() == {
        "ahead": "on track",
        "risky": "at risk",
        "behind": "off track",
        "few": TOO_FEW,
    }


def test_without_history_the_trend_is_per_quarter_of_the_data(data):
    _, trend, paths = track_goals(data, goals(), freq="quarter")
    on = trend[trend["goal"] == "ahead"]
    # 2025Q1: 40 of 100 (the baseline); 2025Q2: 60 of 100
    assert on["source"].tolist() == ["2025Q1", "2025Q2"]
    assert on["value"].tolist() == pytest.approx([0.40, 0.60])
    assert on["n"].tolist() == [100, 100]
    off = paths[paths["goal"] == "behind"]
    assert off["point"].tolist() == ["baseline", "milestone", "target"]
    assert off["value"].tolist() == pytest.approx([0.40, 0.75, 0.80])


def test_with_history_the_trend_is_the_past_runs_then_now(data):
    g = goals()
    past = history_rows(data, g).assign(as_of=pd.Timestamp("2025-05-31"), run="r1")
    again = past.assign(value=0.55, run="r2")  # a second run on the same day: the later one
    _, trend, _ = track_goals(data, g, history=pd.concat([past, again]))
    on = trend[trend["goal"] == "ahead"]
    assert on["source"].tolist() == ["run r2", "now"]
    assert on["value"].tolist() == pytest.approx([0.55, 0.60])


def test_a_target_on_the_wrong_side_of_the_measured_baseline_is_refused(data):
    text = GOALS.replace("target: 0.58", "target: 0.35")  # below the baseline 0.40
    with pytest.raises(GoalsError) as caught:
        track_goals(data, goals(text))
    message = str(caught.value)
    for word in ("test.yaml", "goal 'ahead'", "`target`", "wrong side", "above 0.4"):
        assert word in message, message


def test_an_unknown_filter_dimension_names_the_goal(data):
    text = GOALS.replace("{lead_source: [APAC]}", "{lead_sorce: [APAC]}")
    with pytest.raises(GoalsError, match=r"goal 'few', field `filters`"):
        track_goals(data, goals(text))


def test_judge_uses_the_interval_and_mirrors_for_lower_is_better():
    assert judge(0.6, 0.5, 0.7, 0.45, small_n=False, direction="higher") == "on track"
    assert judge(0.6, 0.5, 0.7, 0.65, small_n=False, direction="higher") == "at risk"
    assert judge(0.6, 0.5, 0.7, 0.75, small_n=False, direction="higher") == "off track"
    # lower is better: the high bound must be at or below the path to be on track
    assert judge(50, 45, 55, 60, small_n=False, direction="lower") == "on track"
    assert judge(50, 45, 55, 52, small_n=False, direction="lower") == "at risk"
    assert judge(50, 45, 55, 40, small_n=False, direction="lower") == "off track"
    # no interval: judged on the value
    assert judge(50, float("nan"), float("nan"), 52, small_n=False, direction="lower") == (
        "on track"
    )
    assert judge(0.6, 0.5, 0.7, 0.45, small_n=True, direction="higher") == TOO_FEW
    assert judge(float("nan"), 0, 0, 0.45, small_n=False, direction="higher") == "no data"


def test_expected_value_is_linear_between_the_path_points():
    path = [
        (D(2025, 1, 1), 10.0, "baseline"),
        (D(2025, 1, 11), 20.0, "milestone"),
        (D(2025, 1, 31), 0.0, "target"),
    ]
    assert expected_value(path, D(2025, 1, 6)) == pytest.approx(15.0)  # halfway to 20
    assert expected_value(path, D(2025, 1, 21)) == pytest.approx(10.0)  # halfway from 20 to 0
    assert expected_value(path, D(2024, 12, 1)) == 10.0  # before the path: the baseline
    assert expected_value(path, D(2025, 3, 1)) == 0.0  # after the deadline: the target
