"""Drivers (the "5 whys" drill): why did bookings, or ASP, change between two periods?

``bookings_bridge`` splits the change in bookings into volume (closed deals), win-rate and ASP
effects; ``asp_bridge`` splits the change in ASP into price and mix effects over a dimension.
Both split exactly: the effects add up to the change. The engine aggregates one row per period
and group; the arithmetic runs on those rows. Definitions: docs/metrics.md ("Drivers").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import SalesData
from ..errors import ParameterError
from ._deals import check_dimensions, select_deals
from ._measures import aggregate, aggregates, asp, portfolio_discount, win_rate

__all__ = [
    "BOOKINGS_METHOD",
    "ASP_METHOD",
    "TOTAL",
    "bookings_bridge",
    "asp_bridge",
    "shapley_product",
    "price_mix_split",
    "bookings_contributions",
    "drill_path",
    "discount_contributions",
    "DISCOUNT_METHOD",
]

BOOKINGS_METHOD = "Shapley split of closed × win rate × ASP (mean of the 6 substitution orders)"
ASP_METHOD = "price effect on current-period quantities"
TOTAL = "(total)"
DISCOUNT_METHOD = (
    "shift-share of the dollar-weighted discount: each segment's rate gap × its list dollars"
)


def _periods(period_a: Any, period_b: Any) -> None:
    for name, value in (("period_a", period_a), ("period_b", period_b)):
        if value is None:
            raise ParameterError(
                f"{name} is required: give it as (start, end), e.g. ('2025-01-01', '2025-06-30')."
            )


def _per_period(
    data: SalesData,
    period: tuple[Any, Any],
    keys: list[str],
    filters: Mapping[str, Any] | None,
    date_field: str,
) -> pd.DataFrame:
    """closed, won, lost and bookings per group of ``keys`` for one period (in the engine).

    Won deals without an amount are left out (as ASP leaves them out): ``won`` counts the won
    deals with an amount and ``closed`` those plus the lost deals, so that closed × win rate ×
    ASP = bookings exactly; ``unpriced_won`` counts the won deals left out.
    """
    t = select_deals(data, filters, period, date_field=date_field)
    metrics = aggregates(t, "closed", "won", "won_with_amount", "lost", "bookings")
    frame = aggregate(t, keys, metrics)
    frame = frame.astype({c: float for c in metrics}).fillna(dict.fromkeys(metrics, 0.0))
    frame["unpriced_won"] = frame["won"] - frame["won_with_amount"]
    frame["closed"] = frame["closed"] - frame["unpriced_won"]
    frame["won"] = frame.pop("won_with_amount")
    return frame


def _both(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if not keys:
        return pd.concat([a.add_suffix("_a"), b.add_suffix("_b")], axis=1)
    both = a.merge(b, on=keys, how="outer", suffixes=("_a", "_b"))
    value_cols = [c for c in both.columns if c not in keys]
    return both.fillna(dict.fromkeys(value_cols, 0.0)).sort_values(keys, ignore_index=True)


def shapley_product(
    x0: Any, y0: Any, z0: Any, x1: Any, y1: Any, z1: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shapley split of Δ(x·y·z) into the parts due to x, y and z (vectorised).

    Each part is the mean of that factor's effect over the 6 orders of substituting the
    factors from period 0 to period 1, which in closed form is
    φ_x = Δx·[(y0·z0 + y1·z1)/3 + (y0·z1 + y1·z0)/6] (and the same for y and z), and
    φ_x + φ_y + φ_z = x1·y1·z1 − x0·y0·z0 exactly.
    """
    x0, y0, z0, x1, y1, z1 = (np.asarray(v, dtype=float) for v in (x0, y0, z0, x1, y1, z1))

    def part(d: np.ndarray, p0: np.ndarray, q0: np.ndarray, p1: np.ndarray, q1: np.ndarray):
        return d * ((p0 * q0 + p1 * q1) / 3 + (p0 * q1 + p1 * q0) / 6)

    return (
        part(x1 - x0, y0, z0, y1, z1),
        part(y1 - y0, x0, z0, x1, z1),
        part(z1 - z0, x0, y0, x1, y1),
    )


def bookings_bridge(
    data: SalesData,
    *,
    period_a: tuple[Any, Any] | None = None,
    period_b: tuple[Any, Any] | None = None,
    by: str | Sequence[str] | None = None,
    filters: Mapping[str, Any] | None = None,
    date_field: str = "closed_date",
) -> pd.DataFrame:
    """Split the change in bookings from period A to period B into volume, win-rate and ASP.

    bookings = closed × win_rate × ASP exactly (closed = won + lost, win_rate = won / closed,
    ASP = won amount / won), so Δbookings is split over the three factors by their Shapley
    values: each effect is the mean of that factor's effect over the 6 orders of sequential
    substitution (see :func:`shapley_product`). Unlike one substitution order, the split does
    not depend on an arbitrary order, and unlike a log split it works when a factor is 0.

    A factor that is undefined in one period (win rate with no closed deal, ASP with no won
    deal) takes the other period's value, so the whole change goes to the factors that are
    defined; undefined in both periods, it is 0 (and bookings are 0 in both). The effects
    always add up to ``change``.

    Parameters
    ----------
    period_a, period_b
        (start, end) of the base and the current period, inclusive.
    by
        None for one row, or dimension name(s) for one bridge per group (groups present in
        one period only count as 0 closed deals in the other). The rows' effects do not add
        up to the overall bridge's effects: mix between groups changes the factors.
    filters, date_field
        Which deals count (see :func:`select_deals`); by default the deals *closed* in each
        period, the way bookings are booked.

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, then for each period (suffix ``_a``/``_b``)
        ``closed``, ``won``, ``win_rate``, ``asp``, ``bookings``; then ``change``,
        ``volume_effect``, ``win_rate_effect``, ``asp_effect``, ``method`` and ``note``.
    """
    _periods(period_a, period_b)
    keys = [by] if isinstance(by, str) else list(by or [])
    check_dimensions(data, keys, parameter="by")
    a = _per_period(data, period_a, keys, filters, date_field)
    b = _per_period(data, period_b, keys, filters, date_field)
    f = _both(a, b, keys)
    for s in ("a", "b"):
        f[f"win_rate_{s}"] = win_rate(f[f"won_{s}"], f[f"lost_{s}"])
        f[f"asp_{s}"] = asp(f[f"bookings_{s}"], f[f"won_{s}"])
    factors = {}
    notes = pd.Series("", index=f.index)
    for s, name in (("a", "A"), ("b", "B")):
        left_out = f[f"unpriced_won_{s}"].astype(int)
        said = [f"{n:,} won deal(s) without an amount left out in period {name}; " if n else ""
                for n in left_out]  # fmt: skip
        notes += pd.Series(said, index=f.index)
    for name, what in (("win_rate", "win rate"), ("asp", "ASP")):
        fa, fb = f[f"{name}_a"], f[f"{name}_b"]
        for s, own in (("A", fa), ("B", fb)):
            undefined = own.isna() & (fa.notna() | fb.notna())
            notes[undefined] += f"{what} undefined in period {s}, the other period's used; "
        factors[name] = (fa.fillna(fb).fillna(0.0), fb.fillna(fa).fillna(0.0))
    volume, rate, price = shapley_product(
        f["closed_a"], *[factors[k][0] for k in ("win_rate", "asp")],
        f["closed_b"], *[factors[k][1] for k in ("win_rate", "asp")],
    )  # fmt: skip
    cols = [
        f"{m}_{s}" for s in ("a", "b") for m in ("closed", "won", "win_rate", "asp", "bookings")
    ]
    out = f[keys + cols].copy()
    out["change"] = f["bookings_b"] - f["bookings_a"]
    out["volume_effect"] = volume
    out["win_rate_effect"] = rate
    out["asp_effect"] = price
    out["method"] = BOOKINGS_METHOD
    out["note"] = notes.str.rstrip("; ")
    return out.astype({"closed_a": int, "won_a": int, "closed_b": int, "won_b": int})


def price_mix_split(won_a: Any, bookings_a: Any, won_b: Any, bookings_b: Any) -> pd.DataFrame:
    """Price and mix effects per segment from won counts and bookings in periods A and B.

    Returns one row per segment: ``asp_a``, ``share_a``, ``asp_b``, ``share_b``,
    ``price_effect`` = (ASP_i,B − ASP_i,A)·s_i,B, ``mix_effect`` = (ASP_i,A − ASP_A)·(s_i,B −
    s_i,A), ``change`` (their sum) and ``segment`` ("both", "new", "gone"). A new segment
    (no won deal in A) takes ASP_i,A = ASP_i,B; a gone one has s_i,B = 0. When both periods
    have won deals, the effects add up to ASP_B − ASP_A; otherwise they are NaN.
    """
    won = {"a": np.asarray(won_a, dtype=float), "b": np.asarray(won_b, dtype=float)}
    bookings = {"a": np.asarray(bookings_a, dtype=float), "b": np.asarray(bookings_b, dtype=float)}
    f = pd.DataFrame(index=range(won["a"].size))
    for s in "ab":
        n = won[s].sum()
        f[f"asp_{s}"] = asp(bookings[s], won[s])
        with np.errstate(divide="ignore", invalid="ignore"):
            f[f"share_{s}"] = won[s] / n if n else np.nan
    asp_a = float(asp(bookings["a"].sum(), won["a"].sum()))
    base = f["asp_a"].fillna(f["asp_b"])  # new segments: no price change
    f["price_effect"] = ((f["asp_b"] - base) * f["share_b"]).where(won["b"] > 0, 0.0)
    f["mix_effect"] = (base - asp_a) * (f["share_b"] - f["share_a"])
    if not (won["a"].sum() and won["b"].sum()):
        f[["price_effect", "mix_effect"]] = np.nan
    f["change"] = f["price_effect"] + f["mix_effect"]
    f["segment"] = np.select([won["a"] == 0, won["b"] == 0], ["new", "gone"], "both")
    return f


def asp_bridge(
    data: SalesData,
    *,
    period_a: tuple[Any, Any] | None = None,
    period_b: tuple[Any, Any] | None = None,
    dimension: str = "product_family",
    filters: Mapping[str, Any] | None = None,
    date_field: str = "closed_date",
) -> pd.DataFrame:
    """Split the change in ASP from period A to period B into price and mix over a dimension.

    With s_i the share of won deals in segment i and ASP_i its ASP, ASP = Σ_i s_i·ASP_i, and
    (method: **price effect on current-period quantities**)

    - price effect = Σ_i (ASP_i,B − ASP_i,A) × s_i,B
    - mix effect = Σ_i ASP_i,A × (s_i,B − s_i,A) = ΔASP − price effect.

    A segment with won deals in B only (new) has no price change: its ASP_i,A is taken as
    ASP_i,B, so its whole contribution s_i,B × ASP_i,B is mix. A segment with won deals in A
    only (gone) has s_i,B = 0, so its price effect is 0 and its contribution is mix too.

    Per segment, the mix effect is shown as (ASP_i,A − ASP_A) × (s_i,B − s_i,A): moving share
    towards a segment priced above the average raises the ASP. As Σ_i (s_i,B − s_i,A) = 0,
    these add up to the same total mix effect.

    Returns
    -------
    pandas.DataFrame
        One row per segment (the ``dimension`` column), then a last row ``"(total)"``:
        ``won_a``, ``asp_a``, ``share_a``, ``won_b``, ``asp_b``, ``share_b``, ``price_effect``,
        ``mix_effect``, ``change`` (price + mix; on the total row ASP_B − ASP_A), ``segment``
        ("both", "new", "gone" or "total"), ``method`` and ``note`` (why the effects are NaN
        when a period has no won deal).
    """
    _periods(period_a, period_b)
    check_dimensions(data, [dimension], parameter="dimension")
    a = _per_period(data, period_a, [dimension], filters, date_field)
    b = _per_period(data, period_b, [dimension], filters, date_field)
    f = _both(a, b, [dimension])
    f = f[(f["won_a"] > 0) | (f["won_b"] > 0)].reset_index(drop=True)
    split = price_mix_split(f["won_a"], f["bookings_a"], f["won_b"], f["bookings_b"])
    total = {s: (f[f"bookings_{s}"].sum(), f[f"won_{s}"].sum()) for s in "ab"}
    f = pd.concat([f[[dimension, "won_a", "won_b"]], split], axis=1)
    overall = {s: float(asp(bk, won)) for s, (bk, won) in total.items()}
    note = ""
    if np.isnan(overall["a"]) or np.isnan(overall["b"]):
        empty = " and ".join(s for s, k in (("A", "a"), ("B", "b")) if np.isnan(overall[k]))
        note = f"no won deal in period {empty}: ASP undefined, nothing to split"
    row = {
        dimension: TOTAL,
        "won_a": total["a"][1],
        "asp_a": overall["a"],
        "share_a": 1.0 if total["a"][1] else np.nan,
        "won_b": total["b"][1],
        "asp_b": overall["b"],
        "share_b": 1.0 if total["b"][1] else np.nan,
        "price_effect": f["price_effect"].sum(min_count=1) if not note else np.nan,
        "mix_effect": f["mix_effect"].sum(min_count=1) if not note else np.nan,
        "change": overall["b"] - overall["a"],
        "segment": "total",
    }
    cols = [dimension, "won_a", "asp_a", "share_a", "won_b", "asp_b", "share_b",
            "price_effect", "mix_effect", "change", "segment"]  # fmt: skip
    out = pd.concat([f[cols], pd.DataFrame([row])], ignore_index=True)
    out["method"] = ASP_METHOD
    out["note"] = note
    return out.astype({"won_a": int, "won_b": int})


# --------------------------------------------------------------------------------------------------
# The drill: one level at a time into the largest contributor


def bookings_contributions(
    data: SalesData,
    *,
    period_a: tuple[Any, Any] | None = None,
    period_b: tuple[Any, Any] | None = None,
    by: str = "size_band",
    filters: Mapping[str, Any] | None = None,
    date_field: str = "closed_date",
) -> pd.DataFrame:
    """Each segment's part of the change in bookings, largest first in the change's direction.

    Bookings add up over segments, so the segments' changes add up to the total change
    exactly; ``share`` is each one's part of it (NaN when the total is 0). Each row also holds
    the segment's own bridge (``volume_effect``, ``win_rate_effect``, ``asp_effect``, which add
    up to its ``change``; see :func:`bookings_bridge`). ``rank`` 1 is the largest contributor:
    the largest change with the total's sign (the largest in size when the total is 0).
    """
    f = bookings_bridge(
        data, period_a=period_a, period_b=period_b, by=by, filters=filters, date_field=date_field
    )
    total = float(f["change"].sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        f["share"] = f["change"] / total if total else np.nan
    sign = np.sign(total) or 1.0
    order = np.argsort(-(f["change"].to_numpy() * sign), kind="stable")
    f = f.iloc[order].reset_index(drop=True)
    f["rank"] = np.arange(1, len(f) + 1)
    return f


def drill_path(
    data: SalesData,
    *,
    period_a: tuple[Any, Any] | None = None,
    period_b: tuple[Any, Any] | None = None,
    path: Sequence[str] = ("size_band", "owner"),
    filters: Mapping[str, Any] | None = None,
    date_field: str = "closed_date",
) -> pd.DataFrame:
    """Why bookings moved, one level at a time: at each dimension of ``path``, the segment that
    contributed most to the change of the level above (see :func:`bookings_contributions`),
    which the next level splits further.

    Returns
    -------
    pandas.DataFrame
        One row per level: ``level`` (1, 2, ...), ``dimension``, ``segment``, ``filters`` (the
        filters of that segment, for the next level and the deal list), ``parent_change``,
        ``change``, ``share`` (of the parent's change), ``volume_effect``, ``win_rate_effect``,
        ``asp_effect`` and ``segments`` (how many segments the level had). A level with no
        deal in either period stops the path.
    """
    _periods(period_a, period_b)
    chosen = {
        k: list(v) if isinstance(v, list | tuple) else [v] for k, v in (filters or {}).items()
    }
    rows = []
    for level, dim in enumerate(path, start=1):
        f = bookings_contributions(
            data,
            period_a=period_a,
            period_b=period_b,
            by=dim,
            filters=chosen,
            date_field=date_field,
        )
        if f.empty:
            break
        top = f.iloc[0]
        chosen = {**chosen, dim: [top[dim]]}
        rows.append(
            {
                "level": level,
                "dimension": dim,
                "segment": top[dim],
                "filters": dict(chosen),
                "parent_change": float(f["change"].sum()),
                "change": float(top["change"]),
                "share": float(top["share"]),
                "volume_effect": float(top["volume_effect"]),
                "win_rate_effect": float(top["win_rate_effect"]),
                "asp_effect": float(top["asp_effect"]),
                "segments": len(f),
            }
        )
    return pd.DataFrame(rows)


def discount_contributions(
    data: SalesData,
    *,
    by: str = "owner",
    period: tuple[Any, Any] | None = None,
    filters: Mapping[str, Any] | None = None,
    date_field: str = "closed_date",
) -> pd.DataFrame:
    """Who pulls the price down: each segment's part of the portfolio discount beyond the
    average rate (a shift-share split of the dollar-weighted discount over ``by``).

    With L_i and R_i the list and net amounts of segment i's won priced deals, d_i = 1 − R_i/L_i
    its discount and d = 1 − ΣR/ΣL the portfolio discount:

    - ``rate_effect`` = L_i·(d_i − d)/ΣL: points of portfolio discount the segment adds by
      discounting more than the average (they add up to 0);
    - ``asp_effect`` = −L_i·(d_i − d)/N, with N the won deals with an amount (ASP's): the
      money per won deal it costs (or saves) the ASP against selling at the average discount
      (they add up to 0).

    Sorted with the largest ``rate_effect`` first (``rank`` 1).
    """
    check_dimensions(data, [by], parameter="by")
    t = select_deals(data, filters, period, date_field=date_field)
    f = aggregate(t, [by], aggregates(t, "won_with_amount", "net_realized", "list_realized"))
    f = (
        f.rename(columns={"won_with_amount": "won"})
        .astype({c: float for c in ("won", "net_realized", "list_realized")})
        .fillna(0.0)
    )
    f = f[f["list_realized"] > 0].reset_index(drop=True)
    total_list, won_deals = f["list_realized"].sum(), float(f["won"].sum())
    average = float(portfolio_discount(f["net_realized"].sum(), total_list))
    f["discount"] = portfolio_discount(f["net_realized"], f["list_realized"])
    f["average_discount"] = average
    gap = f["list_realized"] * (f["discount"] - average)
    f["rate_effect"] = gap / total_list if total_list else np.nan
    # the gap's money per won deal: ASP's definition applied to it (NaN with no won deal)
    f["asp_effect"] = asp(-gap, np.full(len(f), won_deals))
    f = f.sort_values("rate_effect", ascending=False, ignore_index=True, kind="stable")
    f["rank"] = np.arange(1, len(f) + 1)
    f["method"] = DISCOUNT_METHOD
    return f.astype({"won": int})
