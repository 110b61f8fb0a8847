"""The prepared-data cache (data/_prepared.py): a load of unchanged files opens the prepared
file and gives the same tables, report and KPIs as a fresh load; any change rebuilds it; a
half-written file is never read; concurrent writers both leave a valid file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _helpers import REALISTIC, REALISTIC_AS_OF
from conftest import SAMPLES_DIR
from typer.testing import CliRunner

from salesops_widgets import load, metrics, validate
from salesops_widgets.cli import app
from salesops_widgets.data import _load, _prepared, prepare

SOURCES = {
    "default": (SAMPLES_DIR / "default", "canonical", None),
    "messy": (SAMPLES_DIR / "messy", "canonical", None),
    "realistic": (REALISTIC, "mapping.yaml", REALISTIC_AS_OF),
}


@pytest.fixture(autouse=True)
def cache_on(monkeypatch, tmp_path):
    """The cache as a user has it (conftest turns it off for the other tests); the user cache
    folder inside tmp_path."""
    monkeypatch.delenv("SALESOPS_NO_CACHE", raising=False)
    monkeypatch.delenv("SALESOPS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


def copy_source(name: str, tmp_path: Path) -> tuple[Path, str, str | None]:
    folder, mapping, as_of = SOURCES[name]
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target, (str(target / mapping) if mapping.endswith(".yaml") else mapping), as_of


def prepared_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("prepared-*.duckdb"))


@pytest.fixture
def no_fresh_load(monkeypatch):
    """Fail the test if the files are read again (the loading pipeline runs)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the source was loaded again instead of the prepared file")

    monkeypatch.setattr(_load, "_run", refuse)


def runs_counted(monkeypatch) -> list[int]:
    """Count the fresh loads."""
    calls: list[int] = []
    real = _load._run

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_load, "_run", counted)
    return calls


def sorted_frame(t) -> pd.DataFrame:
    frame = t.execute()
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def without_examples(report) -> dict:
    """The report as a dict without its example values: which three of the rows a rule caught
    are shown is up to the engine's threads, so two fresh loads may show others."""
    d = report.to_dict()
    for table in d["tables"].values():
        table.pop("examples")
    return d


def assert_same_data(fresh, cached, *, same_load: bool = True) -> None:
    """``cached`` has the tables and report of ``fresh``; ``same_load``: ``fresh`` is the load
    that wrote the prepared file, so even the examples are the same."""
    assert list(cached.tables) == list(fresh.tables)
    for name, table in fresh.tables.items():
        assert cached.tables[name].schema() == table.schema(), name
        pd.testing.assert_frame_equal(sorted_frame(cached.tables[name]), sorted_frame(table))
    if same_load:
        assert cached.report.to_dict() == fresh.report.to_dict()
    assert without_examples(cached.report) == without_examples(fresh.report)
    frames = ["summary_frame", "columns_frame", "populations_frame", "lookups_frame"]
    for frame in frames + (["issues_frame"] if same_load else []):
        pd.testing.assert_frame_equal(
            getattr(cached.report, frame)(), getattr(fresh.report, frame)(), check_dtype=False
        )
    assert cached.report.all_warnings == fresh.report.all_warnings
    assert (cached.as_of, cached.base_currency) == (fresh.as_of, fresh.base_currency)
    assert repr(cached.mapping) == repr(fresh.mapping)


@pytest.mark.parametrize("name", list(SOURCES))
def test_a_cached_load_gives_the_tables_and_report_of_a_fresh_load(name, tmp_path, monkeypatch):
    folder, mapping, as_of = copy_source(name, tmp_path)
    fresh = load(folder, mapping=mapping, as_of=as_of)  # loads the files, writes the prepared file
    assert len(prepared_files(folder / ".salesops-cache")) == 1
    monkeypatch.setattr(_load, "_run", None)  # a fresh load would fail now
    cached = load(folder, mapping=mapping, as_of=as_of)
    assert_same_data(fresh, cached)
    assert cached.stored_table("_deals") is not None  # the deals table with its stored keys
    assert validate(folder, mapping=mapping, as_of=as_of).to_dict() == fresh.report.to_dict()


def test_kpis_on_prepared_data_equal_those_on_fresh_data(tmp_path, monkeypatch):
    folder, mapping, as_of = copy_source("default", tmp_path)
    fresh = load(folder, cache=False)
    assert not (folder / ".salesops-cache").exists()
    prepare(folder)
    monkeypatch.setattr(_load, "_run", None)
    cached = load(folder)
    for by in ("industry", "region"):
        pd.testing.assert_frame_equal(
            metrics.segment_kpis(cached, by=by), metrics.segment_kpis(fresh, by=by)
        )
    pd.testing.assert_frame_equal(metrics.discount_bands(cached), metrics.discount_bands(fresh))
    deals_fresh = metrics.deals(fresh).execute().sort_values("opportunity_id")
    deals_cached = metrics.deals(cached).execute().sort_values("opportunity_id")
    pd.testing.assert_frame_equal(
        deals_cached.reset_index(drop=True), deals_fresh.reset_index(drop=True)
    )
    # the stored deals table is read, not rebuilt on the private engine
    assert "_deals" not in cached.con.list_tables()


def test_a_changed_file_rebuilds_and_drops_the_old_file(tmp_path, monkeypatch):
    folder, mapping, _ = copy_source("realistic", tmp_path)
    cache = folder / ".salesops-cache"
    load(folder, mapping=mapping)
    (first,) = prepared_files(cache)
    calls = runs_counted(monkeypatch)
    load(folder, mapping=mapping)
    assert calls == []
    stat = (folder / "accounts.csv").stat()
    os.utime(folder / "accounts.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load(folder, mapping=mapping)
    assert calls == [1]
    (second,) = prepared_files(cache)  # the old file of this source is gone
    assert second != first


def test_changed_content_gives_the_new_numbers(tmp_path):
    folder, mapping, as_of = copy_source("realistic", tmp_path)
    before = load(folder, mapping=mapping, as_of=as_of)
    lines = (folder / "pipeline.csv").read_text().splitlines(keepends=True)
    (folder / "pipeline.csv").write_text("".join(lines[:-10]))
    after = load(folder, mapping=mapping, as_of=as_of)
    assert after.report.tables["opportunities"].rows_read == (
        before.report.tables["opportunities"].rows_read - 10
    )
    fresh = load(folder, mapping=mapping, as_of=as_of, cache=False)
    assert_same_data(fresh, load(folder, mapping=mapping, as_of=as_of), same_load=False)


def test_another_mapping_or_as_of_is_another_prepared_file(tmp_path, monkeypatch):
    folder, mapping, _ = copy_source("realistic", tmp_path)
    other_mapping = tmp_path / "other.yaml"
    other_mapping.write_text(Path(mapping).read_text())  # the same rules, another file
    load(folder, mapping=mapping)
    calls = runs_counted(monkeypatch)
    other_day = load(folder, mapping=mapping, as_of="2025-06-30")
    assert other_day.as_of.isoformat() == "2025-06-30"
    load(folder, mapping=str(other_mapping))
    assert calls == [1, 1]
    assert len(prepared_files(folder / ".salesops-cache")) == 3
    assert load(folder, mapping=mapping, as_of="2025-06-30").as_of.isoformat() == "2025-06-30"
    assert calls == [1, 1]


def test_a_half_written_file_is_never_read(tmp_path, monkeypatch):
    folder, _, _ = copy_source("realistic", tmp_path)
    mapping, cache = str(folder / "mapping.yaml"), folder / ".salesops-cache"
    real_write = _prepared._write_file

    def dies_half_way(data, stored, key, temp):
        real_write(data, stored, key, temp)
        temp.write_bytes(temp.read_bytes()[:4096])  # as if the writer died mid-file
        raise OSError("disk full")

    monkeypatch.setattr(_prepared, "_write_file", dies_half_way)
    with pytest.warns(UserWarning, match="could not be written"):
        data = load(folder, mapping=mapping)
    assert data.report.usable
    assert list(cache.iterdir()) == []  # neither a prepared file nor the temporary one
    monkeypatch.undo()
    monkeypatch.delenv("SALESOPS_NO_CACHE", raising=False)
    # another writer's temporary file, still being written, is not taken for the prepared file
    key = _prepared.prepared_key(folder, mapping, None)
    (cache / f"{key.name}.999-abcd.tmp").write_bytes(b"not a database yet")
    calls = runs_counted(monkeypatch)
    load(folder, mapping=mapping)
    assert calls == [1]
    assert (cache / key.name).is_file()


def test_a_damaged_prepared_file_is_rebuilt(tmp_path):
    folder, mapping, as_of = copy_source("realistic", tmp_path)
    fresh = load(folder, mapping=mapping, as_of=as_of)
    (path,) = prepared_files(folder / ".salesops-cache")
    path.write_bytes(b"garbage" * 100)
    again = load(folder, mapping=mapping, as_of=as_of)
    assert again.report.to_dict() == fresh.report.to_dict()
    assert load(folder, mapping=mapping, as_of=as_of).stored_table("_deals") is not None


def test_no_cache_and_the_environment_variable_read_the_files(tmp_path, monkeypatch):
    folder, _, _ = copy_source("realistic", tmp_path)
    mapping = str(folder / "mapping.yaml")
    load(folder, mapping=mapping, cache=False)
    assert not (folder / ".salesops-cache").exists()
    monkeypatch.setenv("SALESOPS_NO_CACHE", "1")
    load(folder, mapping=mapping)
    validate(folder, mapping=mapping)
    assert not (folder / ".salesops-cache").exists()
    monkeypatch.setenv("SALESOPS_NO_CACHE", "0")
    load(folder, mapping=mapping)
    assert len(prepared_files(folder / ".salesops-cache")) == 1
    monkeypatch.setenv("SALESOPS_NO_CACHE", "1")
    calls = runs_counted(monkeypatch)
    load(folder, mapping=mapping)
    assert calls == [1]  # the prepared file exists, but the files are read


def test_dataframes_are_never_cached(tmp_path):
    frame = pd.read_parquet(SAMPLES_DIR / "default" / "opportunities.parquet")
    assert _prepared.prepared_key(frame, "canonical", None) is None
    assert _prepared.prepared_key("duckdb://", "canonical", None) is None
    load(frame)
    assert not (tmp_path / "user-cache").exists()


def test_cache_dir_and_its_environment_variable(tmp_path, monkeypatch):
    folder, mapping, _ = copy_source("realistic", tmp_path)
    load(folder, mapping=mapping, cache_dir=tmp_path / "chosen")
    assert len(prepared_files(tmp_path / "chosen")) == 1
    monkeypatch.setenv("SALESOPS_CACHE_DIR", str(tmp_path / "from-env"))
    load(folder, mapping=mapping)
    assert len(prepared_files(tmp_path / "from-env")) == 1
    assert not (folder / ".salesops-cache").exists()


def test_a_data_folder_that_cannot_be_written_falls_back_to_the_user_cache(tmp_path):
    # a file where the cache folder would go: the write fails for root too (a read-only folder
    # does not stop root, and the suite runs as root in CI, where nothing may be skipped)
    folder, mapping, as_of = copy_source("realistic", tmp_path)
    (folder / ".salesops-cache").write_text("a file where the cache folder would go")
    fresh = load(folder, mapping=mapping, as_of=as_of)
    user = tmp_path / "user-cache" / "salesops-widgets" / "prepared"
    assert len(prepared_files(user)) == 1
    assert_same_data(fresh, load(folder, mapping=mapping, as_of=as_of))


def test_a_reader_keeps_its_file_while_a_writer_replaces_it(tmp_path):
    folder, mapping, as_of = copy_source("realistic", tmp_path)
    fresh = load(folder, mapping=mapping, as_of=as_of)
    reader = load(folder, mapping=mapping, as_of=as_of)
    prepare(folder, mapping=mapping, as_of=as_of)  # a new file renamed over the one being read
    assert_same_data(fresh, reader)
    assert_same_data(fresh, load(folder, mapping=mapping, as_of=as_of), same_load=False)


def test_two_processes_preparing_at_once_leave_one_valid_file(tmp_path):
    folder, mapping, as_of = copy_source("realistic", tmp_path)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "salesops_widgets", "prepare", "--data", str(folder)]
    command += ["--mapping", mapping, "--as-of", as_of, "--cache-dir", str(cache)]
    env = {k: v for k, v in os.environ.items() if k != "SALESOPS_NO_CACHE"}
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    (path,) = list(cache.iterdir())  # one prepared file, no temporary file left
    assert all(str(path) in out for out in outputs)
    fresh = load(folder, mapping=mapping, as_of=as_of, cache=False)
    cached = load(folder, mapping=mapping, as_of=as_of, cache_dir=cache)
    assert_same_data(fresh, cached, same_load=False)


def test_salesops_prepare_says_where_it_wrote_and_how_long_it_took(tmp_path, monkeypatch):
    folder, mapping, as_of = copy_source("realistic", tmp_path)
    args = ["prepare", "--data", str(folder), "--mapping", mapping, "--as-of", as_of]
    result = CliRunner().invoke(app, [*args, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    (path,) = prepared_files(tmp_path / "c")
    assert f"prepared: {path}" in result.output
    assert "load and validate" in result.output and "_deals" in result.output
    monkeypatch.setattr(_load, "_run", None)
    assert load(folder, mapping=mapping, as_of=as_of, cache_dir=tmp_path / "c").report.usable


def test_salesops_prepare_refuses_a_database_url():
    result = CliRunner().invoke(app, ["prepare", "--data", "duckdb://"])
    assert result.exit_code == 1
    assert "only a folder" in result.output


@pytest.mark.parametrize("command", [["run", "no-such-notebook", "--out", "x"], ["serve"]])
def test_no_cache_and_cache_dir_reach_the_kernels_through_the_environment(
    command, tmp_path, monkeypatch
):
    monkeypatch.setenv("SALESOPS_NO_CACHE", "0")  # restored after the test
    monkeypatch.setenv("SALESOPS_CACHE_DIR", "")
    monkeypatch.setattr("salesops_widgets.serve.serve", lambda options: None)
    args = [*command, "--no-cache", "--cache-dir", str(tmp_path / "c")]
    if command[0] == "run":
        args += ["--data", str(REALISTIC)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 2), result.output  # run: the unknown notebook, after the options
    assert os.environ["SALESOPS_NO_CACHE"] == "1"
    assert os.environ["SALESOPS_CACHE_DIR"] == str(tmp_path / "c")
