"""The KPI layer: one definition per metric (documented in docs/metrics.md).

Every function takes a SalesData plus keyword-only options (``by``, ``filters``, ``period``,
``date_field``), runs its aggregation in the engine, and returns a new pandas DataFrame whose
columns are named as in docs/metrics.md.
"""

from ._codes import NOT_SET
from ._cycle import cycle_histogram, cycle_quantiles, cycle_stats, cycle_summary, open_deal_aging
from ._deals import DIMENSIONS, available_dimensions, deals, select_deals
from ._detail import DEAL_LIST_COLUMNS, deal_list
from ._drivers import (
    asp_bridge,
    bookings_bridge,
    bookings_contributions,
    discount_contributions,
    drill_path,
)
from ._flow import FLOW_MOVEMENTS, pipeline_flow
from ._goals import GOAL_KPIS, Goal, Milestone, parse_goals, read_goals
from ._pipeline import pipeline_kpis
from ._price_views import (
    DEAL_SIZE_EDGES,
    discount_band_tests,
    discount_cell_deals,
    discount_outliers,
    discount_vs_size,
    lost_on_price,
    pricing_guidance,
    realization_over_time,
)
from ._pricing import (
    DISCOUNT_BANDS,
    deal_discounts,
    discount_bands,
    leakage,
    pocket_price_band,
    pocket_price_spread,
    price_corridor,
    price_waterfall,
)
from ._ranking import RANKING_KPIS, segments_vs_overall
from ._segments import SEGMENT_COLUMNS, segment_kpis, velocity
from ._significance import (
    Significance,
    chi_square_test,
    kruskal_from_counts,
    logrank_from_counts,
    mann_whitney_from_counts,
    two_proportion_test,
)
from ._stages import close_date_pushes, stage_durations, stuck_deals
from ._stats import MIN_CLOSED, wilson_interval
from ._strata import StrataComparison, compare_strata, mix_adjusted, stratify, tier_migration
from ._time_to_close import time_to_close, time_to_close_curves, time_to_win, time_to_win_curves
from ._tracking import (
    FREQS,
    STATUSES,
    expected_value,
    history_rows,
    judge,
    measure_kpi,
    track_goals,
)
from ._whatif import discount_cap_what_if, velocity_levers, velocity_what_if

__all__ = [
    "cycle_histogram",
    "cycle_quantiles",
    "open_deal_aging",
    "discount_band_tests",
    "discount_cell_deals",
    "DEAL_SIZE_EDGES",
    "discount_outliers",
    "discount_vs_size",
    "lost_on_price",
    "pricing_guidance",
    "realization_over_time",
    "discount_cap_what_if",
    "velocity_levers",
    "velocity_what_if",
    "FLOW_MOVEMENTS",
    "pipeline_flow",
    "RANKING_KPIS",
    "segments_vs_overall",
    "DEAL_LIST_COLUMNS",
    "deal_list",
    "SEGMENT_COLUMNS",
    "close_date_pushes",
    "cycle_stats",
    "cycle_summary",
    "segment_kpis",
    "stage_durations",
    "stuck_deals",
    "time_to_close",
    "time_to_close_curves",
    "time_to_win",
    "time_to_win_curves",
    "velocity",
    "DIMENSIONS",
    "Significance",
    "StrataComparison",
    "asp_bridge",
    "bookings_bridge",
    "bookings_contributions",
    "discount_contributions",
    "drill_path",
    "GOAL_KPIS",
    "Goal",
    "Milestone",
    "parse_goals",
    "read_goals",
    "STATUSES",
    "FREQS",
    "expected_value",
    "history_rows",
    "judge",
    "measure_kpi",
    "track_goals",
    "chi_square_test",
    "compare_strata",
    "kruskal_from_counts",
    "logrank_from_counts",
    "mann_whitney_from_counts",
    "mix_adjusted",
    "stratify",
    "tier_migration",
    "two_proportion_test",
    "DISCOUNT_BANDS",
    "MIN_CLOSED",
    "NOT_SET",
    "available_dimensions",
    "deal_discounts",
    "deals",
    "discount_bands",
    "leakage",
    "pipeline_kpis",
    "pocket_price_band",
    "pocket_price_spread",
    "price_corridor",
    "price_waterfall",
    "select_deals",
    "wilson_interval",
]
