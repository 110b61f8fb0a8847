"""Goals: a YAML file of KPI goals with milestones, read and checked into ``Goal`` objects.

A goal names one KPI of the KPI layer (with the filters of its segment), a baseline period, a
target (a value, or a change relative to the baseline), a deadline and optional milestones. Every
problem raises a ``GoalsError`` that names the file, the goal, the field and the fix. How a goal
is measured and judged: ``_tracking.py`` and docs/goals.md.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._catalog import CATALOGUE
from .._dates import date_parameter
from ..errors import GoalsError, ParameterError
from ._segments import SEGMENT_COLUMNS

__all__ = ["GOAL_KPIS", "WINDOW_DAYS", "Goal", "Milestone", "read_goals", "parse_goals"]

# the KPIs a goal can name: the KPI table's columns that the display catalogue knows
GOAL_KPIS = tuple(c for c in SEGMENT_COLUMNS if c in CATALOGUE)
WINDOW_DAYS = 91  # a goal's KPI is measured over the deals of the trailing 91 days (a quarter)
DATE_FIELDS = ("closed_date", "created_date")
FIELDS = (
    "name",
    "kpi",
    "filters",
    "baseline",
    "target",
    "target_change",
    "deadline",
    "milestones",
    "direction",
    "date_field",
    "window_days",
)
_CHANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class Milestone:
    """An incremental goal: a value (or a change relative to the baseline) by a date."""

    date: _dt.date
    value: float | None = None
    change: float | None = None

    def level(self, baseline: float) -> float:
        """The milestone's value, given the baseline's."""
        return self.value if self.value is not None else baseline * (1 + self.change)


@dataclass(frozen=True)
class Goal:
    """One goal of a goals file (see docs/goals.md).

    Attributes
    ----------
    name, kpi
        Its name (unique in the file) and the KPI (a column of ``metrics.segment_kpis``).
    baseline
        (start, end) of the baseline period, inclusive.
    deadline
        The date the target is due.
    target, target_change
        The target value, or the change relative to the baseline value (0.10: +10%); one of
        the two.
    milestones
        Incremental goals between the baseline's end and the deadline, in date order.
    filters
        The segment: dimension -> values (``{}``: every deal).
    direction
        "higher" or "lower" is better: the catalogue's, or the file's for a neutral KPI.
    date_field, window_days
        Which deals a measurement counts: those closed (or created) in the ``window_days`` days
        up to the measurement date.
    source
        The file it was read from.
    """

    name: str
    kpi: str
    baseline: tuple[_dt.date, _dt.date]
    deadline: _dt.date
    target: float | None = None
    target_change: float | None = None
    milestones: tuple[Milestone, ...] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    direction: str = "higher"
    date_field: str = "closed_date"
    window_days: int = WINDOW_DAYS
    source: str = ""

    def target_value(self, baseline: float) -> float:
        """The target, given the baseline's value."""
        return self.target if self.target is not None else baseline * (1 + self.target_change)

    def path(self, baseline: float) -> list[tuple[_dt.date, float, str]]:
        """(date, value, kind) of the path to the target: the baseline at the end of its period,
        each milestone, the target at the deadline."""
        points = [(self.baseline[1], float(baseline), "baseline")]
        points += [(m.date, float(m.level(baseline)), "milestone") for m in self.milestones]
        return [*points, (self.deadline, float(self.target_value(baseline)), "target")]


# --------------------------------------------------------------------------------------------------
# Reading


def read_goals(path: str | Path) -> tuple[Goal, ...]:
    """The goals of a YAML goals file, checked.

    Raises
    ------
    GoalsError
        The file cannot be read or a goal in it is malformed: the message names the file, the
        goal, the field and the fix.
    """
    import yaml

    path = Path(path)
    try:
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader())  # noqa: S506
    except OSError as exc:
        raise GoalsError(
            f"goals file {path}: {exc.strerror or exc}; give the path of a YAML goals file "
            "(see docs/goals.md)."
        ) from None
    except yaml.YAMLError as exc:
        raise GoalsError(f"goals file {path} is not valid YAML: {exc}") from None
    return parse_goals(content, source=str(path))


def _loader() -> type:
    """YAML's safe loader, with dates left as text: the one date parser reads them, and a bad
    one (2025-13-01) is named with its goal and field instead of failing the whole file."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def parse_goals(content: Any, *, source: str = "<goals>") -> tuple[Goal, ...]:
    """The goals of a goals file's content (``{"goals": [...]}`` or a list), checked."""
    items = content.get("goals") if isinstance(content, dict) else content
    if not isinstance(items, list) or not items:
        raise GoalsError(
            f"goals file {source}: expected a list of goals under `goals:`; write it as "
            "`goals:` followed by `- name: ...` entries (see docs/goals.md)."
        )
    goals = [_goal(item, i, source) for i, item in enumerate(items, start=1)]
    seen: set[str] = set()
    for goal in goals:
        if goal.name in seen:
            _fail(source, goal.name, "name", "is used by two goals", "give each goal its own name")
        seen.add(goal.name)
    return tuple(goals)


def _fail(source: str, goal: str, name: str, problem: str, fix: str) -> None:
    raise GoalsError(f"goals file {source}, goal {goal!r}, field `{name}`: {problem}; {fix}.")


def _goal(item: Any, index: int, source: str) -> Goal:
    label = item.get("name") if isinstance(item, dict) else None
    label = str(label) if label else f"#{index}"
    if not isinstance(item, dict):
        _fail(source, label, "-", "a goal must be a mapping of fields", "write `- name: ...`")
    _check_fields(item, label, source)
    kpi = _kpi(item, label, source)
    direction = _direction(item, kpi, label, source)
    baseline = _baseline(item.get("baseline"), label, source)
    deadline = _date(item.get("deadline"), label, source, "deadline")
    if deadline <= baseline[1]:
        _fail(
            source,
            label,
            "deadline",
            f"{deadline} is not after the baseline's end {baseline[1]}",
            "give a deadline after the baseline period",
        )
    target, change = _target(item, kpi, direction, label, source)
    return Goal(
        name=label,
        kpi=kpi,
        baseline=baseline,
        deadline=deadline,
        target=target,
        target_change=change,
        milestones=_milestones(item.get("milestones"), (baseline[1], deadline), label, source),
        filters=_filters(item.get("filters"), label, source),
        direction=direction,
        date_field=_date_field(item.get("date_field", "closed_date"), label, source),
        window_days=_window(item.get("window_days", WINDOW_DAYS), label, source),
        source=source,
    )


def _check_fields(item: Mapping[str, Any], label: str, source: str) -> None:
    for key in item:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            fix = f"did you mean `{close[0]}`?" if close else f"use {', '.join(FIELDS)}"
            _fail(source, label, str(key), "is not a field of a goal", fix)
    if not item.get("name"):
        _fail(source, label, "name", "is missing", "give every goal a name")


def _kpi(item: Mapping[str, Any], label: str, source: str) -> str:
    kpi = item.get("kpi")
    if kpi not in GOAL_KPIS:
        close = difflib.get_close_matches(str(kpi), GOAL_KPIS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        _fail(
            source,
            label,
            "kpi",
            f"{kpi!r} is not a KPI",
            f"{hint}choose one of {', '.join(GOAL_KPIS)}",
        )
    return str(kpi)


def _direction(item: Mapping[str, Any], kpi: str, label: str, source: str) -> str:
    better = CATALOGUE[kpi].better
    given = item.get("direction")
    if given is None and better == "neutral":
        _fail(
            source,
            label,
            "direction",
            f"{kpi} is neither better high nor low",
            "say which way is better: `direction: higher` or `direction: lower`",
        )
    if given is not None and given not in ("higher", "lower"):
        _fail(
            source,
            label,
            "direction",
            f"{given!r} is not higher or lower",
            "write `direction: higher` or `direction: lower`",
        )
    if given is not None and better != "neutral" and given != better:
        _fail(
            source,
            label,
            "direction",
            f"{better} {kpi} is better, not {given}",
            "remove `direction` (the KPI's own direction applies)",
        )
    return str(given or better)


def _date(value: Any, label: str, source: str, name: str) -> _dt.date:
    try:
        day = date_parameter(value, name)
    except ParameterError:
        day = None
    if day is None:
        _fail(source, label, name, f"{value!r} is not a date", "write it as YYYY-MM-DD")
    return day


def _baseline(value: Any, label: str, source: str) -> tuple[_dt.date, _dt.date]:
    if isinstance(value, str) and ".." in value:
        parts: Sequence[Any] = value.split("..", 1)
    elif isinstance(value, Mapping):
        parts = (value.get("start"), value.get("end"))
    elif isinstance(value, list | tuple) and len(value) == 2:
        parts = value
    else:
        _fail(
            source,
            label,
            "baseline",
            f"{value!r} is not a period",
            "write it as YYYY-MM-DD..YYYY-MM-DD",
        )
    start = _date(parts[0], label, source, "baseline")
    end = _date(parts[1], label, source, "baseline")
    if start > end:
        _fail(
            source,
            label,
            "baseline",
            f"it starts ({start}) after it ends ({end})",
            "put the earlier date first",
        )
    return start, end


def _change(value: Any, label: str, source: str, name: str) -> float:
    """A relative change: 0.1, "+10%", "-5%"."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and _CHANGE.match(value):
        return float(_CHANGE.match(value).group(1)) / 100
    if isinstance(value, int | float):
        return float(value)
    _fail(
        source,
        label,
        name,
        f"{value!r} is not a relative change",
        "write it as a percentage such as +10% or -15%",
    )
    return 0.0


def _number(value: Any, kpi: str, label: str, source: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(source, label, name, f"{value!r} is not a number", "write a plain number")
    if CATALOGUE[kpi].kind == "percent" and not 0 <= value <= 1:
        _fail(
            source,
            label,
            name,
            f"{value!r} is not a share between 0 and 1",
            f"write {kpi} as a share of 1: 40% is 0.40",
        )
    return float(value)


def _target(
    item: Mapping[str, Any], kpi: str, direction: str, label: str, source: str
) -> tuple[float | None, float | None]:
    if ("target" in item) == ("target_change" in item):
        _fail(
            source,
            label,
            "target",
            "give exactly one of `target` and `target_change`",
            "write `target: 0.40` (a value) or `target_change: +10%` (from the baseline)",
        )
    if "target" in item:
        return _number(item["target"], kpi, label, source, "target"), None
    change = _change(item["target_change"], label, source, "target_change")
    _right_side(change, direction, kpi, label, source, "target_change")
    return None, change


def _right_side(change: float, direction: str, kpi: str, label: str, source: str, name: str):
    if (change > 0) if direction == "higher" else (change < 0):
        return
    want = "a rise (e.g. +10%)" if direction == "higher" else "a fall (e.g. -10%)"
    _fail(
        source,
        label,
        name,
        f"{change:+.0%} is on the wrong side: {direction} {kpi} is better",
        f"give {want}",
    )


def _milestones(
    value: Any, span: tuple[_dt.date, _dt.date], label: str, source: str
) -> tuple[Milestone, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(m, Mapping) for m in value):
        _fail(
            source,
            label,
            "milestones",
            "must be a list of `- date: ..., value: ...`",
            "write each milestone as `- {date: YYYY-MM-DD, value: 0.35}`",
        )
    out = []
    for m in value:
        day = _date(m.get("date"), label, source, "milestones")
        if not span[0] < day < span[1] or (out and day <= out[-1].date):
            _fail(
                source,
                label,
                "milestones",
                f"{day} is not after the baseline's end, before "
                "the deadline and after the milestone before it",
                "put the milestones in date order between the two",
            )
        if ("value" in m) == ("change" in m):
            _fail(
                source,
                label,
                "milestones",
                f"the milestone of {day} needs one of `value` and `change`",
                "write `value: 0.35` or `change: +5%`",
            )
        if "value" in m:
            out.append(Milestone(day, value=_plain(m["value"], label, source)))
        else:
            out.append(Milestone(day, change=_change(m["change"], label, source, "milestones")))
    return tuple(out)


def _plain(value: Any, label: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(source, label, "milestones", f"{value!r} is not a number", "write a number")
    return float(value)


def _filters(value: Any, label: str, source: str) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        _fail(
            source,
            label,
            "filters",
            f"{value!r} is not a mapping",
            "write it as `filters: {region: [EMEA]}`",
        )
    return {str(k): list(v) if isinstance(v, list | tuple) else [v] for k, v in value.items()}


def _date_field(value: Any, label: str, source: str) -> str:
    if value not in DATE_FIELDS:
        _fail(
            source,
            label,
            "date_field",
            f"{value!r} is not a date field",
            f"choose {' or '.join(DATE_FIELDS)}",
        )
    return str(value)


def _window(value: Any, label: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(
            source,
            label,
            "window_days",
            f"{value!r} is not a positive whole number of days",
            f"write e.g. `window_days: {WINDOW_DAYS}`",
        )
    return int(value)
