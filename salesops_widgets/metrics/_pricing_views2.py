"""Three more pricing views for the Sticker-Shock dashboard: the tests of "does discount buy
wins?", the discount-cap what-if summed per discount band in the engine, and the deals of one
cell of the discount × deal size heatmap.

Definitions in docs/metrics.md ("Pricing"). Only aggregated rows, or a capped top-N list of
deals, come back from the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._price_views import DEAL_SIZE_EDGES, _check_edges, _priced, _size_index, _size_labels
from ._tests import Significance, chi_square_test, two_proportion_test

__all__ = ["discount_band_tests", "discount_cell_deals"]

_TEST_COLUMNS = (
    "comparison",
    "test",
    "statistic",
    "df",
    "p_value",
    "effect",
    "effect_size",
    "effect_low",
    "effect_high",
    "n",
    "reason",
)


# ------------------------------------------------------------------------------------------
# Does discount buy wins?


def _test_row(comparison: str, result: Significance) -> dict[str, Any]:
    row = result.to_frame().iloc[0].to_dict()
    return {"comparison": comparison, **{c: row[c] for c in _TEST_COLUMNS[1:]}}


def discount_band_tests(bands: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Is win rate the same in every discount band, and does the deepest band win more?

    Takes the frame of :func:`discount_bands` (one group: its ``band``, ``won``, ``lost`` and
    ``closed`` columns, bands in increasing order) and tests it from the counts:

    1. Pearson's chi-square test of independence on the bands × (won, lost) table (bands
       without a closed deal are left out), with Cramér's V;
    2. the two-proportion z test of the deepest band with a closed deal against the next
       shallower band with one, with the risk difference (deepest − next) and its Newcombe
       interval.

    Returns
    -------
    pandas.DataFrame
        Two rows: ``comparison`` (in words), ``test``, ``statistic``, ``df``, ``p_value``,
        ``effect``, ``effect_size``, ``effect_low``, ``effect_high``, ``n`` (closed deals
        tested), ``reason`` (why a test could not run, else None).

    Examples
    --------
    >>> bands = pd.DataFrame({"band": ["0-10%", "10-100%"], "won": [30, 20],
    ...                       "lost": [20, 30], "closed": [50, 50]})
    >>> t = discount_band_tests(bands)
    >>> round(float(t.statistic[0]), 4), round(float(t.effect_size[1]), 2)
    (4.0, -0.2)
    """
    missing = [c for c in ("band", "won", "lost", "closed") if c not in bands.columns]
    if missing:
        raise ParameterError(
            "discount_band_tests needs the frame of discount_bands "
            f"(missing: {', '.join(missing)})."
        )
    counts = bands[["won", "lost", "closed"]].fillna(0).astype("int64")
    across = chi_square_test(counts[["won", "lost"]].to_numpy())
    rows = [_test_row("win rate across all discount bands", across)]
    tested = np.flatnonzero(counts["closed"].to_numpy() > 0)
    if len(tested) < 2:
        none = Significance(
            test="two-proportion z",
            effect="risk difference",
            n=int(counts["closed"].sum()),
            reason="fewer than two discount bands with closed deals",
        )
        rows.append(_test_row("deepest discount band against the next", none))
    else:
        deep, nxt = tested[-1], tested[-2]
        result = two_proportion_test(
            counts["won"].iloc[deep],
            counts["closed"].iloc[deep],
            counts["won"].iloc[nxt],
            counts["closed"].iloc[nxt],
            confidence=confidence,
        )
        label = f"deepest band {bands['band'].iloc[deep]} against {bands['band'].iloc[nxt]}"
        rows.append(_test_row(label, result))
    return pd.DataFrame(rows, columns=list(_TEST_COLUMNS))


# ------------------------------------------------------------------------------------------
# The discount cap, summed per band in the engine


# ------------------------------------------------------------------------------------------
# The deals of one heatmap cell


def discount_cell_deals(
    data: SalesData,
    *,
    size_index: int,
    discount_low: float,
    size_edges: Sequence[float] = DEAL_SIZE_EDGES,
    discount_step: float = 0.05,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    status: str = "won",
    top_n: int = 50,
) -> pd.DataFrame:
    """The deals of one cell of :func:`discount_vs_size`: the drill-down of a heatmap click.

    The cell is the deal size band ``size_index`` (of ``size_edges``, on list_amount) and the
    discount bin starting at ``discount_low`` (``discount_step`` wide, binned exactly as
    :func:`discount_vs_size` bins). The most money given away first: ``discount_given`` =
    list_amount − amount.

    Returns
    -------
    pandas.DataFrame
        At most ``top_n`` deals: ``opportunity_id``, ``opportunity_name``, ``account``,
        ``owner`` (those the data has), ``amount``, ``list_amount``, ``discount``,
        ``discount_given``, ``deal_size``.
    """
    edges = _check_edges(size_edges, "size_edges")
    if not 0 <= int(size_index) < len(edges):
        raise ParameterError(
            f"size_index={size_index!r} must be a band of size_edges: 0 to {len(edges) - 1}."
        )
    if not 0 < float(discount_step) <= 0.5:
        raise ParameterError(f"discount_step={discount_step!r} must be in (0, 0.5], e.g. 0.05.")
    if int(top_n) < 1:
        raise ParameterError(f"top_n={top_n!r} must be 1 or more.")
    t = _priced(data, filters, period, date_field, status, "The deals of a heatmap cell")
    t = t.mutate(
        _size=_size_index(t.list_amount, edges),
        _bin=(t.discount / discount_step).round(9).floor().cast("int64"),
    )
    wanted = int(round(float(discount_low) / discount_step))
    t = t.filter((t._size == int(size_index)) & (t._bin == wanted))
    t = t.mutate(discount_given=t.list_amount - t.amount)
    cols = [c for c in ("opportunity_id", "opportunity_name", "account", "owner") if c in t.columns]
    cols += ["amount", "list_amount", "discount", "discount_given"]
    out = t.select(*cols).order_by([ibis.desc("discount_given"), "opportunity_id"])
    out = out.limit(int(top_n)).execute()
    out["deal_size"] = _size_labels(edges)[int(size_index)]
    return out
