"""The segment KPI table and sales velocity (salesops_widgets.metrics._segments), and
`salesops kpis`."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from salesops_widgets import load
from salesops_widgets.cli import app
from salesops_widgets.metrics import _engine, segment_kpis, time_to_close, velocity
from salesops_widgets.metrics._segments import SEGMENT_COLUMNS

# The columns issue 3 requires of `salesops kpis`.
REQUIRED = [
    "opportunities", "won", "lost", "open", "win_rate", "win_rate_low", "win_rate_high", "asp",
    "bookings", "median_cycle_days_won", "km_median_days_to_close", "portfolio_discount",
    "small_n",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_segments():
    return _tiny()


def _tiny():
    # segment A: won 100 (list 125) in 10 days, won 300 (list 300) in 30 days, lost 50 in 20
    # days, open 200 for 40 days (as-of 2025-03-01, created 2025-01-20).
    # segment B: one open deal.
    frame = pd.DataFrame(
        {
            "opportunity_id": ["A1", "A2", "A3", "A4", "B1"],
            "created_date": ["2025-01-01", "2025-01-01", "2025-01-01", "2025-01-20", "2025-02-01"],
            "close_date": ["2025-01-11", "2025-01-31", "2025-01-21", "2025-04-01", "2025-04-01"],
            "amount": [100, 300, 50, 200, 70],
            "list_amount": [125, 300, 50, 200, 70],
            "stage": ["Closed Won", "Closed Won", "Closed Lost", "Proposal", "Proposal"],
            "deal_type": ["A", "A", "A", "A", "B"],
        }
    )
    return load({"opportunities": frame}, as_of="2025-03-01")


def test_velocity_by_hand():
    # 10 open x 0.3 x 5,000 / 60 days = 250 a day
    assert velocity(10, 0.3, 5000, 60)[0] == pytest.approx(250.0)
    # undefined factors and a non-positive cycle give NaN, never inf
    out = velocity([1, 1, 1], [np.nan, 0.5, 0.5], [100, 100, 100], [10, 0, np.nan])
    assert np.isnan(out).all()


def test_segment_table_by_hand(tiny_segments):
    table = segment_kpis(tiny_segments, by=["deal_type"]).set_index("deal_type")
    a = table.loc["A"]
    assert (a.opportunities, a.open, a.won, a.lost) == (4, 1, 2, 1)
    assert a.win_rate == pytest.approx(2 / 3)  # won 2 / (won 2 + lost 1)
    assert a.bookings == 400 and a.asp == pytest.approx(200)  # (100 + 300) / 2
    assert a.median_cycle_days_won == pytest.approx(20)  # median of 10 and 30 days
    # KM on durations 10 (close), 20 (close), 30 (close), 40 (open, censored):
    # S(10) = 3/4, S(20) = 3/4 x 2/3 = 1/2 -> median where S first reaches 0.5, at day 20;
    # the curve stays at 1/2 until day 30, so the midpoint convention gives (20 + 30) / 2 = 25
    assert a.km_median_days_to_close == pytest.approx(25)
    # portfolio discount, on the won deals (the price realized): 1 - (100 + 300) / (125 + 300);
    # the lost and the open deal are quotes, not prices realized
    assert a.portfolio_discount == pytest.approx(1 - 400 / 425)
    # velocity: 1 open x 2/3 x 200 / 25 days
    assert a.velocity == pytest.approx(1 * (2 / 3) * 200 / 25)
    assert bool(a.small_n)  # 3 closed deals: too few to say
    b = table.loc["B"]
    assert b.opportunities == 1 and np.isnan(b.win_rate) and np.isnan(b.velocity)


def test_segment_table_matches_pandas_and_the_km_function(sample):
    table = segment_kpis(sample, by=["size_band"]).set_index("size_band")
    assert list(table.columns) == list(SEGMENT_COLUMNS)
    deals = sample.opportunities.to_pandas().merge(
        sample.accounts.to_pandas()[["account_id", "size_band"]], on="account_id"
    )
    g = deals.groupby("size_band")["status"]
    won = g.apply(lambda s: (s == "won").sum())
    lost = g.apply(lambda s: (s == "lost").sum())
    pd.testing.assert_series_equal(
        table["win_rate"], (won / (won + lost)).rename("win_rate"), check_names=False
    )
    km = time_to_close(sample, by=["size_band"]).set_index("size_band")
    pd.testing.assert_series_equal(
        table["km_median_days_to_close"], km["km_median_days_to_close"], check_names=False
    )
    # planted: Enterprise deals are the largest; SMB wins most often
    assert table["asp"].idxmax() == "Enterprise"
    assert table["win_rate"].idxmax() == "SMB"


def _count_queries(data, monkeypatch) -> list:
    """Every engine query a KPI runs from now on: through Ibis, or as SQL kept by run_query;
    and every compilation (appended as "compile")."""
    backend, queries = type(data.con), []
    execute, compile_, fetch = backend.execute, backend.compile, _engine._fetch

    def counted(self, expr, **kw):
        queries.append(expr)
        return execute(self, expr, **kw)

    def compiled(self, expr, **kw):
        queries.append("compile")
        return compile_(self, expr, **kw)

    def fetched(backend_, sql, schema):
        queries.append(sql)
        return fetch(backend_, sql, schema)

    monkeypatch.setattr(backend, "execute", counted)
    monkeypatch.setattr(backend, "compile", compiled)
    monkeypatch.setattr(_engine, "_fetch", fetched)
    return queries


def test_segment_table_is_one_engine_query(monkeypatch):
    tiny = _tiny()
    segment_kpis(tiny, by=["deal_type"])  # builds the deals table first
    queries = _count_queries(tiny, monkeypatch)
    table = segment_kpis(tiny, by=["deal_type"], filters={"deal_type": ["A", "B"]})
    # sums, won median and Kaplan–Meier counts all from one grouped query (A: 4 deals, B: 1)
    assert [q for q in queries if q != "compile"] and len(queries) == 2  # compiled, then run
    assert table["opportunities"].tolist() == [4, 1]


def test_repeated_refresh_reuses_the_compiled_query(monkeypatch):
    tiny = _tiny()
    first = segment_kpis(tiny, by=["deal_type"], filters={"deal_type": ["A", "B"]})
    queries = _count_queries(tiny, monkeypatch)
    again = segment_kpis(tiny, by=["deal_type"], filters={"deal_type": ["A", "B"]})
    assert "compile" not in queries and len(queries) == 1  # the kept SQL, run once
    pd.testing.assert_frame_equal(first, again)
    # other filters are another query: A alone is its 4 deals, B alone its 1 (as above)
    only_a = segment_kpis(tiny, by=["deal_type"], filters={"deal_type": ["A"]})
    only_b = segment_kpis(tiny, by=["deal_type"], filters={"deal_type": "B"})
    assert only_a["opportunities"].tolist() == [4] and only_b["opportunities"].tolist() == [1]
    assert queries.count("compile") == 2


def test_kept_queries_are_bounded(monkeypatch):
    monkeypatch.setattr(_engine, "MAX_QUERIES", 2)
    tiny = _tiny()
    counts = [
        segment_kpis(tiny, filters={"deal_type": f})["opportunities"].tolist()
        for f in (["A"], ["B"], ["A", "B"], ["A"])
    ]
    assert counts == [[4], [1], [5], [4]]  # A: A1-A4; B: B1
    assert len(_engine.compiled_queries(tiny)) == 2  # the oldest went first


def test_engines_we_do_not_own_give_the_same_table():
    owned, other = _tiny(), _tiny()
    other.engine_owned = False  # as for a database that is not our embedded engine
    kw = {"by": ["deal_type"], "filters": {"deal_type": ["A", "B"]}}
    theirs = segment_kpis(other, **kw)
    assert not _engine.compiled_queries(other)  # nothing compiled is kept: Ibis runs every query
    pd.testing.assert_frame_equal(theirs, segment_kpis(owned, **kw))
    assert theirs["opportunities"].tolist() == [4, 1]  # A: A1-A4, B: B1


def test_overall_row_and_filters(sample):
    overall = segment_kpis(sample)
    assert len(overall) == 1 and overall.loc[0, "opportunities"] == 20_000
    emea = segment_kpis(sample, filters={"region": ["EMEA"]})
    assert emea.loc[0, "opportunities"] == 6_539  # EMEA deals in the sample
    nothing = segment_kpis(sample, by=["region"], filters={"region": ["Mars"]})
    assert len(nothing) == 0 and list(nothing.columns) == ["region", *SEGMENT_COLUMNS]


def test_kpis_command_prints_every_required_column(sample_dirs):
    runner = CliRunner()
    folder = str(sample_dirs["default"])
    result = runner.invoke(app, ["kpis", "--data", folder, "--by", "region",
                                 "--format", "csv"])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.output), keep_default_na=False)  # region "NA"
    assert set(REQUIRED) <= set(table.columns)
    # the four regions, then the overall row
    assert table["region"].tolist()[-1] == "(total)"
    assert sorted(table["region"][:-1]) == ["APAC", "EMEA", "LATAM", "NA"]
    assert table["opportunities"][:-1].sum() == table["opportunities"].iloc[-1] == 20_000
    shown = runner.invoke(app, ["kpis", "--data", folder, "--by", "size_band"])
    assert shown.exit_code == 0 and "Enterprise" in shown.output and "win rate" in shown.output
    as_json = runner.invoke(app, ["kpis", "--data", folder, "--format", "json"])
    assert json.loads(as_json.output)[0]["opportunities"] == 20_000


def test_kpis_command_rejects_bad_input_cleanly(sample_dirs):
    runner = CliRunner()
    folder = str(sample_dirs["default"])
    bad_dim = runner.invoke(app, ["kpis", "--data", folder, "--by", "regoin"])
    assert bad_dim.exit_code == 1 and "not a dimension" in bad_dim.output
    bad_filter = runner.invoke(app, ["kpis", "--data", folder, "--filter", "x"])
    assert bad_filter.exit_code == 2 and "DIM=VALUE" in bad_filter.output
    assert "Traceback" not in bad_dim.output + bad_filter.output


def test_one_query_table_equals_the_individual_functions(sample):
    from salesops_widgets.metrics import cycle_summary, deal_discounts, pipeline_kpis

    by = ["industry"]
    opts = {"by": by, "filters": {"region": ["NA", "EMEA"]}}
    table = segment_kpis(sample, **opts).set_index("industry")
    pipe = pipeline_kpis(sample, **opts).set_index("industry")
    for col in ("opportunities", "won", "lost", "win_rate", "win_rate_low", "asp", "bookings"):
        pd.testing.assert_series_equal(table[col], pipe[col], check_dtype=False, rtol=1e-12)
    cyc = cycle_summary(sample, **opts).set_index("industry")
    pd.testing.assert_series_equal(
        table["median_cycle_days_won"], cyc["median_cycle_days_won"], check_dtype=False
    )
    disc = deal_discounts(sample, **opts).set_index("industry")
    pd.testing.assert_series_equal(
        table["portfolio_discount"], disc["portfolio_discount"], check_dtype=False, rtol=1e-12
    )
