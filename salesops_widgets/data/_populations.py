"""Which deals each KPI counts (its population), and why every other used deal is left out.

CRM conventions are not bad data: open deals often have no amount and no close date, early ones
no created date, and lost deals often carry $0. Such a deal is kept (it counts in the win rate,
and as censored in the time to close when it is open) and left out only of the KPIs that need
the missing field. This module is the one definition of those populations:

- the deal predicates every KPI builds on (:func:`outcomes`, :func:`priced`);
- :data:`POPULATIONS`, per KPI: what it counts and, in order, why a used deal is left out of
  it. A deal is left out for the first reason that holds, so for every KPI the deals it counts
  plus the deals left out, reason by reason, are the rows used;
- :func:`population_counts`, those counts in one engine query, and :func:`starved_warnings`,
  the sentences that say when a view cannot be computed at all.

The metrics layer (``metrics._deals``) uses the same predicates; docs/metrics.md documents each
population, and the quality report lists the counts (``QualityReport.populations_frame``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import ibis

__all__ = [
    "POPULATIONS",
    "Population",
    "ViewWarning",
    "outcomes",
    "population_of",
    "population_counts",
    "priced",
    "starved_warnings",
]


def outcomes(t: Any) -> dict[str, Any]:
    """The deal predicates ``open``, ``won``, ``lost`` (closed and not won) and ``closed``.

    The one definition; docs/metrics.md ("Pipeline"). ``t`` is an Ibis table, or a pandas frame
    with nullable-boolean ``is_closed`` and ``is_won`` (the same three-valued logic as SQL).
    """
    return {
        "open": ~t.is_closed,
        "won": t.is_won,
        "lost": t.is_closed & ~t.is_won,
        "closed": t.is_closed,
    }


def priced(t: Any) -> Any:
    """Deals with both a list price and a net amount above 0: those a discount exists for.

    The one definition; docs/metrics.md ("Pricing"). A lost deal at $0 (a CRM convention) is
    not priced: it was never discounted to nothing. ``t`` is an Ibis table or a pandas frame.
    """
    return (t.list_amount > 0) & (t.amount > 0)


class Reason(NamedTuple):
    """Why a deal is left out of a KPI: the words shown, the columns read, the predicate, and
    whether it is the deal's status (not a gap in the data)."""

    words: str
    columns: tuple[str, ...]
    holds: Callable[[Any], Any]
    status: bool = False


def _status(name: str, words: str) -> Reason:
    """Left out for not being of the status ``name``."""
    return Reason(words, (), lambda t: ~outcomes(t)[name], status=True)


def _blank(column: str, words: str) -> Reason:
    return Reason(words, (column,), lambda t: t[column].isnull())


_NO_CREATED = _blank("created_date", "no created date")
_CLOSED_NO_CLOSE = Reason(
    "closed without a close date", ("close_date",), lambda t: t.is_closed & t.close_date.isnull()
)
_CLOSED_BEFORE = Reason(
    "closed before its created date",
    ("close_date",),
    lambda t: t.is_closed & (t.close_date < t.created_date),
)


@dataclass(frozen=True)
class Population:
    """The deals one KPI (or a few KPIs computed from the same deals) counts.

    ``reasons`` are checked in order; a used deal is left out for the first that holds.
    ``starved`` maps a status ("open", "won", "lost", or "any" for all deals) to the sentence
    shown when the data has ``n`` deals of that status and the KPI counts none of them.
    """

    name: str  # e.g. "win rate"
    kpis: tuple[str, ...]  # the KPI columns it covers (metrics.segment_kpis names)
    counts: str  # what it counts, in words
    reasons: tuple[Reason, ...]
    starved: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        """The opportunity columns its reasons read."""
        return tuple(dict.fromkeys(c for r in self.reasons for c in r.columns))


def _no_list(status: str) -> Reason:
    return Reason(
        f"{status} without a list price",
        ("list_amount",),
        lambda t: ~(t.list_amount > 0).fill_null(False),
    )


def _no_net(status: str, note: str = "") -> Reason:
    words = f"{status} with no amount, or $0{note}"
    return Reason(words, ("amount",), lambda t: ~(t.amount > 0).fill_null(False))


def _none_has(what: str, view: str) -> str:
    return f"none of the {{n:,}} {{status}} deals has {what}: {view} cannot be computed"


POPULATIONS: tuple[Population, ...] = (
    Population(
        "win rate",
        ("win_rate", "closed"),
        "won and lost deals",
        (_status("closed", "open: not won or lost yet"),),
    ),
    Population(
        "bookings and ASP",
        ("bookings", "asp"),
        "won deals with an amount",
        (_status("won", "not won"), _blank("amount", "won without an amount")),
        starved={
            "won": "all {n:,} {status} deals have no amount: bookings and ASP cannot be computed"
        },
    ),
    Population(
        "value win rate",
        ("value_win_rate",),
        "won and lost deals with an amount above 0",
        (_status("closed", "open"), _no_net("closed", " (lost deals often are)")),
        starved={
            "won": _none_has("an amount above 0", "value win rate"),
            "lost": _none_has("an amount above 0 (lost deals often carry $0)", "value win rate"),
        },
    ),
    Population(
        "open pipeline and velocity",
        ("open_pipeline", "velocity"),
        "open deals with an amount",
        (_status("open", "closed"), _blank("amount", "open without an amount")),
        starved={
            "open": "all {n:,} {status} deals have no amount: open pipeline and velocity cannot be "
            "computed"
        },
    ),
    Population(
        "weighted pipeline",
        ("weighted_pipeline",),
        "open deals with an amount and a probability",
        (
            _status("open", "closed"),
            _blank("amount", "open without an amount"),
            _blank("probability", "open without a probability"),
        ),
        starved={"open": _none_has("both an amount and a probability", "weighted pipeline")},
    ),
    Population(
        "portfolio discount",
        ("portfolio_discount",),
        "won deals with a list price and an amount above 0",
        (
            _status("won", "not won (the discount is that of the price realized)"),
            _no_list("won"),
            _no_net("won"),
        ),
        starved={"won": _none_has("both a list price and an amount above 0", "portfolio discount")},
    ),
    Population(
        "win rate by discount band",
        ("discount_bands",),
        "won and lost deals with a list price and an amount above 0",
        (
            _status("closed", "open"),
            _no_list("closed"),
            _no_net("closed", " (lost deals often are)"),
        ),
        starved={
            s: _none_has("both a list price and an amount above 0", "win rate by discount band")
            for s in ("won", "lost")
        },
    ),
    Population(
        "time to close",
        ("km_median_days_to_close",),
        "deals with a created date (open deals censored at the as-of date); closed ones with "
        "a close date on or after it",
        (_NO_CREATED, _CLOSED_NO_CLOSE, _CLOSED_BEFORE),
        starved={
            "open": "all {n:,} {status} deals have no created date: time to close cannot count "
            "them (as censored), so it is biased low",
            "any": "none of the {n:,} deals has a created date (and, when closed, a close date "
            "on or after it): time to close cannot be computed",
        },
    ),
    Population(
        "days to win",
        ("median_cycle_days_won",),
        "won deals with a created date and a close date on or after it",
        (_status("won", "not won"), _NO_CREATED, _CLOSED_NO_CLOSE, _CLOSED_BEFORE),
        starved={"won": _none_has("a created date and a close date on or after it", "days to win")},
    ),
)


def population_of(kpi: str) -> str | None:
    """What a KPI column counts, in words ("won deals with an amount"), to show beside its
    number; None for a plain count of deals.

    Examples
    --------
    >>> population_of("asp")
    'won deals with an amount'
    """
    for p in POPULATIONS:
        if kpi in p.kpis:
            return p.counts
    return None


def _one(sentence: str, n: int) -> str:
    """``sentence`` about ``n`` deals, in the singular when there is one ("the only won deal
    has no amount", not "all 1 won deals have no amount")."""
    if n != 1:
        return sentence
    for many, one in (
        ("all {n:,} {status} deals have", "the only {status} deal has"),
        ("none of the {n:,} {status} deals has", "the only {status} deal does not have"),
        ("none of the {n:,} deals has", "the only deal does not have"),
        (" deals have ", " deal has "),
    ):
        sentence = sentence.replace(many, one)
    return sentence


def _reason_cases(t: ibis.Table, population: Population) -> ibis.Value:
    """The index of the first reason that holds for each deal (NULL: the KPI counts it)."""
    cases = [(r.holds(t).fill_null(False), i) for i, r in enumerate(population.reasons)]
    return ibis.cases(*cases, else_=ibis.null("int64"))


STATUSES = ("open", "won", "lost")


def population_counts(t: ibis.Table) -> list[dict[str, Any]]:
    """Per population of :data:`POPULATIONS`, over the used opportunities ``t`` (one engine
    query): ``rows_in`` (deals counted), ``in_by_status`` (of them, per status) and
    ``left_out`` (reason -> deals, in the reasons' order, reasons that left none out dropped).

    A population whose reasons read a column ``t`` does not have counts no deal: every one is
    left out as "no <column> column in the data".
    """
    present = [p for p in POPULATIONS if set(p.columns) <= set(t.columns)]
    sums: dict[str, Any] = {"_n": t.count()}
    for i, p in enumerate(present):
        which = _reason_cases(t, p)
        for s in STATUSES:
            sums[f"p{i}_{s}"] = (which.isnull() & (t.status == s)).fill_null(False).sum()
        for j in range(len(p.reasons)):
            sums[f"p{i}_r{j}"] = (which == j).fill_null(False).sum()
    row = t.aggregate(**sums).execute().iloc[0]
    n = int(row["_n"])
    out = []
    for p in POPULATIONS:
        missing = [c for c in p.columns if c not in t.columns]
        if missing:
            left = {f"no {missing[0]} column in the data": n}
            out.append({"population": p, "rows_in": 0, "in_by_status": {}, "left_out": left})
            continue
        i = present.index(p)
        by_status = {s: int(row[f"p{i}_{s}"] or 0) for s in STATUSES}
        left = {r.words: int(row[f"p{i}_r{j}"] or 0) for j, r in enumerate(p.reasons)}
        left = {k: v for k, v in left.items() if v}
        found = {"population": p, "rows_in": sum(by_status.values()), "in_by_status": by_status}
        out.append({**found, "left_out": left})
    return out


@dataclass(frozen=True)
class ViewWarning:
    """A view that cannot be computed (or only in part) on this data, and why, in words."""

    kpis: tuple[str, ...]  # the KPI columns affected
    message: str


def starved_warnings(status: dict[str, int], counts: list[dict[str, Any]]) -> list[ViewWarning]:
    """The views that count no deal of a status although the data has deals of it.

    ``status``: used deals by status ("open", "won", "lost"); ``counts``:
    :func:`population_counts`. E.g. "all 2,089 open deals have no amount: open pipeline and
    velocity cannot be computed".
    """
    out: list[ViewWarning] = []
    if not status.get("won", 0) + status.get("lost", 0):
        out.append(ViewWarning(("win_rate",), "no won or lost deals: win rate cannot be computed"))
    if not status.get("open", 0):
        out.append(
            ViewWarning(
                ("km_median_days_to_close", "open_pipeline", "velocity"),
                "no open deals: time to close cannot be censored (it equals the median of the "
                "closed deals), and there is no open pipeline",
            )
        )
    for found in counts:
        p = found["population"]
        for which, sentence in p.starved.items():
            n = sum(status.values()) if which == "any" else status.get(which, 0)
            counted = found["rows_in"] if which == "any" else found["in_by_status"].get(which, 0)
            if n and not counted:
                missing = [k for k in found["left_out"] if k.endswith(" column in the data")]
                if missing:
                    message = f"{missing[0]}: {p.name} cannot be computed"
                else:
                    message = _one(sentence, n).format(n=n, status=which)
                out.append(ViewWarning(p.kpis, message))
                break
    return out
