"""Tests for salesops_widgets/runs/_history.py: the KPIs of every good run, stored beside the
reports.

Two runs append two run-sets of rows; a failed run appends none; appends from many threads at
once all survive; a file being written is never read.
"""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from _helpers import ROOT, SALESFORCE
from typer.testing import CliRunner

from salesops_widgets.cli import app
from salesops_widgets.runs import HISTORY, append_history, read_history, record_run
from salesops_widgets.runs._history import HISTORY_KPIS

TINY = ROOT / "tests" / "fixtures" / "notebooks" / "tiny.ipynb"
runner = CliRunner()


def rows(value: float, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {"key": [f"k{i}" for i in range(n)], "kpi": "win_rate", "value": value, "n": 10}
    )


def test_two_appends_are_two_run_sets(tmp_path):
    append_history(tmp_path, rows(0.1), run="20260101T000000Z", data="a")
    append_history(tmp_path, rows(0.2), run="20260108T000000Z", data="a")
    history = read_history(tmp_path)
    assert len(history) == 6  # 3 rows per run
    assert history.groupby("run")["value"].first().to_dict() == {
        "20260101T000000Z": 0.1,
        "20260108T000000Z": 0.2,
    }


def test_same_stamp_does_not_overwrite_and_temp_files_are_not_read(tmp_path):
    append_history(tmp_path, rows(0.1), run="same", data="a")
    append_history(tmp_path, rows(0.2), run="same", data="a")
    rows(9.9).to_parquet(tmp_path / ".tmp-123-half-written.parquet")  # a run still writing
    history = read_history(tmp_path)
    assert sorted(history["value"].unique()) == [0.1, 0.2]


def test_concurrent_appends_keep_every_run(tmp_path):
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        barrier.wait()  # all eight write at once
        append_history(tmp_path, rows(float(i)), run="20260101T000000Z", data="a")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    history = read_history(tmp_path)
    assert len(history) == 8 * 3
    assert sorted(history["value"].unique()) == [float(i) for i in range(8)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp file left"


def test_no_history_reads_as_an_empty_frame(tmp_path):
    assert read_history(tmp_path / "none").empty
    assert read_history("").empty


def test_record_run_stores_every_kpi_with_interval_and_n(tmp_path):
    path = record_run(
        tmp_path, "20260101T000000Z", data=str(SALESFORCE), mapping="salesforce", as_of=None
    )
    assert path.parent == tmp_path / HISTORY
    history = read_history(tmp_path / HISTORY)
    assert history["kpi"].tolist() == list(HISTORY_KPIS)
    assert {"value", "low", "high", "n", "small_n", "as_of", "run", "data"} <= set(history)
    win = history.set_index("kpi").loc["win_rate"]
    assert win["low"] <= win["value"] <= win["high"]


def salesops_run(tmp_path, *args: str):
    argv = ["run", str(TINY), "--data", str(SALESFORCE), "--mapping", "salesforce"]
    result = runner.invoke(app, [*argv, "--out", str(tmp_path / "out"), *args])
    assert "Traceback" not in result.output
    return result


@pytest.mark.notebook
@pytest.mark.slow
def test_a_good_run_appends_and_a_failed_run_appends_nothing(tmp_path):
    folder = tmp_path / "out" / HISTORY
    assert salesops_run(tmp_path).exit_code == 0
    assert len(list(folder.glob("*.parquet"))) == 1
    assert salesops_run(tmp_path, "-p", "mode=fail").exit_code != 0
    assert len(list(folder.glob("*.parquet"))) == 1, "a failed run added rows"
    assert salesops_run(tmp_path).exit_code == 0
    history = read_history(folder)
    assert history["run"].nunique() == 2
    assert len(history) == 2 * len(HISTORY_KPIS)
