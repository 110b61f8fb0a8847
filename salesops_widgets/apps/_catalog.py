"""Which KPIs the dashboards offer: the KPIs a segment chart can show and the ones segments are
ranked on. How each is named and formatted is the one catalogue's (``salesops_widgets._catalog``);
the numbers come from salesops_widgets.metrics."""

from __future__ import annotations

from .. import metrics
from .._catalog import CATALOGUE, KPI, check_kpis

__all__ = ["KPI", "KPIS", "RANKABLE", "check_kpis"]

# the KPI columns of metrics.segment_kpis that a segment chart or the heatmap can show
KPIS: dict[str, KPI] = {
    c: CATALOGUE[c]
    for c in (
        "win_rate",
        "asp",
        "bookings",
        "median_cycle_days_won",
        "km_median_days_to_close",
        "portfolio_discount",
        "velocity",
        "opportunities",
        "open_pipeline",
        "value_win_rate",
    )
}
RANKABLE = tuple(metrics.RANKING_KPIS)  # the ones segments_vs_overall can test
