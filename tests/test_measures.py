"""The one definition of each aggregate and ratio KPI (salesops_widgets/metrics/_measures.py).

Expected numbers are derived by hand from the tiny frame below (arithmetic in the comments), or
computed independently with plain pandas and statsmodels. The last tests read the metrics
package's source and fail when a KPI formula is written again outside the module that owns it.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets import load
from salesops_widgets.metrics import select_deals
from salesops_widgets.metrics._deals import dimension_labels, select_coded_deals, won_duration
from salesops_widgets.metrics._measures import (
    AGGREGATES,
    MEDIAN_WON,
    aggregate,
    aggregates,
    asp,
    combine,
    median_cycle_days,
    median_cycle_days_won,
    outcome_sums,
    portfolio_discount,
    price_realization,
    ratio,
    value_win_rate,
    win_rate,
    win_rate_columns,
)

approx = pytest.approx

# ------------------------------------------------------------------------------------------
# Seven deals, all created 2025-01-01.
#
#  id  stage        amount  list  prob  close        cycle
#  a   Closed Won     100    125   -    2025-01-11   10
#  b   Closed Won     300    300   -    2025-02-10   40
#  g   Closed Won     200    200   -    2025-03-12   70
#  c   Closed Lost    200    250   -    2025-01-31   30
#  e   Closed Lost     50     -    -    2025-01-21   20    (no list price)
#  d   Proposal       400    500  0.5   2025-09-01    -
#  f   Negotiation   1000      0  0.8   2025-09-01    -    (list 0: not priced)
# ------------------------------------------------------------------------------------------

_DEALS = [
    ("a", "Closed Won", 100.0, 125.0, None, "2025-01-11"),
    ("b", "Closed Won", 300.0, 300.0, None, "2025-02-10"),
    ("g", "Closed Won", 200.0, 200.0, None, "2025-03-12"),
    ("c", "Closed Lost", 200.0, 250.0, None, "2025-01-31"),
    ("e", "Closed Lost", 50.0, None, None, "2025-01-21"),
    ("d", "Proposal", 400.0, 500.0, 0.5, "2025-09-01"),
    ("f", "Negotiation", 1000.0, 0.0, 0.8, "2025-09-01"),
]


@pytest.fixture(scope="module")
def seven_data():
    cols = ["opportunity_id", "stage", "amount", "list_amount", "probability", "close_date"]
    opps = pd.DataFrame(_DEALS, columns=cols)
    opps["created_date"] = pd.Timestamp("2025-01-01")
    opps["close_date"] = pd.to_datetime(opps["close_date"])
    return load({"opportunities": opps})


@pytest.fixture(scope="module")
def seven(seven_data):
    return select_deals(seven_data)


def _one_row(t, metrics):
    return aggregate(t, [], metrics).iloc[0]


def test_aggregates_by_hand(seven):
    row = _one_row(seven, aggregates(seven))
    assert list(row.index) == list(AGGREGATES)
    # counts: 7 deals; open d, f; won a, b, g; lost c, e; closed 5
    counts = [row[c] for c in ("opportunities", "open", "won", "lost", "closed")]
    assert counts == [7, 2, 3, 2, 5]
    assert row["bookings"] == 100 + 300 + 200  # 600
    assert row["lost_amount"] == 200 + 50  # 250
    assert row["open_pipeline"] == 400 + 1000  # 1400
    assert row["weighted_pipeline"] == approx(400 * 0.5 + 1000 * 0.8)  # 1000
    # priced (list price and amount above 0): a, b, g, c, d (not e: no list, not f: list 0)
    assert row["net_priced"] == 100 + 300 + 200 + 200 + 400  # 1200
    assert row["list_priced"] == 125 + 300 + 200 + 250 + 500  # 1375
    # every won and open deal here has an amount
    assert (row["won_with_amount"], row["open_with_amount"]) == (3, 2)
    # realized: the won priced deals a, b, g
    assert row["net_realized"] == 100 + 300 + 200  # 600
    assert row["list_realized"] == 125 + 300 + 200  # 625


def test_aggregates_pick_in_order_and_skip_what_the_data_lacks(seven):
    assert list(aggregates(seven, "won", "opportunities")) == ["won", "opportunities"]
    assert "net_priced" not in aggregates(seven, priced=False)
    bare = seven.drop("probability", "list_amount")
    picked = aggregates(bare, "won", "weighted_pipeline", "list_priced")
    assert list(picked) == ["won"]
    with pytest.raises(ValueError, match="unknown aggregates"):
        aggregates(seven, "revenue")


def test_median_cycle_days_by_hand(seven):
    row = _one_row(seven, {"won": median_cycle_days_won(seven), "closed": median_cycle_days(seven)})
    assert row["won"] == 40  # won cycles 10, 40, 70
    assert row["closed"] == 30  # closed cycles 10, 20, 30, 40, 70 (open deals have none)


def test_grouped_aggregate_is_ordered(seven):
    out = aggregate(seven, ["stage"], aggregates(seven, "opportunities", "bookings"))
    assert out["stage"].tolist() == sorted(out["stage"])
    assert out.set_index("stage").loc["Closed Won", "bookings"] == 600


def test_grouped_by_codes_comes_back_as_labels(seven_data):
    t = select_coded_deals(seven_data)
    labels = dimension_labels(seven_data)
    assert labels["stage"] == ("(not set)", "Closed Lost", "Closed Won", "Negotiation", "Proposal")
    out = aggregate(t, ["stage"], aggregates(t, "opportunities", "bookings"), labels=labels)
    # grouped by the stage's code, shown (and ordered) by its label
    assert out["stage"].tolist() == ["Closed Lost", "Closed Won", "Negotiation", "Proposal"]
    assert out["opportunities"].tolist() == [2, 3, 1, 1]  # c e | a b g | f | d
    assert out["bookings"].iloc[1] == 600 and out["bookings"].isna().tolist()[::2] == [True] * 2
    assert "_c_stage" not in out.columns


# Every aggregate of the seven deals, by hand (test_aggregates_by_hand).
_SEVEN = {
    "opportunities": 7, "open": 2, "won": 3, "lost": 2, "closed": 5, "bookings": 600.0,
    "lost_amount": 250.0, "open_pipeline": 1400.0, "weighted_pipeline": 1000.0,
    "net_priced": 1200.0, "list_priced": 1375.0, "won_with_amount": 3, "open_with_amount": 2,
    "net_realized": 600.0, "list_realized": 625.0,
}  # fmt: skip


def test_outcome_sums_add_up_to_every_aggregate(seven_data):
    t = select_coded_deals(seven_data)
    overall = combine(outcome_sums(t, []), [])
    assert list(overall.columns) == list(AGGREGATES) and len(overall) == 1
    assert overall.iloc[0].to_dict() == approx(_SEVEN)
    # only what is asked for is summed: no list prices, no probabilities
    parts = outcome_sums(t, [], "won", "bookings")
    assert {"_priced", "_list_amount", "_weighted"}.isdisjoint(parts.columns)
    assert combine(parts, [], "won", "bookings").iloc[0].tolist() == [3, 600.0]


def test_combine_per_group_and_the_won_median(seven_data):
    t = select_coded_deals(seven_data)
    names = ["won", "lost", "bookings", MEDIAN_WON]
    parts = outcome_sums(t, ["stage", "duration_days"], *names, labels=dimension_labels(seven_data))
    out = combine(parts, ["stage"], *names).set_index("stage")
    assert out.index.tolist() == ["Closed Lost", "Closed Won", "Negotiation", "Proposal"]
    assert out.loc["Closed Won"].tolist() == [3, 0, 600.0, 40.0]  # cycles 10, 40, 70
    lost = out.loc["Closed Lost"]  # c (30 days) and e (20 days): lost, no bookings, no median
    assert (
        (lost.won, lost.lost) == (0, 2) and np.isnan(lost.bookings) and np.isnan(lost[MEDIAN_WON])
    )
    overall = combine(parts, [], *names).iloc[0]
    assert overall[MEDIAN_WON] == 40 and overall.won == 3  # the same as median_cycle_days_won


def test_won_duration_gives_the_won_median_from_fewer_rows(seven_data):
    t = select_coded_deals(seven_data)
    names = ["opportunities", "won", "lost", MEDIAN_WON]
    parts = outcome_sums(t, [won_duration(t)], *names)
    # won a, b, g (10, 40, 70 days) each keep their duration; the 2 lost and 2 open deals have
    # none, so they fall into one row per outcome, split (on the kept deals table, whose packed
    # outcome key holds it) by list price: lost c (list 250) and e (none), open d (500) and f
    # (list 0) are all different. 3 + 2 + 2 rows, not one per deal's duration (7 + ...)
    assert len(parts) == 7 and sorted(parts["duration_days"].dropna()) == [10, 40, 70]
    assert parts.loc[parts["duration_days"].isna(), "is_won"].eq(False).all()
    assert combine(parts, [], *names).iloc[0].tolist() == [7, 3, 2, 40.0]  # median of 10 40 70


def test_combine_follows_sql_logic_for_missing_flags():
    # a: closed, won unknown; b: closed unknown, not won; c: open; d: won. In SQL, NOT NULL and
    # NULL AND TRUE are NULL, so a is neither won nor lost and b neither open nor closed.
    t = ibis.memtable(
        pa.table(
            {
                "is_closed": pa.array([True, None, False, True]),
                "is_won": pa.array([None, False, False, True]),
                "amount": [10.0, 20.0, 30.0, 40.0],
            }
        )
    )
    expected = {"opportunities": 4, "open": 1, "won": 1, "lost": 0, "closed": 2}
    expected.update(bookings=40.0, open_pipeline=30.0)
    for row in (_one_row(t, aggregates(t)), combine(outcome_sums(t, []), []).iloc[0]):
        assert {k: row[k] for k in expected} == expected
        assert np.isnan(row["lost_amount"])  # a sum over no deal is NULL


def test_ratios_by_hand():
    # from the seven deals: won 3, lost 2, bookings 600, lost amount 250, Σnet 1200, Σlist 1375
    assert win_rate([3], [2]).tolist() == [0.6]
    assert asp([600.0], [3]).tolist() == [200.0]
    assert value_win_rate([600.0], [250.0]) == approx([600 / 850])
    assert price_realization([1200.0], [1375.0]) == approx([1200 / 1375])
    # 1 - 1200/1375 = 175/1375 = 0.1273, weighted by dollars; the mean of the per-deal
    # discounts (0.2, 0, 0, 0.2, 0.2) would be 0.12
    assert portfolio_discount([1200.0], [1375.0]) == approx([175 / 1375])


def test_ratios_are_nan_where_undefined():
    assert np.isnan(win_rate([0], [0])).all()  # nothing closed
    assert win_rate([0], [4]).tolist() == [0.0]  # closed, none won: 0, not NaN
    assert np.isnan(asp([0.0], [0])).all()  # no won deal
    assert np.isnan(value_win_rate([0.0], [0.0])).all()
    assert np.isnan(portfolio_discount([10.0], [0.0])).all()  # no list price
    assert np.isnan(ratio([1.0, 1.0], [np.nan, -1.0])).all()


def test_win_rate_columns_match_statsmodels():
    won, lost = np.array([0, 3, 29, 45]), np.array([0, 1, 1, 55])
    cols = win_rate_columns(won, lost, min_closed=30, confidence=0.9)
    assert cols["closed"].tolist() == [0, 4, 30, 100]
    assert cols["small_n"].tolist() == [True, True, False, False]
    low, high = proportion_confint(won[1:], (won + lost)[1:], alpha=0.1, method="wilson")
    assert cols["win_rate_low"][1:] == approx(low)
    assert cols["win_rate_high"][1:] == approx(high)
    assert np.isnan(cols["win_rate"][0]) and np.isnan(cols["win_rate_low"][0])


_DEAL = st.tuples(
    st.sampled_from(["won", "lost", "open"]),
    # no amount (open deals often have none), $0 (lost deals often carry it), or an amount
    st.one_of(st.none(), st.just(0.0), st.floats(0, 1e6, allow_nan=False)),
    st.one_of(st.just(0.0), st.floats(0, 2e6, allow_nan=False)),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_DEAL, min_size=0, max_size=25))
def test_aggregates_and_ratios_match_pandas(rows):
    df = pd.DataFrame(rows, columns=["status", "amount", "list_amount"])
    df = df.astype({"status": str, "amount": float, "list_amount": float})
    df["is_closed"], df["is_won"] = df.status != "open", df.status == "won"
    t = ibis.memtable(pa.Table.from_pandas(df, preserve_index=False))
    row = _one_row(t, aggregates(t))
    won, lost = int((df.status == "won").sum()), int((df.status == "lost").sum())
    assert (row["opportunities"], row["won"], row["lost"]) == (len(df), won, lost)
    assert row["open"] == (df.status == "open").sum() and row["closed"] == won + lost
    priced = df[(df.list_amount > 0) & (df.amount > 0)]  # a list price and an amount above 0
    realized = priced[priced.status == "won"]
    won_amounts = df.amount[(df.status == "won") & df.amount.notna()]
    sums = {
        "bookings": won_amounts.sum(),
        "net_priced": priced.amount.sum(),
        "list_priced": priced.list_amount.sum(),
        "net_realized": realized.amount.sum(),
        "list_realized": realized.list_amount.sum(),
    }
    for name, expected in sums.items():
        assert (0.0 if pd.isna(row[name]) else row[name]) == approx(expected)
    assert row["won_with_amount"] == len(won_amounts)
    assert row["open_with_amount"] == ((df.status == "open") & df.amount.notna()).sum()
    rate = win_rate([row["won"]], [row["lost"]])[0]
    assert (math.isnan(rate) and won + lost == 0) or rate == approx(won / (won + lost))
    price = asp([sums["bookings"]], [row["won_with_amount"]])[0]
    # the mean of the won deals that have an amount: one without is not a $0 sale
    assert (math.isnan(price) and won_amounts.empty) or price == approx(won_amounts.mean())
    disc = portfolio_discount([sums["net_realized"]], [sums["list_realized"]])[0]
    if sums["list_realized"] > 0:
        assert disc == approx(1 - realized.amount.sum() / realized.list_amount.sum())
    else:
        assert math.isnan(disc)
    combined = combine(outcome_sums(t, []), []).iloc[0]
    assert (combined["opportunities"], combined["won"], combined["lost"]) == (len(df), won, lost)
    for name, expected in sums.items():
        assert (0.0 if pd.isna(combined[name]) else combined[name]) == approx(expected)
    assert combined["won_with_amount"] == row["won_with_amount"]
    assert combined["open_with_amount"] == row["open_with_amount"]


# ------------------------------------------------------------------------------------------
# No KPI formula is written twice: each lives in the module that owns it.

METRICS = Path(__file__).resolve().parents[1] / "salesops_widgets" / "metrics"
# a name, attribute or subscript, as ast.unparse writes it: won, frame.won, f['won_{s}']
_T = r"[\w.\[\]'\"{}]*"
_WON = rf"{_T}(?<!\w)won(?!_am){_T}"  # the won count: not is_won, won_amt or won_amount
_WON_AMOUNT = rf"{_T}(?<!\w)(won_am|bookings){_T}"

# formula -> (the module that owns it, regexes for the formula written out)
FORMULAS: dict[str, tuple[str, list[str]]] = {
    "win rate = won / (won + lost): call _measures.win_rate / win_rate_columns": (
        "_measures.py",
        [
            rf"{_WON}\s*/\s*\(?\s*{_T}(?<!\w)(closed|won{_T}\s*\+\s*{_T}lost)",
            rf"ratio\(\s*{_WON}\s*,\s*{_T}(?<!\w)(closed|won)",
            r"is_won\S*\.mean\(",
        ],
    ),
    "value win rate = won amount / (won + lost amount): call _measures.value_win_rate": (
        "_measures.py",
        [
            rf"{_WON_AMOUNT}\s*/\s*\(\s*{_WON_AMOUNT}\s*\+",
            rf"ratio\(\s*{_WON_AMOUNT}\s*,\s*{_WON_AMOUNT}\s*\+",
        ],
    ),
    "ASP = won amount / won: call _measures.asp": (
        "_measures.py",
        [rf"/\s*\(?\s*{_WON}", rf"ratio\([^,]*,\s*{_WON}", r"amount\.mean\("],
    ),
    "portfolio discount = 1 - Σnet/Σlist, price realization = Σnet/Σlist: "
    "call _measures.portfolio_discount / price_realization": (
        "_measures.py",
        [
            r"1\s*-\s*\w*(ratio|realization)\b",
            rf"ratio\(\s*{_T}(net|invoice){_T}\s*,\s*{_T}list",
            rf"(net\w*|\.sum\(\))['\"\]]*\s*/\s*{_T}list",
            rf"{_T}list{_T}\s*-\s*{_T}net{_T}\s*\)?\s*/",
        ],
    ),
    "per-deal discount = 1 - amount/list_amount: use the deals view's discount column": (
        "_deals.py",
        [rf"1\s*-\s*{_T}amount\s*/\s*{_T}list_amount"],
    ),
    "median_cycle_days_won: call _measures.median_cycle_days_won": (
        "_measures.py",
        [r"cycle_days\.(median|quantile)\([^)]*is_won"],
    ),
    "deal outcomes summed per group: call _measures.aggregates": (
        "_measures.py",
        [
            # a money sum over an outcome (bookings, lost amount, open pipeline); a sum over
            # some other condition (e.g. the deals open on a date) is not a KPI formula
            r"amount\.sum\(\s*where\s*=[^)]*(is_won|is_closed|won|lost|open|closed)",
            r"count\(\s*where\s*=[^)]*is_(won|closed)",
            r"is_(won|closed)\.cast\([^)]*\)\.sum\(",
        ],
    ),
    "deal outcomes (open, won, lost, closed): call _deals.outcomes": (
        "_deals.py",
        [r"is_closed\s*&\s*~"],
    ),
    "priced deal = list_amount > 0: call _deals.priced": (
        "_deals.py",
        [r"list_amount\s*>\s*0\b"],
    ),
    "corridor check 0 <= low < high <= 1: call _pricing.check_corridor": (
        "_pricing.py",
        [r"0\s*<=\s*\w*low\w*\s*<=?\s*\w*high\w*\s*<=\s*1"],
    ),
}


def _code(source: str) -> str:
    """The code of a module without comments and docstrings, one statement a line."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _hits(source: str) -> list[tuple[str, str]]:
    """(formula, line) for every formula written out in ``source``."""
    return [
        (formula, line.strip())
        for line in _code(source).splitlines()
        for formula, (_, patterns) in FORMULAS.items()
        if any(re.search(p, line) for p in patterns)
    ]


@pytest.mark.parametrize(
    ("line", "formula"),
    [
        ("rate = np.where(closed > 0, won / closed, np.nan)", "win rate"),
        ("f[f'win_rate_{s}'] = _ratio(f[f'won_{s}'], f[f'closed_{s}'])", "win rate"),
        ("r = base['won'] / (base['won'] + base['lost'])", "win rate"),
        ("out['asp'] = _ratio(won_amt, counts['won'])", "ASP"),
        ("asp = {s: bk / won if won else np.nan for s, (bk, won) in total.items()}", "ASP"),
        ("f[f'asp_{s}'] = np.where(won[s] > 0, bookings[s] / won[s], np.nan)", "ASP"),
        ("m = won.group_by('_tier').aggregate(mean=won.amount.mean())", "ASP"),
        ("out['portfolio_discount'] = 1 - _ratio(raw['_net'], raw['_list'])", "portfolio"),
        ("realization = _ratio(raw['net_amount'], raw['list_amount'])", "portfolio"),
        ("d = 1 - t.amount.sum() / t.list_amount.sum()", "portfolio"),
        ("v = (frame.list_priced - frame.net_priced) / frame.list_priced", "portfolio"),
        ("x = ibis.ifelse(t.list_amount > 0, 1 - t.amount / t.list_amount, None)", "per-deal"),
        ("m = {'median_cycle_days_won': t.cycle_days.median(where=t.is_won)}", "median_cycle"),
        ("out['value_win_rate'] = _ratio(won_amt, won_amt + lost_amt)", "value win rate"),
        ("m = {'bookings': t.amount.sum(where=t.is_won)}", "deal outcomes"),
        ("m = {'closed': t.is_closed.cast('int64').sum()}", "deal outcomes"),
        ("m = {'lost': t.count(where=t.is_closed & ~t.is_won)}", "deal outcomes"),
        ("lost = t.is_closed & ~t.is_won", "deal outcomes (open"),
        ("t = t.filter(t.list_amount > 0)", "priced deal"),
        ("p = t.filter(t.is_closed & (t.list_amount > 0))", "priced deal"),
        ("ok = 0 <= low <= high <= 1", "corridor check"),
        ("ok = not 0 <= low < high <= 1", "corridor check"),
    ],
)
def test_formula_patterns_catch_the_formulas(line, formula):
    assert any(f.startswith(formula) for f, _ in _hits(line)), _hits(line)


@pytest.mark.parametrize(
    "line",
    [
        "f[f'share_{s}'] = won[s] / n if n else np.nan",  # a share, not a KPI
        "out['coverage'] = ratio(out['open_pipeline'], remaining)",
        "out['asp'] = asp(bookings, counts['won'])",
        "pocket_pct = pocket / j.list_price",
        "long['share_of_list'] = ratio(long['amount'], long['list'])",  # waterfall shares
        "'''Docstrings may say win_rate = won / closed.'''",
        "li = li.filter(li.list_price > 0)",  # a line item's list price, not the deal's
        "ok = 0 <= floor <= target <= stretch <= 1",  # guidance percentiles
    ],
)
def test_formula_patterns_leave_other_code_alone(line):
    assert _hits(line) == []


def test_no_kpi_formula_outside_its_module():
    modules = sorted(METRICS.glob("*.py"))
    assert {p.name for p in modules} >= {"_measures.py", "_pipeline.py", "_strata.py"}
    found = [
        f"{path.name}: {formula}\n    {line}"
        for path in modules
        for formula, line in _hits(path.read_text())
        if path.name != FORMULAS[formula][0]
    ]
    assert not found, "KPI formulas written again:\n" + "\n".join(found)
