"""Sales-Cycle Acceleration, display side: the KPI layer's frames turned into the tables and
sentences the app shows, and the checks of its what-if parameters. No KPI is computed here: the
only arithmetic is presentation (a gap between two shown medians, a sign for outflows)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import metrics
from ..data import SalesData
from ..errors import ParameterError
from ..widgets import format_value
from ..widgets._html import COLORS, esc, style
from ._common import dimension_label

MOVEMENTS = {
    "open_at_start": "Open at start",
    "new": "New",
    "won": "Won",
    "lost": "Lost",
    "open_at_end": "Open at end",
    "pushed": "Pushed (close date later)",
    "pulled_in": "Pulled in (close date earlier)",
}
# the ratio columns of velocity_levers, as named in the levers table
_LEVER_RATIOS = {
    "open_with_amount_ratio": "open_deals_ratio",
    "win_rate_ratio": "win_rate_ratio",
    "asp_ratio": "asp_ratio",
    "km_median_days_to_close_ratio": "speed_ratio",
    "velocity_ratio": "velocity_ratio",
}
_DAY_COLUMNS = (
    "p10_cycle_days",
    "p25_cycle_days",
    "median_cycle_days",
    "p75_cycle_days",
    "p90_cycle_days",
    "median_days_to_close",
    "interval_low_days",
    "interval_high_days",
    "closed_only_median_days",
    "gap_days",
    "median_days_in_stage",
    "p90_days_in_stage",
    "next_stage_median_days",
    "days_in_stage",
    "threshold_days",
    "age_days",
)

# column -> header of the tables (the KPI layer's names where they read well)
_LABELS = {
    "p10_cycle_days": "10th percentile",
    "p25_cycle_days": "25th percentile",
    "median_cycle_days": "median",
    "p75_cycle_days": "75th percentile",
    "p90_cycle_days": "90th percentile",
    "median_days_to_close": "median days to close",
    "interval_low_days": "95% interval from",
    "interval_high_days": "to",
    "closed_only_median_days": "closed-only median",
    "gap_days": "gap",
    "closed_by_day_90": "closed by day 90",
    "closed_by_day_365": "closed by day 365",
    "median_days_in_stage": "median days in stage",
    "p90_days_in_stage": "90th percentile",
    "next_stage_median_days": "its median days",
    "conversion_to_next": "moved on to the next stage",
    "still_in_stage": "still in stage",
    "open_deals_ratio": "open deals ratio",
    "speed_ratio": "speed ratio",
    "velocity_what_if": "velocity what-if",
    "velocity_change": "change",
    "extra_bookings": "extra bookings next quarter",
    "win_rate_what_if": "win rate what-if",
    "asp_what_if": "ASP what-if",
    "cycle_days_what_if": "days to close what-if",
    "asp": "ASP",
    "asp_ratio": "ASP ratio",
}
_DAYS = dict.fromkeys(_DAY_COLUMNS, "days")
_STAGE_FORMATS = {**_DAYS, "conversion_to_next": "percent", "stays": "count"}
_WHAT_IF_MONEY = ("velocity_what_if", "velocity_change", "extra_bookings", "asp_what_if")
# the app's tables: attribute -> DataTable options (the app adds the data's currency)
TABLES: dict[str, dict[str, Any]] = {
    "distribution_table": {
        "title": "Days from created to closed, won and lost deals (percentiles)",
        "formats": _DAYS,
        "labels": _LABELS,
    },
    "km_table": {
        "title": "Median days to close: open deals counted (Kaplan–Meier) and closed only",
        "formats": {**_DAYS, "closed_by_day_90": "percent", "closed_by_day_365": "percent"},
        "labels": _LABELS,
    },
    "cif_table": {
        "title": "Share of the deals won, and lost, by day 90 and day 365",
        "formats": {f"{o}_by_day_{d}": "percent" for o in ("won", "lost") for d in (90, 365)},
    },
    "bottlenecks": {
        "title": "The bottleneck stage of each segment, and the next slowest stage",
        "small_n": None,
        "formats": _STAGE_FORMATS,
        "labels": _LABELS,
    },
    "stage_table": {
        "title": "Every stage",
        "small_n": None,
        "formats": _STAGE_FORMATS,
        "labels": _LABELS,
    },
    "deals_table": {
        "small_n": None,
        "max_rows": 100,
        "formats": {**_DAYS, "close_date_pushes": "count"},
        "labels": _LABELS,
    },
    "flow_table": {
        "small_n": None,
        "title": "Flow per segment (amounts)",
        "formats": dict.fromkeys(MOVEMENTS, "money"),
        "labels": {m: label.split(" (")[0].lower() for m, label in MOVEMENTS.items()},
    },
    "levers_table": {
        "title": "Velocity and its four levers (ratios: the segment against the selection)",
        "formats": {**_DAYS, **dict.fromkeys(_LEVER_RATIOS.values(), "ratio")},
        "labels": _LABELS,
    },
    "what_if_table": {
        "title": "What-if per segment (velocity per day; extra bookings over next quarter)",
        "formats": dict.fromkeys(_WHAT_IF_MONEY, "money")
        | {"win_rate_what_if": "percent", "cycle_days_what_if": "days"},
        "labels": _LABELS,
    },
}

# --------------------------------------------------------------------------------------------
# Frames -> what the tables and sentences show


def _number(value: Any, name: str, example: str) -> float:
    """A what-if parameter as a float, or a ParameterError that shows how to write it."""
    if isinstance(value, bool):
        raise ParameterError(f"{name}={value!r} must be a number, e.g. {example}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} must be a number, e.g. {example}.") from None


def _within(value: float, name: str, low: float, high: float, example: str) -> float:
    """The range velocity_what_if accepts, checked when the value is set."""
    if not low <= value <= high:
        raise ParameterError(f"{name}={value!r} must be between {low} and {high}, e.g. {example}.")
    return value


def _ordinal(number: str) -> str:
    """ "90" -> "90th", "2" -> "2nd", "97.5" -> "97.5th"."""
    if not number.isdigit() or number[-2:] in ("11", "12", "13"):
        return f"{number}th"
    return number + {"1": "st", "2": "nd", "3": "rd"}.get(number[-1], "th")


def _threshold_text(value: str | float) -> str:
    """How a stuck threshold reads in the control: "90th percentile", "Median", "60 days"."""
    if isinstance(value, float):
        return f"{value:,.0f} days"
    return "Median" if value == "median" else f"{_ordinal(value[1:])} percentile"


_THRESHOLD = re.compile(r"p(\d{1,2}(\.\d+)?)|median")


def _threshold(value: Any) -> str | float:
    """A stuck threshold as the KPI layer takes it: "p90", "median", or a number of days."""
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    text = str(value).strip().lower()
    match = _THRESHOLD.fullmatch(text)
    if match is None or (match.group(1) and not 0 < float(match.group(1)) < 100):
        raise ParameterError(
            f"stuck_threshold={value!r}: use a percentile of the stage's usual time such as "
            "'p90', 'p75' or 'median', or a number of days such as 60."
        )
    return text


def _deals_title(threshold: str | float, only_stuck: bool, drill: Mapping[str, Any], n: int) -> str:
    """ "Stuck open deals: in their stage longer than its 90th percentile (1,107)"."""
    if isinstance(threshold, float):
        rule = f"in their stage longer than {threshold:,.0f} days"
    elif threshold == "median":
        rule = "in their stage longer than its median in the segment"
    else:
        rule = f"in their stage longer than its {_ordinal(threshold[1:])} percentile in the segment"
    what = f"Stuck open deals: {rule}" if only_stuck else f"Open deals (stuck: {rule})"
    keys = [k for k in drill if k not in ("stage", "age_band", "outcome")]
    keys += [k for k in ("stage", "age_band") if k in drill]
    where = ", ".join(str(v) for key in keys for v in drill[key])
    return f"{what}{' — ' + where if where else ''} ({n:,})"


def _labelled(frame: pd.DataFrame, dim: str) -> pd.DataFrame:
    """``frame`` with the segment column named by its label, for a legend titled "Company
    size" rather than "Size band"."""
    return frame.rename(columns={dim: dimension_label(dim)})


def _segments(dim: str) -> str:
    """A dimension in a title: "company size"."""
    return dimension_label(dim).lower()


def _paragraph(text: str) -> str:
    return f"<p {style(max_width='900px', color=COLORS['text'])}>{esc(text)}</p>"


def _days(value: Any) -> str:
    return "n/a" if pd.isna(value) else f"{value:,.0f} days"


def _gap_sentence(ttc: pd.DataFrame, dim: str) -> str:
    """Why the closed-only median is shorter, from the numbers of the selection's row."""
    row = ttc.iloc[0]
    n_open, n_closed = int(row["n_open"] or 0), int(row["n_closed"] or 0)
    naive, km = row["naive_median_days_closed_only"], row["km_median_days_to_close"]
    if n_closed == 0:
        return "No deal of this selection has closed yet: there is no time to close to show."
    if pd.isna(km):
        return (
            f"Fewer than half of these {int(row['n']):,} deals have closed, so the median time "
            f"to close is not reached yet. The median of the {n_closed:,} closed deals alone "
            f"({_days(naive)}) describes only the deals that have finished, the fastest ones."
        )
    if n_open == 0:
        return (
            f"Every deal of this selection is closed, so nothing is censored and the two medians "
            f"agree: {_days(km)}. (Select deals by created date to see the open ones.)"
        )
    gap = km - naive
    interval = ""
    if not pd.isna(row["km_median_low"]) and not pd.isna(row["km_median_high"]):
        interval = f" (95% interval {row['km_median_low']:,.0f}–{row['km_median_high']:,.0f})"
    text = (
        f"Counting only the {n_closed:,} closed deals, the median deal takes {_days(naive)} to "
        f"close. Counting the {n_open:,} open deals too, each for as long as it has been open "
        f"(Kaplan–Meier), it takes {_days(km)}{interval}. "
    )
    if gap > 0:
        text += (
            f"The closed-only median is {gap:,.0f} days ({gap / km:.0%}) shorter because it "
            "leaves out the slowest deals: the ones still open. "
        )
    else:
        text += "Here the open deals are young enough not to lengthen the median. "
    if bool(row["small_n"]):
        text += f"With {n_closed:,} closed deals, both medians are too few to say much. "
    segments = ttc.iloc[1:]
    segments = segments.assign(
        _gap=segments["km_median_days_to_close"] - segments["naive_median_days_closed_only"]
    )
    segments = segments[~segments["small_n"].astype(bool) & segments["_gap"].notna()]
    if len(segments) > 1 and segments["_gap"].max() > 0:
        top = segments.loc[segments["_gap"].idxmax()]
        text += (
            f"The gap is widest for {top[dim]}: {_days(top['naive_median_days_closed_only'])} "
            f"closed-only against {_days(top['km_median_days_to_close'])}."
        )
    return text.strip()


def _distribution_display(quantiles: pd.DataFrame, dim: str) -> pd.DataFrame:
    columns = [dim, "outcome", "deals", *(c for c in _DAY_COLUMNS if c.endswith("cycle_days"))]
    return quantiles[[*columns, "small_n"]]


def _ttc_display(ttc: pd.DataFrame, dim: str) -> pd.DataFrame:
    km, naive = ttc["km_median_days_to_close"], ttc["naive_median_days_closed_only"]
    out = pd.DataFrame(
        {
            dim: ttc[dim],
            "deals": ttc["n"],
            "closed": ttc["n_closed"],
            "open": ttc["n_open"],
            "median_days_to_close": km,
            "interval_low_days": ttc["km_median_low"],
            "interval_high_days": ttc["km_median_high"],
            "closed_only_median_days": naive,
            "gap_days": km - naive,
            "closed_by_day_90": ttc["share_closed_by_day_90"],
            "closed_by_day_365": ttc["share_closed_by_day_365"],
            "small_n": ttc["small_n"],
        }
    )
    notes = ttc["note"].fillna("")
    return out.assign(note=notes) if notes.astype(bool).any() else out


def _cif_display(cif: pd.DataFrame, dim: str) -> pd.DataFrame:
    out = cif[[dim, "n", "n_won", "n_lost", "n_open"]].rename(
        columns={"n": "deals", "n_won": "won", "n_lost": "lost", "n_open": "open"}
    )
    for outcome in ("won", "lost"):
        for day in (90, 365):
            out[f"{outcome}_by_day_{day}"] = cif[f"share_{outcome}_by_day_{day}"]
    out["small_n"] = (cif["n_won"] + cif["n_lost"]) < metrics.MIN_CLOSED
    return out


def _bottlenecks(stages: pd.DataFrame, dim: str) -> pd.DataFrame:
    """The flagged stage of each segment next to the slowest of its other stages."""
    rows = []
    for segment, part in stages.groupby(dim, sort=False):
        flagged = part[part["is_bottleneck"].fillna(False).astype(bool)]
        if flagged.empty:
            continue
        top = flagged.iloc[0]
        others = part[part["stage"] != top["stage"]].dropna(subset=["median_days_in_stage"])
        runner = others.loc[others["median_days_in_stage"].idxmax()] if len(others) else None
        rows.append(
            {
                dim: segment,
                "bottleneck_stage": top["stage"],
                "median_days_in_stage": top["median_days_in_stage"],
                "p90_days_in_stage": top["p90_days_in_stage"],
                "conversion_to_next": top["conversion_to_next"],
                "stays": top["entered"],
                "next_slowest_stage": runner["stage"] if runner is not None else "",
                "next_stage_median_days": (
                    runner["median_days_in_stage"] if runner is not None else np.nan
                ),
            }
        )
    return pd.DataFrame(rows)


def _stages_display(stages: pd.DataFrame, dim: str) -> pd.DataFrame:
    columns = [dim, "stage", "entered", "moved_to_next", "lost", "still_in_stage"]
    columns += ["conversion_to_next", "median_days_in_stage", "p90_days_in_stage"]
    out = stages[columns].rename(columns={"entered": "stays", "moved_to_next": "moved_on"})
    out["bottleneck"] = stages["is_bottleneck"].map({True: "yes", False: ""}).fillna("")
    return out


def _narrow(
    deals: pd.DataFrame, drill: Mapping[str, list[Any]], dim: str, aging: pd.DataFrame | None
) -> pd.DataFrame:
    """The open deals of the clicked segment, stage and age band."""
    keep = pd.Series(True, index=deals.index)
    if drill.get(dim):
        keep &= deals[dim].astype(str).isin([str(v) for v in drill[dim]])
    if drill.get("stage"):
        keep &= deals["stage"].astype(str).isin([str(v) for v in drill["stage"]])
    if drill.get("age_band") and aging is not None:
        bands = aging.drop_duplicates("age_band").set_index("age_band")
        inside = pd.Series(False, index=deals.index)
        for band in drill["age_band"]:
            if band in bands.index:
                low, high = bands.loc[band, "band_low"], bands.loc[band, "band_high"]
                inside |= deals["age_days"].between(low, high)
        keep &= inside
    return deals[keep]


def _deals_display(deals: pd.DataFrame, dim: str) -> pd.DataFrame:
    columns = ["opportunity_id", "owner", dim, "stage", "days_in_stage", "threshold_days"]
    columns += ["amount", "age_days", "close_date_pushes"]
    out = deals[[c for c in dict.fromkeys(columns) if c in deals.columns]].copy()
    out.insert(out.columns.get_loc("threshold_days") + 1, "stuck", deals["stuck"].map(_yes))
    return out


def _yes(value: Any) -> str:
    return "yes" if bool(value) else "no"


def _flow_bars(flow: pd.DataFrame) -> pd.DataFrame:
    """The movements as bars: what left the pipeline (won, lost) below zero."""
    out = flow.copy()
    out["amount"] = np.where(out["sign"] < 0, -out["amount"], out["amount"])
    out["movement"] = out["movement"].map(MOVEMENTS)
    return out[["movement", "amount", "deals"]]


def _flow_sentence(flow: pd.DataFrame, start: Any, end: Any, data: SalesData) -> str:
    m = flow.set_index("movement")
    money = data.base_currency

    def amount(name: str) -> str:
        return format_value(m.loc[name, "amount"], "money", currency=money, compact=True)

    text = (
        f"At the end of {start}, {int(m.loc['open_at_start', 'deals']):,} deals worth "
        f"{amount('open_at_start')} were open. By the end of {end}, "
        f"{int(m.loc['new', 'deals']):,} new deals ({amount('new')}) came in, "
        f"{int(m.loc['won', 'deals']):,} were won ({amount('won')}) and "
        f"{int(m.loc['lost', 'deals']):,} lost ({amount('lost')}), leaving "
        f"{int(m.loc['open_at_end', 'deals']):,} open ({amount('open_at_end')}). "
    )
    if "pushed" in m.index:
        text += (
            f"Of the deals open on both dates, {int(m.loc['pushed', 'deals']):,} had their "
            f"expected close date pushed later ({amount('pushed')}) and "
            f"{int(m.loc['pulled_in', 'deals']):,} pulled in ({amount('pulled_in')})."
        )
    else:
        text += f"Pushed and pulled-in deals are not shown: {flow.attrs.get('note', '')}."
    if flow.attrs.get("unknown_close"):
        text += f" {flow.attrs['unknown_close']:,} closed deals without a close date are left out."
    return text + " Amounts are the deals' current amounts; the period filter does not apply."


def _flow_display(flow_by: pd.DataFrame, dim: str) -> pd.DataFrame:
    """One row per segment, one column per movement (its amount)."""
    if flow_by.empty:
        return pd.DataFrame()
    wide = flow_by.pivot_table(index=dim, columns="movement", values="amount", sort=False)
    shown = [m for m in MOVEMENTS if m in wide.columns]
    return wide[shown].reset_index().rename_axis(columns=None)


def _levers_display(levers: pd.DataFrame, dim: str) -> pd.DataFrame:
    columns = [dim, "open", "win_rate", "asp", "km_median_days_to_close", "velocity"]
    out = levers[[*columns, *_LEVER_RATIOS, "small_n"]]
    return out.rename(columns={"km_median_days_to_close": "median_days_to_close", **_LEVER_RATIOS})


def _what_if_display(what_if: pd.DataFrame, dim: str) -> pd.DataFrame:
    columns = [dim, "open", "velocity", "velocity_what_if", "velocity_change", "extra_bookings"]
    columns += ["win_rate_what_if", "asp_what_if", "cycle_days_what_if", "small_n"]
    return what_if[columns]


def _what_if_headline(
    row: pd.Series, start: Any, end: Any, currency: str | None, why: Sequence[str]
) -> str:
    """The what-if in one sentence; when velocity cannot be computed or is 0, why, in words."""

    def money(value: Any) -> str:
        return format_value(value, "money", currency=currency, compact=True)

    if pd.isna(row["velocity"]) or pd.isna(row["velocity_what_if"]):
        reason = (
            why[0]
            if why
            else (
                "no won deal, no open deal with an amount, or fewer than half of the deals closed"
            )
        )
        return f"Velocity cannot be computed for this selection ({reason}): nothing to project."
    if not row["velocity"]:
        return (
            "This selection has no open pipeline with an amount, so velocity is 0 a day and "
            "speeding it up adds nothing."
        )
    change = row["velocity_change"] / row["velocity"]
    days = (end - start).days + 1
    return (
        f"Velocity goes from {money(row['velocity'])} to {money(row['velocity_what_if'])} a "
        f"day ({change:+.0%}): about {money(row['extra_bookings'])} more bookings over the "
        f"next quarter ({start} to {end}, {days} days)."
    )


def _what_if_html(
    what_if: pd.DataFrame, start: Any, end: Any, currency: str | None, why: Sequence[str] = ()
) -> str:
    headline = _what_if_headline(what_if.iloc[0], start, end, currency, why)
    assumptions = [
        *what_if.attrs.get("assumptions", []),
        "the open deals, win rate, ASP and days to close are those of the deals the filters select",
    ]
    items = "".join(f"<li>{esc(a)}</li>" for a in assumptions)
    big = style(font_size="16px", margin="6px 0", color=COLORS["text"])
    muted = style(color=COLORS["neutral"], font_size="13px", margin="4px 0")
    return (
        f'<div class="salesops-what-if"><p {big}><b>{esc(headline)}</b></p>'
        f"<div {muted}>Assumptions:<ul>{items}</ul></div></div>"
    )
