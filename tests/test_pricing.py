"""Pricing KPIs (salesops_widgets/metrics/_pricing.py).

Expected numbers are derived by hand from the tiny frames below (arithmetic in the comments), or
computed independently in the test with plain pandas/numpy and statsmodels' Wilson interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from salesops_widgets import load
from salesops_widgets.errors import MissingDataError, ParameterError
from salesops_widgets.metrics import _engine
from salesops_widgets.metrics._pricing import (
    deal_discounts,
    discount_bands,
    leakage,
    pocket_price_band,
    pocket_price_spread,
    price_corridor,
    price_waterfall,
)

HABITUAL_DISCOUNTERS = {"REP-003", "REP-008", "REP-013"}  # data/samples/README.md, effect 2
DEDUCTIONS = ["on_invoice_discount", "rebate", "freight", "payment_terms_cost"]

# ------------------------------------------------------------------------------------------
# A tiny priced book.
#
# opportunities                         deal discount = 1 - amount/list
#  p1  R1  A1 (Technology)  Closed Won    90 /  100   0.10
#  p2  R1  A1               Closed Won   600 / 1000   0.40
#  p3  R2  A2 (Retail)      Closed Lost  190 /  200   0.05
#  p4  R2  A2               Proposal     400 /  400   0.00
#  p5  R2  A2               Closed Won    50 /    0   (no list: left out)
#
# line items (per unit)          qty  list  invoice  rebate  freight  terms   pocket  pocket/list
#  L1  p1                          2    50      45       2        1    0.5    41.5     0.83
#  L2  p2                         10   100      60       3        -      1    56       0.56
#  L3  p3                          1   200     190       0        5      0   185       0.925
#  L4  p4                          4   100      90       5        0      0    85       0.85
#  L5  p5                          1     0      50       0        0      0   (list 0: left out)
# ------------------------------------------------------------------------------------------

_OPPS = [
    ("p1", "R1", "A1", "Closed Won", 90, 100),
    ("p2", "R1", "A1", "Closed Won", 600, 1000),
    ("p3", "R2", "A2", "Closed Lost", 190, 200),
    ("p4", "R2", "A2", "Proposal", 400, 400),
    ("p5", "R2", "A2", "Closed Won", 50, 0),
]
_LINES = [
    ("p1", 2, 50, 45, 2, 1, 0.5),
    ("p2", 10, 100, 60, 3, None, 1),
    ("p3", 1, 200, 190, 0, 5, 0),
    ("p4", 4, 100, 90, 5, 0, 0),
    ("p5", 1, 0, 50, 0, 0, 0),
]


def _frames() -> dict[str, pd.DataFrame]:
    opps = pd.DataFrame(
        _OPPS,
        columns=["opportunity_id", "owner_id", "account_id", "stage", "amount", "list_amount"],
    )
    opps[["amount", "list_amount"]] = opps[["amount", "list_amount"]].astype(float)
    opps["created_date"] = pd.Timestamp("2025-01-06")
    opps["close_date"] = pd.Timestamp("2025-02-03")
    lines = pd.DataFrame(
        _LINES,
        columns=["opportunity_id", "quantity", "list_price", "invoice_price", "rebate",
                 "freight", "payment_terms_cost"],
    )  # fmt: skip
    lines["product_id"] = "X"
    num = ["quantity", "list_price", "invoice_price", "rebate", "freight", "payment_terms_cost"]
    lines[num] = lines[num].astype(float)
    accounts = pd.DataFrame({"account_id": ["A1", "A2"], "industry": ["Technology", "Retail"]})
    return {"opportunities": opps, "line_items": lines, "accounts": accounts}


@pytest.fixture(scope="module")
def tiny_book():
    return load(_frames())


def _by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.set_index(key)


# ------------------------------------------------------------------------------------------
# deal_discounts


def test_deal_discounts_by_hand(tiny_book):
    out = deal_discounts(tiny_book, status="all")  # the discount quoted on every priced deal
    assert list(out.columns) == [
        "deals_with_list", "list_amount", "net_amount", "portfolio_discount",
        "price_realization", "mean_deal_discount", "median_deal_discount", "discount_p25",
        "discount_p75",
    ]  # fmt: skip
    r = out.iloc[0]
    assert r.deals_with_list == 4  # p5 has no list price
    assert r.list_amount == 1700  # 100 + 1000 + 200 + 400
    assert r.net_amount == 1280  # 90 + 600 + 190 + 400
    assert r.portfolio_discount == pytest.approx(420 / 1700)  # 1 - 1280/1700, by dollars
    assert r.price_realization == pytest.approx(1280 / 1700)
    assert r.mean_deal_discount == pytest.approx(0.1375)  # (0.10 + 0.40 + 0.05 + 0) / 4
    assert r.median_deal_discount == pytest.approx(0.075)  # (0.05 + 0.10) / 2
    # sorted 0, 0.05, 0.10, 0.40; p25 at position 0.75: 0 + 0.75*0.05; p75 at 2.25: 0.10 + 0.25*0.30
    assert r.discount_p25 == pytest.approx(0.0375)
    assert r.discount_p75 == pytest.approx(0.175)


def test_deal_discounts_by_owner_and_status(tiny_book):
    out = _by(deal_discounts(tiny_book, by=["owner_id"], status="all"), "owner_id")
    assert out.loc["R1", "portfolio_discount"] == pytest.approx(410 / 1100)  # 1 - 690/1100
    assert out.loc["R2", "portfolio_discount"] == pytest.approx(10 / 600)  # 1 - 590/600
    won = deal_discounts(tiny_book).iloc[0]  # by default the won deals: p1, p2 (p5: no list)
    assert won.deals_with_list == 2
    assert won.portfolio_discount == pytest.approx(410 / 1100)
    # R2 won only p5, which has no list price: no discount was realized, so no row
    assert _by(deal_discounts(tiny_book, by=["owner_id"]), "owner_id").index.tolist() == ["R1"]
    with pytest.raises(ParameterError, match="status"):
        deal_discounts(tiny_book, status="booked")


def test_a_lost_deal_at_zero_is_never_discounted():
    frames = _frames()
    opps = frames["opportunities"]
    opps.loc[opps.opportunity_id == "p3", "amount"] = 0.0  # lost at $0 (CRM convention)
    data = load(frames)
    r = deal_discounts(data, status="all").iloc[0]
    # p1, p2, p4 only: 1 - (90 + 600 + 400) / (100 + 1000 + 400); p3 was never discounted
    assert r.deals_with_list == 3
    assert r.portfolio_discount == pytest.approx(1 - 1090 / 1500)
    lost = deal_discounts(data, status="lost")
    assert lost.deals_with_list.iloc[0] == 0 and math.isnan(lost.portfolio_discount.iloc[0])


def test_deal_discounts_zero_list_and_nothing_selected(tiny_book):
    r = deal_discounts(tiny_book, filters={"owner_id": "nobody"}).iloc[0]
    assert r.deals_with_list == 0 and r.list_amount == 0
    assert math.isnan(r.portfolio_discount) and math.isnan(r.median_deal_discount)
    frames = _frames()
    frames["opportunities"]["list_amount"] = 0.0
    r = deal_discounts(load(frames)).iloc[0]
    assert r.deals_with_list == 0 and math.isnan(r.portfolio_discount)
    empty = deal_discounts(tiny_book, by=["owner_id"], filters={"owner_id": "nobody"})
    assert empty.empty and "portfolio_discount" in empty


def test_deal_discounts_needs_list_amount():
    frames = _frames()
    frames["opportunities"] = frames["opportunities"].drop(columns="list_amount")
    with pytest.raises(MissingDataError, match="tables.opportunities.columns.list_amount"):
        deal_discounts(load(frames))


# ------------------------------------------------------------------------------------------
# price_waterfall


def test_waterfall_by_hand(tiny_book):
    out = price_waterfall(tiny_book)  # won deals: p1, p2, p5 (L5 has list 0: left out)
    assert list(out.columns) == ["element", "kind", "amount", "share_of_list", "basis"]
    assert out.element.tolist() == [
        "list", "on_invoice_discount", "invoice", "rebate", "freight", "payment_terms_cost",
        "pocket",
    ]  # fmt: skip
    amounts = dict(zip(out.element, out.amount, strict=True))
    assert amounts["list"] == pytest.approx(1100)  # 2*50 + 10*100
    assert amounts["invoice"] == pytest.approx(690)  # 2*45 + 10*60
    assert amounts["on_invoice_discount"] == pytest.approx(410)  # 1100 - 690
    assert amounts["rebate"] == pytest.approx(34)  # 2*2 + 10*3
    assert amounts["freight"] == pytest.approx(2)  # 2*1 + missing (0)
    assert amounts["payment_terms_cost"] == pytest.approx(11)  # 2*0.5 + 10*1
    assert amounts["pocket"] == pytest.approx(643)  # 690 - 34 - 2 - 11
    assert out.share_of_list.tolist() == pytest.approx(out.amount / 1100)
    assert (out.basis == "line_items").all()
    deductions = out[out.kind == "deduction"]
    assert deductions.element.tolist() == DEDUCTIONS
    # the elements between list and pocket add up to list - pocket
    assert deductions.amount.sum() == pytest.approx(1100 - 643, rel=1e-12)


def test_waterfall_by_group(tiny_book):
    out = price_waterfall(tiny_book, by=["owner_id"], status="all")
    assert out.owner_id.unique().tolist() == ["R1", "R2"]
    r2 = out[out.owner_id == "R2"].set_index("element").amount
    # R2: L3 + L4 (L5 list 0): list 200 + 400 = 600, invoice 190 + 360 = 550,
    # rebate 0 + 20, freight 5 + 0, terms 0 -> pocket 550 - 25 = 525
    assert (r2["list"], r2["invoice"], r2["pocket"]) == pytest.approx((600, 550, 525))
    assert r2[DEDUCTIONS].sum() == pytest.approx(600 - 525)


def test_waterfall_without_off_invoice_columns():
    frames = _frames()
    frames["line_items"] = frames["line_items"].drop(
        columns=["rebate", "freight", "payment_terms_cost"]
    )
    out = price_waterfall(load(frames))
    assert out.element.tolist() == ["list", "on_invoice_discount", "invoice"]
    assert out.amount.tolist() == pytest.approx([1100, 410, 690])
    assert (out.basis == "line_items_invoice").all()


def test_waterfall_without_line_items():
    frames = _frames()
    del frames["line_items"]
    out = price_waterfall(load(frames), status="all")
    # opportunities with list > 0: list 1700, amount 1280 -> discount 420
    assert out.element.tolist() == ["list", "on_invoice_discount", "invoice"]
    assert out.amount.tolist() == pytest.approx([1700, 420, 1280])
    assert (out.basis == "opportunities").all()


def test_waterfall_nothing_selected(tiny_book):
    out = price_waterfall(tiny_book, filters={"owner_id": "nobody"})
    assert out.empty and list(out.columns) == [
        "element", "kind", "amount", "share_of_list", "basis",
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------
# pocket_price_band and pocket_price_spread


def test_pocket_price_band_by_hand(tiny_book):
    out = pocket_price_band(tiny_book)  # won: L1 0.83 (qty 2, invoice 90), L2 0.56 (qty 10, 600)
    assert out.band.tolist() == ["55-60%", "80-85%"]
    assert out.band_low.tolist() == pytest.approx([0.55, 0.80])
    assert out.band_high.tolist() == pytest.approx([0.60, 0.85])
    assert out.volume.tolist() == [10, 2]
    assert out.volume_share.tolist() == pytest.approx([10 / 12, 2 / 12])
    assert out.revenue.tolist() == pytest.approx([600, 90])
    assert out.revenue_share.tolist() == pytest.approx([600 / 690, 90 / 690])


def test_pocket_price_band_edges_are_closed_on_the_left(tiny_book):
    out = pocket_price_band(tiny_book, filters={"owner_id": "R2"}, status="all", bin_width=0.05)
    # L4 at exactly 0.85 falls in [0.85, 0.90); L3 at 0.925 in [0.90, 0.95)
    assert out.band.tolist() == ["85-90%", "90-95%"]
    with pytest.raises(ParameterError, match="bin_width"):
        pocket_price_band(tiny_book, bin_width=0)


def test_pocket_price_spread_by_hand(tiny_book):
    r = pocket_price_spread(tiny_book).iloc[0]
    # lines by pocket %: L2 0.56 (qty 10), L1 0.83 (qty 2); total 12
    # p10: 10 >= 1.2 at L2 -> 0.56; p50: 10 >= 6 -> 0.56; p90: 10 < 10.8, 12 >= 10.8 -> 0.83
    assert (r.pocket_p10, r.pocket_p50, r.pocket_p90) == pytest.approx((0.56, 0.56, 0.83))
    assert r.pocket_spread == pytest.approx(0.27)
    assert r.pocket_realization == pytest.approx(643 / 1100)  # (2*41.5 + 10*56) / 1100
    assert (r.lines, r.volume, r.revenue) == (2, 12, 690)


def test_pocket_nothing_selected(tiny_book):
    none = {"owner_id": "nobody"}
    assert pocket_price_band(tiny_book, filters=none).empty
    r = pocket_price_spread(tiny_book, filters=none).iloc[0]
    assert r.lines == 0 and r.volume == 0 and math.isnan(r.pocket_p50)


def test_pocket_needs_line_items():
    frames = _frames()
    del frames["line_items"]
    with pytest.raises(MissingDataError, match="line_items"):
        pocket_price_band(load(frames))


# ------------------------------------------------------------------------------------------
# price_corridor and leakage


def test_price_corridor_by_hand(tiny_book):
    r = price_corridor(tiny_book, corridor_by=(), status="all").iloc[0]
    # pocket % of all lines with list > 0, sorted: 0.56, 0.83, 0.85, 0.925
    # p25 at 0.75: 0.56 + 0.75*0.27; median (0.83+0.85)/2; p75 at 2.25: 0.85 + 0.25*0.075
    assert r.corridor_lines == 4
    assert r.corridor_floor == pytest.approx(0.7625)
    assert r.corridor_median == pytest.approx(0.84)
    assert r.corridor_ceiling == pytest.approx(0.86875)


def test_leakage_fixed_floor_by_hand(tiny_book):
    out = leakage(tiny_book, by=["owner_id"], floor=0.8)  # won lines L1, L2 (both R1)
    assert out.owner_id.tolist() == ["R1"]
    r = out.iloc[0]
    assert (r.list_amount, r.pocket_amount) == pytest.approx((1100, 643))
    assert r.leakage == pytest.approx(457)  # 1100 - 643
    assert r[DEDUCTIONS].sum() == pytest.approx(r.leakage)
    assert r.leakage_share == pytest.approx(457 / 1100)
    # L1 0.83 >= 0.8: nothing; L2: (0.8*100 - 56) * 10 = 240
    assert r.corridor_leakage == pytest.approx(240)
    assert r.corridor_leakage_share == pytest.approx(240 / 1100)
    assert r.lines_below_floor == 1


def test_leakage_corridor_by_group_by_hand(tiny_book):
    out = leakage(tiny_book, by=["owner_id"], status="all", corridor_by=["industry"])
    out = _by(out, "owner_id")
    # Technology (L1 0.83, L2 0.56): floor 0.56 + 0.25*0.27 = 0.6275
    #   R1: L2 (62.75 - 56) * 10 = 67.5
    # Retail (L3 0.925, L4 0.85): floor 0.85 + 0.25*0.075 = 0.86875
    #   R2: L4 (86.875 - 85) * 4 = 7.5
    assert out.loc["R1", "corridor_leakage"] == pytest.approx(67.5)
    assert out.loc["R2", "corridor_leakage"] == pytest.approx(7.5)
    assert out.index.tolist() == ["R1", "R2"]  # largest corridor leakage first
    # a filter does not move the guideline: R2 alone still has the Retail floor
    alone = leakage(
        tiny_book,
        by=["owner_id"],
        status="all",
        corridor_by=["industry"],
        filters={"owner_id": "R2"},
    )
    assert alone.corridor_leakage.tolist() == pytest.approx([7.5])


def test_leakage_overall_corridor(tiny_book):
    r = leakage(tiny_book, by=(), status="all", corridor_by=()).iloc[0]
    # floor 0.7625 over all lines: only L2 is below: (76.25 - 56) * 10 = 202.5
    assert r.corridor_leakage == pytest.approx(202.5)
    # list 1100 + 600 = 1700; pocket 643 + 525 = 1168
    assert r.leakage == pytest.approx(1700 - 1168)


def test_leakage_bad_parameters(tiny_book):
    with pytest.raises(ParameterError, match="corridor"):
        leakage(tiny_book, by=["owner_id"], corridor=(0.8, 0.2))
    with pytest.raises(ParameterError, match="floor"):
        leakage(tiny_book, by=["owner_id"], floor=80)


def test_leakage_nothing_selected(tiny_book):
    out = leakage(tiny_book, by=["owner_id"], filters={"owner_id": "nobody"}, corridor_by=())
    assert out.empty and "corridor_leakage" in out


# ------------------------------------------------------------------------------------------
# discount_bands
#
#  id   stage        amount/list  discount  band (edges 0, 0.1, 0.3, 1)  cycle days
#  d1   Closed Won     95 / 100     0.05    0                            10
#  d2   Closed Won    100 / 100     0.00    0                            20
#  d3   Closed Lost    92 / 100     0.08    0
#  d4   Proposal       99 / 100     0.01    0
#  d5   Closed Won     80 / 100     0.20    1                            30
#  d6   Closed Lost    90 / 100     0.10    1 (exactly on the edge)
#  d7   Closed Won      0 / 100       -     out (no amount above 0: not a priced deal)
#  d8   Closed Lost    60 / 100     0.40    2 (the last band includes its upper edge)
#  d9   Closed Lost   110 / 100    -0.10    out (net above list)
#  d10  Closed Won     50 /   0       -     out (no list)
# owners: X for d1-d4, Y for d5-d10.

_BAND_DEALS = [
    ("d1", "X", "Closed Won", 95, 100, 10),
    ("d2", "X", "Closed Won", 100, 100, 20),
    ("d3", "X", "Closed Lost", 92, 100, 5),
    ("d4", "X", "Proposal", 99, 100, 50),
    ("d5", "Y", "Closed Won", 80, 100, 30),
    ("d6", "Y", "Closed Lost", 90, 100, 5),
    ("d7", "Y", "Closed Won", 0, 100, 40),
    ("d8", "Y", "Closed Lost", 60, 100, 5),
    ("d9", "Y", "Closed Lost", 110, 100, 5),
    ("d10", "Y", "Closed Won", 50, 0, 5),
]
BANDS = (0, 0.1, 0.3, 1.0)


@pytest.fixture(scope="module")
def banded():
    opps = pd.DataFrame(
        _BAND_DEALS,
        columns=["opportunity_id", "owner_id", "stage", "amount", "list_amount", "days"],
    )
    opps[["amount", "list_amount"]] = opps[["amount", "list_amount"]].astype(float)
    opps["created_date"] = pd.Timestamp("2025-01-01")
    opps["close_date"] = opps["created_date"] + pd.to_timedelta(opps.pop("days"), unit="D")
    return load({"opportunities": opps}, as_of="2025-06-30")


def test_discount_bands_by_hand(banded):
    out = discount_bands(banded, bands=BANDS)
    assert out.band.tolist() == ["0-10%", "10-30%", "30-100%"]
    assert out.opportunities.tolist() == [4, 2, 1]  # d7, d9, d10 left out
    assert out.won.tolist() == [2, 1, 0]
    assert out.lost.tolist() == [1, 1, 1]
    assert out.win_rate.tolist() == pytest.approx([2 / 3, 1 / 2, 0])  # open d4 not counted
    assert out.median_cycle_days_won.tolist()[:2] == pytest.approx([15, 30])  # (10+20)/2
    assert np.isnan(out.median_cycle_days_won.iloc[2])  # no won deal in 30-100%
    # on the won deals of each band (the price realized): 1 - (95+100)/200; 1 - 80/100; none
    assert out.portfolio_discount.tolist()[:2] == pytest.approx([5 / 200, 20 / 100])
    assert np.isnan(out.portfolio_discount.iloc[2])
    low, high = proportion_confint(out.won, out.closed, method="wilson")
    assert np.allclose(out.win_rate_low, low) and np.allclose(out.win_rate_high, high)
    assert out.small_n.all()


def test_discount_bands_list_every_band_per_group(banded):
    out = discount_bands(banded, by=["owner_id"], bands=BANDS)
    assert len(out) == 6  # 2 owners x 3 bands
    x = out[out.owner_id == "X"]
    assert x.opportunities.tolist() == [4, 0, 0]
    assert x.win_rate.isna().tolist() == [False, True, True]


def test_discount_bands_is_one_engine_query(banded, monkeypatch):
    discount_bands(banded, bands=BANDS)  # builds the deals table first
    backend, queries = type(banded.con), []
    execute, fetch = backend.execute, _engine._fetch

    def counted(self, expr, **kw):
        queries.append(expr)
        return execute(self, expr, **kw)

    def fetched(backend_, sql, schema):  # a query whose compiled SQL run_query keeps
        queries.append(sql)
        return fetch(backend_, sql, schema)

    monkeypatch.setattr(backend, "execute", counted)
    monkeypatch.setattr(_engine, "_fetch", fetched)
    kw = {"by": ["owner_id"], "bands": BANDS, "filters": {"owner_id": ["X", "Y"]}}
    out = discount_bands(banded, **kw)
    assert len(queries) == 1  # counts, sums and the won median from one grouped query
    assert out.opportunities.tolist() == [4, 0, 0, 0, 2, 1]  # X: d1-d4; Y: d5, d6 | d8
    # a refresh with the same arguments runs the kept SQL again: the same table
    pd.testing.assert_frame_equal(discount_bands(banded, **kw), out)
    # other bands are another query: one band [0, 1] holds X's 4 deals and Y's 3 (d5, d6, d8)
    one = discount_bands(banded, by=["owner_id"], bands=(0, 1), filters=kw["filters"])
    assert one.opportunities.tolist() == [4, 3] and len(queries) == 3


def test_discount_bands_degenerate(banded):
    out = discount_bands(banded, bands=BANDS, filters={"owner_id": "nobody"})
    assert out.opportunities.tolist() == [0, 0, 0] and out.win_rate.isna().all()
    assert discount_bands(banded, by=["owner_id"], filters={"owner_id": "nobody"}).empty
    with pytest.raises(ParameterError, match="bands"):
        discount_bands(banded, bands=(0.3, 0.1))


# ------------------------------------------------------------------------------------------
# Against plain pandas / numpy on random small books


_line = st.tuples(
    st.integers(1, 20),  # quantity
    st.integers(1, 500),  # list price
    st.integers(0, 100),  # invoice as % of list
    st.integers(0, 20),  # rebate per unit
    st.integers(0, 20),  # freight per unit
    st.integers(0, 20),  # terms per unit
    st.integers(0, 3),  # deal
)


def _random_book(lines: list[tuple]) -> dict[str, pd.DataFrame]:
    li = pd.DataFrame(
        lines, columns=["quantity", "list_price", "pct", "rebate", "freight", "payment_terms_cost",
                        "deal"],
    )  # fmt: skip
    li["invoice_price"] = (li.list_price * li.pop("pct") / 100).round(2)
    li["opportunity_id"] = "d" + li.pop("deal").astype(str)
    li["product_id"] = "X"
    li = li.astype({c: float for c in li.columns if c not in ("opportunity_id", "product_id")})
    sums = (li.assign(L=li.quantity * li.list_price, N=li.quantity * li.invoice_price)
            .groupby("opportunity_id")[["L", "N"]].sum())  # fmt: skip
    opps = pd.DataFrame(
        {
            "opportunity_id": sums.index,
            "list_amount": sums.L.to_numpy(),
            "amount": sums.N.to_numpy(),
            "stage": "Closed Won",
            "created_date": pd.Timestamp("2025-01-01"),
        }
    )
    return {"opportunities": opps, "line_items": li}


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, p: float) -> float:
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, p * cum[-1], side="left")])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, min_size=1, max_size=12))
def test_pricing_properties(lines):
    data = load(_random_book(lines))
    opps = data.opportunities.to_pandas()
    li = data.line_items.to_pandas()
    # portfolio discount = 1 - Σnet/Σlist (won deals with a list price and an amount above 0)
    priced = opps[(opps.list_amount > 0) & (opps.amount > 0)]
    r = deal_discounts(data).iloc[0]
    if priced.empty:
        assert np.isnan(r.portfolio_discount)
    else:
        expected = 1 - priced.amount.sum() / priced.list_amount.sum()
        assert r.portfolio_discount == pytest.approx(expected)
    # waterfall: the deductions add up to list - pocket
    wf = price_waterfall(data).set_index("element").amount
    pocket = li.invoice_price - li.rebate - li.freight - li.payment_terms_cost
    assert wf["pocket"] == pytest.approx((pocket * li.quantity).sum(), abs=1e-6)
    assert wf[DEDUCTIONS].sum() == pytest.approx(wf["list"] - wf["pocket"], abs=1e-6)
    # volume-weighted percentiles of pocket % of list
    spread = pocket_price_spread(data).iloc[0]
    pct = (pocket / li.list_price).to_numpy()
    for p in (10, 50, 90):
        expected = _weighted_quantile(pct, li.quantity.to_numpy(), p / 100)
        assert spread[f"pocket_p{p}"] == pytest.approx(expected)


# ------------------------------------------------------------------------------------------
# Planted effects (data/samples/README.md) and pandas references on the sample


def test_portfolio_discount_on_the_sample(sample):
    opps = sample.opportunities.to_pandas()
    assert ((opps.list_amount > 0) & (opps.amount > 0)).all()  # every deal is priced here
    quoted = deal_discounts(sample, status="all").iloc[0]
    assert quoted.portfolio_discount == pytest.approx(
        1 - opps.amount.sum() / opps.list_amount.sum()
    )
    assert quoted.portfolio_discount == pytest.approx(0.108, abs=0.0005)  # README: 10.8%
    won = opps[opps.is_won]
    r = deal_discounts(sample).iloc[0]  # the price realized, on won deals
    assert r.portfolio_discount == pytest.approx(1 - won.amount.sum() / won.list_amount.sum())
    assert r.portfolio_discount == pytest.approx(0.114, abs=0.0005)  # README: 11.4%
    assert r.mean_deal_discount == pytest.approx((1 - won.amount / won.list_amount).mean())


def test_habitual_discounters_lead_discounts_and_leakage(sample):
    by_rep = deal_discounts(sample, by=["owner_id"]).nlargest(3, "portfolio_discount")
    assert set(by_rep.owner_id) == HABITUAL_DISCOUNTERS
    assert by_rep.portfolio_discount.between(0.24, 0.31).all()  # README: 28-29% off list
    leaks = leakage(sample, by=["owner_id"])
    assert set(leaks.owner_id[:3]) == HABITUAL_DISCOUNTERS  # sorted by corridor leakage
    assert set(leaks.nlargest(3, "leakage_share").owner_id) == HABITUAL_DISCOUNTERS


def test_deepest_discounts_do_not_win_more(sample):
    out = discount_bands(sample)
    rate = out.win_rate.to_numpy()
    assert rate[-1] <= rate[-2]  # the deepest band is not better than the one before
    assert rate[3] == out.win_rate.max()  # 15-20% wins most (README: 45.0%)
    assert out.closed.tolist() == [4913, 4401, 3304, 2022, 1146, 648, 566]  # README counts
    # against pandas on the closed deals
    opps = sample.opportunities.to_pandas()
    closed = opps[opps.is_closed & (opps.list_amount > 0)]
    discount = (1 - closed.amount / closed.list_amount).round(9)
    bands = pd.cut(discount, [0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 1.0], right=False)
    ref = closed.groupby(bands, observed=False)["is_won"].mean().to_numpy()
    assert np.allclose(rate, ref)


def test_waterfall_and_spread_on_the_sample(sample):
    li = sample.line_items.to_pandas()
    won = sample.opportunities.to_pandas().query("is_won").opportunity_id
    li = li[li.opportunity_id.isin(won)]
    wf = price_waterfall(sample).set_index("element").amount
    assert wf["list"] == pytest.approx((li.quantity * li.list_price).sum())
    assert wf["invoice"] == pytest.approx((li.quantity * li.invoice_price).sum())
    assert wf[DEDUCTIONS].sum() == pytest.approx(wf["list"] - wf["pocket"], rel=1e-12)
    pocket = li.invoice_price - li.rebate - li.freight - li.payment_terms_cost
    spread = pocket_price_spread(sample).iloc[0]
    expected = _weighted_quantile((pocket / li.list_price).to_numpy(), li.quantity.to_numpy(), 0.5)
    assert spread.pocket_p50 == pytest.approx(expected)
    band = pocket_price_band(sample)
    assert band.volume.sum() == li.quantity.sum()
    assert band.volume_share.sum() == pytest.approx(1)
