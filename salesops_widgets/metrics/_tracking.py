"""Goal tracking: each goal's KPI measured with its interval and n, its path to the target,
its trend (across scheduled runs, or per period from the data), and on track / at risk / off
track judged with the interval. Definitions: docs/metrics.md ("Goals").
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._catalog import CATALOGUE, TOO_FEW
from ..data import SalesData
from ..errors import GoalsError, MissingDataError, ParameterError
from ._deals import check_dimensions, outcomes, select_deals
from ._goals import WINDOW_DAYS, Goal
from ._measures import aggregate, aggregates, asp
from ._segments import segment_kpis
from ._significance import mean_interval_from_moments

__all__ = [
    "STATUSES",
    "FREQS",
    "measure_kpi",
    "expected_value",
    "judge",
    "track_goals",
    "goal_paths",
    "period_trend",
    "history_trend",
    "history_rows",
    "measure_key",
]

ON_TRACK, AT_RISK, OFF_TRACK, NO_DATA = "on track", "at risk", "off track", "no data"
STATUSES = (ON_TRACK, AT_RISK, OFF_TRACK, TOO_FEW, NO_DATA)
FREQS = {"month": "M", "quarter": "Q"}
# the deals a KPI's n counts: closed deals for the rates and averages (the small-n rule's n),
# won deals for bookings and the discount, every deal for the counts
_N_COLUMN = {
    "win_rate": "closed",
    "value_win_rate": "closed",
    "asp": "closed",
    "median_cycle_days_won": "closed",
    "velocity": "closed",
    "km_median_days_to_close": "opportunities",
    "bookings": "won",
    "portfolio_discount": "won",
}
MEASURE_COLUMNS = ("value", "low", "high", "n", "small_n")


def measure_kpi(
    data: SalesData,
    kpi: str,
    *,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "closed_date",
) -> dict[str, Any]:
    """One KPI of ``segment_kpis`` over a selection, with its 95% interval and n.

    The interval is the KPI table's (Wilson for the win rate, the Kaplan–Meier median's), a
    Student t interval of the mean for ASP, and none (NaN) for the others. ``small_n`` is the
    KPI table's small-n rule (fewer than 30 closed deals) for the KPIs it applies to.

    Returns
    -------
    dict
        ``value``, ``low``, ``high``, ``n`` and ``small_n``.
    """
    row = segment_kpis(data, filters=filters, period=period, date_field=date_field).iloc[0]
    entry = CATALOGUE[kpi]
    low = float(row[entry.low]) if entry.low else np.nan
    high = float(row[entry.high]) if entry.high else np.nan
    if kpi == "asp":
        low, high = _asp_interval(data, filters, period, date_field)
    return {
        "value": float(row[kpi]),
        "low": low,
        "high": high,
        "n": int(row[_N_COLUMN.get(kpi, "opportunities")]),
        "small_n": bool(row["small_n"]) if entry.small_n else False,
    }


def _asp_interval(data, filters, period, date_field) -> tuple[float, float]:
    t = select_deals(data, filters, period, date_field=date_field)
    won = outcomes(t)["won"]
    metrics = {**aggregates(t, "won_with_amount", "bookings"), "var": t.amount.var(where=won)}
    raw = aggregate(t, [], metrics).iloc[0]
    n = float(raw["won_with_amount"] or 0)
    mean = asp(float(raw["bookings"] or 0), n)
    low, high = mean_interval_from_moments(n, mean, float(raw["var"] or 0))
    return float(np.asarray(low).ravel()[0]), float(np.asarray(high).ravel()[0])


def expected_value(path: Sequence[tuple[_dt.date, float, Any]], day: _dt.date) -> float:
    """The value the path to the target expects on ``day``: linear between its points (the
    baseline at the end of its period, the milestones, the target at the deadline); the
    baseline before it starts, the target after the deadline."""
    days = [(p[0] - path[0][0]).days for p in path]
    return float(np.interp((day - path[0][0]).days, days, [p[1] for p in path]))


def judge(
    value: float, low: float, high: float, expected: float, *, small_n: bool, direction: str
) -> str:
    """On track, at risk, off track, too few to say, or no data (docs/metrics.md, "Goals").

    With higher better: **on track** when the interval's low bound is at or above the
    expected value (even the cautious reading keeps to the path), **off track** when its high
    bound is below it (even the hopeful reading misses), **at risk** otherwise (the interval
    holds the expected value). Lower better is the mirror image. A KPI without an interval is
    judged on its value (low = high = value). ``small_n``: too few to say.
    """
    if small_n:
        return TOO_FEW
    if value != value or expected != expected:
        return NO_DATA
    low = value if low != low else low
    high = value if high != high else high
    if direction == "lower":
        low, high, expected = -high, -low, -expected
    if low >= expected:
        return ON_TRACK
    return OFF_TRACK if high < expected else AT_RISK


def _window(day: _dt.date, days: int) -> tuple[_dt.date, _dt.date]:
    return day - _dt.timedelta(days=days - 1), day


def _baseline(data: SalesData, goal: Goal) -> float:
    try:
        check_dimensions(data, list(goal.filters), parameter="filters")
    except (ParameterError, MissingDataError) as exc:
        raise GoalsError(
            f"goals file {goal.source}, goal {goal.name!r}, field `filters`: {exc}"
        ) from None
    base = measure_kpi(
        data, goal.kpi, filters=goal.filters, period=goal.baseline, date_field=goal.date_field
    )["value"]
    if base != base:
        raise GoalsError(
            f"goals file {goal.source}, goal {goal.name!r}, field `baseline`: {goal.kpi} cannot "
            f"be computed over {goal.baseline[0]}..{goal.baseline[1]} (no deal counts); choose a "
            "baseline period with deals in it."
        )
    _check_target_side(goal, base)
    return base


def _check_target_side(goal: Goal, base: float) -> None:
    target = goal.target_value(base)
    good = target > base if goal.direction == "higher" else target < base
    if not good:
        word = "above" if goal.direction == "higher" else "below"
        raise GoalsError(
            f"goals file {goal.source}, goal {goal.name!r}, field `target`: {target:g} is on the "
            f"wrong side of the baseline {base:g} ({goal.direction} {goal.kpi} is better); give "
            f"a target {word} {base:g}."
        )


def goal_paths(data: SalesData, goals: Sequence[Goal]) -> pd.DataFrame:
    """Each goal's path: ``goal``, ``date``, ``value`` and ``point`` (baseline, milestone,
    target). Raises GoalsError for a target on the wrong side of its measured baseline."""
    rows = [
        {"goal": g.name, "date": pd.Timestamp(d), "value": v, "point": kind}
        for g in goals
        for d, v, kind in g.path(_baseline(data, g))
    ]
    return pd.DataFrame(rows, columns=["goal", "date", "value", "point"])


def _measured(data: SalesData, goal: Goal, day: _dt.date, path) -> dict[str, Any]:
    window = _window(day, goal.window_days)
    m = measure_kpi(data, goal.kpi, filters=goal.filters, period=window, date_field=goal.date_field)
    expected = expected_value(path, day)
    status = judge(
        m["value"], m["low"], m["high"], expected, small_n=m["small_n"], direction=goal.direction
    )
    return {
        "goal": goal.name,
        "date": pd.Timestamp(day),
        "start": pd.Timestamp(window[0]),
        **m,
        "expected": expected,
        "status": status,
    }


def period_trend(
    data: SalesData, goals: Sequence[Goal], *, freq: str = "quarter", paths: pd.DataFrame
) -> pd.DataFrame:
    """Each goal's KPI per calendar ``freq`` (month or quarter) from the start of its baseline
    to the data's as-of date (the last period cut there), each period judged against the path
    at its end. Used where there is no run history yet."""
    if freq not in FREQS:
        raise ParameterError(f"freq={freq!r}: choose one of {', '.join(FREQS)}.")
    rows = []
    for goal in goals:
        path = _path_of(paths, goal)
        periods = pd.period_range(goal.baseline[0], data.as_of, freq=FREQS[freq])
        for p in periods:
            start, end = p.start_time.date(), min(p.end_time.date(), data.as_of)
            m = measure_kpi(
                data,
                goal.kpi,
                filters=goal.filters,
                period=(start, end),
                date_field=goal.date_field,
            )
            expected = expected_value(path, end)
            status = judge(
                m["value"],
                m["low"],
                m["high"],
                expected,
                small_n=m["small_n"],
                direction=goal.direction,
            )
            rows.append(
                {
                    "goal": goal.name,
                    "date": pd.Timestamp(end),
                    "start": pd.Timestamp(start),
                    **m,
                    "expected": expected,
                    "status": status,
                    "source": str(p),
                }
            )
    return _trend_frame(rows)


def _trend_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["goal", "date", "start", *MEASURE_COLUMNS, "expected", "status", "source"]
    return pd.DataFrame(rows, columns=cols)


def _path_of(paths: pd.DataFrame, goal: Goal) -> list[tuple[_dt.date, float, str]]:
    mine = paths[paths["goal"] == goal.name]
    return [
        (d.date(), float(v), k)
        for d, v, k in mine[["date", "value", "point"]].itertuples(index=False)
    ]


def measure_key(kpi: str, filters: Mapping[str, Any] | None, date_field: str, window: int) -> str:
    """What a stored measurement measured, as one string: the KPI, the filters (sorted), the
    date field and the window. A goal reads back the history rows of its own key."""
    scope = {k: sorted(map(str, v)) for k, v in sorted((filters or {}).items())}
    return json.dumps([kpi, scope, date_field, int(window)], separators=(",", ":"))


def history_rows(
    data: SalesData, goals: Sequence[Goal] = (), kpis: Sequence[str] = ()
) -> pd.DataFrame:
    """The measurements one run stores: every KPI of ``kpis`` over every deal, and each goal's
    KPI over its segment, in the trailing window up to the data's as-of date.

    Columns: ``key`` (see :func:`measure_key`), ``kpi``, ``as_of``, ``start``, ``value``,
    ``low``, ``high``, ``n``, ``small_n``.
    """
    wanted = {
        measure_key(k, {}, "closed_date", WINDOW_DAYS): (k, {}, "closed_date", WINDOW_DAYS)
        for k in kpis
    }
    for g in goals:
        wanted[measure_key(g.kpi, g.filters, g.date_field, g.window_days)] = (
            g.kpi,
            g.filters,
            g.date_field,
            g.window_days,
        )
    rows = []
    for key, (kpi, filters, date_field, days) in wanted.items():
        window = _window(data.as_of, days)
        m = measure_kpi(data, kpi, filters=filters, period=window, date_field=date_field)
        rows.append(
            {
                "key": key,
                "kpi": kpi,
                "as_of": pd.Timestamp(data.as_of),
                "start": pd.Timestamp(window[0]),
                **m,
            }
        )
    return pd.DataFrame(rows, columns=["key", "kpi", "as_of", "start", *MEASURE_COLUMNS])


def history_trend(
    history: pd.DataFrame, goals: Sequence[Goal], *, paths: pd.DataFrame
) -> pd.DataFrame:
    """Each goal's measurements stored by past runs (one per as-of date, the latest run's),
    judged against its path on that date."""
    rows = []
    for goal in goals:
        key = measure_key(goal.kpi, goal.filters, goal.date_field, goal.window_days)
        mine = history[history["key"] == key].sort_values(["as_of", "run"])
        mine = mine.drop_duplicates("as_of", keep="last")
        path = _path_of(paths, goal)
        for r in mine.itertuples(index=False):
            expected = expected_value(path, r.as_of.date())
            status = judge(
                r.value, r.low, r.high, expected, small_n=bool(r.small_n), direction=goal.direction
            )
            rows.append(
                {
                    "goal": goal.name,
                    "date": r.as_of,
                    "start": r.start,
                    "value": r.value,
                    "low": r.low,
                    "high": r.high,
                    "n": int(r.n),
                    "small_n": bool(r.small_n),
                    "expected": expected,
                    "status": status,
                    "source": f"run {r.run}",
                }
            )
    return _trend_frame(rows)


def track_goals(
    data: SalesData,
    goals: Sequence[Goal],
    *,
    history: pd.DataFrame | None = None,
    freq: str = "quarter",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every goal now, its trend and its path.

    Parameters
    ----------
    goals
        From ``read_goals``.
    history
        Stored measurements of past runs (``runs.read_history``): the trend is theirs, plus
        the measurement now. None or empty: the trend is the KPI per ``freq`` from the data.

    Returns
    -------
    (summary, trend, paths)
        ``summary``: one row per goal (``goal``, ``kpi``, ``label``, ``direction``,
        ``baseline_start``, ``baseline_end``, ``baseline_value``, ``target``, ``deadline``,
        ``date``, ``start``, ``value``, ``low``, ``high``, ``n``, ``small_n``, ``expected``,
        ``status``); ``trend``: one row per goal and date (``source``: the run or the period);
        ``paths``: see :func:`goal_paths`.
    """
    paths = goal_paths(data, goals)
    now = pd.DataFrame([_measured(data, g, data.as_of, _path_of(paths, g)) for g in goals])
    now["source"] = "now"
    if history is not None and len(history):
        trend = history_trend(history, goals, paths=paths)
        trend = trend[trend["date"] < pd.Timestamp(data.as_of)]
        trend = pd.concat([trend, now], ignore_index=True) if len(trend) else now
    else:
        trend = period_trend(data, goals, freq=freq, paths=paths)
    summary = _summary(goals, paths, now)
    return summary, trend.reset_index(drop=True), paths


def _summary(goals: Sequence[Goal], paths: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for goal, (_, m) in zip(goals, now.iterrows(), strict=True):
        path = _path_of(paths, goal)
        rows.append(
            {
                "goal": goal.name,
                "kpi": goal.kpi,
                "label": CATALOGUE[goal.kpi].label,
                "direction": goal.direction,
                "baseline_start": pd.Timestamp(goal.baseline[0]),
                "baseline_end": pd.Timestamp(goal.baseline[1]),
                "baseline_value": path[0][1],
                "target": path[-1][1],
                "deadline": pd.Timestamp(goal.deadline),
                **{k: m[k] for k in ("date", "start", *MEASURE_COLUMNS, "expected", "status")},
            }
        )
    return pd.DataFrame(rows)
