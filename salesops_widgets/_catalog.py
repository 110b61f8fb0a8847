"""The KPI display catalogue: how each KPI is named, formatted and read, in one place.

KPI cards, tables, charts, the dashboards and ``salesops kpis`` take a KPI's name, format and
direction, and whether "too few to say" applies, from its entry in ``CATALOGUE``; the numbers
come from ``salesops_widgets.metrics``. A view may choose which KPIs it shows, never rename them.

A leaf module: it imports nothing of the package but the exception family, so the command line
prints a KPI table without importing ipywidgets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError

__all__ = ["CATALOGUE", "KPI", "TOO_FEW", "check_kpis", "table_formats", "too_few_columns"]

# What a rate over fewer closed deals than metrics.MIN_CLOSED reads, wherever it is shown.
TOO_FEW = "too few to say"
KINDS = ("money", "percent", "days", "count", "ratio", "number")
BETTER = ("higher", "lower", "neutral")


@dataclass(frozen=True)
class KPI:
    """How one KPI column (of ``metrics.segment_kpis``, ``metrics.time_to_close``) is shown.

    Attributes
    ----------
    column
        The column that holds the value.
    label
        Its name on cards, controls and table headers: "Average selling price".
    kind
        Its format kind, which carries its unit: money (in the data's currency), percent (of
        1), days, count (of deals), ratio or number.
    better
        Whether a higher value is good ("higher"), a lower one ("lower"), or neither
        ("neutral"): the color of a change.
    low, high
        The columns of its 95% interval, when it has one.
    small_n
        True when it rests on closed deals (a rate or an average of them): on a row with too
        few closed deals (the row's ``small_n``) it reads "too few to say", not a number.
    title
        Its name where it heads a chart or a table row on its own, with what it counts:
        "ASP (average won deal)". Default: ``label``.
    short
        Its name in a narrow column or a phrase (the terminal table, "Tier reps on ..."):
        "ASP". Default: ``label`` in lower case.
    """

    column: str
    label: str
    kind: str
    better: str = "higher"
    low: str | None = None
    high: str | None = None
    small_n: bool = False
    title: str = ""
    short: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.better not in BETTER:
            raise ParameterError(
                f"KPI {self.column!r}: kind must be one of {', '.join(KINDS)} and better one of "
                f"{', '.join(BETTER)} (got {self.kind!r}, {self.better!r})."
            )
        object.__setattr__(self, "title", self.title or self.label)
        object.__setattr__(self, "short", self.short or self.label.lower())

    def card(self, *, titled: bool = False) -> dict[str, Any]:
        """This KPI as a card spec of ``widgets.cards_from_kpis`` (named by its ``title`` when
        ``titled``)."""
        spec = {
            "column": self.column,
            "label": self.title if titled else self.label,
            "kind": self.kind,
            "better": self.better,
            "small_n": self.small_n,
        }
        return spec | ({"low": self.low, "high": self.high} if self.low else {})


CATALOGUE: dict[str, KPI] = {
    k.column: k
    for k in (
        KPI("opportunities", "Opportunities", "count", "neutral", short="deals"),
        KPI("open", "Open deals", "count", "neutral", short="open"),
        KPI("won", "Won deals", "count", "neutral", short="won"),
        KPI("lost", "Lost deals", "count", "neutral", short="lost"),
        KPI(
            "win_rate",
            "Win rate",
            "percent",
            low="win_rate_low",
            high="win_rate_high",
            small_n=True,
        ),
        KPI(
            "asp",
            "Average selling price",
            "money",
            small_n=True,
            title="ASP (average won deal)",
            short="ASP",
        ),
        KPI("bookings", "Bookings", "money", title="Bookings (won amount)"),
        KPI(
            "median_cycle_days_won",
            "Median days to win",
            "days",
            "lower",
            small_n=True,
            short="won cycle (median d)",
        ),
        KPI(
            "km_median_days_to_close",
            "Median days to close",
            "days",
            "lower",
            low="km_median_low",
            high="km_median_high",
            title="Median days to close (open deals counted)",
            short="time to close (KM median d)",
        ),
        KPI(
            "naive_median_days_closed_only",
            "Median of closed deals only",
            "days",
            "lower",
            title="Median of closed deals only (biased low)",
        ),
        KPI(
            "portfolio_discount",
            "Discount (dollar-weighted)",
            "percent",
            "lower",
            title="Discount on won deals (dollar-weighted)",
            short="discount (won)",
        ),
        KPI("velocity", "Sales velocity per day", "money", small_n=True, short="velocity /day"),
        KPI("open_pipeline", "Open pipeline", "money"),
        KPI("value_win_rate", "Value win rate", "percent", small_n=True),
    )
}


def _entries(columns: Iterable[str]) -> list[KPI]:
    return [CATALOGUE[c] for c in columns if c in CATALOGUE]


def table_formats(columns: Iterable[str]) -> dict[str, str]:
    """Column -> format kind of the KPI columns among ``columns`` and of their intervals (the
    ``formats`` of a ``widgets.DataTable``)."""
    out: dict[str, str] = {}
    for kpi in _entries(columns):
        out |= dict.fromkeys([kpi.column, *([kpi.low, kpi.high] if kpi.low else [])], kpi.kind)
    return out


def too_few_columns(columns: Iterable[str]) -> list[str]:
    """The KPI columns among ``columns`` that read "too few to say" on a small-n row."""
    return [kpi.column for kpi in _entries(columns) if kpi.small_n]


def check_kpis(names: object, parameter: str, allowed: Sequence[str]) -> list[str]:
    """The KPI names, validated against ``allowed``; a ParameterError that lists the choices
    otherwise.

    Examples
    --------
    >>> check_kpis("asp", "rank_kpi", ("win_rate", "asp"))
    ['asp']
    """
    names = [names] if isinstance(names, str) else list(names or [])
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ParameterError(
            f"{parameter}={names!r}: choose from {', '.join(allowed)} "
            f"({'unknown: ' + ', '.join(map(str, bad)) if bad else 'none given'})."
        )
    return names
