"""Parity on Spark: the tests of tests/test_backends.py, collected here on a local[2] Spark
session instead of PostgreSQL (a module of its own, so that pytest-xdist, which keeps a module
on one worker, runs the two engines side by side)."""

from __future__ import annotations

import pytest
from test_backends import (  # noqa: F401 - fixtures and tests, collected here on Spark
    duckdb_run,
    parquet_folder,
    test_every_kpi_is_the_same,
    test_kpis_and_validate_print_the_same,
    test_the_deals_view_is_the_same,
    test_the_report_is_the_same,
    test_the_segmentation_explorer_runs_with_the_same_tables,
    test_the_tables_hold_the_same_rows,
)

pytestmark = [pytest.mark.backends, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine() -> str:
    """The engine compared with DuckDB in this module."""
    return "spark"


@pytest.fixture(scope="module")
def other(spark_small):
    """``backend_frames`` loaded from the SparkSession."""
    return spark_small
