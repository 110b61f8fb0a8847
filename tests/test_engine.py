"""How KPI queries run on the embedded engine (salesops_widgets/metrics/_engine.py): the
perfect-hash threshold set from the number of deals, and the KPI queries it lets DuckDB run as a
perfect hash aggregate."""

from __future__ import annotations

import pytest

from salesops_widgets import load
from salesops_widgets.metrics import _engine


def test_kpi_queries_group_by_the_kept_keys_as_a_perfect_hash(sample_dirs):
    # the point of the kept keys: DuckDB runs the GROUP BY as a direct array lookup when the
    # keys are stored integer columns with small ranges; computed keys would lose that
    from benchmarks.refresh import refresh_library

    data = load(sample_dirs["default"])
    refresh_library(data)
    # the sample is too small for the perfect hash to pay (see _engine.perfect_hash_bits); allow it
    data.con.con.execute("SET perfect_ht_threshold = 20")
    plans = _engine.compiled_queries(data)
    for kpi in ("segment_kpis", "discount_bands"):
        (sql,) = [sql for key, (sql, _, _) in plans.items() if key[0] == kpi]
        plan = data.con.con.execute("EXPLAIN " + sql).fetchall()[0][1]
        assert "PERFECT_HASH_GROUP_BY" in plan, kpi


@pytest.mark.parametrize(
    ("rows", "bits"),
    [
        (4_000, 12),  # DuckDB's default below 2^15 deals
        (1_000_000, 16),  # 2^19 <= 1M < 2^20: 19 - 3
        (5_000_000, 19),  # 2^22 <= 5M < 2^23: 22 - 3
        (10_000_000, 20),  # 2^23 <= 10M < 2^24: 23 - 3
        (10**9, 20),  # at most a million entries
    ],
)
def test_perfect_hash_bits_grow_with_the_deals(rows, bits):
    assert _engine.perfect_hash_bits(rows) == bits
