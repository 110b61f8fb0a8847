"""The one KPI display catalogue: every view names, formats and marks a KPI as it says."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_widgets import metrics
from salesops_widgets._catalog import CATALOGUE, KPI, check_kpis, table_formats, too_few_columns
from salesops_widgets.apps import KPIS
from salesops_widgets.apps._catalog import RANKABLE
from salesops_widgets.apps._stratification import OUTCOMES
from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import KPI_CARDS, cards_from_kpis


def test_every_kpi_is_a_column_of_the_kpi_layer():
    columns = {*metrics.SEGMENT_COLUMNS, "naive_median_days_closed_only"}
    for kpi in CATALOGUE.values():
        assert kpi.column in columns
        assert {kpi.low, kpi.high} - {None} <= columns


def test_cards_dashboards_and_ranking_take_the_catalogue_entries():
    for card in KPI_CARDS:
        kpi = CATALOGUE[card["column"]]
        assert (card["label"], card["kind"], card["small_n"]) == (kpi.label, kpi.kind, kpi.small_n)
    assert all(KPIS[c] is CATALOGUE[c] for c in KPIS)
    assert tuple(metrics.RANKING_KPIS) == RANKABLE
    for column, kind, label, better in OUTCOMES.values():
        kpi = CATALOGUE[column]
        assert (kind, label, better) == (kpi.kind, kpi.title, kpi.better)


def test_a_card_named_by_its_column_is_the_catalogues():
    cards = cards_from_kpis(pd.Series({"asp": 100.0, "small_n": True}), spec=["asp"])
    assert cards[0]["label"] == "Average selling price" and cards[0]["small_n"]
    titled = CATALOGUE["km_median_days_to_close"].card(titled=True)
    assert titled["label"] == "Median days to close (open deals counted)"
    assert (titled["low"], titled["high"]) == ("km_median_low", "km_median_high")


def test_tables_take_formats_and_too_few_columns_from_it():
    columns = ["size_band", "win_rate", "win_rate_low", "asp", "bookings", "portfolio_discount"]
    assert table_formats(columns) == {
        "win_rate": "percent",
        "win_rate_low": "percent",
        "win_rate_high": "percent",
        "asp": "money",
        "bookings": "money",
        "portfolio_discount": "percent",
    }
    assert too_few_columns(columns) == ["win_rate", "asp"]


def test_defaults_and_checks():
    kpi = KPI("x_rate", "X rate", "percent")
    assert (kpi.title, kpi.short, kpi.better, kpi.small_n) == ("X rate", "x rate", "higher", False)
    with pytest.raises(ParameterError, match="kind"):
        KPI("x", "X", "furlongs")
    with pytest.raises(ParameterError, match="unknown: speed"):
        check_kpis(["speed"], "kpis", ("win_rate",))
