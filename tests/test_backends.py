"""Parity: the same tables on PostgreSQL and on Spark give the numbers the embedded DuckDB gives.

The reference is the embedded DuckDB (an independent engine, with its own fast paths: dictionary
codes, stored keys, the perfect-hash aggregate). The same small sample (tests/conftest.py,
``backend_frames``) is written into a throwaway PostgreSQL cluster (tables) and a local Spark
session (temporary views) and loaded from there: validation, the quality report and every KPI
run in that engine. Counts must be identical, other numbers equal to floating-point tolerance.

This module runs them on PostgreSQL; tests/test_backends_spark.py collects the same tests on
Spark (a module of its own, so that pytest-xdist runs the two engines side by side).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from salesops_widgets import metrics as m
from salesops_widgets.errors import DataSourceError

pytestmark = [pytest.mark.backends, pytest.mark.slow]


# Two half-years before the sample's as-of date (2026-09-30).
PERIOD_A, PERIOD_B = ("2025-10-01", "2026-03-31"), ("2026-04-01", "2026-09-30")
# Relative tolerance of floats. Per-deal discounts are rounded to 9 decimals; a value on the
# rounding boundary can round either way on another engine (PostgreSQL rounds a NUMERIC, DuckDB
# a double), and a 1e-9 change of a discount times a list amount moves a dollar figure by ~1e-8.
RTOL = 1e-7

# Every KPI function of the metrics layer that reads the data, with the arguments it needs.
KPIS = {
    "segment_kpis": lambda d: m.segment_kpis(d),
    "segment_kpis_by_industry": lambda d: m.segment_kpis(d, by=["industry"]),
    "segment_kpis_filtered": lambda d: m.segment_kpis(
        d, by=["region"], filters={"industry": ["Technology", "Retail"]}
    ),
    "pipeline_kpis": lambda d: m.pipeline_kpis(d),
    "pipeline_kpis_by_size": lambda d: m.pipeline_kpis(d, by=["size_band"]),
    "segments_vs_overall": lambda d: m.segments_vs_overall(d, by="industry"),
    "cycle_stats": lambda d: m.cycle_stats(d),
    "cycle_summary": lambda d: m.cycle_summary(d),
    "cycle_quantiles": lambda d: m.cycle_quantiles(d),
    "cycle_histogram": lambda d: m.cycle_histogram(d),
    "open_deal_aging": lambda d: m.open_deal_aging(d),
    "time_to_close": lambda d: m.time_to_close(d),
    "time_to_close_curves": lambda d: m.time_to_close_curves(d),
    "time_to_win": lambda d: m.time_to_win(d),
    "time_to_win_curves": lambda d: m.time_to_win_curves(d),
    "stage_durations": lambda d: m.stage_durations(d),
    "stuck_deals": lambda d: m.stuck_deals(d),
    "close_date_pushes": lambda d: m.close_date_pushes(d),
    "pipeline_flow": lambda d: m.pipeline_flow(d, start=PERIOD_B[0], end=PERIOD_B[1]),
    "deal_discounts": lambda d: m.deal_discounts(d),
    "discount_bands": lambda d: m.discount_bands(d),
    "price_waterfall": lambda d: m.price_waterfall(d),
    "pocket_price_band": lambda d: m.pocket_price_band(d),
    "pocket_price_spread": lambda d: m.pocket_price_spread(d),
    "price_corridor": lambda d: m.price_corridor(d),
    "leakage": lambda d: m.leakage(d),
    "discount_vs_size": lambda d: m.discount_vs_size(d),
    "discount_outliers": lambda d: m.discount_outliers(d),
    "pricing_guidance": lambda d: m.pricing_guidance(d),
    "realization_over_time": lambda d: m.realization_over_time(d),
    "lost_on_price": lambda d: m.lost_on_price(d),
    "discount_cap_what_if": lambda d: m.discount_cap_what_if(d),
    "velocity_levers": lambda d: m.velocity_levers(d),
    "velocity_what_if": lambda d: m.velocity_what_if(d),
    "bookings_bridge": lambda d: m.bookings_bridge(d, period_a=PERIOD_A, period_b=PERIOD_B),
    "asp_bridge": lambda d: m.asp_bridge(d, period_a=PERIOD_A, period_b=PERIOD_B),
    "stratify": lambda d: m.stratify(d),
    "compare_strata": lambda d: m.compare_strata(d),
    "mix_adjusted": lambda d: m.mix_adjusted(d),
    "tier_migration": lambda d: m.tier_migration(d, period_a=PERIOD_A, period_b=PERIOD_B),
    "deal_list": lambda d: m.deal_list(d),
    "available_dimensions": lambda d: m.available_dimensions(d),
}


def _normal(value):
    """A result as plain comparable values: frames, dataclasses, dicts and sequences."""
    if isinstance(value, pd.DataFrame):
        return _frame(value)
    if isinstance(value, pd.Series):
        return _frame(value.to_frame())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _normal(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index(drop=not isinstance(df.index, pd.MultiIndex) and df.index.name is None)
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) or _holds_dates(s):
            out[col] = pd.to_datetime(s).dt.tz_localize(None).astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(object)
        elif pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float64")
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def _holds_dates(s: pd.Series) -> bool:
    import datetime as dt

    first = s.dropna()
    return s.dtype == object and len(first) > 0 and isinstance(first.iloc[0], dt.date)


def _sourceless(value):
    """A report's dict without the labels of where each table came from."""
    if isinstance(value, dict):
        return {k: _sourceless(v) for k, v in value.items() if k != "source"}
    if isinstance(value, list):
        return [_sourceless(v) for v in value]
    return value


def assert_same(got, want, where: str = "") -> None:
    """``got`` equals ``want``: identical counts and labels, floats to ``RTOL``."""
    if isinstance(want, pd.DataFrame):
        assert isinstance(got, pd.DataFrame), where
        assert list(got.columns) == list(want.columns), where
        assert len(got) == len(want), f"{where}: {len(got)} rows, want {len(want)}"
        pd.testing.assert_frame_equal(
            got, want, check_dtype=False, rtol=RTOL, atol=1e-9, obj=where or "frame"
        )
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(
            want, rel=RTOL, abs=1e-9
        ), where
    else:
        assert got == want, where


@pytest.fixture(scope="module")
def engine() -> str:
    """The engine compared with DuckDB in this module."""
    return "postgres"


@pytest.fixture(scope="module")
def other(engine, request):
    """A loaded SalesData on the other engine (PostgreSQL here, Spark in the Spark module)."""
    return request.getfixturevalue(f"{engine}_small")


def test_the_report_is_the_same(other, duckdb_small):
    want, got = duckdb_small.report, other.report
    assert got.as_of == want.as_of and got.base_currency == want.base_currency
    assert_same(_normal(_sourceless(got.to_dict())), _normal(_sourceless(want.to_dict())), "report")


def test_the_tables_hold_the_same_rows(other, duckdb_small):
    for name, table in duckdb_small.tables.items():
        assert other.tables[name].count().execute() == table.count().execute(), name


@pytest.mark.parametrize("name", list(KPIS))
def test_every_kpi_is_the_same(other, duckdb_small, name):
    want = _normal(KPIS[name](duckdb_small))
    got = _normal(KPIS[name](other))
    assert_same(got, want, name)


def test_the_deals_view_is_the_same(other, duckdb_small):
    cols = ["opportunity_id", "industry", "region", "cycle_days", "duration_days", "discount"]
    want = m.deals(duckdb_small).select(*cols).order_by("opportunity_id").to_pandas()
    got = m.deals(other).select(*cols).order_by("opportunity_id").to_pandas()
    assert_same(_frame(got), _frame(want), "deals")


def test_a_parity_check_can_fail(duckdb_small):
    """The comparison sees one deal's worth of difference."""
    want = _normal(m.segment_kpis(duckdb_small, by=["industry"]))
    changed = want.copy()
    changed.loc[0, changed.select_dtypes("number").columns[0]] += 1
    with pytest.raises(AssertionError):
        assert_same(changed, want)
    assert not np.isnan(want.select_dtypes("number").iloc[0, 0])


def test_an_unreachable_database_says_which_url_and_what_to_check():
    from salesops_widgets import load

    with pytest.raises(DataSourceError, match=r"postgresql://salesops:\*\*\*@127\.0\.0\.1:9/"):
        load("postgresql://salesops:secret@127.0.0.1:9/crm")


def test_a_database_without_opportunities_names_the_mapping_key(postgres_server):
    from salesops_widgets import load

    with pytest.raises(DataSourceError, match="no opportunities table found"):
        load(postgres_server)  # the public schema: no table at all


# --------------------------------------------------------------------------------------------------
# `salesops run`, `kpis` and `validate` on each engine

# The segmentation explorer's views compared across engines (their static HTML).
COMPARED_VIEWS = ("app.cards", "app.segments", "app.ranking_view")


@pytest.fixture(scope="module")
def parquet_folder(backend_frames, tmp_path_factory):
    """``backend_frames`` as a folder of Parquet files: DuckDB reads it, and Spark through a
    ``pyspark://`` URL."""
    folder = tmp_path_factory.mktemp("crm-parquet")
    for name, df in backend_frames.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def spark_url(folder) -> str:
    """The ``--data`` URL of a local Spark reading ``folder``'s Parquet tables."""
    settings = "spark.master=local[2]&spark.sql.shuffle.partitions=2&spark.driver.memory=1g"
    return f"pyspark://{folder}?{settings}"


def _data_args(engine: str, request) -> str:
    folder = request.getfixturevalue("parquet_folder")
    if engine == "duckdb":
        return str(folder)
    if engine == "postgres":
        return request.getfixturevalue("postgres_url")
    request.getfixturevalue("spark")  # skips (or fails under CI) without Java and pyspark
    return spark_url(folder)


def _views(folder) -> dict[str, str]:
    """The static HTML of the compared views of an executed segmentation explorer."""
    import nbformat

    nb = nbformat.read(folder / "segmentation_explorer.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip() in COMPARED_VIEWS:
            html = [
                o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})
            ]
            out[cell.source.strip()] = "".join(html)
    return out


def _run_segmentation(data: str, out) -> dict:
    from typer.testing import CliRunner

    from salesops_widgets.cli import app
    from salesops_widgets.runs import read_latest

    argv = ["run", "segmentation_explorer", "--data", data, "--out", str(out)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    folder = read_latest(out / "segmentation_explorer")
    manifest = json.loads((folder / "manifest.json").read_text())
    return {"views": _views(folder), "rows": manifest["data"]["rows"]}


@pytest.fixture(scope="module")
def duckdb_run(parquet_folder, tmp_path_factory):
    return _run_segmentation(str(parquet_folder), tmp_path_factory.mktemp("run-duckdb"))


@pytest.mark.notebook
def test_the_segmentation_explorer_runs_with_the_same_tables(engine, duckdb_run, request, tmp_path):
    got = _run_segmentation(_data_args(engine, request), tmp_path)
    assert got["rows"] == duckdb_run["rows"]
    assert set(duckdb_run["views"]) == set(COMPARED_VIEWS)
    for view, html in duckdb_run["views"].items():
        assert "<table" in html or "<div" in html, view
        assert got["views"][view] == html, view


def _cli(*argv) -> str:
    from typer.testing import CliRunner

    from salesops_widgets.cli import app

    result = CliRunner().invoke(app, [str(a) for a in argv])
    assert result.exit_code == 0, result.output
    return result.output


def test_kpis_and_validate_print_the_same(engine, request):
    data = _data_args(engine, request)
    reference = str(request.getfixturevalue("parquet_folder"))
    for command in (["kpis", "--by", "industry"], ["validate"]):
        want = _cli(*command, "--data", reference, "--format", "json")
        got = _cli(*command, "--data", data, "--format", "json")
        assert_same(_sourceless(json.loads(got)), _sourceless(json.loads(want)), str(command))


def test_a_spark_url_to_a_missing_folder_says_what_to_write(tmp_path):
    from salesops_widgets import load

    with pytest.raises(DataSourceError, match=r"is not a folder\. Write the path of a folder"):
        load(f"pyspark://{tmp_path / 'nowhere'}?spark.master=local[2]")
