"""What-if levers: what a shorter cycle, a higher win rate, a higher ASP or a discount cap is worth.

Each function returns the baseline next to the scenario and says its assumptions in
``attrs["assumptions"]``, so a dashboard can show them beside the number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._deals import select_deals
from ._measures import outcomes
from ._pricing import DISCOUNT_BANDS, discount_bands
from ._segments import segment_kpis, velocity

__all__ = ["discount_cap_what_if", "velocity_levers", "velocity_what_if"]

LEVERS = ("open", "win_rate", "asp", "km_median_days_to_close")


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

    velocity = open × win_rate × asp / cycle_days, so log(velocity_s / velocity_all) is the sum
    of the levers' log ratios (the cycle's with a minus sign). ``<lever>_ratio`` is the segment's
    lever over the selection's (cycle: the selection's over the segment's, so > 1 always helps),
    and ``<lever>_share`` that lever's part of the log gap (the four add up to 1 when the gap is
    not 0).

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, the four levers (``open``, ``win_rate``, ``asp``,
        ``km_median_days_to_close``), ``velocity``, ``velocity_ratio``, and ``<lever>_ratio`` /
        ``<lever>_share`` for each lever; ``small_n`` from the segment table.
    """
    seg = segment_kpis(data, by=by, filters=filters, period=period, date_field=date_field)
    total = segment_kpis(data, filters=filters, period=period, date_field=date_field).iloc[0]
    out = seg[[*by, *LEVERS, "velocity", "small_n"]].copy()
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
    out = seg[[*by, "open", "velocity", "small_n"]].copy()
    out["win_rate_what_if"] = np.clip(seg["win_rate"].astype(float) + pts, 0.0, 1.0)
    out["asp_what_if"] = seg["asp"].astype(float) * (1 + lift)
    out["cycle_days_what_if"] = seg["km_median_days_to_close"].astype(float) * (1 - cut)
    out["velocity_what_if"] = velocity(
        seg["open"], out["win_rate_what_if"], out["asp_what_if"], out["cycle_days_what_if"]
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


def _band_rates(data: SalesData, bands: Sequence[float], **selection: Any) -> pd.DataFrame:
    rates = discount_bands(data, bands=bands, **selection)
    return rates[["band_low", "band_high", "win_rate"]].reset_index(drop=True)


def _band_of(values: np.ndarray, rates: pd.DataFrame) -> np.ndarray:
    """Index of the [low, high) band of each value (the last band includes its top)."""
    edges = rates["band_low"].to_numpy(float)
    idx = np.searchsorted(edges, values, side="right") - 1
    return np.clip(idx, 0, len(edges) - 1)


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
    (:func:`discount_bands`): when deeper discounts did not win more, nothing is lost.

    Returns
    -------
    pandas.DataFrame
        One row: ``deals_over_cap`` (won deals above the cap), ``bookings_over_cap`` (their
        amount now), ``gross_recovered`` (Σ list × (1 − cap) − amount, if none were lost),
        ``expected_lost_deals`` (Σ (1 − r)), ``expected_lost_bookings`` (Σ (1 − r) × list ×
        (1 − cap)), ``net_recovered`` (Σ r × list × (1 − cap) − amount) and
        ``net_recovered_share`` (of all bookings in the selection). ``attrs["assumptions"]``
        and ``attrs["band_rates"]`` (the win rates used) go with it.
    """
    cap = _fraction(cap, "cap", 0.0, 0.99, "0.2 for at most 20% off")
    t = select_deals(data, filters, period, date_field=date_field)
    if "discount" not in t.columns:
        raise ParameterError(
            "a discount cap needs list_amount on opportunities; map "
            "tables.opportunities.columns.list_amount."
        )
    won = t.filter(outcomes(t)["won"])
    total = float(won.amount.sum().execute() or 0.0)
    over = won.filter(won.discount > cap).select("amount", "list_amount", "discount").to_pandas()
    rates = _band_rates(data, bands, filters=filters, period=period, date_field=date_field)
    wr = rates["win_rate"].to_numpy(float)
    cap_rate = wr[_band_of(np.array([cap]), rates)[0]]
    own = wr[_band_of(over["discount"].to_numpy(float), rates)]
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(own > 0, np.minimum(1.0, cap_rate / own), 1.0)
    keep = np.where(np.isnan(keep), 1.0, keep)
    capped = over["list_amount"].to_numpy(float) * (1 - cap)
    amount = over["amount"].to_numpy(float)
    net = float((keep * capped - amount).sum())
    out = pd.DataFrame(
        {
            "cap": [cap],
            "deals_over_cap": [len(over)],
            "bookings_over_cap": [float(amount.sum())],
            "gross_recovered": [float((capped - amount).sum())],
            "expected_lost_deals": [float((1 - keep).sum())],
            "expected_lost_bookings": [float(((1 - keep) * capped).sum())],
            "net_recovered": [net],
            "net_recovered_share": [net / total if total else np.nan],
        }
    )
    out.attrs["band_rates"] = rates
    out.attrs["assumptions"] = [
        f"won deals discounted more than {cap:.0%} are re-priced at list × (1 − {cap:.0%})",
        "a re-priced deal stays won with the win rate observed at the capped discount, relative "
        "to the win rate of its own discount band (never more than 1)",
        "open and lost deals, and deals at or below the cap, are unchanged",
    ]
    return out
