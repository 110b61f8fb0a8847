"""What-if levers: what a shorter cycle, a higher win rate, a higher ASP or a discount cap is worth.

Each function returns the baseline next to the scenario and says its assumptions in
``attrs["assumptions"]``, so a dashboard can show them beside the number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._deals import outcomes, select_deals
from ._measures import aggregates
from ._pricing import DISCOUNT_BANDS, discount_bands
from ._segments import segment_kpis, velocity

__all__ = ["discount_cap_what_if", "velocity_levers", "velocity_what_if"]

# velocity = open deals with an amount × win rate × ASP / cycle days (metrics._segments.velocity)
LEVERS = ("open_with_amount", "win_rate", "asp", "km_median_days_to_close")


def _fraction(value: float, name: str, low: float, high: float, example: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} must be a number, e.g. {example}.") from None
    if not low <= value <= high:
        raise ParameterError(f"{name}={value!r} must be between {low} and {high}, e.g. {example}.")
    return value


def velocity_levers(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
) -> pd.DataFrame:
    """Velocity per segment split into its four levers, each relative to the whole selection.

    velocity = open deals with an amount × win_rate × asp / cycle_days (``_segments.velocity``),
    so log(velocity_s / velocity_all) is the sum
    of the levers' log ratios (the cycle's with a minus sign). ``<lever>_ratio`` is the segment's
    lever over the selection's (cycle: the selection's over the segment's, so > 1 always helps),
    and ``<lever>_share`` that lever's part of the log gap (the four add up to 1 when the gap is
    not 0).

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``open`` (every open deal), the four levers (``open_with_amount``,
        ``win_rate``, ``asp``, ``km_median_days_to_close``), ``velocity``, ``velocity_ratio``,
        and ``<lever>_ratio`` / ``<lever>_share`` for each lever; ``small_n`` from the segment
        table.
    """
    seg = segment_kpis(data, by=by, filters=filters, period=period, date_field=date_field)
    total = segment_kpis(data, filters=filters, period=period, date_field=date_field).iloc[0]
    out = seg[[*by, "open", *LEVERS, "velocity", "small_n"]].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = {lever: out[lever].astype(float) / float(total[lever]) for lever in LEVERS}
        ratios["km_median_days_to_close"] = 1 / ratios["km_median_days_to_close"]
        logs = {lever: np.log(r) for lever, r in ratios.items()}
        gap = sum(logs.values())
        for lever in LEVERS:
            out[f"{lever}_ratio"] = ratios[lever]
            out[f"{lever}_share"] = np.where(np.abs(gap) > 1e-12, logs[lever] / gap, np.nan)
        out["velocity_ratio"] = out["velocity"] / float(total["velocity"])
    return out


def velocity_what_if(
    data: SalesData,
    *,
    by: Sequence[str] = (),
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    cycle_cut: float = 0.0,
    win_rate_points: float = 0.0,
    asp_lift: float = 0.0,
    horizon_days: int = 91,
) -> pd.DataFrame:
    """Velocity with the cycle cut by ``cycle_cut``, win rate up ``win_rate_points``, ASP up
    ``asp_lift``, and the bookings that gain adds over the next ``horizon_days``.

    Parameters
    ----------
    cycle_cut
        Fraction of the cycle days removed (0.1: 10% shorter), 0 to 0.9.
    win_rate_points
        Points added to the win rate (0.05: five points), −1 to 1; the result is kept in [0, 1].
    asp_lift
        Fraction added to the ASP (0.05: 5% higher), −0.9 to 10.
    horizon_days
        Days ahead (91: about a quarter) over which extra bookings are counted.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``velocity`` (money per day, now), ``velocity_what_if``,
        ``velocity_change`` (what-if − now), ``extra_bookings`` (velocity_change ×
        horizon_days), the scenario's ``win_rate_what_if``, ``asp_what_if``,
        ``cycle_days_what_if``, and ``small_n``. ``attrs["assumptions"]`` lists what the
        projection takes for granted.
    """
    cut = _fraction(cycle_cut, "cycle_cut", 0.0, 0.9, "0.1 for 10% shorter")
    pts = _fraction(win_rate_points, "win_rate_points", -1.0, 1.0, "0.05 for five points")
    lift = _fraction(asp_lift, "asp_lift", -0.9, 10.0, "0.05 for 5% higher")
    horizon = int(_fraction(horizon_days, "horizon_days", 1, 3660, "91 for a quarter"))
    seg = segment_kpis(data, by=by, filters=filters, period=period, date_field=date_field)
    out = seg[[*by, "open", "open_with_amount", "velocity", "small_n"]].copy()
    out["win_rate_what_if"] = np.clip(seg["win_rate"].astype(float) + pts, 0.0, 1.0)
    out["asp_what_if"] = seg["asp"].astype(float) * (1 + lift)
    out["cycle_days_what_if"] = seg["km_median_days_to_close"].astype(float) * (1 - cut)
    out["velocity_what_if"] = velocity(
        seg["open_with_amount"],
        out["win_rate_what_if"],
        out["asp_what_if"],
        out["cycle_days_what_if"],
    )
    out["velocity_change"] = out["velocity_what_if"] - out["velocity"]
    out["extra_bookings"] = out["velocity_change"] * horizon
    out.attrs["assumptions"] = [
        f"cycle days (Kaplan–Meier median days to close) {cut:.0%} shorter, win rate "
        f"{pts * 100:+.1f} points, ASP {lift:+.0%}",
        "the open pipeline is replenished at today's size, so velocity stays constant over "
        f"the next {horizon} days",
        "the levers are independent: a shorter cycle does not change win rate or ASP",
        "segments marked small_n rest on fewer than 30 closed deals: too few to say",
    ]
    return out


def _band_of(discount: ibis.Value, lows: Sequence[float]) -> ibis.Value:
    """Index of the band whose lower edge is the largest one at or below the discount
    (below the first edge: band 0), as ``numpy.searchsorted(lows, d, "right") - 1`` clipped."""
    cases = [(discount >= low, i) for i, low in reversed(list(enumerate(lows))) if i > 0]
    return ibis.cases(*cases, else_=0) if cases else ibis.literal(0)


def discount_cap_what_if(
    data: SalesData,
    *,
    cap: float = 0.2,
    filters: Mapping[str, Any] | None = None,
    period: tuple[Any, Any] | None = None,
    date_field: str = "created_date",
    bands: Sequence[float] = DISCOUNT_BANDS,
) -> pd.DataFrame:
    """Revenue recovered by capping the discount at ``cap``, net of the deals it would lose.

    Every won deal discounted deeper than ``cap`` is re-priced at list × (1 − cap). It stays won
    with probability r = min(1, win rate of the band holding ``cap`` / win rate of its own band),
    the win rates observed on the selection's closed deals by discount band
    (:func:`discount_bands`): when deeper discounts did not win more, nothing is lost. r is the
    same for every deal of a band, so the won deals over the cap are summed per band in the
    engine and only one row per band comes back.

    Returns
    -------
    pandas.DataFrame
        One row: ``cap``, ``deals_over_cap`` (won deals above the cap), ``bookings_over_cap``
        (their amount now), ``gross_recovered`` (Σ list × (1 − cap) − amount, if none were
        lost), ``expected_lost_deals`` (Σ (1 − r)), ``expected_lost_bookings`` (Σ (1 − r) × list
        × (1 − cap)), ``net_recovered`` (Σ r × list × (1 − cap) − amount) and
        ``net_recovered_share`` (of all bookings in the selection).
        ``attrs["by_band"]`` holds per band with won deals over the cap: ``band``,
        ``win_rate`` (observed on closed deals), ``kept`` (r), ``deals_over_cap``,
        ``bookings_over_cap``, ``capped_bookings`` (Σ list × (1 − cap)), ``gross_recovered``,
        ``net_recovered``; ``attrs["band_rates"]`` the win rates by band and
        ``attrs["assumptions"]`` what the estimate takes for granted.
    """
    try:
        cap = float(cap)
    except (TypeError, ValueError):
        raise ParameterError(
            f"cap={cap!r} must be a number, e.g. 0.2 for at most 20% off."
        ) from None
    if not 0.0 <= cap <= 0.99:
        raise ParameterError(f"cap={cap!r} must be between 0 and 0.99, e.g. 0.2 for 20% off.")
    data.require("A discount cap", "opportunities", ["list_amount"])
    selection = {"filters": filters, "period": period, "date_field": date_field}
    rates = discount_bands(data, bands=bands, **selection)
    t = select_deals(data, filters, period, date_field=date_field)
    total = float(t.aggregate(**aggregates(t, "bookings")).execute()["bookings"].iloc[0] or 0.0)
    over = t.filter(outcomes(t)["won"] & (t.discount > cap))
    lows = rates["band_low"].astype(float).tolist()
    over = over.mutate(_band=_band_of(over.discount, lows))
    sums = over.group_by("_band").aggregate(
        deals_over_cap=over.count(),
        bookings_over_cap=over.amount.sum(),
        _list=over.list_amount.sum(),
    )
    sums = sums.order_by("_band").execute()
    by_band = _cap_by_band(sums, rates, cap)
    out = pd.DataFrame(
        {
            "cap": [cap],
            "deals_over_cap": [int(by_band["deals_over_cap"].sum())],
            "bookings_over_cap": [float(by_band["bookings_over_cap"].sum())],
            "gross_recovered": [float(by_band["gross_recovered"].sum())],
            "expected_lost_deals": [float(by_band["expected_lost_deals"].sum())],
            "expected_lost_bookings": [float(by_band["expected_lost_bookings"].sum())],
            "net_recovered": [float(by_band["net_recovered"].sum())],
        }
    )
    out["net_recovered_share"] = out["net_recovered"] / total if total else np.nan
    out.attrs["by_band"] = by_band
    out.attrs["band_rates"] = rates[["band", "band_low", "band_high", "win_rate", "closed"]]
    out.attrs["assumptions"] = _cap_assumptions(cap)
    return out


def _cap_by_band(sums: pd.DataFrame, rates: pd.DataFrame, cap: float) -> pd.DataFrame:
    """Per band over the cap: the keep-rate and the money recovered, from the band's sums."""
    wr = rates["win_rate"].to_numpy(float)
    lows = rates["band_low"].to_numpy(float)
    cap_band = int(np.clip(np.searchsorted(lows, cap, side="right") - 1, 0, len(lows) - 1))
    idx = sums["_band"].to_numpy(int)
    own = wr[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.where(own > 0, np.minimum(1.0, wr[cap_band] / own), 1.0)
    kept = np.where(np.isnan(kept), 1.0, kept)
    deals = sums["deals_over_cap"].to_numpy(float)
    amount = sums["bookings_over_cap"].astype(float).to_numpy()
    capped = sums["_list"].astype(float).to_numpy() * (1 - cap)
    return pd.DataFrame(
        {
            "band": rates["band"].to_numpy()[idx],
            "win_rate": own,
            "kept": kept,
            "deals_over_cap": deals.astype("int64"),
            "bookings_over_cap": amount,
            "capped_bookings": capped,
            "gross_recovered": capped - amount,
            "expected_lost_deals": (1 - kept) * deals,
            "expected_lost_bookings": (1 - kept) * capped,
            "net_recovered": kept * capped - amount,
        }
    )


def _cap_assumptions(cap: float) -> list[str]:
    return [
        f"won deals discounted more than {cap:.0%} are re-priced at list × (1 − {cap:.0%})",
        "a re-priced deal stays won with the win rate observed at the capped discount, relative "
        "to the win rate of its own discount band (never more than 1)",
        "open and lost deals, and deals at or below the cap, are unchanged",
    ]
