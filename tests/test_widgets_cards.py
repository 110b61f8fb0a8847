"""KPICards and cards_from_kpis: the numbers shown are the KPI layer's, deltas are by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_widgets import metrics
from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import KPICards, cards_from_kpis, format_value
from salesops_widgets.widgets._html import COLORS


def _row(**values) -> pd.Series:
    base = {
        "opportunities": 40,
        "closed": 35,
        "won": 14,
        "win_rate": 0.4,
        "win_rate_low": 0.25,
        "win_rate_high": 0.57,
        "bookings": 140_000.0,
        "asp": 10_000.0,
        "km_median_days_to_close": 60.0,
        "km_median_low": 50.0,
        "km_median_high": 75.0,
        "small_n": False,
    }
    return pd.Series({**base, **values})


def _card(cards, label):
    return next(c for c in cards if c["label"] == label)


def test_cards_show_the_kpi_layers_numbers_for_a_filter(sample):
    filters = {"region": ["EMEA"]}
    row = metrics.segment_kpis(sample, filters=filters).iloc[0]
    # win rate by hand from the raw tables
    opps = sample.opportunities.to_pandas().merge(
        sample.accounts.to_pandas()[["account_id", "region"]], on="account_id"
    )
    emea = opps[opps["region"] == "EMEA"]
    won, lost = (emea["status"] == "won").sum(), (emea["status"] == "lost").sum()
    cards = cards_from_kpis(row, currency="USD")
    assert _card(cards, "Win rate")["value"] == pytest.approx(won / (won + lost))
    assert _card(cards, "Opportunities")["value"] == len(emea)
    html = KPICards(cards).to_static_html()
    assert format_value(won / (won + lost), "percent") in html


def test_delta_is_current_minus_previous():
    now, before = _row(win_rate=0.40, bookings=140_000.0), _row(win_rate=0.35, bookings=150_000.0)
    cards = cards_from_kpis(now, before, ["win_rate", "bookings", "km_median_days_to_close"])
    assert _card(cards, "Win rate")["delta"] == pytest.approx(0.05)
    assert _card(cards, "Bookings")["delta"] == pytest.approx(-10_000.0)
    assert _card(cards, "Median days to close")["delta"] == 0
    assert _card(cards, "Win rate")["low"] == 0.25 and _card(cards, "Win rate")["high"] == 0.57


def test_small_n_hides_the_rate_but_not_the_counts():
    small = _row(closed=12, small_n=True)
    cards = cards_from_kpis(small, _row(), ["opportunities", "win_rate", "bookings"])
    rate = _card(cards, "Win rate")
    assert rate["small_n"] and rate["delta"] is None and rate["note"] == "12 closed deals"
    assert not _card(cards, "Bookings")["small_n"]
    assert _card(cards, "Bookings")["delta"] == 0
    html = KPICards(cards).to_static_html()
    assert "too few to say" in html
    assert "salesops-value" in html  # the counts still have their big number
    assert html.count("salesops-badge") == 1


def test_default_spec_skips_missing_columns_but_an_explicit_one_does_not():
    cards = cards_from_kpis(_row())
    assert [c["label"] for c in cards] == [
        "Opportunities",
        "Win rate",
        "Bookings",
        "Average selling price",
        "Median days to close",
    ]
    with pytest.raises(ParameterError, match="velocity"):
        cards_from_kpis(_row(), spec=["velocity"])


def test_arrows_and_colors_follow_what_is_better():
    cards = KPICards(
        [
            {"label": "Win rate", "value": 0.4, "kind": "percent", "delta": 0.015},
            {"label": "Cycle", "value": 63, "kind": "days", "delta": 3, "better": "lower"},
        ]
    )
    html = cards.to_static_html()
    win, cycle = html.split("Cycle")
    assert "▲ +1.5 pts" in win and COLORS["good"] in win
    assert "▲ +3 days" in cycle and COLORS["bad"] in cycle


def test_labels_and_notes_are_escaped():
    html = KPICards([{"label": "<script>x</script>", "value": 1, "note": "a & b"}]).to_static_html()
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &amp; b" in html


@pytest.mark.parametrize(
    ("card", "match"),
    [
        ({"label": "x", "kind": "furlongs"}, "kind"),
        ({"label": "x", "colour": "red"}, "colour"),
        ({"value": 3}, "label"),
        ({"label": "x", "better": "bigger"}, "better"),
    ],
)
def test_bad_cards_are_refused(card, match):
    with pytest.raises(ParameterError, match=match):
        KPICards([card])


def test_cards_trait_updates_the_view():
    cards = KPICards()
    cards.cards = [{"label": "Bookings", "value": 1_234_567, "kind": "money", "currency": "USD"}]
    assert "$1.2M" in cards._html.value
