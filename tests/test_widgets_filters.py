"""FilterBar, period presets and the comparison period.

Expected values are computed by hand (dates, in comments) or with pandas on the raw tables,
never taken from the widget's own output.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as w
import pandas as pd
import pytest

from salesops_widgets import metrics
from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import (
    FILTER_DIMENSIONS,
    FilterBar,
    period_for_preset,
    previous_period,
)

D = dt.date


@pytest.fixture(scope="module")
def raw(sample):
    """Opportunities joined by hand to their account's region and industry (pandas only)."""
    opps = sample.opportunities.to_pandas()
    accounts = sample.accounts.to_pandas()[["account_id", "region", "industry", "size_band"]]
    frame = opps.merge(accounts, on="account_id", how="left")
    for col in ("region", "industry", "size_band"):
        frame[col] = frame[col].fillna("(not set)")
    frame["created"] = pd.to_datetime(frame["created_date"]).dt.date
    frame["closed_on"] = pd.to_datetime(frame["close_date"]).dt.date
    return frame


# --------------------------------------------------------------------------------------------
# presets


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("all", (None, None)),
        # 90 days ending 14 Feb: Feb 1-14 (14) + Jan (31) + Dec (31) + Nov 17-30 (14) = 90
        ("last_90_days", (D(2024, 11, 17), D(2025, 2, 14))),
        ("this_quarter", (D(2025, 1, 1), D(2025, 2, 14))),
        ("last_quarter", (D(2024, 10, 1), D(2024, 12, 31))),
        ("ytd", (D(2025, 1, 1), D(2025, 2, 14))),
        # the day after 14 Feb 2024, to 14 Feb 2025
        ("last_12_months", (D(2024, 2, 15), D(2025, 2, 14))),
        ("Year to date", (D(2025, 1, 1), D(2025, 2, 14))),  # labels work too
    ],
)
def test_presets_for_a_fixed_as_of(preset, expected):
    assert period_for_preset(preset, D(2025, 2, 14)) == expected


def test_presets_in_the_fourth_quarter_and_on_a_leap_day():
    assert period_for_preset("this_quarter", D(2025, 11, 5)) == (D(2025, 10, 1), D(2025, 11, 5))
    assert period_for_preset("last_quarter", D(2025, 11, 5)) == (D(2025, 7, 1), D(2025, 9, 30))
    # 29 Feb 2024 a year back is 28 Feb 2023 (no 29th); the period starts the day after
    assert period_for_preset("last_12_months", D(2024, 2, 29)) == (D(2023, 3, 1), D(2024, 2, 29))


def test_bad_presets_say_what_to_do():
    with pytest.raises(ParameterError, match="'ytd'"):
        period_for_preset("last_week", D(2025, 1, 1))
    with pytest.raises(ParameterError, match="period="):
        period_for_preset("custom", D(2025, 1, 1))


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ((D(2025, 1, 1), D(2025, 3, 31)), (D(2024, 10, 1), D(2024, 12, 31))),  # Q1 -> Q4
        ((D(2024, 1, 1), D(2024, 12, 31)), (D(2023, 1, 1), D(2023, 12, 31))),  # a year
        ((D(2024, 3, 1), D(2024, 3, 31)), (D(2024, 2, 1), D(2024, 2, 29))),  # March -> Feb (leap)
        # 10 days (10th to 19th) -> the 10 days before: 28 Feb to 9 Mar (2025 is not leap)
        ((D(2025, 3, 10), D(2025, 3, 19)), (D(2025, 2, 28), D(2025, 3, 9))),
        ((D(2025, 3, 10), D(2025, 3, 10)), (D(2025, 3, 9), D(2025, 3, 9))),
        (("2025-01-01", "2025-02-14"), (D(2024, 11, 17), D(2024, 12, 31))),  # 45 days
    ],
)
def test_previous_period(period, expected):
    assert previous_period(*period) == expected


def test_previous_period_of_an_open_period_is_refused():
    with pytest.raises(ParameterError, match="All time"):
        previous_period(None, D(2025, 1, 1))


# --------------------------------------------------------------------------------------------
# options


def test_default_dimensions_are_the_low_cardinality_ones_present(sample):
    bar = FilterBar(sample)
    present = metrics.available_dimensions(sample)
    assert bar.dimensions == [d for d in FILTER_DIMENSIONS if d in present]
    assert "account" not in bar.dimensions and "owner" not in bar.dimensions


def test_options_are_the_distinct_values_with_their_counts(sample, raw):
    bar = FilterBar(sample, dimensions=["region", "industry", "deal_type"])
    for dim in ("region", "industry", "deal_type"):
        expected = raw[dim].fillna("(not set)").astype(str).value_counts().to_dict()
        assert dict(bar.options[dim]) == expected, dim
    # and the multi-select offers exactly those values
    assert [v for _, v in bar._selects["region"].options] == sorted(
        raw["region"].unique(), key=str.lower
    )


def test_too_many_values_are_refused(sample):
    with pytest.raises(ParameterError, match="too many"):
        FilterBar(sample, dimensions=["account"])  # 2,500 accounts


def test_default_dimensions_with_too_many_values_are_left_out_and_named(sample, raw, monkeypatch):
    # At 100M rows the synthetic data has 3,574 teams: the dashboards must still open.
    from salesops_widgets.widgets import _filters

    industries = raw["industry"].nunique()
    regions = raw["region"].nunique()
    assert regions < industries  # the sample: a few regions, more industries
    monkeypatch.setattr(_filters, "MAX_OPTIONS", regions)
    kept = raw["industry"].iloc[0]
    bar = FilterBar(sample, filters={"industry": [kept]})
    assert "industry" not in bar.dimensions and "region" in bar.dimensions
    assert bar.left_out["industry"] == industries
    note = " ".join(c.value for c in bar.children if isinstance(c, w.HTML))
    assert f"industry ({industries:,} values)" in note and "filters=" in note
    # the parameters' filter on the unlisted dimension applies, and survives a list change
    region = raw["region"].iloc[0]
    bar._selects["region"].value = (region,)
    assert bar.selection["filters"] == {"industry": [kept], "region": [region]}


# --------------------------------------------------------------------------------------------
# selection -> the KPI layer


def test_selection_gives_the_same_numbers_as_pandas_by_hand(sample, raw):
    bar = FilterBar(
        sample,
        preset="last_12_months",
        filters={"region": ["EMEA", "APAC"], "size_band": ["Enterprise"]},
    )
    start, end = bar.period
    assert end == sample.as_of
    kpis = metrics.segment_kpis(sample, **bar.selection).iloc[0]
    mask = (
        raw["region"].isin(["EMEA", "APAC"])
        & (raw["size_band"] == "Enterprise")
        & (raw["created"] >= start)
        & (raw["created"] <= end)
    )
    chosen = raw[mask]
    won, lost = (chosen["status"] == "won").sum(), (chosen["status"] == "lost").sum()
    assert kpis["opportunities"] == len(chosen)
    assert kpis["won"] == won and kpis["lost"] == lost
    assert kpis["win_rate"] == pytest.approx(won / (won + lost))
    assert kpis["bookings"] == pytest.approx(chosen.loc[chosen["status"] == "won", "amount"].sum())


def test_closed_date_selection_leaves_open_deals_out(sample, raw):
    bar = FilterBar(sample, period=("2025-01-01", "2025-06-30"), date_field="closed_date")
    assert bar.preset == "custom"
    kpis = metrics.segment_kpis(sample, **bar.selection).iloc[0]
    closed = raw[
        raw["is_closed"]
        & (raw["closed_on"] >= D(2025, 1, 1))
        & (raw["closed_on"] <= D(2025, 6, 30))
    ]
    assert kpis["opportunities"] == len(closed)
    assert kpis["open"] == 0


def test_all_time_selection_has_no_period(sample):
    bar = FilterBar(sample)
    assert bar.selection == {"filters": {}, "period": None, "date_field": "created_date"}
    assert bar.comparison_selection() is None


def test_comparison_selection_is_the_previous_period(sample):
    bar = FilterBar(sample, preset="last_quarter", filters={"region": "EMEA"})
    # as_of 2026-09-30 -> last quarter is Q2 2026, the one before it Q1 2026
    assert bar.period == (D(2026, 4, 1), D(2026, 6, 30))
    assert bar.comparison_selection() == {
        "filters": {"region": ["EMEA"]},
        "period": (D(2026, 1, 1), D(2026, 3, 31)),
        "date_field": "created_date",
    }


# --------------------------------------------------------------------------------------------
# state rules and validation


def test_preset_and_period_stay_consistent(sample):
    bar = FilterBar(sample, preset="ytd")
    assert bar.period == (D(2026, 1, 1), D(2026, 9, 30))
    bar.period = ("2026-02-01", "2026-03-01")  # dates of no preset -> custom
    assert bar.preset == "custom"
    assert bar.selection["period"] == (D(2026, 2, 1), D(2026, 3, 1))
    bar.preset = "all"
    assert bar.period == (None, None) and bar.selection["period"] is None


def test_filters_are_validated_with_the_fix(sample):
    bar = FilterBar(sample)
    with pytest.raises(ParameterError, match=r"dimensions=\[\.\.\., 'owner'\]"):
        bar.filters = {"owner": ["Kofi Ueda"]}
    with pytest.raises(ParameterError, match="not a value of region"):
        bar.filters = {"region": ["Atlantis"]}
    bar.filters = {"region": "EMEA", "industry": [], "team": "All"}  # normalised
    assert bar.filters == {"region": ["EMEA"]}


@pytest.mark.parametrize(
    ("trait", "value", "match"),
    [
        ("period", ("2025-03-01", "2025-01-01"), "swap"),
        ("period", ("yesterday", None), "YYYY-MM-DD"),
        ("period", "2025-01-01", "two dates"),
        ("date_field", "won_date", "created_date"),
        ("preset", "fortnight", "preset"),
    ],
)
def test_bad_trait_values_raise_parameter_errors(sample, trait, value, match):
    bar = FilterBar(sample)
    with pytest.raises(ParameterError, match=match):
        setattr(bar, trait, value)


def test_unknown_dimension_argument(sample):
    with pytest.raises(ParameterError, match="not a dimension"):
        FilterBar(sample, dimensions=["regoin"])


def test_preset_and_period_that_disagree_are_refused(sample):
    with pytest.raises(ParameterError, match="disagree"):
        FilterBar(sample, preset="ytd", period=("2025-01-01", "2025-02-01"))


# --------------------------------------------------------------------------------------------
# the controls, as a user moves them


def test_controls_drive_the_traits(sample):
    bar = FilterBar(sample)
    bar._selects["region"].value = ("EMEA", "LATAM")
    assert bar.filters == {"region": ["EMEA", "LATAM"]}
    bar._preset.value = "this_quarter"
    assert bar.period == (D(2026, 7, 1), D(2026, 9, 30))
    bar._start.value = D(2026, 8, 1)
    assert bar.preset == "custom" and bar.period == (D(2026, 8, 1), D(2026, 9, 30))
    bar._date_field.value = "closed_date"
    assert bar.selection["date_field"] == "closed_date"


def test_traits_drive_the_controls(sample):
    bar = FilterBar(sample)
    bar.filters = {"industry": ["Healthcare"]}
    bar.preset = "ytd"
    assert bar._selects["industry"].value == ("Healthcare",)
    assert bar._preset.value == "ytd"
    assert (bar._start.value, bar._end.value) == (D(2026, 1, 1), D(2026, 9, 30))


def test_a_bad_control_value_shows_a_message_not_a_traceback(sample):
    bar = FilterBar(sample, period=("2026-01-01", "2026-02-01"))
    bar._start.value = D(2026, 3, 1)  # after the end
    assert "swap" in bar._message.value
    assert bar.period == (D(2026, 1, 1), D(2026, 2, 1))
    assert bar._start.value == D(2026, 1, 1)  # the control is put back


def test_reset_returns_to_the_initial_state(sample):
    bar = FilterBar(sample, preset="ytd", filters={"region": ["EMEA"]})
    bar._selects["team"].value = (bar.options["team"][0][0],)
    bar._preset.value = "all"
    bar._reset.click()
    assert bar.filters == {"region": ["EMEA"]}
    assert bar.preset == "ytd" and bar.period == (D(2026, 1, 1), D(2026, 9, 30))


def test_as_of_is_shown(sample):
    assert "2026-09-30" in FilterBar(sample)._as_of.value
