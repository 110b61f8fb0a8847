"""Stages: days in each stage and conversion to the next (Kaplan–Meier on stage stays), stuck
open deals, and how often expected close dates slip.

A stay lasts from the day a deal entered a stage to the day it entered the next one; the stay of
an open deal in its current stage is censored at the as-of date. Built from stage_history
joined to the selected deals in the engine; only counts per (group, stage, transition, days)
come back. Formulas: docs/metrics.md, "Cycle".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData, norm_label
from ..data._schema import STATUSES
from ..errors import ParameterError
from ._deals import check_dimensions, deals, select_deals
from ._groups import NO_DEALS, frame, split_counts
from ._measures import aggregate
from ._stats import MIN_CLOSED, wilson_interval
from ._survival import KMFit

__all__ = ["close_date_pushes", "stage_durations", "stuck_deals"]


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
    won = {norm_label(k) for k, v in stages.items() if v == "won"}
    lost = {norm_label(k) for k, v in stages.items() if v == "lost"}
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
                won.add(norm_label(r["stage"]))
            if r["open"] == 0 and r["lost"] > 0 and r["won"] == 0:
                lost.add(norm_label(r["stage"]))
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
    closing = {
        x: _WON if norm_label(x) in won else _LOST for x in names if norm_label(x) in won | lost
    }
    inferred = [x for x in names if x not in closing]
    by_norm = {norm_label(x): x for x in inferred}
    order = [
        by_norm.get(norm_label(x), str(x)) for x in (given or ()) if norm_label(x) not in won | lost
    ]
    seen = {norm_label(x) for x in order}
    order += [x for x in inferred if norm_label(x) not in seen]
    # "next" skips stages of the order that nobody ever entered
    present = [x for x in order if norm_label(x) in {norm_label(y) for y in inferred}]
    rank = {norm_label(x): i for i, x in enumerate(present)}
    return order, {**closing, **{x: rank[norm_label(x)] for x in inferred}}, present


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
    keys = check_dimensions(data, by)
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
    for g, a in split_counts(counts, [*keys, "_stage"], "_days", "_transition"):
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
    out = frame(rows, [*keys, *_STAGE_COLUMNS], NO_DEALS)
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
    keys = check_dimensions(data, by)
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
            return frame([], columns, "no stage has a threshold: no history to derive it from")
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
    for g, a in split_counts(counts, [*keys, "_stage"], "_days", "_transition"):
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
        close_date_pushes=later.sum(),
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
    keys = check_dimensions(data, by)
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
            "deals_pushed": (j.close_date_pushes > 0).sum(),
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
