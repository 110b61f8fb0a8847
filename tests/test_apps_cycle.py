"""The Sales-Cycle Acceleration dashboard, driven without a browser: build it, set traits or
click as a browser would, and check its views against the KPI layer, pandas on the raw sample
files, statsmodels, and hand calculations."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_ROOT
from statsmodels.duration.survfunc import SurvfuncRight

from salesops_widgets import load, metrics
from salesops_widgets.apps import SalesCycleAcceleration
from salesops_widgets.errors import ParameterError

AS_OF = pd.Timestamp("2026-09-30")  # the default sample's as-of date (data/samples/README.md)


@pytest.fixture(scope="module")
def raw(sample_dirs):
    """The sample's opportunities with the account's size band and region, from the parquet
    files: cycle days of closed deals, age of open ones."""
    opps = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    accounts = pd.read_parquet(sample_dirs["default"] / "accounts.parquet")
    out = opps.merge(accounts[["account_id", "size_band", "region"]], on="account_id")
    created, closed = pd.to_datetime(out["created_date"]), pd.to_datetime(out["close_date"])
    out["cycle"] = np.where(out["is_closed"], (closed - created).dt.days, np.nan)
    out["age"] = np.where(out["is_closed"], np.nan, (AS_OF - created).dt.days)
    out["outcome"] = np.where(out["is_won"], "won", np.where(out["is_closed"], "lost", "open"))
    return out


@pytest.fixture(scope="module")
def stays(raw, sample_dirs):
    """Every stay in an open stage, in calendar days (to the next stage's day, or to the as-of
    date for an open deal's current stage, then censored)."""
    sh = pd.read_parquet(sample_dirs["default"] / "stage_history.parquet")
    sh = sh.merge(raw[["opportunity_id", "size_band", "is_closed"]], on="opportunity_id")
    sh = sh.sort_values(["opportunity_id", "entered_at"])
    sh["day"] = sh["entered_at"].dt.normalize()
    sh["next_day"] = sh.groupby("opportunity_id")["day"].shift(-1)
    sh["open_stay"] = sh["next_day"].isna() & ~sh["is_closed"]
    sh = sh[~sh["stage"].str.startswith("Closed")].copy()
    end = sh["next_day"].where(~sh["open_stay"], AS_OF)
    sh["days"] = (end - sh["day"]).dt.days
    return sh


@pytest.fixture(scope="module")
def app(sample):
    """One dashboard for the tests that only read it."""
    return SalesCycleAcceleration(sample, debounce=0)


@pytest.fixture
def fresh(sample):
    """A dashboard of its own, for the tests that change it."""
    return SalesCycleAcceleration(sample, debounce=0)


def _click(view, name, points):
    """What the browser sends when points of selection ``name`` are clicked."""
    value = {"vlPoint": {"or": points}} if points else None
    view.widget._vl_selections = {name: {"value": value, "store": []}}


def _values(chart) -> list[dict]:
    """The rows of a chart's data (inline, or consolidated into ``datasets`` by Altair)."""
    spec = chart.to_dict()
    data = spec["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


# ------------------------------------------------------------------------------------------
# Time to close


def test_km_median_shown_is_the_kpi_layers(app, sample):
    shown = app.km_table.data.set_index("size_band")
    ref = metrics.time_to_close(sample, by=["size_band"]).set_index("size_band")
    for segment in ref.index:
        assert (
            shown.loc[segment, "median_days_to_close"]
            == ref.loc[segment, "km_median_days_to_close"]
        )
        assert shown.loc[segment, "interval_low_days"] == ref.loc[segment, "km_median_low"]
    overall = metrics.time_to_close(sample).iloc[0]
    assert shown.loc["All deals", "median_days_to_close"] == overall["km_median_days_to_close"]
    card = next(c for c in app.cards.cards if c["label"].startswith("Median days to close"))
    assert card["value"] == overall["km_median_days_to_close"]


def test_naive_median_is_lower_than_the_censored_one(app, raw):
    shown = app.km_table.data.set_index("size_band")
    closed = raw[raw["outcome"] != "open"]
    # the closed-only median, by hand: the median of the closed deals' cycle days
    naive = {"All deals": closed["cycle"].median(), **closed.groupby("size_band")["cycle"].median()}
    assert shown["closed_only_median_days"].to_dict() == pytest.approx(naive)
    assert (shown["closed_only_median_days"] < shown["median_days_to_close"]).all()
    # the sentence under the chart gives both numbers of the whole selection
    km = shown.loc["All deals", "median_days_to_close"]
    sentence = app.km_note.value
    assert f"{naive['All deals']:,.0f} days to close" in sentence
    assert f"it takes {km:,.0f} days" in sentence
    assert f"{km - naive['All deals']:,.0f} days" in sentence and "still open" in sentence


def test_km_curves_are_by_segment_with_bands(app):
    rows = _values(app.km.chart)
    assert {r["Company size"] for r in rows} == {"SMB", "Mid-Market", "Enterprise"}
    assert max(r["day"] for r in rows) <= 365
    assert "share_closed_low" in rows[0] and "share_closed_high" in rows[0]


# ------------------------------------------------------------------------------------------
# Distribution and competing risks


def test_distribution_is_pandas_on_the_raw_rows(app, raw):
    shown = app.distribution_table.data.set_index(["size_band", "outcome"])
    closed = raw[raw["outcome"] != "open"].groupby(["size_band", "outcome"])["cycle"]
    assert shown["median_cycle_days"].to_dict() == pytest.approx(closed.median().to_dict())
    assert shown["p90_cycle_days"].to_dict() == pytest.approx(closed.quantile(0.9).to_dict())
    assert shown["deals"].to_dict() == closed.size().to_dict()
    box = _values(app.box.chart)
    assert {r["outcome"] for r in box} == {"won", "lost"} and "90th_percentile" in box[0]


def test_won_and_lost_shares_add_up_to_the_closed_share(app, sample):
    cif = app.cif_table.data.set_index("size_band")
    ttc = metrics.time_to_close(sample, by=["size_band"]).set_index("size_band")
    total = cif["won_by_day_90"] + cif["lost_by_day_90"]
    assert total.to_dict() == pytest.approx(ttc["share_closed_by_day_90"].to_dict())


# ------------------------------------------------------------------------------------------
# Stage funnel and stuck deals


def test_the_planted_enterprise_bottleneck_is_highlighted(app, stays):
    # data/samples/README.md: Enterprise deals stall in Negotiation. By hand: the median stay
    # of Enterprise deals is longest in Negotiation.
    enterprise = stays[stays["size_band"] == "Enterprise"].groupby("stage")["days"].median()
    assert enterprise.idxmax() == "Negotiation"
    bottlenecks = app.bottlenecks.data.set_index("size_band")
    assert bottlenecks.loc["Enterprise", "bottleneck_stage"] == "Negotiation"
    flagged = [
        (r["Company size"], r["stage"]) for r in _values(app.funnel_chart.chart) if r["_highlight"]
    ]
    assert ("Enterprise", "Negotiation") in flagged
    assert [s for seg, s in flagged if seg == "Enterprise"] == ["Negotiation"]


def test_clicking_a_funnel_bar_lists_its_stuck_deals(fresh, stays, raw):
    _click(fresh.funnel_chart, "stage", [{"stage": "Negotiation", "Company size": "Enterprise"}])
    assert fresh.drill == {"size_band": ["Enterprise"], "stage": ["Negotiation"]}
    shown = fresh.deals_table.data
    # by hand: the Kaplan–Meier 90th percentile of Enterprise stays in Negotiation (statsmodels,
    # open stays censored), and the open deals whose current stay is longer
    neg = stays[(stays["size_band"] == "Enterprise") & (stays["stage"] == "Negotiation")]
    p90 = SurvfuncRight(neg["days"].to_numpy(float), (~neg["open_stay"]).to_numpy(int)).quantile(
        0.9
    )
    current = neg[neg["open_stay"]]
    stuck = current[current["days"] > p90]
    assert set(shown["opportunity_id"]) == set(stuck["opportunity_id"])
    assert (shown["threshold_days"] == p90).all() and (shown["stuck"] == "yes").all()
    days = stuck.set_index("opportunity_id")["days"]
    assert shown.set_index("opportunity_id")["days_in_stage"].to_dict() == days.to_dict()
    assert "Enterprise, Negotiation" in fresh.deals_table.title
    # the drill-down lists the open Enterprise deals in Negotiation, largest first
    assert fresh.detail.status == "open"
    ref = raw[(raw["size_band"] == "Enterprise") & (raw["stage"] == "Negotiation")]
    ref = ref.sort_values(["amount", "opportunity_id"], ascending=[False, True])
    assert fresh.detail.deals["opportunity_id"].tolist() == ref["opportunity_id"].head(50).tolist()
    # and the list is exportable: every row, with the columns shown
    export = fresh.open_deals.children[-1]
    csv = export.payload("csv").decode("utf-8-sig").strip().splitlines()
    assert len(csv) == len(shown) + 1 and csv[0].startswith("opportunity_id,owner,size_band")


def test_clicking_an_aging_cell_lists_those_open_deals(fresh, raw):
    fresh.only_stuck = False
    _click(fresh.aging, "cell", [{"age_band": "over 365 days", "size_band": "SMB"}])
    shown = fresh.deals_table.data
    ref = raw[(raw["outcome"] == "open") & (raw["size_band"] == "SMB") & (raw["age"] > 365)]
    assert set(shown["opportunity_id"]) == set(ref["opportunity_id"])
    cell = [
        r
        for r in _values(fresh.aging.chart)
        if r["size_band"] == "SMB" and r["age_band"] == "over 365 days"
    ]
    assert cell[0]["deals"] == len(ref)
    fresh.only_stuck = True
    assert set(fresh.deals_table.data["stuck"]) <= {"yes"}


def test_clicking_a_box_shows_that_segments_histogram(fresh, raw):
    _click(fresh.box, "pick", [{"size_band": "Enterprise", "outcome": "won"}])
    assert "Enterprise" in fresh.histogram.chart.to_dict()["title"]["text"]
    bars = {r["band"]: r["share"] for r in _values(fresh.histogram.chart) if r["outcome"] == "won"}
    won = raw[(raw["outcome"] == "won") & (raw["size_band"] == "Enterprise")]
    assert bars["30–59 days"] == pytest.approx(won["cycle"].between(30, 59).mean())
    assert fresh.detail.status == "won" and fresh.detail.extra_filters == {
        "size_band": ["Enterprise"]
    }


# ------------------------------------------------------------------------------------------
# Filters, flow, velocity, what-if


def test_a_filter_change_updates_the_views(fresh, raw):
    fresh.filter_bar.filters = {"region": ["EMEA"]}
    assert fresh.status.busy is False and fresh.status.message == ""
    part = raw[raw["region"] == "EMEA"]
    km = fresh.km_table.data.set_index("size_band")
    assert km.loc["All deals", "deals"] == len(part)
    assert km.loc["All deals", "open"] == (part["outcome"] == "open").sum()
    dist = fresh.distribution_table.data.set_index(["size_band", "outcome"])
    closed = part[part["outcome"] != "open"].groupby(["size_band", "outcome"])["cycle"]
    assert dist["median_cycle_days"].to_dict() == pytest.approx(closed.median().to_dict())
    aging = {(r["size_band"], r["age_band"]): r["deals"] for r in _values(fresh.aging.chart)}
    open_part = part[part["outcome"] == "open"]
    assert sum(aging.values()) == len(open_part)
    assert set(fresh.deals_table.data["opportunity_id"]) <= set(open_part["opportunity_id"])
    assert fresh.detail.selection["filters"] == {"region": ["EMEA"]}


def test_flow_defaults_to_last_quarter_and_matches_pandas(fresh, raw):
    # as of 2026-09-30, last quarter is Q2 2026: from the end of 2026-03-31 to that of 06-30
    assert fresh.flow_dates() == (dt.date(2026, 3, 31), dt.date(2026, 6, 30))
    created, closed = pd.to_datetime(raw["created_date"]), pd.to_datetime(raw["close_date"])

    def open_on(day):
        return (created <= day) & (~raw["is_closed"] | (closed > day))

    table = fresh.flow_table.data.set_index("size_band")
    ref = raw[open_on(pd.Timestamp("2026-03-31"))].groupby("size_band")["amount"].sum()
    assert table["open_at_start"].to_dict() == pytest.approx(ref.to_dict())
    fresh.flow_start, fresh.flow_end = "2026-06-30", "2026-09-30"
    assert "2026-06-30" in fresh.flow_chart.chart.to_dict()["title"]["text"]
    table = fresh.flow_table.data.set_index("size_band")
    ref = raw[open_on(AS_OF)].groupby("size_band")["amount"].sum()
    assert table["open_at_end"].to_dict() == pytest.approx(ref.to_dict())


def test_velocity_levers_multiply_to_the_velocity_ratio(app):
    levers = app.levers_table.data
    product = (
        levers["open_deals_ratio"]
        * levers["win_rate_ratio"]
        * levers["asp_ratio"]
        * levers["speed_ratio"]
    )
    assert product.tolist() == pytest.approx(levers["velocity_ratio"].tolist())


def test_what_if_is_the_hand_calculation(fresh, sample):
    # defaults: cycle 10% shorter, win rate +2 points, ASP +5%; next quarter after 2026-09-30
    # is Q4 2026: 31 + 30 + 31 = 92 days
    kpis = metrics.segment_kpis(sample, by=["size_band"]).set_index("size_band")
    shown = fresh.what_if_table.data.set_index("size_band")

    def projected(row, cut, points, lift):
        return (
            row["open"]
            * min(1.0, row["win_rate"] + points)
            * row["asp"]
            * (1 + lift)
            / (row["km_median_days_to_close"] * (1 - cut))
        )

    for segment, row in kpis.iterrows():
        velocity = projected(row, 0, 0, 0)
        what_if = projected(row, 0.1, 0.02, 0.05)
        assert shown.loc[segment, "velocity"] == pytest.approx(velocity)
        assert shown.loc[segment, "velocity_what_if"] == pytest.approx(what_if)
        assert shown.loc[segment, "extra_bookings"] == pytest.approx((what_if - velocity) * 92)
    # a slider moves: only the what-if is recomputed, with the new lever
    before = fresh.km_table.data
    fresh.cycle_cut = 0.25
    row = kpis.loc["SMB"]
    gain = projected(row, 0.25, 0.02, 0.05) - projected(row, 0, 0, 0)
    assert fresh.what_if_table.data.set_index("size_band").loc["SMB", "extra_bookings"] == (
        pytest.approx(gain * 92)
    )
    assert fresh.km_table.data is before
    sliders = fresh.what_if.children[0].children
    assert [s.value for s in sliders] == [25, 2, 5]
    sliders[1].value = 5  # the browser moves the win rate slider to +5 points
    assert fresh.win_rate_points == pytest.approx(0.05)
    note = fresh.what_if_note.value
    assert "next quarter (2026-10-01 to 2026-12-31, 92 days)" in note
    assert "Assumptions" in note and "independent" in note


def test_changing_the_dimension_resegments_every_view(fresh):
    _click(fresh.box, "pick", [{"size_band": "SMB", "outcome": "lost"}])
    fresh.dimension = "deal_type"
    assert set(fresh.km_table.data["deal_type"]) >= {"All deals", "New Business", "Renewal"}
    assert "deal_type" in fresh.bottlenecks.data.columns
    assert "deal_type" in fresh.what_if_table.data.columns
    assert "deal_type" in fresh.flow_table.data.columns
    assert "SMB" not in fresh.histogram.chart.to_dict()["title"]["text"]  # the old click is gone


# ------------------------------------------------------------------------------------------
# Degrading, parameters, static output


def test_without_stage_history_the_stage_views_say_what_they_need(sample_dirs):
    opportunities = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    data = load({"opportunities": opportunities})
    app = SalesCycleAcceleration(data, dimension="deal_type", debounce=0)
    assert "stage_history" in app.funnel_chart.children[0].message
    assert "stage_history" in app.deals_table.empty_message and app.deals_table.data.empty
    assert app.stage_table.data.empty
    # the rest still works
    assert app.km_table.data["median_days_to_close"].notna().all()
    assert len(_values(app.aging.chart)) > 0
    assert not app.what_if_table.data.empty and not app.levers_table.data.empty
    assert "need stage_history" in app.flow_note.value
    assert app.status.message == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dimension": "planet"}, "dimension='planet' is not a dimension"),
        ({"stuck_threshold": "p100"}, "stuck_threshold='p100'"),
        ({"stuck_threshold": "slow"}, "such as 'p90'"),
        ({"stuck_threshold": -3}, "stuck_threshold=-3"),
        ({"flow_end": "2030-01-01"}, "after the as-of date"),
        ({"flow_start": "2026-07-01", "flow_end": "2026-06-30"}, "swap them"),
        ({"flow_start": "yesterday"}, "flow_start='yesterday' is not a date"),
        ({"cycle_cut": 0.95}, "cycle_cut=0.95 must be between"),
        ({"win_rate_points": "lots"}, "win_rate_points='lots' must be a number"),
        ({"stage_order": ["Proposal", "Proposal"]}, "each open stage once"),
    ],
)
def test_bad_parameters_get_a_clear_message(sample, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        SalesCycleAcceleration(sample, debounce=0, **kwargs)


def test_threshold_and_stage_order_parameters(sample):
    app = SalesCycleAcceleration(
        sample,
        stuck_threshold="60",
        stage_order=["Prospecting", "Qualification", "Proposal", "Negotiation"],
        debounce=0,
    )
    assert app.stuck_threshold == 60.0
    shown = app.deals_table.data
    assert (shown["days_in_stage"] > 60).all() and (shown["threshold_days"] == 60).all()
    assert "longer than 60 days" in app.deals_table.title
    stages = app.stage_table.data
    assert stages[stages["size_band"] == "SMB"]["stage"].tolist() == [
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
    ]


def test_static_rendering_has_tables_and_svg_charts(app, monkeypatch):
    monkeypatch.setenv("SALESOPS_STATIC", "1")
    sections = [
        app.distribution,
        app.time_to_close,
        app.won_lost,
        app.funnel,
        app.open_deals,
        app.flow,
        app.velocity,
    ]
    for section in sections:
        html = section._repr_mimebundle_()["text/html"]
        assert "<svg" in html and "<table" in html, section
    what_if = app.what_if._repr_mimebundle_()["text/html"]
    assert "Cycle days cut (%): <b>10</b>" in what_if and "Assumptions" in what_if
    flow = app.flow._repr_mimebundle_()["text/html"]
    assert "From: <b>2026-03-31</b>" in flow
    assert "Company size" in app.controls._repr_mimebundle_()["text/html"]


def test_a_view_that_cannot_be_computed_says_why_in_words():
    folder = REPO_ROOT / "tests" / "fixtures" / "realistic"
    data = load(folder, mapping=folder / "mapping.yaml", as_of="2025-12-31")
    (why,) = data.report.warnings_for("velocity")  # no open deal of this export has an amount
    assert why.endswith("open pipeline and velocity cannot be computed")
    app = SalesCycleAcceleration(data, dimension="region", debounce=0)
    note = app.what_if_note.value
    assert "Velocity cannot be computed for this selection (" + why in note
    assert "nan" not in note.lower() and "$0 to $0" not in note
    assert why[1:] in str(app.velocity_chart.chart.to_dict())  # the chart says it too
