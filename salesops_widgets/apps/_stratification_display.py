"""Stratification Comparisons, display side: the KPI layer's frames turned into its charts and
tables. No KPI is computed here: the tier summary only adds up the KPI layer's per-entity rows
(counts, shares, the measure's range)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import charts, metrics
from ._common import dimension_label, p_text

__all__ = ["mix_chart", "mix_formats", "outcome_chart", "span", "tests_table", "tier_summary"]


def span(period: tuple[Any, Any]) -> str:
    return f"{period[0]} to {period[1]}"


def outcome_chart(outcome: tuple[str, str, str, str], comparison: Any, currency: Any) -> Any:
    """One outcome per tier with its intervals, titled with the top-vs-bottom test's p; the
    reason when the data cannot give it. ``outcome``: (column, kind, label, better)."""
    column, kind, label, _ = outcome
    if isinstance(comparison, Exception):
        return charts.empty_chart(f"Not available: {comparison}", title=label)
    test = comparison.top_vs_bottom
    vs = test.details.get("comparison", "top vs bottom")
    p = "" if test.reason else f" · {vs}: p {p_text(test.p_value)}"
    return charts.strata_comparison(
        comparison.table,
        tier="tier",
        value=column,
        low=f"{column}_low",
        high=f"{column}_high",
        kind=kind,
        currency=currency,
        small_n="small_n",
        n="n_outcome",
        title=f"{label} per tier{p}",
    )


def mix_chart(mix: pd.DataFrame, kind: str, label: str, standardize_on: str, currency: Any) -> Any:
    """The mix-adjusted outcome per tier against the overall."""
    overall = float(mix["overall_rate"].iloc[0]) if len(mix) else None
    return charts.strata_comparison(
        mix,
        tier="tier",
        value="adjusted_rate",
        low="adjusted_low",
        high="adjusted_high",
        kind=kind,
        currency=currency,
        small_n="small_n",
        n="n",
        overall=overall,
        title=f"{label}, adjusted to the overall mix of {dimension_label(standardize_on).lower()}",
    )


def mix_formats(kind: str) -> dict[str, str]:
    """The mix table's formats: the outcome's kind for its rates."""
    columns = ("crude_rate", "adjusted_rate", "adjusted_low", "adjusted_high", "difference")
    return dict.fromkeys((*columns, "overall_rate"), kind) | {"weight_coverage": "percent"}


def tier_summary(strata: pd.DataFrame) -> pd.DataFrame:
    """One row per tier: how many entities, the range of the measure and its share."""
    ranked = strata[strata["tier"].notna()]
    if ranked.empty:
        return pd.DataFrame(columns=["tier", "entities", "lowest", "highest", "share", "small_n"])
    g = ranked.groupby("tier", observed=True, sort=False)
    out = pd.DataFrame(
        {
            "entities": g.size(),
            "lowest": g["value"].min(),
            "highest": g["value"].max(),
            "share": g["share"].sum(),
            "opportunities": g["opportunities"].sum(),
            "closed": g["closed"].sum(),
        }
    ).reset_index()
    out["small_n"] = out["closed"] < metrics.MIN_CLOSED
    return out


def tests_table(comparisons: Mapping[str, Any], labels: Mapping[str, str]) -> pd.DataFrame:
    """Both tests of every outcome, one row each, with the outcome named (``labels``)."""
    frames = [
        comparison.tests.assign(outcome=labels[outcome])
        for outcome, comparison in comparisons.items()
        if not isinstance(comparison, Exception)
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if out.empty:
        return out
    return pd.DataFrame(
        {
            "outcome": out["outcome"],
            "comparison": out["comparison"],
            "test": out["test"],
            "p": out["p_value"].map(p_text),
            "significant": (out["p_value"] < 0.05).map({True: "yes", False: "no"}),
            "effect": out["effect"],
            "effect size": out["effect_size"],
            "effect low": out["effect_low"],
            "effect high": out["effect_high"],
            "n": out["n"],
            "why no test": out["reason"].fillna(""),
        }
    )
