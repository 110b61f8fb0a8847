"""Cycle KPIs: cycle days, time-to-close and time-to-win, stage durations, stuck deals, pushes.

Every function selects deals with :func:`select_deals`, aggregates in the engine and brings back
only aggregated rows. Curves are computed by :mod:`._survival` from counts per (group, distinct
duration, event type), so the cost grows with the number of distinct durations, not with rows.
Formulas, what is in and out, and sources: docs/metrics.md, "Cycle".

Censoring: an open deal is a censored observation at its age on the as-of date; the stay of an
open deal in its current stage is censored at the as-of date. Medians over closed deals only are
biased low (the slowest deals are the ones still open); they are shown only to explain the gap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData
from ..data._mapping import _norm
from ..data._schema import STATUSES
from ..errors import ParameterError
from ._deals import check_dimensions, deals, dimension_labels, select_coded_deals, select_deals
from ._measures import aggregate, median_cycle_days
from ._stats import MIN_CLOSED, wilson_interval
from ._survival import KMFit, cif_arrays, quantile_from_counts, step_at

__all__ = [
    "cycle_stats",
    "cycle_summary",
    "time_to_close",
    "time_to_close_curves",
    "time_to_win",
    "time_to_win_curves",
    "stage_durations",
    "stuck_deals",
    "close_date_pushes",
]

OUTCOMES = ("won", "lost")
BY_DAY = (30, 90, 180, 365)
NO_DEALS = "no deals match the filters and period"
_TOL = 1e-9

# -- shared helpers ---------------------------------------------------------------------------


def _groups(df: pd.DataFrame, keys: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key tuple, rows) per group, sorted; one empty-key group when ``keys`` is empty."""
    if not keys:
        yield (), df
        return
    for key, sub in df.groupby(keys, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), sub


def _split(
    counts: pd.DataFrame, keys: list[str], duration: str, kind: str
) -> Iterator[tuple[tuple, dict[str, np.ndarray]]]:
    """Per group (sorted), numpy arrays ``t`` (duration, NaN when unknown), ``n`` (count) and
    ``kind`` (event type). With no keys: one group, even when there are no rows."""
    arrays = {
        "t": pd.to_numeric(counts[duration]).to_numpy(dtype=float, na_value=np.nan),
        "n": counts["n"].to_numpy(dtype=float),
        "kind": counts[kind].to_numpy(dtype=object),
    }
    if not keys:
        yield (), arrays
        return
    indices = counts.groupby(keys, sort=False, dropna=False).indices
    for key in sorted(indices, key=lambda k: tuple(map(str, k if isinstance(k, tuple) else (k,)))):
        pos = indices[key]
        yield (key if isinstance(key, tuple) else (key,)), {k: a[pos] for k, a in arrays.items()}


def _long(keys: list[str], parts: list[tuple[tuple, dict]], columns: list[str]) -> pd.DataFrame:
    """One long frame from per-group arrays: key columns repeated, then ``columns``."""
    if not parts:
        return _frame([], [*keys, *columns], NO_DEALS)
    sizes = [len(a[columns[0]]) for _, a in parts]
    out = {k: np.repeat([g[i] for g, _ in parts], sizes) for i, k in enumerate(keys)}
    out.update({c: np.concatenate([a[c] for _, a in parts]) for c in columns})
    return pd.DataFrame(out, columns=[*keys, *columns])


def _frame(rows: list[dict], columns: list[str], note: str = "") -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=columns)
    if out.empty and note:
        out.attrs["note"] = note
    return out


def _notes(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _keys(data: SalesData, by: Sequence[str] | str) -> list[str]:
    """Validated group-by dimensions; a single name may be given as a string."""
    return check_dimensions(data, [by] if isinstance(by, str) else by)


def _cycle_deals(
    data: SalesData,
    analysis: str,
    by: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
) -> tuple[ibis.Table, list[str]]:
    keys = _keys(data, by)
    data.require(analysis, "opportunities", ("close_date",))
    return select_coded_deals(data, filters, period, date_field=date_field), keys


def _days(by_day: Sequence[float]) -> list[int]:
    days = [int(d) for d in by_day]
    if any(d < 0 for d in days):
        raise ParameterError(f"by_day={tuple(by_day)!r} must be whole days ≥ 0, e.g. (30, 90).")
    return days


# -- cycle days of closed deals -----------------------------------------------------------------

_STAT_COLUMNS = ["deals", "mean_cycle_days", "median_cycle_days", "p90_cycle_days"]


def cycle_stats(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """Cycle days (close − created) of won and of lost deals: count, mean, median and p90.

    Closed deals only, so these describe finished deals; they are not the time to close of the
    pipeline (see :func:`time_to_close`). Quantiles are the engine's exact, interpolated
    ``quantile`` (``percentile_cont``).

    Returns
    -------
    pandas.DataFrame
        Long form: one row per group and ``outcome`` (``won``, ``lost``; both always present for
        every group that has a deal): ``deals`` (closed deals with a cycle), ``mean_cycle_days``,
        ``median_cycle_days``, ``p90_cycle_days`` (NaN when ``deals`` is 0), ``small_n``
        (fewer than ``MIN_CLOSED`` deals) and ``note``. :func:`cycle_summary` has the wide form.
    """
    t, keys = _cycle_deals(data, "cycle days", by, filters, period, date_field)
    agg = aggregate(
        t,
        [*keys, "status"],
        {
            "deals": t.cycle_days.count(),
            "mean_cycle_days": t.cycle_days.mean(),
            "median_cycle_days": median_cycle_days(t),
            "p90_cycle_days": t.cycle_days.quantile(0.9),
        },
        labels=dimension_labels(data),
    )
    groups = [k for k, _ in _groups(agg, keys)] if keys else [()]
    found = {(*_key(r, keys), r["status"]): r for r in agg.to_dict("records")}
    rows = []
    for g in groups:
        for outcome in OUTCOMES:
            r = found.get((*g, outcome))
            row = dict(zip(keys, g, strict=True))
            row["outcome"] = outcome
            row.update({c: (r[c] if r is not None else np.nan) for c in _STAT_COLUMNS})
            row["deals"] = int(r["deals"]) if r is not None else 0
            row["small_n"] = row["deals"] < MIN_CLOSED
            row["note"] = _notes(
                f"no {outcome} deals" if row["deals"] == 0 else "",
                "too few to say" if 0 < row["deals"] < MIN_CLOSED else "",
            )
            rows.append(row)
    return _frame(rows, [*keys, "outcome", *_STAT_COLUMNS, "small_n", "note"], NO_DEALS)


def _key(row: Mapping[str, Any], keys: list[str]) -> tuple:
    return tuple(row[k] for k in keys)


def cycle_summary(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """:func:`cycle_stats` in wide form: one row per group.

    Returns
    -------
    pandas.DataFrame
        For each outcome ``o`` in (won, lost): ``deals_o``, ``mean_cycle_days_o``,
        ``median_cycle_days_o``, ``p90_cycle_days_o``, ``small_n_o``. E.g.
        ``median_cycle_days_won``.
    """
    long = cycle_stats(data, by=by, filters=filters, period=period, date_field=date_field)
    keys = [by] if isinstance(by, str) else list(by)
    columns = [f"{c}_{o}" for o in OUTCOMES for c in [*_STAT_COLUMNS, "small_n"]]
    rows = []
    for g, sub in _groups(long, keys):
        row = dict(zip(keys, g, strict=True))
        for r in sub.to_dict("records"):
            row.update({f"{c}_{r['outcome']}": r[c] for c in [*_STAT_COLUMNS, "small_n"]})
        rows.append(row)
    return _frame(rows, [*keys, *columns], NO_DEALS)


# -- time to close (Kaplan–Meier) ---------------------------------------------------------------


def _duration_counts(
    data: SalesData,
    analysis: str,
    by: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    split: str,
) -> tuple[pd.DataFrame, list[str]]:
    """One engine query: deals per (group, duration_days, ``split``)."""
    t, keys = _cycle_deals(data, analysis, by, filters, period, date_field)
    groups = [*keys, "duration_days", split]
    counts = aggregate(t, groups, {"n": t.count()}, labels=dimension_labels(data))
    return counts, keys


def _share_columns(prefix: str, days: Sequence[int]) -> list[str]:
    return [f"{prefix}{d}" for d in days]


def time_to_close(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    horizon_days: float = 365,
    by_day: Sequence[float] = BY_DAY,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Days from creation to close by Kaplan–Meier, open deals censored at the as-of date.

    Counts come from one engine query, ``group_by(by + duration_days + is_closed).count()``.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n`` (deals with a duration), ``n_closed`` (events), ``n_open``
        (censored), ``km_median_days_to_close`` (NaN when fewer than half closed within the
        follow-up, never inf), ``km_median_low`` / ``km_median_high`` (Brookmeyer–Crowley 95%
        interval; NaN when a limit lies beyond the follow-up), ``km_median_reached``,
        ``naive_median_days_closed_only`` (closed deals only: biased low, shown to explain the
        gap), ``restricted_mean_days`` (mean days to close capped at the horizon: ∫₀^h S(t) dt),
        ``restricted_mean_horizon_days`` (h = min(horizon_days, longest follow-up)),
        ``share_closed_by_day_<d>`` (1 − S(d); NaN past the longest follow-up), ``small_n``
        (fewer than ``MIN_CLOSED`` closed deals) and ``note`` (why a value is missing).
    """
    days = _days(by_day)
    counts, keys = _duration_counts(
        data, "time to close", by, filters, period, date_field, "is_closed"
    )
    share_cols = _share_columns("share_closed_by_day_", days)
    columns = [
        *keys,
        "n",
        "n_closed",
        "n_open",
        "km_median_days_to_close",
        "km_median_low",
        "km_median_high",
        "km_median_reached",
        "naive_median_days_closed_only",
        "restricted_mean_days",
        "restricted_mean_horizon_days",
        *share_cols,
        "small_n",
        "note",
    ]
    rows = [
        _ttc_row(dict(zip(keys, g, strict=True)), a, days, horizon_days, confidence)
        for g, a in _split(counts, keys, "duration_days", "is_closed")
    ]
    return _frame(rows, columns, NO_DEALS)


def km_medians(counts: pd.DataFrame, keys: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """:func:`time_to_close`'s ``km_median_days_to_close``, ``km_median_low`` and
    ``km_median_high`` per group of ``keys``, from deals counted (column ``n``) per group,
    ``duration_days`` and ``is_closed``. With no keys: one row, even without deals."""
    columns = [*keys, "km_median_days_to_close", "km_median_low", "km_median_high"]
    rows = []
    for g, a in _split(counts, keys, "duration_days", "is_closed"):
        fit = KMFit.from_counts(*_event_split(a)[:3])
        rows.append((*g, fit.quantile(0.5), *fit.quantile_ci(0.5, confidence)))
    return pd.DataFrame(rows, columns=columns)


def _event_split(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(durations, events, censored, deals without a duration) from one group's arrays."""
    known = ~np.isnan(a["t"])
    closed = a["kind"][known] == True  # noqa: E712 (object array of booleans)
    n = a["n"][known]
    return a["t"][known], n * closed, n * ~closed, int(a["n"][~known].sum())


def _ttc_row(
    row: dict, a: dict[str, np.ndarray], days: list[int], horizon: float, confidence: float
) -> dict:
    durations, events, censored, unknown = _event_split(a)
    fit = KMFit.from_counts(durations, events, censored)
    median = fit.quantile(0.5)
    low, high = fit.quantile_ci(0.5, confidence)
    rmst, h = fit.restricted_mean(horizon)
    n, n_closed = int(fit.n), int(fit.n_events)
    row.update(
        n=n,
        n_closed=n_closed,
        n_open=n - n_closed,
        km_median_days_to_close=median,
        km_median_low=low,
        km_median_high=high,
        km_median_reached=bool(np.isfinite(median)),
        naive_median_days_closed_only=quantile_from_counts(durations, events, 0.5),
        restricted_mean_days=rmst,
        restricted_mean_horizon_days=h,
        small_n=n_closed < MIN_CLOSED,
    )
    for d in days:
        row[f"share_closed_by_day_{d}"] = 1.0 - fit.at(d)
    row["note"] = _ttc_note(
        n, n_closed, (median, low, high), h, horizon, fit.max_time, days, unknown
    )
    return row


def _ttc_note(
    n: int,
    n_closed: int,
    median_ci: tuple[float, float, float],
    h: float,
    horizon: float,
    max_time: float,
    days: list[int],
    unknown: int,
) -> str:
    if n == 0:
        return _notes(NO_DEALS, _unknown_note(unknown))
    median, low, high = median_ci
    interval = ""
    if np.isfinite(median) and not np.isfinite(low):
        interval = "too few closed deals for an interval around the median"
    elif np.isfinite(median) and not np.isfinite(high):
        interval = "upper limit of the median's interval lies beyond the follow-up"
    not_reached = ""
    if n_closed == 0:
        not_reached = "no closed deals yet: median not reached; see share_closed_by_day_*"
    elif not np.isfinite(median):
        not_reached = (
            f"fewer than half the deals closed within the follow-up ({max_time:.0f} days): "
            "median not reached; see share_closed_by_day_* and restricted_mean_days"
        )
    return _notes(
        not_reached,
        "too few closed deals to say" if 0 < n_closed < MIN_CLOSED else "",
        interval,
        f"restricted mean up to day {h:.0f}, the longest follow-up" if h < horizon else "",
        f"share closed by day {', '.join(str(d) for d in days if d > max_time)} is past the "
        "longest follow-up"
        if any(d > max_time for d in days) and h < horizon
        else "",
        _unknown_note(unknown),
    )


def _unknown_note(unknown: int) -> str:
    return f"{unknown} closed deal(s) without close_date left out" if unknown else ""


_CURVE_COLUMNS = [
    "day",
    "at_risk",
    "events",
    "survival",
    "ci_low",
    "ci_high",
    "share_closed",
    "share_closed_low",
    "share_closed_high",
]


def time_to_close_curves(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    max_day: float | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Kaplan–Meier curves of time to close, long form for charts (draw as steps, "step-after").

    Returns
    -------
    pandas.DataFrame
        Per group, one row at day 0 (survival 1, unless deals closed on day 0), one per day on
        which deals closed, and one at the longest follow-up: ``day``, ``at_risk``, ``events``,
        ``survival`` (share still open), ``ci_low`` / ``ci_high`` (pointwise log-log),
        ``share_closed`` = 1 − survival with ``share_closed_low`` / ``share_closed_high``.
        ``max_day`` drops rows after that day.
    """
    counts, keys = _duration_counts(
        data, "time to close", by, filters, period, date_field, "is_closed"
    )
    parts = []
    for g, a in _split(counts, keys, "duration_days", "is_closed"):
        durations, events, censored, _ = _event_split(a)
        fit = KMFit.from_counts(durations, events, censored)
        if np.isnan(fit.max_time):
            continue
        c = _with_ends(fit.arrays(confidence), durations, events + censored, fit.max_time)
        c["day"] = c.pop("time")
        c["share_closed"] = 1 - c["survival"]
        c["share_closed_low"] = 1 - c["ci_high"]
        c["share_closed_high"] = 1 - c["ci_low"]
        if max_day is not None:
            keep = c["day"] <= max_day
            c = {k: v[keep] for k, v in c.items()}
        parts.append((g, c))
    return _long(keys, parts, _CURVE_COLUMNS)


def _with_ends(
    c: dict[str, np.ndarray], durations: np.ndarray, n: np.ndarray, max_time: float
) -> dict[str, np.ndarray]:
    """Add the day-0 start and the end of follow-up to a curve at event times."""
    c = dict(c)
    if len(c["time"]) == 0 or c["time"][0] > 0:
        start = {"time": 0.0, "at_risk": n.sum(), "events": 0.0, "survival": 1.0, "se": 0.0,
                 "ci_low": 1.0, "ci_high": 1.0}  # fmt: skip
        c = {k: np.r_[start[k], v] for k, v in c.items()}
    if c["time"][-1] < max_time:
        end = {k: v[-1] for k, v in c.items()}
        end.update(time=max_time, at_risk=n[durations >= max_time].sum(), events=0.0)
        c = {k: np.r_[v, end[k]] for k, v in c.items()}
    return c


# -- time to win (competing risks) ---------------------------------------------------------------


def _status_split(a: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(durations, won, lost, open) counts from one group's arrays."""
    known = ~np.isnan(a["t"])
    n, status = a["n"][known], a["kind"][known]
    return a["t"][known], n * (status == "won"), n * (status == "lost"), n * (status == "open")


def time_to_win(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    by_day: Sequence[float] = BY_DAY,
) -> pd.DataFrame:
    """Share of deals won, and lost, by day X: competing risks (Aalen–Johansen).

    Losing is a competing outcome for winning, so 1 − KM(time to win) would overstate the share
    won; the cumulative incidence does not. Open deals are censored at the as-of date.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``n_won``, ``n_lost``, ``n_open``, ``share_won_by_day_<d>``,
        ``share_lost_by_day_<d>`` (NaN past the longest follow-up) and ``note``.
        :func:`time_to_win_curves` has the curves.
    """
    days = _days(by_day)
    counts, keys = _duration_counts(data, "time to win", by, filters, period, date_field, "status")
    won_cols = _share_columns("share_won_by_day_", days)
    lost_cols = _share_columns("share_lost_by_day_", days)
    columns = [*keys, "n", "n_won", "n_lost", "n_open", *won_cols, *lost_cols, "note"]
    rows = []
    for g, a in _split(counts, keys, "duration_days", "status"):
        durations, won, lost, open_ = _status_split(a)
        cif = cif_arrays(durations, won, lost, open_)
        row = dict(zip(keys, g, strict=True))
        row.update(n=int(won.sum() + lost.sum() + open_.sum()), n_won=int(won.sum()))
        row.update(n_lost=int(lost.sum()), n_open=int(open_.sum()))
        t = cif["time"]
        max_time = float(t[-1]) if len(t) else float("nan")
        ended = len(t) > 0 and cif["share_open"][-1] <= _TOL
        past = []
        for d in days:
            known = len(t) > 0 and (d <= max_time or ended)
            if not known and len(t):
                past.append(str(d))
            row[f"share_won_by_day_{d}"] = step_at(t, cif["share_won"], d) if known else np.nan
            row[f"share_lost_by_day_{d}"] = step_at(t, cif["share_lost"], d) if known else np.nan
        row["note"] = _notes(
            NO_DEALS if row["n"] == 0 else "",
            f"day {', '.join(past)} is past the longest follow-up ({max_time:.0f} days)"
            if past
            else "",
        )
        rows.append(row)
    return _frame(rows, columns, NO_DEALS)


_CIF_CURVE_COLUMNS = ["day", "at_risk", "won", "lost", "share_won", "share_lost", "share_open"]


def time_to_win_curves(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    max_day: float | None = None,
) -> pd.DataFrame:
    """Cumulative incidence of won and of lost deals by day, long form for charts.

    Returns
    -------
    pandas.DataFrame
        Per group, one row per distinct duration (plus day 0): ``day``, ``at_risk``, ``won``,
        ``lost`` (deals won/lost that day), ``share_won``, ``share_lost``, ``share_open``
        (the three add up to 1).
    """
    counts, keys = _duration_counts(data, "time to win", by, filters, period, date_field, "status")
    parts = []
    for g, a in _split(counts, keys, "duration_days", "status"):
        c = cif_arrays(*_status_split(a))
        if len(c["time"]) == 0:
            continue
        if c["time"][0] > 0:
            start = {"time": 0.0, "at_risk": c["at_risk"][0], "share_open": 1.0}
            c = {k: np.r_[start.get(k, 0.0), v] for k, v in c.items()}
        c["day"] = c.pop("time")
        if max_day is not None:
            keep = c["day"] <= max_day
            c = {k: v[keep] for k, v in c.items()}
        parts.append((g, c))
    return _long(keys, parts, _CIF_CURVE_COLUMNS)


# -- stages ------------------------------------------------------------------------------------


def _closed_stage_names(data: SalesData) -> tuple[set[str], set[str]]:
    """Normalised names of stages that close a deal as won / as lost.

    From the mapping's stage map, plus the current stages of opportunities that only ever hold
    won (or only lost) deals. A property of the loaded data: computed once per SalesData.
    """
    return data.derived("closed_stage_names", lambda: _find_closed_stage_names(data))


def _find_closed_stage_names(data: SalesData) -> tuple[set[str], set[str]]:
    omap = data.mapping.tables.get("opportunities")
    stages = omap.stages if omap is not None else {}
    won = {_norm(k) for k, v in stages.items() if v == "won"}
    lost = {_norm(k) for k, v in stages.items() if v == "lost"}
    if data.has("opportunities", "stage"):
        d = deals(data)
        per = (
            d.group_by("stage")
            .aggregate(
                open=(d.status == "open").sum(),
                won=(d.status == "won").sum(),
                lost=(d.status == "lost").sum(),
            )
            .to_pandas()
        )
        for r in per.to_dict("records"):
            if r["open"] == 0 and r["won"] > 0 and r["lost"] == 0:
                won.add(_norm(r["stage"]))
            if r["open"] == 0 and r["lost"] > 0 and r["won"] == 0:
                lost.add(_norm(r["stage"]))
    return won, lost - won


_WON, _LOST = -1, -2  # stage codes of closing stages; open stages are coded by their rank


def _stage_positions(data: SalesData, sh: ibis.Table) -> pd.DataFrame:
    """Median and mean position of each stage in the deals' histories, in funnel order.

    A property of the loaded data (all of stage_history): computed once per SalesData.
    """

    def build() -> pd.DataFrame:
        w = ibis.window(group_by=sh.opportunity_id, order_by=[sh.entered_at])
        h = sh.mutate(_pos=ibis.row_number().over(w))
        pos = h.group_by("stage").aggregate(med=h._pos.median(), mean=h._pos.mean()).to_pandas()
        return pos.dropna(subset=["stage"]).sort_values(["med", "mean", "stage"])

    return data.derived("stage_positions", build)


def _stage_codes(
    data: SalesData, sh: ibis.Table, given: Sequence[str] | None
) -> tuple[list[str], dict[str, int], list[str]]:
    """Open stages in funnel order, a code for every stage name in stage_history, and the open
    stages of the order that occur in the data (``present[code]`` is the stage's name).

    The order is ``given`` first (names matched ignoring case and spacing; closing stages
    dropped), then the other open stages by their median position in the deals' histories
    (ties: mean position, then name). Codes: the rank in that order, ``_WON`` or ``_LOST``.
    Names are classified here, in Python, on the few distinct names the engine returns.
    The last open stage of the order that occurs in the data is the one whose ``next`` is won.
    """
    if isinstance(given, str):
        raise ParameterError(
            f"stage_order={given!r} must be a list of stage names, e.g. "
            "['Prospecting', 'Qualification', 'Proposal', 'Negotiation']."
        )
    won, lost = _closed_stage_names(data)
    names = [str(x) for x in _stage_positions(data, sh)["stage"]]
    closing = {x: _WON if _norm(x) in won else _LOST for x in names if _norm(x) in won | lost}
    inferred = [x for x in names if x not in closing]
    by_norm = {_norm(x): x for x in inferred}
    order = [by_norm.get(_norm(x), str(x)) for x in (given or ()) if _norm(x) not in won | lost]
    seen = {_norm(x) for x in order}
    order += [x for x in inferred if _norm(x) not in seen]
    # "next" skips stages of the order that nobody ever entered
    present = [x for x in order if _norm(x) in {_norm(y) for y in inferred}]
    rank = {_norm(x): i for i, x in enumerate(present)}
    return order, {**closing, **{x: rank[_norm(x)] for x in inferred}}, present


def _stays(
    data: SalesData,
    analysis: str,
    keys: list[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    stage_order: Sequence[str] | None,
    carry: Sequence[str] = (),
) -> tuple[ibis.Table, list[str], str | None]:
    """One row per stay of a selected deal in an open stage (engine expression), the stage
    order, and the last open stage of the order that occurs in the data.

    Columns: ``_stage``, ``_days`` (calendar days from entering this stage to entering the next
    one; for an open deal's current stage, to the as-of date; for a closed deal whose history
    lacks a closing row, to its close date), ``_transition`` (``next``, ``won``, ``lost``,
    ``other``, or ``open`` = still there: censored), the ``keys`` and ``carry`` columns.
    """
    if "stage" in keys:
        raise ParameterError(
            f"{analysis} is already per stage: group by another dimension than 'stage' "
            "(the deal's current stage)."
        )
    sh = data.require(analysis, "stage_history", ("opportunity_id", "stage", "entered_at"))
    order, codes, present = _stage_codes(data, sh, stage_order)
    t = select_deals(data, filters, period, date_field=date_field)
    cols = dict.fromkeys(["opportunity_id", "is_closed", "is_won", *keys, *carry])
    if "closed_date" in t.columns:
        cols["closed_date"] = None
    d = t.select(*cols)
    code = sh.stage.substitute(codes, else_=ibis.null("int64")) if codes else ibis.null("int64")
    h = sh.select(opportunity_id=sh.opportunity_id, _stage=sh.stage, _at=sh.entered_at, _code=code)
    j = h.inner_join(d, "opportunity_id")
    w = ibis.window(group_by=j.opportunity_id, order_by=[j._at])
    j = j.mutate(_next_code=j._code.lead().over(w), _next_at=j._at.lead().over(w))
    has_next = j._next_at.notnull()
    closed_end = j.closed_date if "closed_date" in j.columns else ibis.null("date")
    end = ibis.cases(
        (has_next, j._next_at.date()),
        (~j.is_closed, ibis.literal(data.as_of)),
        else_=closed_end,
    )
    transition = ibis.cases(
        (has_next & (j._next_code == _WON).fill_null(False), "won"),
        (has_next & (j._next_code == _LOST).fill_null(False), "lost"),
        (has_next & (j._next_code == j._code + 1).fill_null(False), "next"),
        (has_next, "other"),
        (~j.is_closed, "open"),
        (j.is_won, "won"),
        else_="lost",
    )
    j = j.filter(j._code >= 0)
    out = j.select(
        *dict.fromkeys([*keys, *carry, "opportunity_id"]),
        _stage=j._code.substitute(dict(enumerate(present)), else_=j._stage),
        _days=end.delta(j._at.date(), unit="day"),
        _transition=transition,
    )
    return out, order, (present[-1] if present else None)


_STAGE_COLUMNS = [
    "stage",
    "stage_rank",
    "entered",
    "moved_to_next",
    "won",
    "lost",
    "moved_other",
    "still_in_stage",
    "conversion_to_next",
    "conversion_to_next_of_exits",
    "median_days_in_stage",
    "median_reached",
    "p90_days_in_stage",
    "mean_days_in_stage",
    "is_bottleneck",
]


def _stay_counts(
    data: SalesData,
    analysis: str,
    by: Sequence[str],
    filters: Mapping[str, Any] | None,
    period: tuple[Any, Any] | None,
    date_field: str,
    stage_order: Sequence[str] | None,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    keys = _keys(data, by)
    stays, order, last = _stays(data, analysis, keys, filters, period, date_field, stage_order)
    counts = aggregate(stays, [*keys, "_stage", "_transition", "_days"], {"n": stays.count()})
    return counts, keys, order, last


def _stay_fit(a: dict[str, np.ndarray]) -> KMFit:
    """Kaplan–Meier of days in stage: leaving is the event, still there is censored."""
    known = ~np.isnan(a["t"])
    n, is_open = a["n"][known], a["kind"][known] == "open"
    return KMFit.from_counts(a["t"][known], n * ~is_open, n * is_open)


def stage_durations(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    stage_order: Sequence[str] | None = None,
    min_entered: int = MIN_CLOSED,
) -> pd.DataFrame:
    """Days in each stage and conversion to the next stage, from stage_history.

    A stay lasts from the day a deal entered a stage to the day it entered the next one
    (calendar days, so a closed deal's stays add up to its cycle days). The current stage of an
    open deal is censored at the as-of date, so durations are Kaplan–Meier estimates. Closing
    stages (Closed Won/Lost, from the mapping's stage map and the opportunities) are end points.

    Parameters
    ----------
    stage_order
        Open stages in funnel order. Default: inferred from the data (median position of each
        stage in the deals' histories). Stages missing from it follow in inferred order.
    min_entered
        A stage needs at least this many stays to be the bottleneck.

    Returns
    -------
    pandas.DataFrame
        One row per group and open stage (in order; ``stage_rank`` from 0): ``entered`` (stays
        begun; a deal that re-enters counts again), ``moved_to_next`` (went to the next stage in
        order; from the last open stage: won), ``won``, ``lost``, ``moved_other`` (skipped or
        went back), ``still_in_stage`` (open deals there now: censored), ``conversion_to_next``
        = moved_to_next / entered, ``conversion_to_next_of_exits`` = moved_to_next / (entered −
        still_in_stage), ``median_days_in_stage`` and ``p90_days_in_stage`` (Kaplan–Meier; NaN
        when not reached), ``median_reached``, ``mean_days_in_stage`` (Kaplan–Meier mean
        restricted to the longest stay), ``is_bottleneck`` (the stage with the largest median
        among stages with ≥ ``min_entered`` stays; a median not reached ranks above every
        reached one; ties go to the larger mean).
    """
    counts, keys, order, last = _stay_counts(
        data, "stage durations", by, filters, period, date_field, stage_order
    )
    per_stage: dict[tuple, dict[str, dict]] = {(): {}} if not keys else {}
    for g, a in _split(counts, [*keys, "_stage"], "_days", "_transition"):
        if len(a["n"]):
            per_stage.setdefault(g[:-1], {})[g[-1]] = a
    rows = []
    for g, stages in per_stage.items():
        group_rows = [
            _stage_row(dict(zip(keys, g, strict=True)), stage, i, stages.get(stage), last)
            for i, stage in enumerate(order)
        ]
        _flag_bottleneck(group_rows, min_entered)
        rows.extend(group_rows)
    out = _frame(rows, [*keys, *_STAGE_COLUMNS], NO_DEALS)
    if counts.empty:
        out.attrs["note"] = NO_DEALS
    return out


def _stage_row(
    row: dict, stage: str, rank: int, a: dict[str, np.ndarray] | None, last: str | None
) -> dict:
    count = {
        k: int(a["n"][a["kind"] == k].sum()) if a is not None else 0
        for k in ("next", "won", "lost", "other", "open")
    }
    entered = sum(count.values())
    moved = count["next"] + (count["won"] if stage == last else 0)
    fit = _stay_fit(a) if a is not None else KMFit.from_counts([], [], [])
    median = fit.quantile(0.5)
    exits = entered - count["open"]
    row.update(
        stage=stage,
        stage_rank=rank,
        entered=entered,
        moved_to_next=moved,
        won=count["won"],
        lost=count["lost"],
        moved_other=count["other"],
        still_in_stage=count["open"],
        conversion_to_next=moved / entered if entered else np.nan,
        conversion_to_next_of_exits=moved / exits if exits else np.nan,
        median_days_in_stage=median,
        median_reached=bool(np.isfinite(median)),
        p90_days_in_stage=fit.quantile(0.9),
        mean_days_in_stage=fit.restricted_mean(np.inf)[0],
        is_bottleneck=False,
    )
    return row


def _flag_bottleneck(rows: list[dict], min_entered: int) -> None:
    eligible = [r for r in rows if r["entered"] >= max(min_entered, 1)]
    if not eligible:
        return

    def key(r: dict) -> tuple[float, float]:
        med = r["median_days_in_stage"] if r["median_reached"] else np.inf
        mean = r["mean_days_in_stage"]
        return (med, mean if np.isfinite(mean) else -np.inf)

    max(eligible, key=key)["is_bottleneck"] = True


# -- stuck deals --------------------------------------------------------------------------------

_STUCK_SORTS = ("amount", "days_over", "days_in_stage")


def _threshold_prob(threshold: Any) -> float | None:
    """The quantile asked for ("p90" → 0.9, "median" → 0.5), or None for a number of days."""
    if isinstance(threshold, bool):
        raise ParameterError(f"threshold={threshold!r} must be 'p90'-like or a number of days.")
    if isinstance(threshold, (int, float)):
        if threshold < 0:
            raise ParameterError(f"threshold={threshold!r} days must be ≥ 0.")
        return None
    text = str(threshold).strip().lower()
    if text == "median":
        return 0.5
    m = re.fullmatch(r"p(\d{1,2}(\.\d+)?)", text)
    if not m or not 0 < float(m.group(1)) < 100:
        raise ParameterError(
            f"threshold={threshold!r} must be a quantile of the stage's history such as 'p90', "
            "'p75' or 'median', or a number of days such as 60."
        )
    return float(m.group(1)) / 100


def stuck_deals(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    threshold: str | float = "p90",
    stage_order: Sequence[str] | None = None,
    top_n: int | None = 100,
    sort: str = "amount",
    only_stuck: bool = True,
) -> pd.DataFrame:
    """Open deals that have been in their current stage longer than that stage usually takes.

    Parameters
    ----------
    threshold
        ``"pNN"`` / ``"median"``: the Kaplan–Meier quantile of the time spent in that stage by
        the selected deals of the same group (``by``), open stays censored; or a number of
        days for every stage. A stage whose quantile is not reached flags nothing.
    top_n
        At most this many rows (None: all).
    sort
        ``"amount"`` (largest first), ``"days_over"`` (days_in_stage / threshold_days) or
        ``"days_in_stage"``.
    only_stuck
        False: every open deal in an open stage, with ``stuck`` telling which are over the
        threshold (the aging table).

    Returns
    -------
    pandas.DataFrame
        ``opportunity_id``, ``owner`` (rep name, else owner_id), the ``by`` columns, ``stage``,
        ``days_in_stage``, ``threshold_days``, ``stuck``, ``amount``, ``age_days``,
        ``close_date_pushes`` (NaN when stage_history has no close_date).
    """
    prob = _threshold_prob(threshold)
    if sort not in _STUCK_SORTS:
        raise ParameterError(f"sort={sort!r} must be one of {', '.join(_STUCK_SORTS)}.")
    if top_n is not None and top_n < 1:
        raise ParameterError(f"top_n={top_n!r} must be ≥ 1, or None for every row.")
    keys = _keys(data, by)
    owner = "owner" if "owner" in deals(data).columns else None
    carry = [c for c in ("owner", "owner_id", "amount", "age_days") if c in deals(data).columns]
    stays, _, _ = _stays(data, "stuck deals", keys, filters, period, date_field, stage_order, carry)
    keys_out = [k for k in keys if k != "owner"]
    columns = [
        *["opportunity_id", "owner", *keys_out, "stage", "days_in_stage", "threshold_days"],
        *["stuck", "amount", "age_days", "close_date_pushes"],
    ]
    cur = stays.filter(stays._transition == "open")
    if prob is None:
        cur = cur.mutate(_threshold=ibis.literal(float(threshold)))
    else:
        thresholds = _stage_thresholds(stays, keys, prob)
        if thresholds.empty:
            return _frame([], columns, "no stage has a threshold: no history to derive it from")
        cur = cur.inner_join(ibis.memtable(thresholds), [*keys, "_stage"])
    cur = cur.mutate(_stuck=cur._days > cur._threshold)
    if only_stuck:
        cur = cur.filter(cur._stuck)
    if data.has("stage_history", "close_date"):
        pushes = _pushes_per_deal(data.stage_history).rename(_pid="opportunity_id")
        cur = cur.left_join(pushes, cur.opportunity_id == pushes._pid).drop("_pid")
        n_push = cur.close_date_pushes
    else:
        n_push = ibis.null("int64")
    owner_col = cur[owner] if owner else cur["owner_id"] if "owner_id" in carry else None
    out = cur.select(
        "opportunity_id",
        *keys_out,
        owner=owner_col if owner_col is not None else ibis.null("string"),
        stage=cur._stage,
        days_in_stage=cur._days,
        threshold_days=cur._threshold,
        stuck=cur._stuck,
        amount=cur.amount,
        age_days=cur.age_days if "age_days" in carry else ibis.null("int64"),
        close_date_pushes=n_push,
    )
    sort_key = {
        "amount": [ibis.desc("amount"), ibis.desc("days_in_stage")],
        "days_over": [
            ibis.desc(out.days_in_stage / ibis.greatest(out.threshold_days, 1)),
            ibis.desc("amount"),
        ],
        "days_in_stage": [ibis.desc("days_in_stage"), ibis.desc("amount")],
    }[sort]
    out = out.order_by([*sort_key, "opportunity_id"])
    if top_n is not None:
        out = out.limit(top_n)
    df = out.to_pandas()[columns]
    if df.empty:
        df.attrs["note"] = "no open deal is over its stage's threshold"
    return df


def _stage_thresholds(stays: ibis.Table, keys: list[str], prob: float) -> pd.DataFrame:
    """Per (group, stage): the Kaplan–Meier quantile ``prob`` of days in stage."""
    counts = aggregate(stays, [*keys, "_stage", "_transition", "_days"], {"n": stays.count()})
    rows = []
    for g, a in _split(counts, [*keys, "_stage"], "_days", "_transition"):
        if not len(a["n"]):
            continue
        q = _stay_fit(a).quantile(prob)
        if np.isfinite(q):
            rows.append({**dict(zip([*keys, "_stage"], g, strict=True)), "_threshold": q})
    return pd.DataFrame(rows, columns=[*keys, "_stage", "_threshold"])


# -- close-date pushes -------------------------------------------------------------------------


def _pushes_per_deal(sh: ibis.Table) -> ibis.Table:
    """Per opportunity: how many times, and by how many days in all, the expected close date
    moved later from one stage_history row to the next (rows in entered_at order)."""
    w = ibis.window(group_by=sh.opportunity_id, order_by=[sh.entered_at])
    moved = sh.close_date.delta(sh.close_date.lag().over(w), unit="day")
    h = sh.select("opportunity_id", _moved=moved)
    later = (h._moved > 0).fill_null(False)
    return h.group_by("opportunity_id").aggregate(
        close_date_pushes=later.cast("int64").sum(),
        days_pushed=ibis.ifelse(later, h._moved, 0).sum(),
    )


def close_date_pushes(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    statuses: Sequence[str] = STATUSES,
) -> pd.DataFrame:
    """How often deals' expected close date slips: share of deals pushed and pushes per deal.

    A push is a stage_history row whose ``close_date`` is later than the previous row's (rows of
    a deal in ``entered_at`` order; a missing close_date on either row is not a push).

    Parameters
    ----------
    statuses
        Deal statuses counted (``open``, ``won``, ``lost``).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``deals`` (selected deals with stage history), ``deals_pushed``,
        ``share_pushed`` with its Wilson 95% interval ``share_pushed_low`` /
        ``share_pushed_high``, ``mean_pushes`` (pushes per deal), ``mean_days_pushed``
        (days the close date moved later, per deal) and ``note``.
    """
    keys = _keys(data, by)
    bad = [s for s in statuses if s not in STATUSES]
    if bad or isinstance(statuses, str):
        raise ParameterError(
            f"statuses={statuses!r} must be a list drawn from {', '.join(STATUSES)}."
        )
    sh = data.require(
        "close-date pushes", "stage_history", ("opportunity_id", "entered_at", "close_date")
    )
    t = select_deals(data, filters, period, date_field=date_field)
    t = t.filter(t.status.isin(list(statuses)))
    j = t.select("opportunity_id", *keys).inner_join(_pushes_per_deal(sh), "opportunity_id")
    agg = aggregate(
        j,
        keys,
        {
            "deals": j.count(),
            "deals_pushed": (j.close_date_pushes > 0).cast("int64").sum(),
            "pushes": j.close_date_pushes.sum(),
            "days_pushed": j.days_pushed.sum(),
        },
    )
    agg = agg[agg["deals"] > 0] if keys else agg
    columns = [
        *[*keys, "deals", "deals_pushed", "share_pushed", "share_pushed_low", "share_pushed_high"],
        *["mean_pushes", "mean_days_pushed", "note"],
    ]
    deals_n = agg["deals"].astype(float)
    pushed = agg["deals_pushed"].fillna(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        agg["share_pushed"] = np.where(deals_n > 0, pushed / deals_n, np.nan)
        agg["mean_pushes"] = np.where(deals_n > 0, agg["pushes"].astype(float) / deals_n, np.nan)
        agg["mean_days_pushed"] = np.where(
            deals_n > 0, agg["days_pushed"].astype(float) / deals_n, np.nan
        )
    agg["share_pushed_low"], agg["share_pushed_high"] = wilson_interval(pushed, deals_n)
    agg["deals"] = deals_n.astype(int)
    agg["deals_pushed"] = pushed.astype(int)
    agg["note"] = np.where(deals_n > 0, "", "no selected deal has stage history")
    out = agg[columns].sort_values(keys).reset_index(drop=True) if keys else agg[columns]
    if out.empty:
        out.attrs["note"] = NO_DEALS
    return out
