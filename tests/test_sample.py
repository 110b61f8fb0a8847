"""The synthetic sample generator: determinism, consistency, planted effects, messy counts.

Every expectation comes from the generator's specification (data/samples/README.md), and is
checked with plain pandas (plus statsmodels/scipy for the statistics), independently of the
loader and of the generator's internals. The loader's report on the messy sample (its counts
per rule, per column and per KPI) is then checked against those pandas recounts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from _helpers import (
    assert_invariant,
    assert_populations_add_up,
    excluded,
    flagged,
    populations,
)

from salesops_widgets import validate
from salesops_widgets.data._sample import MESSY_PLANTED, generate_sample, write_sample
from salesops_widgets.data._schema import EXCLUDE_RULES, FLAG_RULES, SIZE_BANDS, TABLES
from salesops_widgets.errors import ParameterError

AS_OF = pd.Timestamp("2026-09-30")
PRESET = Path(__file__).resolve().parents[1] / "salesops_widgets/data/presets/canonical.yaml"
STAGE_MAP = yaml.safe_load(PRESET.read_text())["tables"]["opportunities"]["stages"]
OPEN_STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation"]
CLOSED_STAGES = ["Closed Won", "Closed Lost"]
HABITUAL_DISCOUNTERS = {"REP-003", "REP-008", "REP-013"}
COLUMNS = {
    "opportunities": [
        "opportunity_id", "opportunity_name", "account_id", "owner_id", "product_id", "stage",
        "is_closed", "is_won", "created_date", "close_date", "amount", "list_amount",
        "currency", "deal_type", "lead_source", "loss_reason", "probability",
    ],
    "stage_history": ["opportunity_id", "stage", "entered_at", "close_date", "amount"],
    "line_items": [
        "opportunity_id", "product_id", "quantity", "list_price", "invoice_price", "rebate",
        "freight", "payment_terms_cost", "unit_cost",
    ],
    "accounts": [
        "account_id", "account_name", "industry", "employee_count", "size_band", "region",
        "country", "annual_revenue",
    ],
    "reps": ["owner_id", "owner_name", "team", "manager", "region", "hire_date", "quota"],
    "products": ["product_id", "product_name", "family", "list_price"],
}  # fmt: skip


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return generate_sample(3_000, seed=11)


@pytest.fixture(scope="module")
def default_frames() -> dict[str, pd.DataFrame]:
    """The committed default sample: 20,000 opportunities, seed 7."""
    return generate_sample()


# ------------------------------------------------------------------------------------------
# Determinism and shape
# ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames(small):
    again = generate_sample(3_000, seed=11)
    assert small.keys() == again.keys()
    for name in small:
        pd.testing.assert_frame_equal(small[name], again[name])


def test_different_seed_gives_different_frames(small):
    other = generate_sample(3_000, seed=12)
    assert not small["opportunities"]["amount"].equals(other["opportunities"]["amount"])
    assert not small["accounts"]["account_name"].equals(other["accounts"]["account_name"])


def test_generate_does_not_depend_on_earlier_calls():
    first = generate_sample(1_000, seed=3)["opportunities"]
    generate_sample(2_000, seed=4)
    pd.testing.assert_frame_equal(first, generate_sample(1_000, seed=3)["opportunities"])


def test_tables_and_columns_are_canonical(small):
    assert list(small) == list(COLUMNS)
    for name, frame in small.items():
        assert list(frame.columns) == COLUMNS[name], name
        canonical = {column.name for column in TABLES[name]}
        assert set(frame.columns) <= canonical, name


def test_ids_have_a_fixed_width(default_frames):
    patterns = {
        ("opportunities", "opportunity_id"): r"OPP-\d{7}",
        ("accounts", "account_id"): r"ACC-\d{5}",
        ("reps", "owner_id"): r"REP-\d{3}",
        ("products", "product_id"): r"PRD-\d{3}",
    }
    for (table, column), pattern in patterns.items():
        assert default_frames[table][column].str.fullmatch(pattern).all(), (table, column)
    assert default_frames["opportunities"]["opportunity_id"].iloc[0] == "OPP-0000001"


def test_sizes_scale_with_the_number_of_opportunities(small, default_frames):
    assert len(small["opportunities"]) == 3_000
    assert len(default_frames["opportunities"]) == 20_000
    assert len(default_frames["accounts"]) > len(small["accounts"])
    assert len(default_frames["reps"]) >= len(small["reps"]) >= 12
    items_per_deal = len(default_frames["line_items"]) / 20_000
    assert 1.5 < items_per_deal < 3.5


# ------------------------------------------------------------------------------------------
# Internal consistency of the clean sample
# ------------------------------------------------------------------------------------------


def test_amounts_add_up_from_line_items(small):
    items = small["line_items"]
    totals = (
        items.assign(
            gross=items["quantity"] * items["list_price"],
            net=items["quantity"] * items["invoice_price"],
        )
        .groupby("opportunity_id")[["gross", "net"]]
        .sum()
    )
    opps = small["opportunities"].set_index("opportunity_id")
    assert set(totals.index) == set(opps.index)
    totals = totals.loc[opps.index]
    np.testing.assert_allclose(totals["gross"], opps["list_amount"], atol=0.005)
    np.testing.assert_allclose(totals["net"], opps["amount"], atol=0.005)
    assert (opps["amount"].round(2) == opps["amount"]).all()


def test_line_item_prices_and_costs_are_sane(small):
    items = small["line_items"]
    products = small["products"].set_index("product_id")
    assert (items["list_price"].to_numpy() == products.loc[items["product_id"], "list_price"]).all()
    assert (items["invoice_price"] <= items["list_price"]).all()
    pocket = items["invoice_price"] - items["rebate"] - items["freight"]
    pocket = pocket - items["payment_terms_cost"]
    assert (pocket > 0).all()
    assert (items["unit_cost"] < items["list_price"]).all()
    assert (items["quantity"] >= 1).all()


def test_dates_end_exactly_at_as_of(small):
    opps = small["opportunities"]
    closed = opps["is_closed"]
    assert opps["created_date"].max() == AS_OF
    assert opps.loc[closed, "close_date"].max() <= AS_OF
    assert (opps.loc[~closed, "close_date"] > AS_OF).all()
    assert opps["created_date"].min() >= AS_OF - pd.DateOffset(years=3)
    assert (opps["close_date"] >= opps["created_date"]).all()
    history = small["stage_history"]
    assert history["entered_at"].max() < AS_OF + pd.Timedelta(days=1)


def test_status_columns_agree_with_the_stage(small):
    opps = small["opportunities"]
    assert opps["is_closed"].dtype == bool and opps["is_won"].dtype == bool
    status = opps["stage"].str.lower().map(STAGE_MAP)
    assert status.notna().all()
    assert (opps["is_closed"] == (status != "open")).all()
    assert (opps["is_won"] == (status == "won")).all()
    assert (opps["currency"] == "USD").all()
    lost = status == "lost"
    assert opps.loc[lost, "loss_reason"].notna().all()
    assert opps.loc[~lost, "loss_reason"].isna().all()
    expected = {"Prospecting": 10, "Qualification": 20, "Proposal": 50, "Negotiation": 80}
    expected |= {"Closed Won": 100, "Closed Lost": 0}
    assert (opps["probability"] == opps["stage"].map(expected)).all()


def test_stage_history_walks_the_stages_in_order(small):
    opps = small["opportunities"].set_index("opportunity_id")
    history = small["stage_history"]
    order = {stage: k for k, stage in enumerate(OPEN_STAGES)}
    position = history.groupby("opportunity_id", sort=False).cumcount()
    is_last = ~history["opportunity_id"].duplicated(keep="last")
    open_rows = history["stage"].isin(OPEN_STAGES)
    # every open-stage row is the k-th row of its deal, k = stage number: no stage skipped
    assert (history.loc[open_rows, "stage"].map(order) == position[open_rows]).all()
    # a closing row is always the last one, and a deal's last row is its current stage
    assert is_last[~open_rows].all()
    last = history[is_last].set_index("opportunity_id")
    assert (last["stage"] == opps.loc[last.index, "stage"]).all()
    closed_last = last[last["stage"].isin(CLOSED_STAGES)]
    assert (
        closed_last["entered_at"].dt.normalize() == opps.loc[closed_last.index, "close_date"]
    ).all()
    # times never go backwards, and the first row is entered on the created date
    step = history.groupby("opportunity_id", sort=False)["entered_at"].diff().dropna()
    assert (step > pd.Timedelta(0)).all()
    first = history[position == 0].set_index("opportunity_id")
    assert (first["entered_at"].dt.normalize() == opps.loc[first.index, "created_date"]).all()
    assert (history["close_date"] >= history["entered_at"].dt.normalize()).all()
    assert set(history["opportunity_id"]) == set(opps.index)


def test_open_deals_have_close_date_pushes(default_frames):
    history = default_frames["stage_history"]
    pushed = history.groupby("opportunity_id")["close_date"].diff().dt.days > 0
    assert pushed.sum() > 1_000
    opps = default_frames["opportunities"].set_index("opportunity_id")
    open_ids = opps.index[~opps["is_closed"]]
    last_expected = history.groupby("opportunity_id")["close_date"].last().loc[open_ids]
    assert (opps.loc[open_ids, "close_date"] > last_expected).sum() > 100


def test_accounts_and_reps_are_consistent(small):
    accounts = small["accounts"]
    bands = pd.cut(
        accounts["employee_count"],
        [0, *[upper for upper, _ in SIZE_BANDS if upper], np.inf],
        right=False,
        labels=[label for _, label in SIZE_BANDS],
    )
    assert (bands.astype(str) == accounts["size_band"]).all()
    assert set(accounts["region"]) == {"NA", "EMEA", "APAC", "LATAM"}
    reps = small["reps"]
    assert (reps["hire_date"] < AS_OF).all() and (reps["quota"] > 0).all()
    assert reps["owner_name"].is_unique


def test_clean_sample_triggers_no_quality_rule(small):
    frames = small
    for name, frame in frames.items():
        required = [c.name for c in TABLES[name] if c.required]
        assert frame[required].notna().all().all(), name
        key = {"opportunities": "opportunity_id", "accounts": "account_id"}.get(name)
        key = key or {"reps": "owner_id", "products": "product_id"}.get(name)
        if key:
            assert frame[key].is_unique, name
        numbers = frame.select_dtypes("number")
        assert (numbers >= 0).all().all(), name
        for column in frame.select_dtypes(exclude=["number", "bool", "datetime"]).columns:
            text = frame[column].dropna().astype(str)
            assert not text.str.match(r"[=+\-@]").any(), (name, column)
    opps = frames["opportunities"]
    assert (opps["amount"] <= opps["list_amount"]).all()
    assert (opps["close_date"] >= opps["created_date"]).all()
    assert opps["account_id"].isin(frames["accounts"]["account_id"]).all()
    assert opps["owner_id"].isin(frames["reps"]["owner_id"]).all()
    assert opps["product_id"].isin(frames["products"]["product_id"]).all()
    for child in ("stage_history", "line_items"):
        assert frames[child]["opportunity_id"].isin(opps["opportunity_id"]).all()
    assert frames["line_items"]["product_id"].isin(frames["products"]["product_id"]).all()


# ------------------------------------------------------------------------------------------
# Planted effects (data/samples/README.md), recovered with plain pandas
# ------------------------------------------------------------------------------------------


def _closed_with_discount(frames) -> pd.DataFrame:
    opps = frames["opportunities"]
    closed = opps[opps["is_closed"]].copy()
    closed["discount"] = 1 - closed["amount"] / closed["list_amount"]
    return closed


def test_open_deals_are_a_realistic_share_and_slow(default_frames):
    from statsmodels.duration.survfunc import SurvfuncRight

    opps = default_frames["opportunities"]
    assert 0.10 <= (~opps["is_closed"]).mean() <= 0.20
    end = opps["close_date"].where(opps["is_closed"], AS_OF)
    days = (end - opps["created_date"]).dt.days.to_numpy()
    closed = opps["is_closed"].to_numpy()
    km_median = SurvfuncRight(days, closed.astype(int)).quantile(0.5)
    closed_median = np.median(days[closed])
    assert km_median > 1.1 * closed_median  # closed-only is biased low
    recent = (opps["created_date"] > AS_OF - pd.DateOffset(years=1)).to_numpy()
    km_recent = SurvfuncRight(days[recent], closed[recent].astype(int)).quantile(0.5)
    assert km_recent > 1.2 * np.median(days[recent & closed])


def test_discounts_beyond_20_percent_do_not_raise_win_rate(default_frames):
    closed = _closed_with_discount(default_frames)
    edges = [0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 1.0]
    bands = pd.cut(closed["discount"], edges, right=False)
    rate = closed.groupby(bands, observed=True)["is_won"].mean().to_numpy()
    assert len(rate) == 7
    assert rate[3] > rate[0] + 0.08  # rises up to the 15-20% band
    assert list(rate[:4]) == sorted(rate[:4])
    assert rate[4:].max() <= rate[3] + 0.01  # flat or lower beyond 20%
    assert rate[6] <= rate[5]  # the deepest band is not better than the one before


def test_three_reps_discount_habitually(default_frames):
    opps = default_frames["opportunities"]
    totals = opps.groupby("owner_id")[["amount", "list_amount"]].sum()
    discount = (1 - totals["amount"] / totals["list_amount"]).sort_values()
    assert set(discount.index[-3:]) == HABITUAL_DISCOUNTERS
    assert discount.iloc[-3:].between(0.24, 0.31).all()
    others = discount.iloc[:-3]
    assert 0.08 <= others.median() <= 0.12
    assert others.max() < 0.15


def test_enterprise_deals_stall_in_negotiation(default_frames):
    history = default_frames["stage_history"].sort_values(["opportunity_id", "entered_at"])
    left = history.groupby("opportunity_id")["entered_at"].shift(-1)
    history = history.assign(days=(left - history["entered_at"]).dt.total_seconds() / 86_400)
    owners = default_frames["opportunities"][["opportunity_id", "account_id"]]
    bands = owners.merge(default_frames["accounts"][["account_id", "size_band"]], on="account_id")
    history = history.merge(bands, on="opportunity_id").dropna(subset=["days"])
    enterprise = history["size_band"] == "Enterprise"
    medians = history.groupby(["stage", enterprise])["days"].median().unstack()
    ratio = medians[True] / medians[False]
    assert 2.5 <= ratio["Negotiation"] <= 3.5
    for stage in ["Prospecting", "Qualification", "Proposal"]:
        assert 0.8 <= ratio[stage] <= 1.25, stage


def test_segments_differ_in_win_rate_and_asp(default_frames):
    from scipy.stats import chi2_contingency

    closed = _closed_with_discount(default_frames).merge(
        default_frames["accounts"], on="account_id"
    )
    won = closed[closed["is_won"]]
    asp = won.groupby("size_band")["amount"].mean()
    assert asp["Enterprise"] > 3 * asp["Mid-Market"] > 3 * asp["SMB"]
    by_industry = closed.groupby("industry")["is_won"].mean()
    assert by_industry.max() - by_industry.min() >= 0.12
    assert by_industry.idxmax() == "Technology"
    table = pd.crosstab(closed["industry"], closed["is_won"])
    assert chi2_contingency(table).pvalue < 1e-6
    by_size = closed.groupby("size_band")["is_won"].mean()
    assert by_size["SMB"] > by_size["Mid-Market"] > by_size["Enterprise"]


def test_top_quartile_reps_by_bookings_close_faster_and_win_more(default_frames):
    opps = default_frames["opportunities"]
    bookings = opps[opps["is_won"]].groupby("owner_id")["amount"].sum()
    top = bookings.index[bookings >= bookings.quantile(0.75)]
    is_top = opps["owner_id"].isin(top)
    won = opps[opps["is_won"]]
    cycle = (won["close_date"] - won["created_date"]).dt.days
    top_cycle = cycle[won["owner_id"].isin(top)].median()
    assert top_cycle <= 0.8 * cycle[~won["owner_id"].isin(top)].median()
    closed = opps["is_closed"]
    assert (
        opps.loc[closed & is_top, "is_won"].mean()
        > opps.loc[closed & ~is_top, "is_won"].mean() + 0.08
    )


# ------------------------------------------------------------------------------------------
# Writing files
# ------------------------------------------------------------------------------------------


def test_write_sample_parquet_matches_generate_sample(tmp_path):
    import pyarrow.parquet as pq

    paths = write_sample(tmp_path, n_opportunities=1_000, seed=5)
    assert set(paths) == set(COLUMNS)
    frames = generate_sample(1_000, seed=5)
    for name, path in paths.items():
        assert path == tmp_path / f"{name}.parquet"
        table = pq.read_table(path)
        got = table.to_pandas(date_as_object=False)
        pd.testing.assert_frame_equal(got, frames[name], check_dtype=False)


def test_write_sample_csv(tmp_path):
    paths = write_sample(tmp_path, n_opportunities=1_000, seed=5, fmt="csv")
    opps = pd.read_csv(paths["opportunities"])
    assert len(opps) == 1_000
    assert set(opps["is_closed"].astype(str).str.lower()) == {"true", "false"}
    history = pd.read_csv(paths["stage_history"])
    assert history["entered_at"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_opportunities": 10},
        {"n_opportunities": 1_000, "messy": True},
        {"n_opportunities": "many"},
        {"seed": -1},
        {"as_of": "30/09/2026"},
    ],
)
def test_bad_parameters_raise_parameter_error(kwargs):
    with pytest.raises(ParameterError):
        generate_sample(**{"n_opportunities": 1_000, **kwargs})


def test_bad_format_raises_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="fmt"):
        write_sample(tmp_path, n_opportunities=1_000, fmt="xlsx")


# ------------------------------------------------------------------------------------------
# The messy sample: planted counts recounted with plain pandas
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory) -> Path:
    """The messy sample written as CSV (5,000 opportunities, seed 3) with its planted.json."""
    folder = tmp_path_factory.mktemp("messy")
    write_sample(folder, n_opportunities=5_000, seed=3, messy=True)
    return folder


@pytest.fixture(scope="module")
def messy(messy_folder) -> tuple[dict[str, pd.DataFrame], dict]:
    """The messy sample as written (CSV, read back as text) and its planted.json."""
    frames = {
        name: pd.read_csv(messy_folder / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in COLUMNS
    }
    return frames, json.loads((messy_folder / "planted.json").read_text())


@pytest.fixture(scope="module")
def messy_report(messy_folder):
    """validate() of the messy sample (the canonical mapping, the default as-of date)."""
    return validate(messy_folder)


def _blank(column: pd.Series) -> pd.Series:
    return column.str.strip() == ""


def _number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.str.replace(",", "", regex=False), errors="coerce")


def _date(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")


def _timestamp(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, format="%Y-%m-%d %H:%M:%S", errors="coerce")


def _bool(column: pd.Series) -> pd.Series:
    """True/False for "true"/"false" (how the sample writes booleans), NaN otherwise."""
    return column.str.strip().str.lower().map({"true": True, "false": False})


def _unparseable(column: pd.Series, kind: str) -> pd.Series:
    """Present (not blank) values that do not parse as the column's kind."""
    parse = {"number": _number, "date": _date, "timestamp": _timestamp, "bool": _bool}.get(kind)
    if parse is None:  # ids and text always parse
        return pd.Series(False, index=column.index)
    return ~_blank(column) & parse(column).isna()


def _first_failing(frame: pd.DataFrame, checks, key: str | None) -> tuple[dict, pd.Series]:
    """Count each row under the first rule it fails; duplicates among the rest last."""
    counts, used = {}, pd.Series(True, index=frame.index)
    for rule, bad in checks:
        hit = used & bad
        counts[rule] = int(hit.sum())
        used &= ~hit
    if key:
        duplicate = frame.loc[used, key].duplicated().reindex(frame.index, fill_value=False)
        counts["duplicate_id"] = int(duplicate.sum())
        used &= ~duplicate
    return counts, used


def _formula(frame: pd.DataFrame, table: str) -> pd.Series:
    text = [c.name for c in TABLES[table] if c.kind in ("id", "text") and c.name in frame]
    return frame[text].apply(lambda column: column.str.match(r"[=+\-@]")).any(axis=1)


def _any_unparseable(frame: pd.DataFrame, table: str, kinds: tuple[str, ...]) -> pd.Series:
    """Rows with a value that does not parse in an optional column of these kinds."""
    cols = [c for c in TABLES[table] if c.name in frame and c.kind in kinds and not c.required]
    bad = [_unparseable(frame[c.name], c.kind) for c in cols]
    return pd.concat(bad, axis=1).any(axis=1)


def _messy_opportunities(opps: pd.DataFrame) -> pd.DataFrame:
    """The opportunities as the rules of docs/data-model.md read them, in plain pandas: the
    status from is_closed/is_won or the stage, the amount in USD or empty (another currency has
    no rate here, and a negative amount is left empty), the dates."""
    closed, won = _bool(opps["is_closed"]), _bool(opps["is_won"])
    status = pd.Series("open", index=opps.index, dtype=object)
    status[closed.eq(True)] = "lost"
    status[closed.isna()] = None  # no flag to go by: the stage decides
    status[won.eq(True)] = "won"
    status = status.fillna(opps["stage"].str.strip().str.lower().map(STAGE_MAP))
    amount = _number(opps["amount"])
    # USD, the most common currency, is the base; a blank currency is taken as the base
    in_usd = _blank(opps["currency"]) | (opps["currency"].str.strip().str.upper() == "USD")
    return pd.DataFrame(
        {
            "status": status,
            "amount": amount.where(in_usd & (amount >= 0)),
            "raw_amount": amount,
            "in_usd": in_usd,
            "created": _date(opps["created_date"]),
            "close": _date(opps["close_date"]),
        }
    )


def _recount(frames: dict[str, pd.DataFrame]) -> tuple[dict, pd.Timestamp, pd.Series]:
    """Independent plain-pandas evaluation of the rules on the messy CSV text.

    An opportunity is excluded only without an id or a status, with a stage no map knows, or
    as a repeated id; every other problem is a flag on a used row.
    """
    got = {name: {"excluded": {}, "flagged": {}} for name in frames}
    masters = {}
    for table, key in (
        ("accounts", "account_id"),
        ("reps", "owner_id"),
        ("products", "product_id"),
    ):
        frame = frames[table]
        excluded, used = _first_failing(frame, [("missing_required", _blank(frame[key]))], key)
        got[table]["excluded"] = excluded
        got[table]["flagged"]["formula_text"] = int((used & _formula(frame, table)).sum())
        masters[table] = set(frame.loc[used, key])

    opps = frames["opportunities"]
    d = _messy_opportunities(opps)
    no_status = _blank(opps["stage"]) & _blank(opps["is_closed"])
    checks = [
        ("missing_required", _blank(opps["opportunity_id"]) | no_status),
        ("unknown_stage", d["status"].isna()),
    ]
    excluded, used = _first_failing(opps, checks, "opportunity_id")
    is_open, is_closed = d["status"] == "open", d["status"].isin(["won", "lost"])
    as_of = max(d.loc[used, "created"].max(), d.loc[used & is_closed, "close"].max())

    def unmatched(column: str, table: str) -> pd.Series:
        return ~_blank(opps[column]) & ~opps[column].isin(masters[table])

    flags = {
        "unparseable_number": _any_unparseable(opps, "opportunities", ("number", "bool")),
        "unparseable_date": _any_unparseable(opps, "opportunities", ("date",)),
        # no currency_rates table: a deal in another currency has no rate
        "currency_without_rate": ~d["in_usd"],
        # a negative amount as written, in whatever currency
        "negative_amount": d["raw_amount"] < 0,
        "close_before_created": is_closed & (d["close"] < d["created"]),
        "net_above_list": d["amount"] > _number(opps["list_amount"]),
        "unmatched_account": unmatched("account_id", "accounts"),
        "unmatched_owner": unmatched("owner_id", "reps"),
        "unmatched_product": unmatched("product_id", "products"),
        "open_close_date_past": is_open & (d["close"] < as_of),
        "formula_text": _formula(opps, "opportunities"),
        # converted by a rate: there is no rate, so no row
        "mixed_currencies": pd.Series(False, index=opps.index),
    }
    got["opportunities"] = {
        "excluded": excluded,
        "flagged": {rule: int((used & bad).sum()) for rule, bad in flags.items()},
    }
    kept = set(opps.loc[used, "opportunity_id"])
    no_rate = set(opps.loc[used & ~d["in_usd"], "opportunity_id"])  # kept without an amount
    for table in ("stage_history", "line_items"):
        child = frames[table]
        checks = [
            ("parent_excluded", child["opportunity_id"].isin(set(opps["opportunity_id"]) - kept)),
            ("unmatched_opportunity", ~child["opportunity_id"].isin(opps["opportunity_id"])),
        ]
        if table == "line_items":  # their prices cannot be read in USD; history rows stay
            checks.insert(0, ("currency_without_rate", child["opportunity_id"].isin(no_rate)))
        excluded, used_child = _first_failing(child, checks, None)
        got[table]["excluded"] = excluded
        if table == "line_items":
            above = _number(child["invoice_price"]) > _number(child["list_price"])
            got[table]["flagged"]["net_above_list"] = int((used_child & above).sum())
    return got, as_of, used


def test_messy_planted_json_lists_every_rule(messy):
    _, planted = messy
    assert set(planted) == {*COLUMNS, "rows"}
    for name in COLUMNS:
        assert list(planted[name]["excluded"]) == list(EXCLUDE_RULES)
        assert list(planted[name]["flagged"]) == list(FLAG_RULES)


def test_messy_fixed_counts_are_the_module_constants(messy):
    _, planted = messy
    for name, spec in MESSY_PLANTED.items():
        for kind, rules in spec.items():
            for rule, count in rules.items():
                assert planted[name][kind][rule] == count, (name, kind, rule)
    # data/samples/README.md: the 15 blank amounts and 15 blank created dates are kept (no rule);
    # only the 12 unknown stages and the 20 copies exclude an opportunity
    opportunities = planted["opportunities"]
    assert {k: v for k, v in opportunities["excluded"].items() if v} == {
        "unknown_stage": 12,
        "duplicate_id": 20,
    }
    # the other planted problems keep the deal and flag it
    for rule, count in {
        "unparseable_number": 20,
        "unparseable_date": 25,
        "currency_without_rate": 40,
        "negative_amount": 10,
        "close_before_created": 15,
        "open_close_date_past": 14,
    }.items():
        assert opportunities["flagged"][rule] == count, rule
    assert planted["stage_history"]["excluded"]["unmatched_opportunity"] == 9
    assert planted["line_items"]["flagged"]["net_above_list"] == 11
    assert planted["accounts"]["flagged"]["formula_text"] == 5


def test_messy_counts_match_an_independent_recount(messy):
    frames, planted = messy
    got, as_of, _ = _recount(frames)
    assert as_of == AS_OF  # the planted problems leave the as-of date alone
    for name in COLUMNS:
        for kind in ("excluded", "flagged"):
            for rule, count in planted[name][kind].items():
                assert got[name][kind].get(rule, 0) == count, (name, kind, rule)
    assert planted["rows"] == {name: len(frame) for name, frame in frames.items()}
    # only the 12 unknown-stage deals take their children with them now
    assert planted["stage_history"]["excluded"]["parent_excluded"] > 0
    assert planted["line_items"]["excluded"]["parent_excluded"] > 0


def test_messy_validate_gives_the_planted_counts(messy, messy_report):
    # planted.json, itself checked above against the plain-pandas recount
    _, planted = messy
    report = messy_report
    assert report.usable and report.as_of == AS_OF.date().isoformat()
    for name in COLUMNS:
        t = report.tables[name]
        assert t.rows_read == planted["rows"][name], name
        assert excluded(report, name) == {k: v for k, v in planted[name]["excluded"].items() if v}
        assert flagged(report, name) == {k: v for k, v in planted[name]["flagged"].items() if v}
    assert_invariant(report)  # rows read = rows used + rows excluded, per table
    assert_populations_add_up(report)  # counted + left out = rows used, per KPI


def _nonzero(counts: dict[str, pd.Series]) -> dict[str, int]:
    return {reason: int(rows.sum()) for reason, rows in counts.items() if rows.sum()}


def test_messy_populations_match_pandas(messy, messy_report):
    # which used deals three KPIs count, recounted on the CSV text (docs/metrics.md)
    frames, _ = messy
    _, _, used = _recount(frames)
    d = _messy_opportunities(frames["opportunities"])[used]
    won, is_open = d["status"] == "won", d["status"] == "open"
    closed = ~is_open
    has_amount, has_created = d["amount"].notna(), d["created"].notna()
    pops = populations(messy_report)
    assert pops["bookings and ASP"] == (
        int((won & has_amount).sum()),
        _nonzero({"not won": ~won, "won without an amount": won & ~has_amount}),
    )
    assert pops["open pipeline and velocity"] == (
        int((is_open & has_amount).sum()),
        _nonzero({"closed": closed, "open without an amount": is_open & ~has_amount}),
    )
    before = closed & (d["close"] < d["created"])
    no_close = closed & d["close"].isna()
    assert pops["time to close"] == (
        int((has_created & ~no_close & ~before).sum()),
        _nonzero(
            {
                "no created date": ~has_created,
                "closed without a close date": has_created & no_close,
                "closed before its created date": has_created & before,
            }
        ),
    )
    # by hand from data/samples/README.md: the 15 + 25 deals with a blank or bad created
    # date, and the 15 planted closed-before-created deals
    assert pops["time to close"][1] == {
        "no created date": 15 + 25,
        "closed before its created date": 15,
    }


def test_messy_column_counts_match_pandas(messy, messy_report):
    # per column, among the rows READ: empty values, and values present that do not parse
    frames, _ = messy
    for name, frame in frames.items():
        kinds = {c.name: c.kind for c in TABLES[name] if c.name in frame}
        expected = {
            column: (int(_blank(frame[column]).sum()), int(_unparseable(frame[column], kind).sum()))
            for column, kind in kinds.items()
        }
        got = {c: (n.blank, n.unparseable) for c, n in messy_report.tables[name].columns.items()}
        assert got == expected, name
    # by hand from data/samples/README.md
    opportunities = messy_report.tables["opportunities"].columns
    assert (opportunities["amount"].blank, opportunities["amount"].unparseable) == (15, 20)
    created = opportunities["created_date"]
    assert (created.blank, created.unparseable) == (15, 25)
    assert opportunities["is_closed"].blank == 12  # the unknown stages
    assert messy_report.tables["accounts"].columns["account_id"].blank == 3


def test_messy_rows_have_one_problem_each(messy):
    frames, _ = messy
    clean = generate_sample(5_000, seed=3)["opportunities"]
    opps = frames["opportunities"].iloc[: len(clean)]  # the 20 duplicates come after
    as_text = {
        "amount": clean["amount"].map("{:.2f}".format),
        "created_date": clean["created_date"].dt.strftime("%Y-%m-%d"),
        "close_date": clean["close_date"].dt.strftime("%Y-%m-%d"),
        "list_amount": clean["list_amount"].map("{:.2f}".format),
    }
    changed = pd.DataFrame(
        {
            column: opps[column].str.replace(",", "") != as_text.get(column, clean[column])
            for column in [*as_text, "stage", "currency", "account_id", "owner_id", "product_id"]
        }
    )
    assert changed.sum(axis=1).max() == 1
    planted_rows = 30 + 20 + 25 + 12 + 40 + 10 + 15 + 18 + 8 + 5 + 6 + 14
    assert changed.any(axis=1).sum() == planted_rows


def test_messy_amounts_with_thousands_separators_still_parse(messy):
    frames, _ = messy
    amount = frames["opportunities"]["amount"]
    separated = amount[amount.str.contains(",", regex=False)]
    assert len(separated) == 50
    assert separated.str.fullmatch(r"\d{1,3}(,\d{3})+\.\d\d").all()
    assert _number(separated).notna().all()


def test_messy_dates_are_iso_except_the_planted_ones(messy):
    frames, planted = messy
    opps = frames["opportunities"]
    iso = (
        opps["created_date"].str.fullmatch(r"\d{4}-\d\d-\d\d") & _date(opps["created_date"]).notna()
    )
    bad = (~iso & ~_blank(opps["created_date"])).sum()
    assert bad == planted["opportunities"]["flagged"]["unparseable_date"]
    assert _date(opps["close_date"]).notna().all()
    entered = frames["stage_history"]["entered_at"]
    assert entered.str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()


def test_messy_unknown_stage_rows_have_no_status(messy):
    frames, _ = messy
    opps = frames["opportunities"]
    unknown = ~opps["stage"].str.lower().isin(STAGE_MAP)
    assert unknown.sum() == 12
    assert (_blank(opps.loc[unknown, "is_closed"]) & _blank(opps.loc[unknown, "is_won"])).all()
    assert set(opps.loc[~unknown, "is_closed"]) == {"true", "false"}


def test_messy_frames_are_deterministic():
    first = generate_sample(2_000, seed=9, messy=True)
    second = generate_sample(2_000, seed=9, messy=True)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])
    assert first["opportunities"].attrs["planted"]["flagged"]["negative_amount"] == 10


def test_committed_samples_match_the_generator():
    """data/samples/{default,messy} are what write_sample produces (regenerate if not)."""
    root = Path(__file__).resolve().parents[1] / "data" / "samples"
    planted_path = root / "messy" / "planted.json"
    if not (root / "default" / "opportunities.parquet").exists() or not planted_path.exists():
        pytest.skip("committed samples not generated yet")
    import pyarrow.parquet as pq

    default = pq.read_table(root / "default" / "opportunities.parquet").to_pandas()
    assert len(default) == 20_000
    assert re.fullmatch(r"OPP-\d{7}", default["opportunity_id"].iloc[0])
    planted = json.loads(planted_path.read_text())
    assert planted["rows"]["opportunities"] == 20_020
