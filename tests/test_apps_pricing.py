"""The Sticker-Shock dashboard, driven without a browser: build it, set traits or click as a
browser would, and check its views against pandas on the raw sample files (and the planted
effects of data/samples/README.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import SALESFORCE
from scipy import stats

from salesops_widgets import load, metrics
from salesops_widgets.apps import StickerShock
from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics import DISCOUNT_BANDS


@pytest.fixture(scope="module")
def raw(sample_dirs) -> dict[str, pd.DataFrame]:
    """The sample's files as pandas frames, with what the tests need derived here."""
    folder = sample_dirs["default"]
    tables = {
        n: pd.read_parquet(folder / f"{n}.parquet")
        for n in ("opportunities", "line_items", "reps", "accounts")
    }
    o = tables["opportunities"].merge(
        tables["accounts"][["account_id", "region", "size_band"]], on="account_id", how="left"
    )
    o = o.merge(tables["reps"][["owner_id", "owner_name"]], on="owner_id", how="left")
    priced = o["list_amount"] > 0
    o["disc"] = (1 - o["amount"] / o["list_amount"].where(priced)).round(9)
    tables["opportunities"] = o
    return tables


@pytest.fixture
def app(sample):
    """A fresh dashboard, for the tests that change it."""
    return StickerShock(sample, debounce=0)


@pytest.fixture(scope="module")
def shown(sample):
    """One dashboard for the tests that only read it."""
    return StickerShock(sample, debounce=0)


def _click(view, name, points):
    """What the browser sends when points of selection ``name`` are clicked."""
    value = {"vlPoint": {"or": points}} if points else None
    view.widget._vl_selections = {name: {"value": value, "store": []}}


def _card(app, label_start):
    return next(c for c in app.cards.cards if c["label"].startswith(label_start))


def _band_win_rates(opps: pd.DataFrame, edges=DISCOUNT_BANDS) -> pd.DataFrame:
    """Won / closed per discount band [low, high), the last band closed, by hand in pandas."""
    closed = opps[opps["is_closed"] & opps["disc"].notna()].copy()
    idx = np.searchsorted(np.asarray(edges), closed["disc"], side="right") - 1
    closed["band"] = np.where(closed["disc"] == edges[-1], len(edges) - 2, idx)
    closed = closed[(closed["band"] >= 0) & (closed["band"] < len(edges) - 1)]
    g = closed.groupby("band")["is_won"]
    return pd.DataFrame({"won": g.sum(), "closed": g.size(), "rate": g.mean()})


# ------------------------------------------------------------------------------ planted effects


def test_habitual_discounters_top_the_leakage_table(shown, raw):
    reps = raw["reps"].set_index("owner_id")["owner_name"]
    habitual = {reps["REP-003"], reps["REP-008"], reps["REP-013"]}  # data/samples/README.md
    table = shown.leakage_tables["owner"].data
    assert set(table["owner"].head(3)) == habitual
    # and the chart of the reps with the most below the floor starts with them
    values = shown.leakage_chart.chart.to_dict()["datasets"]
    rows = next(v for v in values.values() if v and "corridor_leakage" in v[0])
    top = sorted(rows, key=lambda r: -r["corridor_leakage"])[:3]
    assert {r["owner"] for r in top} == habitual


def test_the_deepest_discount_band_does_not_win_more(shown, raw):
    table = shown.band_table.data.reset_index(drop=True)
    ref = _band_win_rates(raw["opportunities"])
    assert table["win_rate"].tolist() == pytest.approx(ref["rate"].tolist())
    assert table["win_rate"].iloc[-1] <= table["win_rate"].iloc[-2]  # planted: 27.7% vs 39.2%
    tests = shown.tests.data
    assert tests["effect size"].iloc[1].startswith("-")
    # the chi-square across the bands, from scipy on the pandas counts
    counts = np.column_stack([ref["won"], ref["closed"] - ref["won"]])
    p = stats.chi2_contingency(counts, correction=False).pvalue
    assert tests["p"].iloc[0] == ("< 0.001" if p < 0.001 else f"{p:.3f}")


def test_the_waterfall_adds_up_from_list_to_pocket(shown, raw):
    o, li = raw["opportunities"], raw["line_items"]
    won = li[li["opportunity_id"].isin(o.loc[o["is_won"], "opportunity_id"])]
    won = won[won["list_price"] > 0]
    q = won["quantity"]
    list_ = (won["list_price"] * q).sum()
    off = won[["rebate", "freight", "payment_terms_cost"]].fillna(0).sum(axis=1)
    pocket = ((won["invoice_price"] - off) * q).sum()
    spec = shown.waterfall.chart.to_dict()
    rows = next(v for v in spec["datasets"].values() if v and "_element" in v[0])
    amounts = {r["_element"]: r["amount"] for r in rows}
    deductions = sum(r["amount"] for r in rows if r["_step"] == "Deduction")
    assert amounts["List price"] == pytest.approx(list_)
    assert amounts["Pocket price"] == pytest.approx(pocket)
    assert deductions == pytest.approx(list_ - pocket)
    assert _card(shown, "Given away")["value"] == pytest.approx(list_ - pocket)


def test_the_portfolio_discount_is_weighted_by_dollars(shown, raw):
    o = raw["opportunities"]
    won = o[o["is_won"] & (o["list_amount"] > 0)]
    weighted = 1 - won["amount"].sum() / won["list_amount"].sum()
    mean = (1 - won["amount"] / won["list_amount"]).mean()
    card = _card(shown, "Discount given")
    assert card["value"] == pytest.approx(weighted)
    assert card["value"] != pytest.approx(mean, abs=1e-3)
    assert f"{mean:.1%}" in card["note"]  # shown next to it, for contrast


# ------------------------------------------------------------------------------ interaction


def test_a_filter_change_updates_the_views(app, raw):
    before = app.leakage_tables["owner"].data["lines"].sum()
    app.filter_bar.filters = {"region": ["EMEA"]}
    assert app.status.busy is False and app.status.message == ""
    o = raw["opportunities"]
    emea = o[o["region"] == "EMEA"]
    won = emea[emea["is_won"] & (emea["list_amount"] > 0)]
    card = _card(app, "Discount given")
    assert card["value"] == pytest.approx(1 - won["amount"].sum() / won["list_amount"].sum())
    ref = _band_win_rates(emea)
    assert app.band_table.data["win_rate"].tolist() == pytest.approx(ref["rate"].tolist())
    assert app.leakage_tables["owner"].data["lines"].sum() < before
    assert set(app.detail.deals["account"]).issubset(
        set(raw["accounts"].loc[raw["accounts"]["region"] == "EMEA", "account_name"])
    )


def test_clicking_a_rep_lists_the_rep_deals_most_discounted_first(app, raw):
    _click(app.dispersion["owner"], "pick", [{"owner": "Avery Larsen"}])
    assert app.detail.extra_filters == {"owner": ["Avery Larsen"]}
    o = raw["opportunities"]
    ref = o[o["owner_name"] == "Avery Larsen"].sort_values(
        ["disc", "opportunity_id"], ascending=[False, True], na_position="last"
    )
    got = app.detail.deals
    assert got["opportunity_id"].tolist() == ref["opportunity_id"].head(50).tolist()


def test_clicking_a_heatmap_cell_lists_its_deals(app, raw):
    _click(app.heatmap, "cell", [{"deal_size": "25k–50k", "discount_low": 0.3}])
    o = raw["opportunities"]
    cell = o[
        o["is_won"]
        & (o["list_amount"] >= 25_000)
        & (o["list_amount"] < 50_000)
        & (o["disc"] >= 0.3)
        & (o["disc"] < 0.35)
    ]
    cell = cell.assign(given=cell["list_amount"] - cell["amount"])
    ref = cell.sort_values(["given", "opportunity_id"], ascending=[False, True]).head(50)
    got = app.cell_deals.data
    assert got["opportunity_id"].tolist() == ref["opportunity_id"].tolist()
    assert "25k–50k" in app.cell_deals.title and "30%" in app.cell_deals.title


def test_a_cell_click_refreshes_through_the_status_line(app, monkeypatch):
    # the click's query runs as a refresh of the dashboard: busy while it runs, then not
    busy = []
    app.status.observe(lambda change: busy.append(change["new"]), "busy")
    _click(app.heatmap, "cell", [{"deal_size": "25k–50k", "discount_low": 0.3}])
    assert busy == [True, False] and not app.cell_deals.data.empty
    # a SalesOpsError raised in it is a sentence in the status line, not a traceback
    message = "discount_cell_deals needs line_items, which this data does not have."

    def fail(*args, **kwargs):
        raise ParameterError(message)

    monkeypatch.setattr(metrics, "discount_cell_deals", fail)
    _click(app.heatmap, "cell", [{"deal_size": "25k–50k", "discount_low": 0.35}])
    assert busy == [True, False, True, False]
    assert app.status.message == f"Could not update this view: {message}"
    html = app.status.to_static_html()
    assert message in html and "Traceback" not in html
    # the next click tries again, and a good one clears the message
    monkeypatch.undo()
    _click(app.heatmap, "cell", [{"deal_size": "25k–50k", "discount_low": 0.3}])
    assert app.status.message == "" and "30%" in app.cell_deals.title


def test_moving_the_cap_recomputes_only_the_what_if(app, raw):
    leakage = app.leakage_tables["owner"].data
    app.cap = 0.1
    assert app.leakage_tables["owner"].data is leakage  # nothing else was queried again
    o = raw["opportunities"]
    won = o[o["is_won"] & (o["disc"] > 0.1)]
    cards = {c["label"]: c for c in app.what_if_cards.cards}
    assert cards["Won deals over the cap"]["value"] == len(won)
    # gross: every won deal over the cap re-priced at list × 0.9
    gross = (won["list_amount"] * 0.9 - won["amount"]).sum()
    assert cards["If no deal were lost"]["value"] == pytest.approx(gross)
    assert _card(app, "Recovered by a 10% cap")["value"] == cards["Recovered, net"]["value"]
    # the assumption is printed next to it, with the observed win rates by band
    ref = _band_win_rates(o)
    assert "observed win rate by discount band" in app.what_if_notes.value
    assert f"{ref['rate'].iloc[0]:.1%}" in app.what_if_notes.value


def test_a_new_segment_compares_its_two_largest(app, raw):
    app.segment = "region"
    counts = raw["opportunities"]["region"].value_counts()
    assert app.compare_segments == counts.index[:2].tolist()
    assert "region" in app.guidance.data.columns
    assert "region" in app.leakage_tables["segment"].data.columns


def test_an_unknown_compared_segment_says_so(sample):
    app = StickerShock(sample, compare_segments=["SMB", "Galactic"], debounce=0)
    message = app.waterfalls.children[1].chart.to_dict()["usermeta"]["message"]
    assert "Galactic" in message and "SMB" in message


def test_bad_parameters_get_a_clear_message(sample):
    bad = {
        "segment": "planet",
        "compare_segments": ["SMB"],
        "corridor": (0.8, 0.2),
        "discount_bands": [0.3, 0.1],
        "size_edges": [5],
        "cap": 1.5,
    }
    for name, value in bad.items():
        with pytest.raises(ParameterError, match=name):
            StickerShock(sample, debounce=0, **{name: value})
    with pytest.raises(ParameterError, match="two percentiles"):
        StickerShock(sample, corridor=[0.25], debounce=0)
    with pytest.raises(ParameterError, match="two different values"):
        StickerShock(sample, compare_segments=["SMB", "SMB"], debounce=0)


# ------------------------------------------------------------------------------ missing data


def _views_html(app) -> str:
    sections = [
        "filter_bar",
        "controls",
        "cards",
        "waterfall_view",
        "pocket_view",
        "dispersion_view",
        "size_view",
        "wins_view",
        "lost_view",
        "leakage_view",
        "realization_view",
        "guidance_view",
        "what_if_view",
        "drilldown",
    ]
    return "\n".join(getattr(app, s)._repr_mimebundle_().get("text/html", "") for s in sections)


def test_opportunities_with_list_prices_but_no_line_items(sample_dirs, monkeypatch):
    folder = sample_dirs["default"]
    tables = {n: pd.read_parquet(folder / f"{n}.parquet") for n in ("opportunities", "accounts")}
    tables["reps"] = pd.read_parquet(folder / "reps.parquet")
    app = StickerShock(load(tables), debounce=0)
    monkeypatch.setenv("SALESOPS_STATIC", "1")
    assert app.waterfall_note.value and "list to net price" in app.waterfall_note.value
    assert "line_items" in app.pocket_band.children[0].message
    assert "line_items" in app.leakage_tables["owner"].empty_message
    assert not app.band_table.data.empty and not app.guidance.data.empty
    assert _card(app, "Discount given")["value"] > 0
    html = _views_html(app)
    assert "Traceback" not in html and html.count("<svg") >= 5


def test_the_salesforce_export_without_list_prices_degrades(monkeypatch):
    app = StickerShock(load(SALESFORCE, mapping="salesforce"), debounce=0)
    assert app.status.message == ""
    assert "invoice" in app.waterfall_note.value  # line items without off-invoice columns
    assert "list_amount" in app.dispersion["owner"].children[0].message
    # a section says once what it needs: the other dispersion charts are hidden
    assert app.dispersion["segment"].layout.display == ""
    assert app.dispersion["owner"].layout.display == "none"
    assert "list_amount" in app.band_table.empty_message
    assert "loss_reason" in app.lost.children[0].message
    assert "list_amount" in app.guidance.empty_message
    monkeypatch.setenv("SALESOPS_STATIC", "1")
    assert "Traceback" not in _views_html(app)


def test_neither_list_prices_nor_line_items_says_what_it_needs(sample_dirs, monkeypatch):
    folder = sample_dirs["default"]
    opps = pd.read_parquet(folder / "opportunities.parquet").drop(columns="list_amount")
    accounts = pd.read_parquet(folder / "accounts.parquet")
    app = StickerShock(load({"opportunities": opps, "accounts": accounts}), debounce=0)
    monkeypatch.setenv("SALESOPS_STATIC", "1")
    html = _views_html(app)
    assert "Traceback" not in html
    assert "list_amount" in html and "line_items" in html
    assert all(c["value"] is None for c in app.cards.cards)


def test_static_rendering_has_charts_and_tables(shown, monkeypatch):
    monkeypatch.setenv("SALESOPS_STATIC", "1")
    assert shown.waterfall_view._repr_mimebundle_()["text/html"].count("<svg") == 3
    assert shown.dispersion_view._repr_mimebundle_()["text/html"].count("<svg") == 3
    guidance = shown.guidance_view._repr_mimebundle_()["text/html"]
    assert "<table" in guidance and "Enterprise" in guidance
    assert "Cap discount at: <b>20%</b>" in shown.what_if_view._repr_mimebundle_()["text/html"]
    assert "Compare: <b>" in shown.controls._repr_mimebundle_()["text/html"]


def test_a_dispersion_of_thousands_of_reps_shows_the_highest_medians():
    # 40 reps, rep k with median discount k/100: the chart keeps reps 10..39 (the 30 highest)
    import pandas as pd

    from salesops_widgets.apps._pricing_charts import _dispersion_chart

    frame = pd.DataFrame(
        {
            "owner": [f"rep {k:02d}" for k in range(40)],
            "median_deal_discount": [k / 100 for k in range(40)],
            "discount_p25": [k / 100 - 0.01 for k in range(40)],
            "discount_p75": [k / 100 + 0.01 for k in range(40)],
            "deals_with_list": [50] * 40,
        }
    )
    spec = _dispersion_chart(frame, "owner").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert {r["owner"] for r in rows} == {f"rep {k:02d}" for k in range(10, 40)}
    assert "the 30 of 40 with the highest median discount" in str(spec["title"])
