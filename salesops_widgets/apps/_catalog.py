"""How each KPI of the segment table is shown: label, display kind, interval columns, and
which direction is good. The numbers themselves come from salesops_widgets.metrics."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParameterError

__all__ = ["KPI", "KPIS", "check_kpis"]


@dataclass(frozen=True)
class KPI:
    """Display facts of one KPI column of ``metrics.segment_kpis``."""

    column: str
    label: str
    kind: str
    better: str = "higher"
    low: str | None = None
    high: str | None = None
    rate: bool = False  # rests on closed deals: "too few to say" when small_n


KPIS: dict[str, KPI] = {
    k.column: k
    for k in (
        KPI("win_rate", "Win rate", "percent", low="win_rate_low", high="win_rate_high", rate=True),
        KPI("asp", "ASP (average won deal)", "money", rate=True),
        KPI("bookings", "Bookings (won amount)", "money"),
        KPI("median_cycle_days_won", "Median days to win", "days", better="lower", rate=True),
        KPI(
            "km_median_days_to_close",
            "Median days to close (open deals censored)",
            "days",
            better="lower",
            low="km_median_low",
            high="km_median_high",
        ),
        KPI("portfolio_discount", "Discount (dollar-weighted)", "percent", better="lower"),
        KPI("velocity", "Sales velocity (per day)", "money", rate=True),
        KPI("opportunities", "Opportunities", "count", better="neutral"),
        KPI("open_pipeline", "Open pipeline", "money"),
        KPI("value_win_rate", "Value win rate", "percent", rate=True),
    )
}

# the ones segments_vs_overall can test
RANKABLE = ("win_rate", "asp", "median_cycle_days_won", "portfolio_discount")


def check_kpis(names: object, parameter: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """The KPI names, validated; a ParameterError that lists the choices otherwise."""
    allowed = allowed or tuple(KPIS)
    names = [names] if isinstance(names, str) else list(names or [])
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ParameterError(
            f"{parameter}={names!r}: choose from {', '.join(allowed)} "
            f"({'unknown: ' + ', '.join(map(str, bad)) if bad else 'none given'})."
        )
    return names
