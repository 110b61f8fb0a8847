"""Every kind of source gives the same data and the same quality counts for the same rows.

The small dataset and its hand-derived numbers are in tests/_helpers.py (SMALL_EXPECTED).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from _helpers import (
    SMALL_EXPECTED,
    as_date,
    assert_invariant,
    assert_populations_add_up,
    column_counts,
    excluded,
    flagged,
    populations,
    rows_by_id,
    small_frames,
    status_summary,
    to_pandas,
    write_csv_folder,
)

from salesops_widgets import SalesData, load, validate
from salesops_widgets.errors import DataSourceError

ALL_TABLES = ("opportunities", "line_items", "accounts", "reps", "products")


def _folder_csv(tmp_path: Path):
    return write_csv_folder(tmp_path / "csv", small_frames(typed=False))


def _folder_mixed(tmp_path: Path):
    """.csv.gz, .tsv, .parquet and upper-case file names in one folder."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    frames = small_frames(typed=False)
    with gzip.open(folder / "Opportunities.csv.gz", "wt", encoding="utf-8", newline="") as f:
        frames["opportunities"].to_csv(f, index=False)
    frames["line_items"].to_csv(folder / "LINE_ITEMS.tsv", sep="\t", index=False)
    small_frames()["accounts"].to_parquet(folder / "accounts.parquet", index=False)
    frames["reps"].to_csv(folder / "Reps.CSV", index=False)
    frames["products"].to_csv(folder / "products.csv", index=False)
    return folder


def _folder_parquet(tmp_path: Path):
    folder = tmp_path / "parquet"
    folder.mkdir()
    for name, frame in small_frames().items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def _single_csv(tmp_path: Path):
    path = tmp_path / "my deals.csv"
    small_frames(typed=False)["opportunities"].to_csv(path, index=False)
    return path


def _single_parquet(tmp_path: Path):
    path = tmp_path / "deals.parquet"
    small_frames()["opportunities"].to_parquet(path, index=False)
    return path


def _xlsx(tmp_path: Path):
    path = tmp_path / "crm.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"note": ["exported from the CRM"]}).to_excel(
            writer, sheet_name="README", index=False
        )
        for name, frame in small_frames().items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


def _duckdb_file(tmp_path: Path) -> Path:
    path = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(path))
    for name, frame in small_frames().items():
        con.register("frame_view", frame)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame_view')
        con.unregister("frame_view")
    con.close()
    return path


def _duckdb_url(tmp_path: Path) -> str:
    return f"duckdb:///{_duckdb_file(tmp_path)}"


def _frames_dict(tmp_path: Path):
    return small_frames()


def _frames_dict_strings(tmp_path: Path):
    return small_frames(typed=False)


def _single_frame(tmp_path: Path):
    return small_frames()["opportunities"]


# name -> (builder, has all tables)
SOURCES = {
    "folder_csv": (_folder_csv, True),
    "folder_mixed_formats": (_folder_mixed, True),
    "folder_parquet": (_folder_parquet, True),
    "single_csv": (_single_csv, False),
    "single_parquet": (_single_parquet, False),
    "xlsx": (_xlsx, True),
    "duckdb_file": (_duckdb_file, True),
    "duckdb_url": (_duckdb_url, True),
    "dict_of_frames": (_frames_dict, True),
    "dict_of_string_frames": (_frames_dict_strings, True),
    "single_frame": (_single_frame, False),
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_every_source_gives_the_same_numbers(kind, tmp_path):
    build, full = SOURCES[kind]
    data = load(build(tmp_path))
    assert isinstance(data, SalesData)
    report = data.report
    assert report.usable
    assert_invariant(report)
    assert_populations_add_up(report)

    counts, amounts = status_summary(data)
    assert counts == SMALL_EXPECTED["status_count"]
    assert amounts == pytest.approx(SMALL_EXPECTED["status_amount"])
    assert data.as_of == SMALL_EXPECTED["as_of"]
    assert excluded(report, "opportunities") == SMALL_EXPECTED["opportunities_excluded"]

    rows = rows_by_id(data.opportunities)
    assert set(rows) == SMALL_EXPECTED["used_ids"]
    # O-8 has no amount: kept, open, with an empty amount (not 0)
    assert rows["O-8"]["status"] == "open" and pd.isna(rows["O-8"]["amount"])
    # which deals each KPI counts does not depend on the source either
    assert populations(report) == SMALL_EXPECTED["populations"]
    opportunity_columns = {
        key: n for key, n in column_counts(report).items() if key[0] == "opportunities"
    }
    assert opportunity_columns == SMALL_EXPECTED["columns"]
    assert report.view_warnings == []  # every view has deals to count

    if not full:
        # only opportunities: no other table, so no unmatched-key flags either
        assert set(data.tables) == {"opportunities"}
        for name in ALL_TABLES[1:]:
            assert getattr(data, name) is None
            assert not data.has(name)
        assert flagged(report, "opportunities") == {}
        return

    assert set(data.tables) == set(ALL_TABLES)
    for name in ALL_TABLES:
        assert data.has(name)
        assert report.tables[name].rows_read == SMALL_EXPECTED["rows_read"][name], name
        assert report.tables[name].rows_used == SMALL_EXPECTED["rows_used"][name], name
    # no empty or unparseable value outside the opportunities table
    assert {key[0] for key in column_counts(report)} == {"opportunities"}
    assert flagged(report, "opportunities") == SMALL_EXPECTED["opportunities_flagged"]
    assert excluded(report, "line_items") == SMALL_EXPECTED["line_items_excluded"]
    items = to_pandas(data.line_items)
    net = float((items["quantity"] * items["invoice_price"]).sum())
    assert net == pytest.approx(SMALL_EXPECTED["line_items_net"])


@pytest.mark.parametrize("kind", ["folder_csv", "folder_parquet", "xlsx", "duckdb_file"])
def test_dates_and_numbers_have_canonical_types(kind, tmp_path):
    data = load(SOURCES[kind][0](tmp_path))
    row = to_pandas(data.opportunities).set_index("opportunity_id").loc["O-4"]
    assert as_date(row["created_date"]) == as_date("2025-02-02")
    assert as_date(row["close_date"]) == as_date("2025-05-30")
    assert float(row["amount"]) == 3000.0
    assert float(row["list_amount"]) == 3600.0
    assert float(row["probability"]) == pytest.approx(0.5)
    assert row["status"] == "open"
    assert not bool(row["is_closed"]) and not bool(row["is_won"])


def test_validate_matches_load_report(tmp_path):
    folder = _folder_csv(tmp_path)
    report = validate(folder)
    loaded = load(folder).report
    for name in ALL_TABLES:
        a, b = report.tables[name], loaded.tables[name]
        assert (a.rows_read, a.rows_used, a.rows_excluded) == (
            b.rows_read,
            b.rows_used,
            b.rows_excluded,
        )
        assert excluded(report, name) == excluded(loaded, name)
        assert flagged(report, name) == flagged(loaded, name)


def test_report_source_names_the_file(tmp_path):
    folder = _folder_csv(tmp_path)
    report = validate(folder)
    assert "opportunities.csv" in report.tables["opportunities"].source
    assert "accounts.csv" in report.tables["accounts"].source


def test_xlsx_sheet_source_is_named(tmp_path):
    report = validate(_xlsx(tmp_path))
    assert "opportunities" in report.tables["opportunities"].source


def test_as_of_parameter_overrides_default(tmp_path):
    folder = _folder_csv(tmp_path)
    assert load(folder, as_of="2025-04-01").as_of.isoformat() == "2025-04-01"
    import datetime as dt

    assert load(folder, as_of=dt.date(2025, 5, 1)).as_of == dt.date(2025, 5, 1)


def test_glob_source_in_mapping(tmp_path):
    folder = tmp_path / "globbed"
    folder.mkdir()
    small_frames(typed=False)["opportunities"].to_csv(
        folder / "export_2025_06_deals.csv", index=False
    )
    mapping = {
        "name": "globbed",
        "extends": "canonical",
        "tables": {"opportunities": {"source": ["nothing", "export_*"]}},
    }
    data = load(folder, mapping=mapping)
    counts, _ = status_summary(data)
    assert counts == SMALL_EXPECTED["status_count"]


def test_missing_opportunities_file_names_folder_candidates_and_key(tmp_path):
    folder = tmp_path / "no_opps"
    frames = small_frames(typed=False)
    del frames["opportunities"]
    write_csv_folder(folder, frames)
    with pytest.raises(DataSourceError) as err:
        load(folder)
    message = str(err.value)
    assert str(folder) in message or folder.name in message
    assert "opportunities" in message
    assert "tables.opportunities.source" in message


def test_missing_xlsx_sheet_is_a_data_source_error(tmp_path):
    path = tmp_path / "no_opps.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        small_frames()["accounts"].to_excel(writer, sheet_name="accounts", index=False)
    with pytest.raises(DataSourceError) as err:
        validate(path)
    assert "opportunities" in str(err.value)
    assert "no_opps.xlsx" in str(err.value)


def test_missing_duckdb_table_is_a_data_source_error(tmp_path):
    path = tmp_path / "empty.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE accounts (account_id VARCHAR)")
    con.close()
    with pytest.raises(DataSourceError) as err:
        load(path)
    assert "opportunities" in str(err.value)


def test_missing_path_is_a_data_source_error(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(DataSourceError) as err:
        load(missing)
    assert "does-not-exist" in str(err.value)


def test_optional_tables_absent_are_none(tmp_path):
    folder = tmp_path / "opps_only"
    write_csv_folder(folder, {"opportunities": small_frames(typed=False)["opportunities"]})
    data = load(folder)
    assert set(data.tables) == {"opportunities"}
    for name in ("stage_history", "line_items", "accounts", "reps", "products"):
        assert getattr(data, name) is None
        assert not data.has(name)


def test_input_frames_are_not_mutated():
    frames = small_frames()
    before = {name: frame.copy() for name, frame in frames.items()}
    load(frames)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_has_and_require(tmp_path):
    from salesops_widgets.errors import MissingDataError

    data = load(_single_csv(tmp_path))
    assert data.has("opportunities")
    assert data.has("opportunities", "list_amount")
    assert not data.has("opportunities", "loss_reason")
    assert not data.has("line_items")
    table = data.require("discount analysis", "opportunities", ["list_amount"])
    assert "list_amount" in table.columns

    with pytest.raises(MissingDataError) as err:
        data.require("loss analysis", "opportunities", ["loss_reason"])
    message = str(err.value)
    assert "loss analysis" in message and "loss_reason" in message and "opportunities" in message

    with pytest.raises(MissingDataError) as err:
        data.require("pocket price waterfall", "line_items", ["invoice_price"])
    assert "line_items" in str(err.value) and "pocket price waterfall" in str(err.value)


def test_engine_folders_of_dead_processes_are_swept(tmp_path, monkeypatch):
    # A killed kernel never runs its finalizer; the next engine deletes what it left behind.
    import subprocess
    import sys

    from salesops_widgets.data._sources import _new_duckdb

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / "salesops-duckdb"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now names no process
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name, pid in (("session-dead", dead.pid), ("session-live", live.pid)):
            (root / name).mkdir(parents=True)
            (root / name / "owner.pid").write_text(str(pid))
            (root / name / "engine.duckdb").write_bytes(b"x" * 10)
        (root / "session-unowned").mkdir()  # no owner file: not ours to judge, kept
        con = _new_duckdb()
        owners = {
            p.name: (p / "owner.pid").read_text()
            for p in root.glob("session-*/")
            if (p / "owner.pid").exists()
        }
        mine = [name for name, pid in owners.items() if pid == str(os.getpid())]
        assert len(mine) == 1  # the new engine's own folder names this process
        assert not (root / "session-dead").exists()
        assert (root / "session-live").exists()
        assert (root / "session-unowned").exists()
        del con
    finally:
        live.kill()
        live.wait()


def test_each_engine_spills_into_its_own_folder(tmp_path, monkeypatch):
    # DuckDB names its spill files the same in every process (duckdb_temp_storage_S32K-0.tmp),
    # so two engines sharing a temp_directory overwrite each other's spilled blocks.
    from salesops_widgets.data._sources import _new_duckdb

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("SALESOPS_DUCKDB_IN_MEMORY", "1")  # in memory, it spills all the same
    engines = [_new_duckdb(), _new_duckdb()]
    spills = [
        Path(e.con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        for e in engines
    ]
    assert spills[0] != spills[1]
    for spill in spills:  # inside a session folder, deleted with its engine
        assert spill.parent.parent == tmp_path / "salesops-duckdb"
        assert spill.parent.name.startswith("session-")
    folder = spills[0].parent
    engines[0].con.close()
    del engines[0]
    import gc

    gc.collect()
    assert not folder.exists()
