"""A dashboard takes notebook parameters after it was built (``Dashboard.apply_parameters``), and
a preheated Voilà kernel applies the page's URL parameters that way (``apps/_preheated.py``).

The reference for every check is the other path to the same view: a dashboard built with those
parameters as keyword arguments, as the notebook's cells build it on a fresh kernel.
"""

from __future__ import annotations

import asyncio
import os
import time

import pandas as pd
import pytest
from _helpers import ROOT, run_async

from salesops_widgets.apps import (
    DriverTree,
    GoalTracking,
    SalesCycleAcceleration,
    SegmentationExplorer,
    StickerShock,
    StratificationComparisons,
    _preheated,
)
from salesops_widgets.apps._preheated import follow_page, page_parameters
from salesops_widgets.errors import ParameterError

NOTEBOOKS = ROOT / "notebooks"
# (dashboard, its notebook, one of its own parameters with a value other than the default)
DASHBOARDS = [
    (SegmentationExplorer, "segmentation_explorer", {"dimension": "industry"}),
    (StratificationComparisons, "stratification_comparisons", {"method": "abc"}),
    (SalesCycleAcceleration, "sales_cycle_acceleration", {"dimension": "region"}),
    (StickerShock, "sticker_shock", {"cap": 0.1}),
    (DriverTree, "driver_tree", {"asp_dimension": "size_band"}),
]
IDS = [d[1] for d in DASHBOARDS]
GOALS = ROOT / "data" / "samples" / "goals.yaml"


def test_page_parameters_are_typed_by_the_parameters_cell_with_the_rest_at_defaults():
    got = page_parameters(
        "region=EMEA&kpis=win_rate,asp&token=x", NOTEBOOKS / "segmentation_explorer.ipynb"
    )
    # the notebook's literals: dimension "size_band", second_dimension "region", ...
    assert got["region"] == "EMEA" and got["kpis"] == ["win_rate", "asp"]
    assert (got["dimension"], got["second_dimension"], got["period"]) == (
        "size_band",
        "region",
        "all",
    )
    assert not {"data_path", "mapping", "as_of", "token"} & set(got)  # loaded, or Voilà's
    assert page_parameters("", NOTEBOOKS / "segmentation_explorer.ipynb") == {}


def test_page_parameters_refuse_what_the_server_refuses():
    with pytest.raises(ParameterError, match="regoin"):
        page_parameters("regoin=EMEA", NOTEBOOKS / "segmentation_explorer.ipynb")


@pytest.mark.parametrize(("cls", "notebook", "own"), DASHBOARDS, ids=IDS)
def test_every_parameter_of_the_notebook_applies(cls, notebook, own, sample):
    app = cls(sample, debounce=0)
    # one parameter at its default: page_parameters gives every other one its default too
    app.apply_parameters(page_parameters("region=All", NOTEBOOKS / f"{notebook}.ipynb"))
    assert app.status.message == ""


@pytest.mark.parametrize(("cls", "notebook", "own"), DASHBOARDS, ids=IDS)
def test_applied_parameters_show_what_a_dashboard_built_with_them_shows(cls, notebook, own, sample):
    asked = {"region": "EMEA", "period": "2026-01-01..2026-06-30", **own}
    built = cls(sample, debounce=0, **asked)
    applied = cls(sample, debounce=0)
    before = applied.detail.deals.copy()
    applied.apply_parameters(asked)
    assert applied.status.message == ""
    assert dict(applied.filter_bar.selection) == dict(built.filter_bar.selection)
    name, value = next(iter(own.items()))
    assert getattr(applied, name) == getattr(built, name) == value
    # the deals listed follow: EMEA's in the first half of 2026, not every deal
    pd.testing.assert_frame_equal(applied.detail.deals, built.detail.deals)
    assert not applied.detail.deals.equals(before)


def test_goal_tracking_takes_its_link_parameters(sample):
    # its goals file and history are the server's: a link sets only the trend periods
    app = GoalTracking(sample, goals_path=str(GOALS), debounce=0)
    values = page_parameters("freq=month", NOTEBOOKS / "goal_tracking.ipynb")
    assert values == {"freq": "month"}
    app.apply_parameters(values)
    assert app.freq == "month" and app.status.message == ""


def test_an_unknown_parameter_sets_nothing(sample):
    app = SegmentationExplorer(sample, debounce=0)
    with pytest.raises(ParameterError, match="'regoin'"):
        app.apply_parameters({"regoin": "EMEA", "dimension": "industry"})
    assert app.dimension == "size_band"


def test_stratification_periods_take_the_notebook_text(sample):
    app = StratificationComparisons(sample, debounce=0, period_a="2025-01-01..2025-06-30")
    assert app.period_a == (pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-06-30").date())
    # "" is the default: the half-year before period_b, which ends at the as-of date
    assert app.period_b[1] == sample.as_of
    with pytest.raises(ParameterError, match="period_a"):
        app.period_a = "2025-01-01"


def test_outside_a_preheated_kernel_nothing_waits(sample, monkeypatch):
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    monkeypatch.setattr(_preheated, "_dashboards", [])
    follow_page(SegmentationExplorer(sample, debounce=0))
    assert _preheated._dashboards == []


def test_a_preheated_kernel_applies_the_request_when_it_comes(sample, monkeypatch):
    """Voilà's wait for the request replaced by one that 'receives' a query string."""
    import voila.utils

    def request_came() -> None:
        time.sleep(0.2)  # the request comes after the dashboard is built
        os.environ["QUERY_STRING"] = "region=EMEA&dimension=industry"
        os.environ["SCRIPT_NAME"] = "/voila/render/segmentation_explorer.ipynb"

    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("QUERY_STRING", "")
    monkeypatch.setenv("SCRIPT_NAME", "")
    monkeypatch.setattr(voila.utils, "wait_for_request", request_came)
    monkeypatch.setattr(_preheated, "_dashboards", [])
    monkeypatch.setattr(_preheated, "_request", {})
    monkeypatch.chdir(NOTEBOOKS)  # a Voilà kernel runs in its notebook's folder

    async def preheated() -> SegmentationExplorer:
        app = SegmentationExplorer(sample, debounce=0)  # the notebook's defaults
        assert app.dimension == "size_band"
        deadline = time.monotonic() + 60
        while app.dimension != "industry" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return app

    app = run_async(preheated())
    assert app.dimension == "industry"
    assert app.filter_bar.selection["filters"] == {"region": ["EMEA"]}
    assert app.status.message == ""


def test_a_link_to_the_driver_tree_applies_with_the_pages_own_defaults(sample):
    # the page's defaults (period B the last 12 months, deals closed in it) stay unless asked
    asked = page_parameters("region=EMEA&asp_dimension=size_band", NOTEBOOKS / "driver_tree.ipynb")
    assert (asked["period"], asked["date_field"]) == ("last_12_months", "closed_date")
    built = DriverTree(sample, debounce=0, region="EMEA", asp_dimension="size_band")
    applied = DriverTree(sample, debounce=0)
    applied.apply_parameters(asked)
    assert applied.status.message == ""
    assert applied.bridge_note.value == built.bridge_note.value
    assert applied.asp_note.value == built.asp_note.value


def test_a_link_never_resets_the_servers_goals_file_or_history(sample, tmp_path):
    asked = page_parameters("freq=month", NOTEBOOKS / "goal_tracking.ipynb")
    assert asked == {"freq": "month"}  # goals_path and history_path are the server's
    goals = ROOT / "data" / "samples" / "goals.yaml"
    app = GoalTracking(sample, goals_path=str(goals), history_path=str(tmp_path), debounce=0)
    app.apply_parameters(asked)
    assert (app.freq, app.goals_path, app.history_path) == ("month", str(goals), str(tmp_path))
    assert "per month of the data" in app.notes.value
