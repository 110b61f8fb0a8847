"""Tests for salesops_widgets/metrics/_drivers.py: the bookings and ASP bridges.

Hand-computed bridges on tiny datasets (arithmetic in the comments), hypothesis properties
(the parts always add up to the change; the Shapley split is the mean of the 6 substitution
orders), plain pandas as the reference on the default sample, and the degenerate cases.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesops_widgets import load
from salesops_widgets.errors import ParameterError
from salesops_widgets.metrics._drivers import (
    ASP_METHOD,
    asp_bridge,
    bookings_bridge,
    bookings_contributions,
    discount_contributions,
    drill_path,
    price_mix_split,
    shapley_product,
)

SETTINGS = settings(max_examples=30, deadline=None)
approx = pytest.approx
A = ("2025-01-01", "2025-03-31")
B = ("2025-04-01", "2025-06-30")
_IDS = itertools.count(1)


def deal(status, amount, closed_on, **dims):
    """A deal created 2024-12-01 and closed on ``closed_on`` (open: closes after the as-of)."""
    closed = status != "open"
    return {
        "opportunity_id": f"O-{next(_IDS)}",
        "created_date": pd.Timestamp("2024-12-01"),
        "close_date": pd.Timestamp(closed_on if closed else "2025-12-31"),
        "amount": float(amount),
        "is_closed": closed,
        "is_won": status == "won",
        **dims,
    }


def make(rows):
    return load({"opportunities": pd.DataFrame(rows)}, as_of="2025-06-30")


# --------------------------------------------------------------------------------------------------
# bookings_bridge


def _bookings_rows():
    # period A (closed Jan-Mar): 10 closed, 2 won (900 + 1100): win rate 0.2, ASP 1000,
    #   bookings 2000
    # period B (closed Apr-Jun): 12 closed, 3 won (1000 + 1200 + 1400): win rate 0.25,
    #   ASP 1200, bookings 3600
    # plus an open deal, which is in neither period
    rows = [deal("won", a, "2025-02-01", lead_source="Web") for a in (900, 1100)]
    rows += [deal("lost", 50, "2025-03-01", lead_source="Web") for _ in range(8)]
    rows += [deal("won", a, "2025-05-01", lead_source="Web") for a in (1000, 1200, 1400)]
    rows += [deal("lost", 50, "2025-06-01", lead_source="Web") for _ in range(9)]
    return [*rows, deal("open", 999, None, lead_source="Web")]


def test_bookings_bridge_by_hand():
    r = bookings_bridge(make(_bookings_rows()), period_a=A, period_b=B).iloc[0]
    assert (r.closed_a, r.won_a, r.win_rate_a, r.asp_a, r.bookings_a) == (10, 2, 0.2, 1000, 2000)
    assert (r.closed_b, r.won_b, r.win_rate_b, r.asp_b, r.bookings_b) == (12, 3, 0.25, 1200, 3600)
    assert r.change == 1600
    # Shapley, x = closed, y = win rate, z = ASP:
    # volume   = 2    * [(0.2*1000 + 0.25*1200)/3 + (0.2*1200 + 0.25*1000)/6]
    #          = 2    * [500/3 + 490/6]      = 2 * 248.333  = 496.667
    # win rate = 0.05 * [(10*1000 + 12*1200)/3 + (10*1200 + 12*1000)/6]
    #          = 0.05 * [24400/3 + 24000/6]  = 0.05 * 12133.33 = 606.667
    # ASP      = 200  * [(10*0.2 + 12*0.25)/3 + (10*0.25 + 12*0.2)/6]
    #          = 200  * [5/3 + 4.9/6]        = 200 * 2.48333 = 496.667
    # sum = 1600
    assert r.volume_effect == approx(1490 / 3)
    assert r.win_rate_effect == approx(1820 / 3)
    assert r.asp_effect == approx(1490 / 3)
    assert r.volume_effect + r.win_rate_effect + r.asp_effect == approx(1600, abs=1e-9)
    assert r.method.startswith("Shapley") and r.note == ""


def test_a_won_deal_without_an_amount_is_left_out_of_the_bridge_as_of_asp():
    rows = _bookings_rows()
    unpriced = deal("won", 0, "2025-05-15", lead_source="Web")
    unpriced["amount"] = None  # won in period B, amount never entered
    r = bookings_bridge(make([*rows, unpriced]), period_a=A, period_b=B).iloc[0]
    # the same bridge as by hand above: the deal is in neither closed nor won nor ASP
    assert (r.closed_b, r.won_b, r.asp_b, r.bookings_b) == (12, 3, 1200, 3600)
    assert r.volume_effect + r.win_rate_effect + r.asp_effect == approx(1600, abs=1e-9)
    assert r.note == "1 won deal(s) without an amount left out in period B"


def _six_orders(x0, y0, z0, x1, y1, z1):
    """Mean effect of each factor over the 6 orders of substituting period 1 for period 0."""
    start, end = (x0, y0, z0), (x1, y1, z1)
    effects = np.zeros(3)
    for order in itertools.permutations(range(3)):
        cur = list(start)
        for k in order:
            before = cur[0] * cur[1] * cur[2]
            cur[k] = end[k]
            effects[k] += cur[0] * cur[1] * cur[2] - before
    return effects / 6


@SETTINGS
@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=6, max_size=6))
def test_shapley_parts_add_up_and_average_the_orders(v):
    parts = np.array(shapley_product(*v), dtype=float)
    change = v[3] * v[4] * v[5] - v[0] * v[1] * v[2]
    tol = 1e-12 * max(v) ** 3 + 1e-9  # float rounding on products up to max(v)^3
    assert parts.sum() == approx(change, abs=tol)
    assert parts == approx(_six_orders(*v), abs=tol)


def test_bookings_bridge_on_sample_matches_pandas(sample, sample_dirs):
    pa, pb = ("2024-10-01", "2025-09-30"), ("2025-10-01", "2026-09-30")
    r = bookings_bridge(sample, period_a=pa, period_b=pb, by="size_band")
    parts = r[["volume_effect", "win_rate_effect", "asp_effect"]].sum(axis=1)
    assert parts.to_numpy() == approx(r["change"].to_numpy(), rel=1e-12)
    # reference: plain pandas on the opportunities and accounts files
    opp = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    acc = pd.read_parquet(sample_dirs["default"] / "accounts.parquet")
    opp = opp.merge(acc[["account_id", "size_band"]], on="account_id")
    close = pd.to_datetime(opp.close_date)
    for s, (start, end) in (("a", pa), ("b", pb)):
        sel = opp[opp.is_closed & (close >= start) & (close <= end)]
        sel = sel.assign(won_amount=sel.amount.where(sel.is_won, 0.0))
        ref = sel.groupby("size_band").agg(
            closed=("is_closed", "size"), won=("is_won", "sum"), bookings=("won_amount", "sum")
        )
        got = r.set_index("size_band")
        assert got[f"closed_{s}"].to_dict() == ref["closed"].to_dict()
        assert got[f"won_{s}"].to_dict() == ref["won"].to_dict()
        assert got[f"bookings_{s}"].to_numpy() == approx(ref["bookings"].to_numpy())
    total = bookings_bridge(sample, period_a=pa, period_b=pb).iloc[0]
    parts = total.volume_effect + total.win_rate_effect + total.asp_effect
    assert parts == approx(total.change, rel=1e-12)


def test_bookings_bridge_degenerate():
    rows = _bookings_rows()
    data = make(rows)
    # a period with nothing closed: win rate and ASP take B's values; the change is all volume
    r = bookings_bridge(data, period_a=("2020-01-01", "2020-12-31"), period_b=B).iloc[0]
    assert r.closed_a == 0 and math.isnan(r.win_rate_a)
    assert (r.volume_effect, r.win_rate_effect, r.asp_effect) == (3600, 0, 0)
    assert "undefined in period A" in r.note
    # closed deals but no win in A: ASP takes B's value, so the ASP effect is 0
    no_win = make([deal("lost", 10, "2025-02-01")] + rows[10:])
    r = bookings_bridge(no_win, period_a=A, period_b=B).iloc[0]
    assert r.asp_effect == 0 and r.volume_effect + r.win_rate_effect == approx(3600)
    # nothing in either period: zeros, no exception
    r = bookings_bridge(
        data, period_a=("2020-01-01", "2020-02-01"), period_b=("2021-01-01", "2021-12-31")
    )
    assert r.iloc[0][["change", "volume_effect", "win_rate_effect", "asp_effect"]].eq(0).all()
    # a group in one period only
    grouped = make(rows + [deal("won", 500, "2025-02-02", lead_source="Event")])
    g = bookings_bridge(grouped, period_a=A, period_b=B, by="lead_source").set_index("lead_source")
    assert g.loc["Event", "volume_effect"] == -500 and g.loc["Event", "closed_b"] == 0
    with pytest.raises(ParameterError, match="period_a is required"):
        bookings_bridge(data, period_b=B)
    with pytest.raises(ParameterError, match="by='colour'"):
        bookings_bridge(data, period_a=A, period_b=B, by="colour")


# --------------------------------------------------------------------------------------------------
# asp_bridge


def _asp_rows():
    # A: P 2 won @100, S 1 @300, G 1 @400 -> 4 won, 900, ASP_A 225; shares .5, .25, .25
    # B: P 2 won @110, S 1 @330, N 1 @150 -> 4 won, 700, ASP_B 175; shares .5, .25, .25
    rows = [deal("won", 100, "2025-02-01", deal_type="P") for _ in range(2)]
    rows += [deal("won", 300, "2025-02-01", deal_type="S")]
    rows += [deal("won", 400, "2025-02-01", deal_type="G")]
    rows += [deal("won", 110, "2025-05-01", deal_type="P") for _ in range(2)]
    rows += [deal("won", 330, "2025-05-01", deal_type="S")]
    rows += [deal("won", 150, "2025-05-01", deal_type="N")]
    rows += [deal("lost", 9999, "2025-05-01", deal_type="X")]  # no won deal: no segment
    return rows


def test_asp_bridge_by_hand():
    r = asp_bridge(make(_asp_rows()), period_a=A, period_b=B, dimension="deal_type")
    r = r.set_index("deal_type")
    assert list(r.index) == ["G", "N", "P", "S", "(total)"]
    assert r["segment"].tolist() == ["gone", "new", "both", "both", "total"]
    # price = (110 - 100) * .5 + (330 - 300) * .25 + 0 (new N) + 0 (gone G) = 5 + 7.5 = 12.5
    assert r.loc["P", "price_effect"] == approx(5) and r.loc["S", "price_effect"] == approx(7.5)
    assert r.loc["N", "price_effect"] == 0 and r.loc["G", "price_effect"] == 0
    # mix per segment, (ASP_i,A - ASP_A) * (s_i,B - s_i,A) with ASP_A = 225 (N valued at 150):
    # G (400 - 225) * (0 - .25) = -43.75; N (150 - 225) * (.25 - 0) = -18.75; P, S 0
    assert r.loc["G", "mix_effect"] == approx(-43.75) and r.loc["N", "mix_effect"] == approx(-18.75)
    assert r.loc["P", "mix_effect"] == approx(0) and r.loc["S", "mix_effect"] == approx(0)
    # total: mix = Σ ASP_i,A (s_i,B - s_i,A) = 400*(-.25) + 150*(.25) = -62.5; price 12.5
    # price + mix = -50 = 175 - 225
    tot = r.loc["(total)"]
    assert (tot.asp_a, tot.asp_b, tot.change) == (225, 175, -50)
    assert tot.price_effect == approx(12.5) and tot.mix_effect == approx(-62.5)
    assert (r["method"] == ASP_METHOD).all()


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.floats(1, 1e5), st.integers(0, 20), st.floats(1, 1e5)),
        min_size=1,
        max_size=8,
    )
)
def test_price_plus_mix_is_the_asp_change(segments):
    won_a, asp_a, won_b, asp_b = (np.array(x, dtype=float) for x in zip(*segments, strict=True))
    f = price_mix_split(won_a, won_a * asp_a, won_b, won_b * asp_b)
    if won_a.sum() == 0 or won_b.sum() == 0:
        assert f["price_effect"].isna().all()
        return
    change = (won_b * asp_b).sum() / won_b.sum() - (won_a * asp_a).sum() / won_a.sum()
    assert f["change"].sum() == approx(change, rel=1e-9, abs=1e-6)
    # the total mix effect in its textbook form, Σ ASP_i,A (s_i,B - s_i,A), new segments at B
    base = np.where(won_a > 0, asp_a, asp_b)
    mix = (base * (won_b / won_b.sum() - won_a / won_a.sum())).sum()
    assert f["mix_effect"].sum() == approx(mix, rel=1e-9, abs=1e-6)


def test_asp_bridge_on_sample_adds_up(sample):
    pa, pb = ("2024-10-01", "2025-09-30"), ("2025-10-01", "2026-09-30")
    for dim in ("product_family", "size_band"):
        r = asp_bridge(sample, period_a=pa, period_b=pb, dimension=dim)
        tot = r.iloc[-1]
        assert tot.price_effect + tot.mix_effect == approx(tot.change, rel=1e-9)
        assert r.iloc[:-1]["change"].sum() == approx(tot.change, rel=1e-9)
        assert r.iloc[:-1]["share_a"].sum() == approx(1) and r.iloc[:-1]["share_b"].sum() == approx(
            1
        )


def test_asp_bridge_degenerate():
    data = make(_asp_rows())
    r = asp_bridge(data, period_a=("2020-01-01", "2020-12-31"), period_b=B, dimension="deal_type")
    assert r[["price_effect", "mix_effect"]].isna().all().all()
    assert "no won deal in period A" in r["note"].iloc[-1]
    nothing = asp_bridge(
        data, period_a=A, period_b=B, dimension="deal_type", filters={"deal_type": ["none"]}
    )
    assert len(nothing) == 1 and math.isnan(nothing["change"].iloc[0])
    with pytest.raises(ParameterError, match="dimension='colour'"):
        asp_bridge(data, period_a=A, period_b=B, dimension="colour")
    with pytest.raises(ParameterError, match="period_b is required"):
        asp_bridge(data, period_a=A, dimension="deal_type")


def test_dates_are_checked():
    data = make(_asp_rows())
    with pytest.raises(ParameterError, match="not a date"):
        asp_bridge(data, period_a=("2025-13-01", "2025-03-31"), period_b=B, dimension="deal_type")


# --------------------------------------------------------------------------------------------------
# The drill: contributions, the path into the largest one, and the discount split


def _drill_rows():
    # period A (closed Feb): Web won 900 (New) + 1100 (Renewal), 8 lost (New) -> 2000;
    #   Event won 500, 1 lost -> 500. Total 2500.
    # period B (closed May): Web won 1000 + 1200 (New) + 1400 (Renewal), 9 lost (New) -> 3600;
    #   Event won 300 + 300, 2 lost -> 600. Total 4200.
    web = {"lead_source": "Web"}
    rows = [deal("won", 900, "2025-02-01", deal_type="New", **web)]
    rows += [deal("won", 1100, "2025-02-01", deal_type="Renewal", **web)]
    rows += [deal("lost", 50, "2025-02-01", deal_type="New", **web) for _ in range(8)]
    rows += [deal("won", a, "2025-05-01", deal_type="New", **web) for a in (1000, 1200)]
    rows += [deal("won", 1400, "2025-05-01", deal_type="Renewal", **web)]
    rows += [deal("lost", 50, "2025-05-01", deal_type="New", **web) for _ in range(9)]
    event = {"lead_source": "Event", "deal_type": "New"}
    rows += [deal("won", 500, "2025-02-01", **event), deal("lost", 50, "2025-02-01", **event)]
    rows += [deal("won", 300, "2025-05-01", **event) for _ in range(2)]
    rows += [deal("lost", 50, "2025-05-01", **event) for _ in range(2)]
    return rows


def test_contributions_add_up_to_the_change_and_rank_the_largest_first():
    f = bookings_contributions(make(_drill_rows()), period_a=A, period_b=B, by="lead_source")
    # Web 2000 -> 3600 (+1600), Event 500 -> 600 (+100): +1700 in all
    assert f["lead_source"].tolist() == ["Web", "Event"]
    assert f["change"].tolist() == [1600, 100]
    assert f["change"].sum() == 4200 - 2500
    assert f["share"].tolist() == approx([1600 / 1700, 100 / 1700])
    assert f["rank"].tolist() == [1, 2]
    event = f.iloc[1]
    # Event: closed 2 -> 4, win rate 0.5 -> 0.5, ASP 500 -> 300
    # volume = 2 * [(0.5*500 + 0.5*300)/3 + (0.5*300 + 0.5*500)/6] = 2 * 200 = 400
    # ASP = -200 * [(2*0.5 + 4*0.5)/3 + (2*0.5 + 4*0.5)/6] = -200 * 1.5 = -300
    assert (event.volume_effect, event.win_rate_effect, event.asp_effect) == approx((400, 0, -300))
    assert event.volume_effect + event.win_rate_effect + event.asp_effect == approx(event.change)


def test_drill_path_follows_the_largest_contributor_one_level_at_a_time():
    p = drill_path(make(_drill_rows()), period_a=A, period_b=B, path=("lead_source", "deal_type"))
    assert p["dimension"].tolist() == ["lead_source", "deal_type"]
    assert p["segment"].tolist() == ["Web", "New"]
    # level 1: Web +1600 of +1700; level 2, within Web: New 900 -> 2200 (+1300), Renewal
    # 1100 -> 1400 (+300): New, 1300 of 1600
    assert p["parent_change"].tolist() == [1700, 1600]
    assert p["change"].tolist() == [1600, 1300]
    assert p["share"].tolist() == approx([1600 / 1700, 1300 / 1600])
    assert p["filters"].iloc[1] == {"lead_source": ["Web"], "deal_type": ["New"]}
    parts = p[["volume_effect", "win_rate_effect", "asp_effect"]].sum(axis=1)
    assert parts.tolist() == approx(p["change"].tolist())


def test_drill_path_follows_a_fall_too():
    # swap the periods: bookings fall by 1700, Web (-1600) is the largest contributor
    p = drill_path(make(_drill_rows()), period_a=B, period_b=A, path=("lead_source",))
    assert (p["segment"].iloc[0], p["change"].iloc[0]) == ("Web", -1600)


def test_discount_contributions_by_hand():
    rows = [
        deal("won", 700, "2025-05-01", owner_id="X", list_amount=1000.0),  # 30% off
        deal("won", 2700, "2025-05-01", owner_id="Y", list_amount=3000.0),  # 10% off
        deal("lost", 50, "2025-05-01", owner_id="X", list_amount=100.0),  # lost: not counted
    ]
    f = discount_contributions(make(rows), by="owner_id", period=B)
    # portfolio discount = 1 - 3400 / 4000 = 0.15
    # X: 1000 * (0.30 - 0.15) / 4000 = +0.0375 points; ASP: -1000 * 0.15 / 2 won = -75
    # Y: 3000 * (0.10 - 0.15) / 4000 = -0.0375 points; ASP: +75
    assert f["owner_id"].tolist() == ["X", "Y"]
    assert f["average_discount"].iloc[0] == approx(0.15)
    assert f["discount"].tolist() == approx([0.30, 0.10])
    assert f["rate_effect"].tolist() == approx([0.0375, -0.0375])
    assert f["asp_effect"].tolist() == approx([-75, 75])
    assert f["rate_effect"].sum() == approx(0, abs=1e-12)


def test_the_habitual_discounters_are_the_top_discount_contributors(sample):
    # data/samples/README.md, effect 2: REP-003, REP-008 and REP-013 give 26-27% off list on
    # their won deals, every other rep 8.6-11.8%
    f = discount_contributions(sample, by="owner_id", period=("2025-10-01", "2026-09-30"))
    assert set(f["owner_id"].head(3)) == {"REP-003", "REP-008", "REP-013"}
    assert (f["discount"].head(3) > 0.2).all()
    assert f["rate_effect"].sum() == approx(0, abs=1e-12)


def test_the_drill_on_the_sample_splits_exactly_at_every_level(sample):
    pa, pb = ("2024-10-01", "2025-09-30"), ("2025-10-01", "2026-09-30")
    p = drill_path(sample, period_a=pa, period_b=pb, path=("size_band", "owner"))
    whole = bookings_bridge(sample, period_a=pa, period_b=pb).iloc[0]
    assert p["parent_change"].iloc[0] == approx(whole.change)
    # Enterprise has the largest bookings (effect 4 of data/samples/README.md: ASP $223,800)
    assert p["segment"].iloc[0] == "Enterprise"
    parts = p[["volume_effect", "win_rate_effect", "asp_effect"]].sum(axis=1)
    assert parts.tolist() == approx(p["change"].tolist())
    assert p["parent_change"].iloc[1] == approx(p["change"].iloc[0])
