"""Tests for salesops_widgets/metrics/_flow.py: the pipeline bridge between two dates."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_widgets import load
from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics import deals, pipeline_flow


def opp(oid, created, close, status, amount):
    return {
        "opportunity_id": oid,
        "created_date": pd.Timestamp(created),
        "close_date": pd.Timestamp(close),
        "is_closed": status != "open",
        "is_won": status == "won",
        "amount": float(amount),
        "stage": {"open": "Proposal", "won": "Closed Won", "lost": "Closed Lost"}[status],
    }


def hist(oid, entered, close, stage="Proposal"):
    return {
        "opportunity_id": oid,
        "stage": stage,
        "entered_at": pd.Timestamp(entered),
        "close_date": pd.Timestamp(close),
    }


# Window: end of 2025-03-31 to end of 2025-06-30 (as of 2025-06-30).
# O1 created Jan, still open: open at start and at end; expected close 04-30 at start, 07-31 at
#    end -> pushed.
# O2 created Feb, won 05-15: open at start, won in the window.
# O3 created Apr, lost 06-01: new, lost.
# O4 created May, open: new, open at end.
# O5 created Jan, won 03-31: closed at start's end -> not open at start, not won in the window.
# O6 created Jan, open: expected close 09-30 at start, 08-31 at end -> pulled in.
# open_at_start = O1, O2, O6 = 3 (100 + 200 + 600 = 900); new = O3, O4 = 2 (300 + 400 = 700)
# won = O2 (200), lost = O3 (300); open_at_end = O1, O4, O6 = 3 (100 + 400 + 600 = 1100)
# bridge: 3 + 2 - 1 - 1 = 3 deals; 900 + 700 - 200 - 300 = 1100
OPPS = [
    opp("O1", "2025-01-10", "2025-07-31", "open", 100),
    opp("O2", "2025-02-10", "2025-05-15", "won", 200),
    opp("O3", "2025-04-10", "2025-06-01", "lost", 300),
    opp("O4", "2025-05-10", "2025-08-31", "open", 400),
    opp("O5", "2025-01-10", "2025-03-31", "won", 500),
    opp("O6", "2025-01-10", "2025-08-31", "open", 600),
]
HIST = [
    hist("O1", "2025-01-10", "2025-04-30"),
    hist("O1", "2025-04-20", "2025-07-31", "Negotiation"),
    hist("O2", "2025-02-10", "2025-05-31"),
    hist("O6", "2025-01-10", "2025-09-30"),
    hist("O6", "2025-06-30 17:00", "2025-08-31", "Negotiation"),  # the last day counts
]


@pytest.fixture(scope="module")
def tiny_window():
    frames = {"opportunities": pd.DataFrame(OPPS), "stage_history": pd.DataFrame(HIST)}
    return load(frames, as_of="2025-06-30")


def _as_dict(frame: pd.DataFrame, column: str) -> dict:
    return dict(zip(frame["movement"], frame[column], strict=True))


def test_flow_by_hand(tiny_window):
    out = pipeline_flow(tiny_window, start="2025-03-31", end="2025-06-30")
    assert _as_dict(out, "deals") == {
        "open_at_start": 3,
        "new": 2,
        "won": 1,
        "lost": 1,
        "open_at_end": 3,
        "pushed": 1,
        "pulled_in": 1,
    }
    assert _as_dict(out, "amount") == {
        "open_at_start": 900.0,
        "new": 700.0,
        "won": 200.0,
        "lost": 300.0,
        "open_at_end": 1100.0,
        "pushed": 100.0,
        "pulled_in": 600.0,
    }


def test_flow_without_history_has_no_slips():
    data = load({"opportunities": pd.DataFrame(OPPS)}, as_of="2025-06-30")
    out = pipeline_flow(data, start="2025-03-31", end="2025-06-30")
    assert "pushed" not in set(out["movement"])
    assert "stage_history" in out.attrs["note"]


def test_flow_bridge_and_pandas_on_the_sample(sample):
    start, end = pd.Timestamp("2026-06-30"), pd.Timestamp("2026-09-30")
    out = pipeline_flow(sample, start="2026-06-30", end="2026-09-30", by=["size_band"])
    d = deals(sample).to_pandas()
    for band, part in out.groupby("size_band"):
        got = _as_dict(part, "deals")
        ref = d[d["size_band"] == band]
        created, close = pd.to_datetime(ref["created_date"]), pd.to_datetime(ref["close_date"])

        def open_on(day, created=created, close=close, ref=ref):
            return (created <= day) & (~ref["is_closed"] | (close > day))

        closed_in = ref["is_closed"] & (close > start) & (close <= end)
        assert got["open_at_start"] == open_on(start).sum()
        assert got["new"] == ((created > start) & (created <= end)).sum()
        assert got["won"] == (closed_in & ref["is_won"]).sum()
        assert got["lost"] == (closed_in & ~ref["is_won"]).sum()
        assert got["open_at_end"] == open_on(end).sum()
        bridge = (part["sign"] * part["amount"]).sum()
        assert bridge == pytest.approx(_as_dict(part, "amount")["open_at_end"])


def test_flow_bad_dates(tiny_window):
    with pytest.raises(ParameterError, match="swap"):
        pipeline_flow(tiny_window, start="2025-06-30", end="2025-03-31")
    with pytest.raises(ParameterError, match="after the as-of"):
        pipeline_flow(tiny_window, start="2025-03-31", end="2025-12-31")
    with pytest.raises(ParameterError, match="YYYY-MM-DD"):
        pipeline_flow(tiny_window, start="last week", end="2025-06-30")
