"""A CRM export that looks real (tests/fixtures/realistic, made by make_export.py there): four
files, a custom mapping, and the traps real exports have.

Every expected number is computed here independently, with plain pandas on the raw CSV files
(the cleaning the mapping asks for done by hand) and statsmodels on unaggregated rows (open
deals censored). Traps, on purpose: no open deal has an amount; early-stage open deals have no
created date; most lost deals carry $0; ``GTXPro`` in the pipeline is ``GTX Pro`` in the price
list; ``  gtx lite `` has stray spaces and case; ``Legacy Suite`` is in no price list; a deal
type typo (``New Buisness``); an unknown stage, a row without an id, a repeated id; accounts and
an owner that the other files do not have.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from _helpers import REALISTIC, REALISTIC_AS_OF
from statsmodels.duration.survfunc import CumIncidenceRight, SurvfuncRight
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets import load, metrics, validate

FOLDER = REALISTIC
MAPPING = FOLDER / "mapping.yaml"
AS_OF = pd.Timestamp(REALISTIC_AS_OF)
approx = pytest.approx


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(FOLDER / "pipeline.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def ref(realistic_deals) -> pd.DataFrame:
    """The used deals, cleaned by hand as the mapping says (tests/_helpers.py)."""
    return realistic_deals


@pytest.fixture(scope="module")
def data():
    return load(FOLDER, mapping=MAPPING, as_of=AS_OF.date())


def _durations(d: pd.DataFrame) -> pd.DataFrame:
    """Time-to-close rows: closed deals with both dates (close on or after created), and open
    deals with a created date, censored at the as-of date."""
    closed = d["status"] != "open"
    days = np.where(closed, (d["close"] - d["created"]).dt.days, (AS_OF - d["created"]).dt.days)
    rows = pd.DataFrame({"t": days, "event": closed.astype(int), "status": d["status"]})
    return rows[d["created"].notna() & ~(closed & d["close"].isna())].astype({"t": float})


# --------------------------------------------------------------------------------------------------
# What was used, and what each KPI counts


def test_rows_read_are_used_or_excluded_and_every_kpi_accounts_for_the_rows_used(data, raw, ref):
    rep = data.report.tables["opportunities"]
    assert rep.rows_read == len(raw) == 901
    assert rep.rows_used == len(ref)
    assert rep.rows_read == rep.rows_used + rep.rows_excluded
    # only rows no KPI can use are excluded: no id, a stage no map knows, a repeated id
    assert rep.excluded == {"missing_required": 1, "unknown_stage": 1, "duplicate_id": 1}
    for pop in data.report.populations:
        assert pop["rows_in"] + sum(pop["left_out"].values()) == rep.rows_used, pop["kpi"]


def test_open_deals_without_amount_or_created_date_are_kept(data, ref):
    open_ = ref[ref["status"] == "open"]
    assert open_["amount"].isna().all() and len(open_) > 200  # the trap: none has an amount
    kpis = metrics.segment_kpis(data).iloc[0]
    assert kpis["open"] == len(open_)
    pops = {p["kpi"]: p for p in data.report.populations}
    # time to close leaves out only the deals without a created date (early-stage open ones)
    assert pops["time to close"]["left_out"] == {
        "no created date": int(ref["created"].isna().sum())
    }
    assert pops["open pipeline and velocity"]["rows_in"] == 0
    assert pops["open pipeline and velocity"]["left_out"]["open without an amount"] == len(open_)


def test_a_starved_view_says_why_in_words(data, ref):
    n_open = int((ref["status"] == "open").sum())
    message = (
        f"all {n_open:,} open deals have no amount: open pipeline and velocity cannot be computed"
    )
    assert message in data.report.all_warnings
    assert data.report.warnings_for(["velocity"]) == [message]
    kpis = metrics.segment_kpis(data).iloc[0]
    assert math.isnan(kpis["open_pipeline"]) and math.isnan(kpis["velocity"])  # not $0


def test_counts_per_column_are_of_the_rows_read(data, raw):
    columns = data.report.tables["opportunities"].columns
    assert columns["amount"].blank == int((raw["Amount"] == "").sum())
    assert columns["created_date"].blank == int((raw["Created"] == "").sum())
    assert columns["amount"].unparseable == 0
    frame = data.report.columns_frame()
    row = frame[(frame.table == "opportunities") & (frame.column == "amount")].iloc[0]
    assert row["rows_read"] == len(raw)


# --------------------------------------------------------------------------------------------------
# The KPIs, against pandas and statsmodels


def test_win_rate_per_region_with_wilson_interval(data, ref):
    got = metrics.segment_kpis(data, by=["region"]).set_index("region")
    closed = ref[ref["status"] != "open"]
    for region, g in closed.groupby("region"):
        won, n = int((g["status"] == "won").sum()), len(g)
        low, high = proportion_confint(won, n, method="wilson")
        assert got.loc[region, "win_rate"] == approx(won / n)
        assert got.loc[region, "win_rate_low"] == approx(low)
        assert got.loc[region, "win_rate_high"] == approx(high)


def test_bookings_and_asp_count_won_deals_with_an_amount(data, ref):
    got = metrics.segment_kpis(data, by=["region"]).set_index("region")
    won = ref[(ref["status"] == "won") & ref["amount"].notna()]
    for region, g in won.groupby("region"):
        assert got.loc[region, "bookings"] == approx(g["amount"].sum())
        assert got.loc[region, "asp"] == approx(g["amount"].mean())


def test_portfolio_discount_is_on_won_priced_deals_and_lost_deals_at_zero_never_count(data, ref):
    priced = ref[(ref["list_amount"] > 0) & (ref["amount"] > 0)]
    won = priced[priced["status"] == "won"]
    expected = 1 - won["amount"].sum() / won["list_amount"].sum()
    got = metrics.segment_kpis(data).iloc[0]["portfolio_discount"]
    assert got == approx(expected)
    # the trap: lost deals at $0 counted as 100% off would make it several times larger
    listed = ref[ref["list_amount"] > 0]
    naive = 1 - listed["amount"].fillna(0).sum() / listed["list_amount"].sum()
    assert naive > 2 * expected
    lost_at_zero = ref[(ref["status"] == "lost") & (ref["amount"] == 0) & (ref["list_amount"] > 0)]
    assert len(lost_at_zero) > 100
    bands = metrics.discount_bands(data)
    assert bands["lost"].sum() == int((priced["status"] == "lost").sum())  # $0 in no band


def test_time_to_close_censors_open_deals_as_statsmodels_does(data, ref):
    rows = _durations(ref)
    sf = SurvfuncRight(rows["t"].to_numpy(), rows["event"].to_numpy())
    got = metrics.time_to_close(data).iloc[0]
    assert got["n"] == len(rows) and got["n_open"] == int((rows["event"] == 0).sum())
    assert not np.any(np.abs(sf.surv_prob - 0.5) < 1e-9)  # statsmodels' median rule applies
    assert got["km_median_days_to_close"] == approx(sf.quantile(0.5))
    low, high = sf.quantile_ci(0.5)
    assert (got["km_median_low"], got["km_median_high"]) == (approx(low), approx(high))
    closed_only = rows.loc[rows["event"] == 1, "t"].median()
    assert got["naive_median_days_closed_only"] == approx(closed_only)
    assert got["km_median_days_to_close"] > closed_only  # censoring counts the slow open deals


def test_share_won_by_day_90_is_the_competing_risks_estimate(data, ref):
    rows = _durations(ref)
    cause = rows["status"].map({"open": 0, "won": 1, "lost": 2}).to_numpy()
    with np.errstate(all="ignore"):
        cif = CumIncidenceRight(rows["t"].to_numpy(), cause)
    at_90 = np.searchsorted(cif.times, 90, side="right") - 1
    got = metrics.time_to_win(data).iloc[0]
    assert got["share_won_by_day_90"] == approx(cif.cinc[0][at_90])
    assert got["share_lost_by_day_90"] == approx(cif.cinc[1][at_90])
    # 1 − KM of time to win, lost deals censored, would overstate it
    won_only = SurvfuncRight(rows["t"].to_numpy(), (cause == 1).astype(int))
    naive = 1 - won_only.surv_prob[np.searchsorted(won_only.surv_times, 90, side="right") - 1]
    assert naive > got["share_won_by_day_90"]


def test_the_deal_type_typo_is_mapped(data):
    types = metrics.segment_kpis(data, by=["deal_type"])["deal_type"].tolist()
    assert "New Business" in types and "New Buisness" not in types


# --------------------------------------------------------------------------------------------------
# Lookups: cleaned keys, unmatched keys listed with the closest known ones


def test_trimmed_and_case_folded_keys_match(ref):
    spaced = ref[ref["Product"] == "  gtx lite "]
    assert len(spaced) > 10 and (spaced["list_amount"] == 12_000).all()


def test_an_unmatched_key_is_listed_with_its_count_and_the_closest_known_key(raw, ref):
    mapping = yaml.safe_load(MAPPING.read_text())
    fixed = copy.deepcopy(mapping)
    del mapping["tables"]["opportunities"]["values"]["product_id"]  # no cleaning of GTXPro
    report = validate(FOLDER, mapping=mapping, as_of=AS_OF.date())
    (lookup,) = report.tables["opportunities"].lookups
    gtxpro = int((raw["Product"] == "GTXPro").sum())
    legacy = int((raw["Product"] == "Legacy Suite").sum())
    assert lookup.unmatched == {"GTXPro": gtxpro, "Legacy Suite": legacy}
    assert lookup.suggestions == {"GTXPro": ["GTX Pro"]}
    assert lookup.missed_read == gtxpro + legacy
    # on the rows used: the excluded rows' products are not counted
    used_misses = int(ref["Product"].isin(["GTXPro", "Legacy Suite"]).sum())
    assert lookup.missed_used == used_misses
    note = lookup.note()
    assert f"{gtxpro + legacy:,} of the 901 rows read" in note
    assert f"{used_misses:,} of the {len(ref):,} rows used" in note
    assert f"'GTXPro' ({gtxpro:,} rows: did you mean 'GTX Pro'?)" in note
    # the same fix as a lookup's own cleaning map
    fixed["tables"]["opportunities"]["lookups"][0]["key_values"] = {"GTXPro": "GTX Pro"}
    del fixed["tables"]["opportunities"]["values"]["product_id"]
    (again,) = validate(FOLDER, mapping=fixed, as_of=AS_OF.date()).tables["opportunities"].lookups
    assert again.unmatched == {"Legacy Suite": legacy}


def test_region_comes_from_the_rep_to_office_table(data, ref):
    got = metrics.segment_kpis(data, by=["region"])
    assert sorted(got["region"]) == sorted(ref["region"].unique())
    assert "(not set)" in got["region"].tolist()  # the owner the rep table does not have
