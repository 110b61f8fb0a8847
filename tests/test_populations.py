"""Which deals each KPI counts (salesops_widgets/data/_populations.py), and the invariants that
follow: a CRM convention (an open deal without an amount, a lost deal at $0) never moves a KPI
that does not need the missing field.

Expected numbers are counted by hand on the small frames below (shown in comments).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesops_widgets import load, metrics

AS_OF = dt.date(2025, 6, 30)


def _opps(rows: list[tuple]) -> pd.DataFrame:
    cols = ["opportunity_id", "stage", "amount", "list_amount", "created_date", "close_date"]
    frame = pd.DataFrame(rows, columns=cols)
    for c in ("created_date", "close_date"):
        frame[c] = pd.to_datetime(frame[c])
    return frame


# id  stage        amount  list  created     closed        what it tests
# a   Closed Won     90    100   2025-01-01  2025-01-31    won, priced (10% off), 30 days
# b   Closed Won      -    100   2025-01-01  2025-03-02    won without an amount
# c   Closed Lost     0    100   2025-01-01  2025-02-01    lost at $0: never discounted
# d   Closed Lost   400    500   2025-02-01  2025-01-15    closed before created: no cycle
# e   Proposal        -      -   2025-03-01  -             open without an amount
# f   Prospecting     -      -   -           -             open, no created date
SMALL = [
    ("a", "Closed Won", 90.0, 100.0, "2025-01-01", "2025-01-31"),
    ("b", "Closed Won", None, 100.0, "2025-01-01", "2025-03-02"),
    ("c", "Closed Lost", 0.0, 100.0, "2025-01-01", "2025-02-01"),
    ("d", "Closed Lost", 400.0, 500.0, "2025-02-01", "2025-01-15"),
    ("e", "Proposal", None, None, "2025-03-01", None),
    ("f", "Prospecting", None, None, None, None),
]
MAPPING = "canonical"  # its stage map knows Proposal and Prospecting


@pytest.fixture(scope="module")
def small():
    return load({"opportunities": _opps(SMALL)}, mapping=MAPPING, as_of=AS_OF)


def test_no_row_is_excluded_for_a_crm_convention(small):
    rep = small.report.tables["opportunities"]
    assert (rep.rows_read, rep.rows_used, rep.excluded) == (6, 6, {})
    assert rep.flagged == {"close_before_created": 1}  # d: kept, flagged


def test_each_kpi_counts_its_population_by_hand(small):
    pops = {p["kpi"]: p for p in small.report.populations}
    assert pops["win rate"]["rows_in"] == 4  # a b c d
    assert pops["win rate"]["left_out"] == {"open: not won or lost yet": 2}  # e f
    assert pops["bookings and ASP"]["rows_in"] == 1  # a (b won without an amount)
    assert pops["bookings and ASP"]["left_out"] == {"not won": 4, "won without an amount": 1}
    assert pops["portfolio discount"]["rows_in"] == 1  # a; b has no amount
    assert pops["portfolio discount"]["left_out"] == {
        "not won (the discount is that of the price realized)": 4,  # c d e f
        "won with no amount, or $0": 1,  # b
    }
    # c (lost at $0) is in no discount band; d is (20% off, a quote)
    assert pops["win rate by discount band"]["rows_in"] == 2  # a d
    assert pops["time to close"]["rows_in"] == 4  # a b c e
    assert pops["time to close"]["left_out"] == {
        "no created date": 1,  # f
        "closed before its created date": 1,  # d
    }
    for p in pops.values():
        assert p["rows_in"] + sum(p["left_out"].values()) == 6


def test_kpis_on_the_small_frame_by_hand(small):
    k = metrics.segment_kpis(small).iloc[0]
    assert k["win_rate"] == pytest.approx(2 / 4)  # a b won; c d lost
    assert k["bookings"] == 90 and k["asp"] == 90  # b has no amount: not a $0 sale
    assert k["portfolio_discount"] == pytest.approx(1 - 90 / 100)  # a only
    assert math.isnan(k["open_pipeline"]) and math.isnan(k["velocity"])  # e f: no amount
    assert math.isnan(k["value_win_rate"]) is False  # d lost with an amount: 90 / (90 + 400)
    assert k["value_win_rate"] == pytest.approx(90 / 490)
    ttc = metrics.time_to_close(small).iloc[0]
    # durations: a 30, b 60, c 31 (events), e censored at 121 (Mar 1 -> Jun 30)
    assert (ttc["n"], ttc["n_closed"], ttc["n_open"]) == (4, 3, 1)
    assert ttc["naive_median_days_closed_only"] == 31


def test_starved_views_are_named_with_their_reason(small):
    warnings = small.report.all_warnings
    assert "all 2 open deals have no amount: open pipeline and velocity cannot be computed" in (
        warnings
    )
    assert small.report.warnings_for("km_median_days_to_close") == []  # e is censored


def test_no_open_deals_warns_that_time_to_close_is_not_censored():
    closed = [r for r in SMALL if not r[1].startswith(("Proposal", "Prospecting"))]
    data = load({"opportunities": _opps(closed)}, as_of=AS_OF)
    assert any(
        w.startswith("no open deals: time to close cannot be censored")
        for w in (data.report.all_warnings)
    )


def test_lost_deals_all_at_zero_make_the_value_win_rate_undefined():
    rows = [r for r in SMALL if r[0] != "d"]  # c is the only lost deal, at $0
    data = load({"opportunities": _opps(rows)}, mapping=MAPPING, as_of=AS_OF)
    k = metrics.segment_kpis(data).iloc[0]
    assert math.isnan(k["value_win_rate"])  # not 100%
    assert any("value win rate cannot be computed" in w for w in data.report.all_warnings)


# --------------------------------------------------------------------------------------------------
# Property: open deals without an amount never move win rate or ASP, and never pull the
# Kaplan–Meier median below the median of the closed deals


_closed_deal = st.tuples(
    st.booleans(),  # won
    st.integers(min_value=1, max_value=5_000),  # amount
    st.integers(min_value=0, max_value=400),  # created, days before the as-of date
    st.integers(min_value=0, max_value=300),  # cycle days
)


def _frame(closed: list[tuple], open_ages: list[int]) -> pd.DataFrame:
    rows = []
    for i, (won, amount, back, cycle) in enumerate(closed):
        created = AS_OF - dt.timedelta(days=back + cycle)
        stage = "Closed Won" if won else "Closed Lost"
        rows.append((f"c{i}", stage, float(amount), None, created, created + dt.timedelta(cycle)))
    for j, age in enumerate(open_ages):
        rows.append((f"o{j}", "Proposal", None, None, AS_OF - dt.timedelta(days=age), None))
    return _opps(rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    closed=st.lists(_closed_deal, min_size=2, max_size=25),
    open_ages=st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=25),
)
def test_open_deals_without_amount_never_move_win_rate_or_asp(closed, open_ages):
    base = load({"opportunities": _frame(closed, [])}, mapping=MAPPING, as_of=AS_OF)
    more = load({"opportunities": _frame(closed, open_ages)}, mapping=MAPPING, as_of=AS_OF)
    a, b = metrics.segment_kpis(base).iloc[0], metrics.segment_kpis(more).iloc[0]
    for kpi in ("win_rate", "asp", "bookings"):
        assert b[kpi] == pytest.approx(a[kpi], nan_ok=True), kpi
    ttc = metrics.time_to_close(more).iloc[0]
    closed_only = metrics.time_to_close(base).iloc[0]["naive_median_days_closed_only"]
    assert ttc["naive_median_days_closed_only"] == pytest.approx(closed_only, nan_ok=True)
    km = ttc["km_median_days_to_close"]  # NaN: not reached, i.e. beyond the follow-up
    if not np.isnan(closed_only):
        assert np.isnan(km) or km >= closed_only - 1e-9
