"""Helpers shared by the loader, quality and CLI tests: fixture paths, a small canonical dataset
written to every kind of source, and accessors for quality reports.

Every expected number here is derived by hand from the rows below (see the comments), never from
the loader's own output.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BAD = FIXTURES / "bad"
SALESFORCE = FIXTURES / "salesforce"
HUBSPOT = FIXTURES / "hubspot"
CUSTOM = FIXTURES / "custom"
SAMPLES = ROOT / "data" / "samples"

# ---------------------------------------------------------------------------------------------
# A small canonical dataset, the same in every source format.
#
# opportunities (10 rows; no is_closed/is_won, so the status comes from the canonical stage map):
#   O-1 Closed Won   1000  list 1200                      -> won
#   O-2 won          2500  list 2500                      -> won
#   O-3 Closed Lost  1800  list 2000                      -> lost
#   O-4 Proposal     3000  list 3600  p 0.5               -> open
#   O-5 Negotiation  4000  list 4000  p 0.7               -> open
#   O-6 Won          1500  no list                        -> won  (left out of the discount metrics)
#   O-7 lost          800  list 1000  account A-9         -> lost (flag: unmatched_account)
#   O-8 Prospecting  no amount  list 500                  -> open, kept without an amount (left out
#                                                            of open pipeline and velocity)
#   O-9 On Hold       900                                 -> excluded: unknown_stage
#   O-10 (no stage)   700  list 800                       -> excluded: missing_required (no status)
# used 8: won 3 (1000 + 2500 + 1500 = 5000), lost 2 (1800 + 800 = 2600),
#   open 3 (3000 + 4000 = 7000; O-8 has no amount)
# as_of: latest created_date (O-7, 2025-03-01) or close_date of a closed deal (O-6, 2025-03-20)
#   -> 2025-03-20. The excluded rows' dates are earlier, so it does not matter whether they count.
# line_items (5 rows): O-10's is excluded as parent_excluded; O-8's is used (its deal is kept):
#   used sum(quantity * invoice_price) = 2*500 + 1*2500 + 6*500 + 1*500 = 7000
#
# Which used deals (8) each KPI counts, and why the others are left out (docs/metrics.md):
#   win rate                   5 closed (O-1 2 3 6 7); 3 open (O-4 5 8)
#   bookings and ASP           3 won with an amount (O-1 2 6); 5 not won
#   value win rate             5 closed, all above $0; 3 open
#   open pipeline, velocity    2 (O-4 5); 5 closed, 1 open without an amount (O-8)
#   weighted pipeline          2 (O-4 5); 5 closed, 1 open without an amount (O-8, the first
#                                reason it fails; it has no probability either)
#   portfolio discount         2 won priced (O-1 2); 5 not won, 1 won without a list price (O-6)
#   win rate by discount band  4 closed priced (O-1 2 3 7); 3 open, 1 closed without a list
#                                price (O-6)
#   time to close              8: every deal has a created date, every closed one a close date
#                                on or after it
#   days to win                3 won (O-1 2 6); 5 not won
# Per column, of the 10 rows read: stage empty 1 (O-10), amount 1 (O-8), list_amount 1 (O-6),
#   probability 8 (all but O-4 and O-5); nothing unparseable.
# ---------------------------------------------------------------------------------------------

_OPPS = [
    # id, name, account, owner, stage, amount, list, probability, created, close
    (
        "O-1",
        "Acme platform",
        "A-1",
        "R-1",
        "Closed Won",
        1000,
        1200,
        None,
        "2025-01-05",
        "2025-02-10",
    ),
    ("O-2", "Globex seats", "A-2", "R-2", "won", 2500, 2500, None, "2025-01-12", "2025-03-01"),
    (
        "O-3",
        "Initech pilot",
        "A-3",
        "R-1",
        "Closed Lost",
        1800,
        2000,
        None,
        "2025-01-20",
        "2025-02-25",
    ),
    ("O-4", "Acme add-on", "A-1", "R-2", "Proposal", 3000, 3600, 0.5, "2025-02-02", "2025-05-30"),
    (
        "O-5",
        "Globex renewal",
        "A-2",
        "R-1",
        "Negotiation",
        4000,
        4000,
        0.7,
        "2025-02-15",
        "2025-06-15",
    ),
    ("O-6", "Initech services", "A-3", "R-2", "Won", 1500, None, None, "2025-02-20", "2025-03-20"),
    ("O-7", "Umbrella trial", "A-9", "R-1", "lost", 800, 1000, None, "2025-03-01", "2025-03-15"),
    ("O-8", "No amount", "A-1", "R-1", "Prospecting", None, 500, None, "2025-02-25", "2025-06-30"),
    ("O-9", "Parked deal", "A-2", "R-2", "On Hold", 900, 900, None, "2025-02-27", "2025-04-30"),
    ("O-10", "Blank stage", "A-3", "R-2", None, 700, 800, None, "2025-02-10", "2025-04-15"),
]
_OPP_COLS = [
    "opportunity_id",
    "opportunity_name",
    "account_id",
    "owner_id",
    "stage",
    "amount",
    "list_amount",
    "probability",
    "created_date",
    "close_date",
]
_LINE_ITEMS = [
    ("O-1", "P-1", 2, 600, 500),
    ("O-2", "P-2", 1, 2500, 2500),
    ("O-4", "P-1", 6, 600, 500),
    ("O-8", "P-2", 1, 500, 500),
    ("O-10", "P-1", 1, 600, 550),
]
_LI_COLS = ["opportunity_id", "product_id", "quantity", "list_price", "invoice_price"]
_ACCOUNTS = [
    ("A-1", "Acme", "Manufacturing", 180),
    ("A-2", "Globex", "Technology", 2400),
    ("A-3", "Initech", "Technology", 45),
]
_REPS = [("R-1", "Ada Lovelace", "East"), ("R-2", "Grace Hopper", "West")]
_PRODUCTS = [("P-1", "Platform", "Software", 600), ("P-2", "Onboarding", "Services", 2500)]

SMALL_EXPECTED = {
    "rows_read": {
        "opportunities": 10,
        "line_items": 5,
        "accounts": 3,
        "reps": 2,
        "products": 2,
    },
    "rows_used": {
        "opportunities": 8,
        "line_items": 4,
        "accounts": 3,
        "reps": 2,
        "products": 2,
    },
    "opportunities_excluded": {"missing_required": 1, "unknown_stage": 1},
    "opportunities_flagged": {"unmatched_account": 1},
    "line_items_excluded": {"parent_excluded": 1},
    "used_ids": {"O-1", "O-2", "O-3", "O-4", "O-5", "O-6", "O-7", "O-8"},
    "status_count": {"won": 3, "lost": 2, "open": 3},
    "status_amount": {"won": 5000.0, "lost": 2600.0, "open": 7000.0},
    "line_items_net": 7000.0,
    "as_of": dt.date(2025, 3, 20),
    # KPI -> (deals counted, {reason: deals left out}), from the table in the comment above
    "populations": {
        "win rate": (5, {"open: not won or lost yet": 3}),
        "bookings and ASP": (3, {"not won": 5}),
        "value win rate": (5, {"open": 3}),
        "open pipeline and velocity": (2, {"closed": 5, "open without an amount": 1}),
        "weighted pipeline": (2, {"closed": 5, "open without an amount": 1}),
        "portfolio discount": (
            2,
            {
                "not won (the discount is that of the price realized)": 5,
                "won without a list price": 1,
            },
        ),
        "win rate by discount band": (4, {"open": 3, "closed without a list price": 1}),
        "time to close": (8, {}),
        "days to win": (3, {"not won": 5}),
    },
    # (table, column) -> (empty, unparseable), of the rows read
    "columns": {
        ("opportunities", "stage"): (1, 0),
        ("opportunities", "amount"): (1, 0),
        ("opportunities", "list_amount"): (1, 0),
        ("opportunities", "probability"): (8, 0),
    },
}


def small_frames(typed: bool = True) -> dict[str, pd.DataFrame]:
    """The small canonical dataset as DataFrames.

    typed=True: numbers as floats, dates as datetime64 (as from Parquet, Excel or a database);
    typed=False: every cell a string, empty cells None (as from a CSV file).
    """
    frames = {
        "opportunities": pd.DataFrame(_OPPS, columns=_OPP_COLS),
        "line_items": pd.DataFrame(_LINE_ITEMS, columns=_LI_COLS),
        "accounts": pd.DataFrame(
            _ACCOUNTS, columns=["account_id", "account_name", "industry", "employee_count"]
        ),
        "reps": pd.DataFrame(_REPS, columns=["owner_id", "owner_name", "region"]),
        "products": pd.DataFrame(
            _PRODUCTS, columns=["product_id", "product_name", "family", "list_price"]
        ),
    }
    opps = frames["opportunities"]
    if typed:
        for col in ("amount", "list_amount", "probability"):
            opps[col] = opps[col].astype("float64")
        for col in ("created_date", "close_date"):
            opps[col] = pd.to_datetime(opps[col])
        return frames
    return {name: _as_strings(frame) for name, frame in frames.items()}


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    def cell(value):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return frame.astype(object).map(cell)


def write_csv_folder(folder: Path, frames: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


# ---------------------------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------------------------


def to_pandas(table) -> pd.DataFrame:
    """An Ibis table (or None) as a pandas DataFrame."""
    return table.execute() if table is not None else pd.DataFrame()


def excluded(report, table: str) -> dict[str, int]:
    """Non-zero exclusion counts of one table."""
    return {k: v for k, v in report.tables[table].excluded.items() if v}


def flagged(report, table: str) -> dict[str, int]:
    """Non-zero flag counts of one table."""
    return {k: v for k, v in report.tables[table].flagged.items() if v}


def metric_exclusion_rows(report, table: str, word: str) -> int:
    """Rows left out of the metric whose name contains `word` (0 when not listed)."""
    rows = [m.rows for m in report.tables[table].metric_exclusions if word in m.metric.lower()]
    return sum(rows)


def assert_invariant(report) -> None:
    """rows_read == rows_used + rows_excluded and rows_excluded == sum(excluded) for every table."""
    for name, t in report.tables.items():
        assert t.rows_read == t.rows_used + t.rows_excluded, (name, t)
        assert t.rows_excluded == sum(t.excluded.values()), (name, t.excluded)
        assert all(v >= 0 for v in t.excluded.values()), (name, t.excluded)
        assert all(v >= 0 for v in t.flagged.values()), (name, t.flagged)


def assert_populations_add_up(report) -> None:
    """For every KPI population: deals counted + deals left out (summed over the reasons) = the
    opportunities used, every count >= 0, and every KPI of docs/metrics.md listed once."""
    used = report.tables["opportunities"].rows_used
    kpis = [p["kpi"] for p in report.populations]
    assert len(kpis) == len(set(kpis)) == 9, kpis
    for p in report.populations:
        assert p["rows_used"] == used, p
        assert p["rows_in"] >= 0 and all(n > 0 for n in p["left_out"].values()), p
        assert p["rows_in"] + sum(p["left_out"].values()) == used, p


def populations(report) -> dict[str, tuple[int, dict[str, int]]]:
    """KPI -> (deals counted, {reason: deals left out})."""
    return {p["kpi"]: (p["rows_in"], dict(p["left_out"])) for p in report.populations}


def metric_exclusions(report, table: str = "opportunities") -> dict[tuple[str, str], int]:
    """(metric, reason) -> rows, of one table's metric exclusions."""
    return {(m.metric, m.reason): m.rows for m in report.tables[table].metric_exclusions}


def column_counts(report) -> dict[tuple[str, str], tuple[int, int]]:
    """(table, column) -> (empty, unparseable) among the rows read, for the columns with any."""
    return {
        (table, column): (c.blank, c.unparseable)
        for table, t in report.tables.items()
        for column, c in t.columns.items()
        if c.blank or c.unparseable
    }


def status_summary(data) -> tuple[dict[str, int], dict[str, float]]:
    """Count and amount of used opportunities per status."""
    opps = to_pandas(data.opportunities)
    counts = opps["status"].value_counts().to_dict()
    amounts = opps.groupby("status")["amount"].sum().astype(float).to_dict()
    return {k: int(v) for k, v in counts.items()}, amounts


def as_date(value) -> dt.date | None:
    """A date, datetime, Timestamp or ISO string as a datetime.date."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date()


def rows_by_id(table, key: str = "opportunity_id") -> dict[str, dict]:
    """The rows of an Ibis table as {str(id): row dict}."""
    frame = to_pandas(table)
    return {str(r[key]): r for r in frame.to_dict("records")}


# ------------------------------------------------------------------------------------------
# A tiny pipeline with stage history, as of 2025-03-31 (tests of _cycle, _time_to_close and
# _stages; the ``tiny_history`` fixture). Every deal was created on 2025-01-01.
# Stages: P = Prospecting, Q = Qualification, N = Negotiation, then Closed Won / Closed Lost.
#
#  id  type     stage now    amount  history (entered date: stage, expected close date)
#  d1  New      Closed Won    100   01-01 P 01-31 | 01-11 Q 02-15 | 01-31 N 02-15 | 02-10 Won 02-10
#  d2  New      Closed Lost   200   01-01 P 01-31 | 01-06 Q 01-31 | 01-26 Lost 01-26
#  d3  New      Negotiation   300   01-01 P 02-28 | 01-21 Q 03-15 | 02-20 N 04-15
#  d4  Renewal  Closed Lost   400   01-01 P 01-31 | 01-31 Lost 01-31
#  d5  Renewal  Prospecting   500   01-01 P 02-28
#  d6  Renewal  Closed Won    600   01-01 P 01-31 | 01-03 Q 01-31 | 01-08 N 02-28 | 03-09 Won 03-09
#
# Days to close (created → close, or age at as-of for open deals):
#   d1 40 won, d2 25 lost, d3 89 open, d4 30 lost, d5 89 open, d6 67 won
#   (Jan 1 → Mar 31 = 31 + 28 + 31 − 1 = 89; Jan 1 → Mar 9 = 31 + 28 + 8 = 67)
# Days in stage (calendar days to the next stage; open deals' current stage to 03-31):
#   P: d1 10 →Q, d2 5 →Q, d3 20 →Q, d4 30 →lost, d5 89 (still there), d6 2 →Q
#   Q: d1 20 →N, d2 20 →lost, d3 30 →N, d6 5 →N
#   N: d1 10 →won, d3 39 (still there: Feb 20 → Mar 31 = 8 + 31), d6 60 →won
#   (a closed deal's stays add up to its cycle: d1 10 + 20 + 10 = 40, d6 2 + 5 + 60 = 67)
# ------------------------------------------------------------------------------------------

HISTORY_AS_OF = "2025-03-31"
_HISTORY_OPPS = [
    ("d1", "New", "Closed Won", 100, "2025-02-10"),
    ("d2", "New", "Closed Lost", 200, "2025-01-26"),
    ("d3", "New", "Negotiation", 300, "2025-04-15"),
    ("d4", "Renewal", "Closed Lost", 400, "2025-01-31"),
    ("d5", "Renewal", "Prospecting", 500, "2025-02-28"),
    ("d6", "Renewal", "Closed Won", 600, "2025-03-09"),
]
_HISTORY = [
    ("d1", "Prospecting", "2025-01-01 09:00", "2025-01-31"),
    ("d1", "Qualification", "2025-01-11 17:30", "2025-02-15"),
    ("d1", "Negotiation", "2025-01-31 08:00", "2025-02-15"),
    ("d1", "Closed Won", "2025-02-10 12:00", "2025-02-10"),
    ("d2", "Prospecting", "2025-01-01 10:00", "2025-01-31"),
    ("d2", "Qualification", "2025-01-06 23:59", "2025-01-31"),
    ("d2", "Closed Lost", "2025-01-26 00:01", "2025-01-26"),
    ("d3", "Prospecting", "2025-01-01 11:00", "2025-02-28"),
    ("d3", "Qualification", "2025-01-21 11:00", "2025-03-15"),
    ("d3", "Negotiation", "2025-02-20 17:30", "2025-04-15"),
    ("d4", "Prospecting", "2025-01-01 12:00", "2025-01-31"),
    ("d4", "Closed Lost", "2025-01-31 12:00", "2025-01-31"),
    ("d5", "Prospecting", "2025-01-01 13:00", "2025-02-28"),
    ("d6", "Prospecting", "2025-01-01 14:00", "2025-01-31"),
    ("d6", "Qualification", "2025-01-03 14:00", "2025-01-31"),
    ("d6", "Negotiation", "2025-01-08 14:00", "2025-02-28"),
    ("d6", "Closed Won", "2025-03-09 14:00", "2025-03-09"),
]


def history_frames(history: bool = True, history_close_date: bool = True) -> dict:
    """The tiny pipeline above as frames (the opportunities, and its stage history)."""
    opps = pd.DataFrame(
        _HISTORY_OPPS, columns=["opportunity_id", "deal_type", "stage", "amount", "close_date"]
    ).assign(created_date="2025-01-01")
    frames = {"opportunities": opps}
    if history:
        sh = pd.DataFrame(_HISTORY, columns=["opportunity_id", "stage", "entered_at", "close_date"])
        frames["stage_history"] = sh if history_close_date else sh.drop(columns="close_date")
    return frames


def deal_rows(data, *cols) -> pd.DataFrame:
    """Some columns of the deals view, one row per deal (for references on rows)."""
    from salesops_widgets.metrics._deals import deals

    t = deals(data)
    return t.select(*cols).to_pandas()


# ---------------------------------------------------------------------------------------------
# The realistic export of tests/fixtures/realistic (see its make_export.py): the used deals,
# cleaned by hand with pandas as its mapping.yaml says, for references independent of the loader.

REALISTIC = FIXTURES / "realistic"
REALISTIC_AS_OF = "2025-12-31"
REALISTIC_STAGES = {
    "prospecting": "open",
    "qualification": "open",
    "proposal": "open",
    "negotiation": "open",
    "closed won": "won",
    "closed lost": "lost",
}


def clean_text(text: pd.Series) -> pd.Series:
    """Trimmed, lower case, one space: how keys and stage names are compared."""
    return text.str.split().str.join(" ").str.lower()


def realistic_deals() -> pd.DataFrame:
    """The used deals of pipeline.csv: not the row without an id, not the stage no map knows
    ('On Hold'), the repeated id once; with status, amount, dates, list price and region."""
    d = pd.read_csv(REALISTIC / "pipeline.csv", dtype=str, keep_default_na=False)
    d["status"] = clean_text(d["Stage"]).map(REALISTIC_STAGES)
    d = d[(d["Opportunity ID"].str.strip() != "") & d["status"].notna()]
    d = d.drop_duplicates("Opportunity ID")  # the repeated row is an exact copy
    d["amount"] = pd.to_numeric(d["Amount"].str.replace(r"[$,]", "", regex=True), errors="coerce")
    d["has_amount"] = d["amount"].notna()
    for src, col in (("Created", "created"), ("Close Date", "close")):
        d[col] = pd.to_datetime(d[src], format="%m/%d/%Y", errors="coerce")
    product = d["Product"].where(d["Product"] != "GTXPro", "GTX Pro")  # the values map
    prices = pd.read_csv(REALISTIC / "price_list.csv")
    price_of = dict(zip(clean_text(prices["Product Name"]), prices["List Price"], strict=True))
    d["list_amount"] = clean_text(product).map(price_of)
    reps = pd.read_csv(REALISTIC / "rep_offices.csv")
    d["region"] = d["Owner"].map(dict(zip(reps["Rep"], reps["Region"], strict=True)))
    d["region"] = d["region"].fillna("(not set)")
    return d.reset_index(drop=True)


def run_async(coro):
    """``asyncio.run(coro)`` in a thread of its own: a test module that drove a browser leaves
    Playwright's loop marked running in the main thread, where ``asyncio.run`` refuses."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
