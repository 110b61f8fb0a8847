"""Sources: where raw tables come from, as Ibis tables on one engine connection.

A source turns a name from a mapping (a file stem, a sheet, a table) into a raw Ibis table.
Nothing here parses or validates values: that happens in ``_load``.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
import shutil
import tempfile
import urllib.parse
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from ..errors import DataSourceError

__all__ = ["RawTable", "Source", "open_source"]

_CSV_SUFFIXES = (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_SUFFIXES = _CSV_SUFFIXES + _PARQUET_SUFFIXES
_counter = itertools.count()


@dataclass
class RawTable:
    """A raw table and where it came from."""

    table: ibis.Table
    label: str  # file path, "workbook.xlsx [sheet]", table name...


@dataclass
class Source:
    """An opened source: an engine connection plus a way to find raw tables by name."""

    con: Any
    label: str
    kind: str  # folder | file | xlsx | duckdb | url | frames
    owned: bool  # True when we created the (embedded DuckDB) connection and may write to it
    _names: dict[str, Any] = field(default_factory=dict)  # display name -> locator
    files: list[Path] = field(default_factory=list)  # files read, for fingerprints
    single: bool = False  # a single file: it is the opportunities table
    warnings: list[str] = field(default_factory=list)

    def available(self) -> list[str]:
        """Names that a mapping's ``source`` can refer to."""
        return sorted(self._names)

    def find(self, candidates: tuple[str, ...]) -> str | None:
        """The first available name matching a candidate (case-insensitive, globs allowed)."""
        lowered = {_stem(name).lower(): name for name in self._names}
        lowered.update({name.lower(): name for name in self._names})
        for cand in candidates:
            c = cand.lower()
            if any(ch in c for ch in "*?["):
                hits = sorted(n for n in lowered if fnmatch.fnmatchcase(n, c))
                if hits:
                    return lowered[hits[-1]]  # newest export name sorts last
            elif c in lowered:
                return lowered[c]
            elif _stem(c) in lowered:
                return lowered[_stem(c)]
        return None

    def read(self, name: str) -> RawTable:
        """Read one available name as a raw Ibis table."""
        locator = self._names[name]
        if self.kind in ("folder", "file"):
            return _read_file(self.con, Path(locator), self.warnings)
        if self.kind in ("xlsx", "frames"):
            return RawTable(locator, f"{self.label} [{name}]")
        if self.kind == "duckdb":
            return RawTable(
                self.con.table(locator, database=("src", "main")), f"{self.label}:{name}"
            )
        return RawTable(self.con.table(locator), f"{self.label}:{name}")


def _stem(name: str) -> str:
    low = name.lower()
    for suffix in _SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _table_name() -> str:
    return f"_raw_{next(_counter)}"


def _read_file(con: Any, path: Path, warnings: list[str]) -> RawTable:
    """Read a CSV (every column as text, so bad values can be counted) or a Parquet file."""
    if not path.exists():
        raise DataSourceError(f"File {path} does not exist.")
    if path.stat().st_size == 0:
        raise DataSourceError(
            f"File {path} is empty (0 bytes). Export it again from your CRM, or remove it from "
            f"the folder if the table is not needed."
        )
    low = path.name.lower()
    if low.endswith(_PARQUET_SUFFIXES):
        try:
            return RawTable(con.read_parquet(path, table_name=_table_name()), str(path))
        except Exception as exc:  # duckdb raises many types; all mean "cannot read this file"
            raise DataSourceError(
                f"File {path} is not a readable Parquet file: {_first_line(exc)}"
            ) from None
    options: dict[str, Any] = {"all_varchar": True, "header": True, "null_padding": True}
    if low.endswith((".tsv", ".tsv.gz")):
        options["delim"] = "\t"
    try:
        # one full read into a temporary table: encoding and shape errors surface here, and
        # later queries do not parse the CSV again
        table = _temp_copy(con, con.read_csv(path, table_name=_table_name(), **options))
        return RawTable(table, str(path))
    except Exception as exc:
        full = str(exc).lower()
        if "unicode" not in full and "utf-8" not in full:
            raise DataSourceError(
                f"File {path} could not be read as CSV: {_csv_problem(exc)}. Check that it is a "
                f"comma-, semicolon- or tab-separated text file with one header row."
            ) from None
    try:
        view = con.read_csv(path, table_name=_table_name(), encoding="latin-1", **options)
        table = _temp_copy(con, view)
    except Exception as exc:
        raise DataSourceError(
            f"File {path} is neither UTF-8 nor Latin-1 text: {_first_line(exc)}. "
            f"Save it as UTF-8 CSV."
        ) from None
    warnings.append(
        f"{path} is not UTF-8; it was read as Latin-1 (Windows-1252). Save as UTF-8 to be sure."
    )
    return RawTable(table, str(path))


def _temp_copy(con: Any, table: ibis.Table) -> ibis.Table:
    # a table of our private engine database, deleted with it
    return con.create_table(_table_name(), table)


def _csv_problem(exc: Exception) -> str:
    """DuckDB's CSV errors: keep the line number and the sentence that says what is wrong."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    keep = [
        ln
        for ln in lines[1:]
        if not ln.lower().startswith(
            (
                "original line",
                "possible solution",
                "file =",
                "delimiter",
                "quote",
                "escape",
                "new_line",
                "header",
                "skip_rows",
                "comment",
                "date_format",
                "timestamp_format",
            )
        )
    ]
    return " ".join(lines[:1] + keep[:1]) if lines else type(exc).__name__


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _new_duckdb() -> Any:
    """An embedded DuckDB on a private temporary database file, deleted with the connection.

    A database file (rather than ``:memory:``) lets DuckDB compress the tables it keeps, so the
    validated tables of a large export stay within the memory limit instead of spilling
    uncompressed. SALESOPS_DUCKDB_MEMORY (default 1GB) and SALESOPS_DUCKDB_THREADS (default:
    all cores) override the engine settings; SALESOPS_DUCKDB_IN_MEMORY=1 keeps it in memory.
    """
    root = Path(tempfile.gettempdir()) / "salesops-duckdb"
    root.mkdir(parents=True, exist_ok=True)
    _sweep_orphans(root)
    folder = tempfile.mkdtemp(prefix="session-", dir=root)
    (Path(folder) / _OWNER).write_text(str(os.getpid()))
    # Spill files go in the session's own folder. DuckDB names them the same in every process
    # (duckdb_temp_storage_*.tmp), so engines sharing one temp_directory overwrite each other's
    # spilled blocks: on 50M+ rows that surfaced as "Invalid unicode ... in segment statistics
    # update" and "Cannot create a string of size 12884901911".
    config: dict[str, Any] = {
        "memory_limit": os.environ.get("SALESOPS_DUCKDB_MEMORY", "1GB"),
        "temp_directory": str(Path(folder) / "spill"),
    }
    if os.environ.get("SALESOPS_DUCKDB_THREADS"):
        config["threads"] = int(os.environ["SALESOPS_DUCKDB_THREADS"])
    database = ":memory:"
    if not os.environ.get("SALESOPS_DUCKDB_IN_MEMORY"):
        database = str(Path(folder) / "engine.duckdb")
    try:
        con = ibis.duckdb.connect(database=database, **config)
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise DataSourceError(
            f"The DuckDB engine could not start with {config}: {_first_line(exc)}. Check "
            f"SALESOPS_DUCKDB_MEMORY / SALESOPS_DUCKDB_THREADS."
        ) from None
    # no progress bar: in a notebook it is a widget with no static rendering (a per-connection
    # setting, so it cannot go in the config above)
    con.con.execute("SET enable_progress_bar = false")
    weakref.finalize(con, _drop_engine, con.con, folder)
    return con


_OWNER = "owner.pid"  # the process id of the engine's owner, in each session folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _sweep_orphans(root: Path) -> None:
    """Delete the session folders whose owner has died.

    The finalizer deletes a session's folder when its connection closes, but a kernel that is
    killed (a papermill timeout, an out-of-memory kill, a culled Voila kernel) never runs it,
    and a large export leaves gigabytes behind. Each folder names its owner in ``owner.pid``;
    a folder whose owner is gone is deleted by the next engine that starts.
    """
    for folder in root.glob("session-*"):
        try:
            pid = int((folder / _OWNER).read_text().strip())
        except (OSError, ValueError):
            continue  # being created, or not ours to judge
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _drop_engine(raw: Any, folder: str) -> None:
    """Close the engine and delete its temporary database file."""
    try:
        raw.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _folder(path: Path) -> Source:
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_SUFFIXES))
    src = Source(_new_duckdb(), str(path), "folder", True, files=files)
    src._names = {p.name: p for p in files}
    return src


def _single_file(path: Path) -> Source:
    src = Source(_new_duckdb(), str(path), "file", True, files=[path], single=True)
    src._names = {path.name: path}
    return src


def _xlsx(path: Path) -> Source:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl")
    except Exception as exc:
        raise DataSourceError(f"Workbook {path} could not be read: {_first_line(exc)}") from None
    src = Source(_new_duckdb(), str(path), "xlsx", True, files=[path])
    src._names = {name: ibis.memtable(_clean_frame(df)) for name, df in sheets.items()}
    return src


def _clean_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Give DataFrame columns string names (memtable needs them); keep values as they are."""
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    return out


def _duckdb_file(path: Path) -> Source:
    con = _new_duckdb()
    try:
        con.attach(str(path), name="src", read_only=True)
        names = con.list_tables(database=("src", "main"))
    except Exception as exc:
        raise DataSourceError(
            f"DuckDB file {path} could not be opened: {_first_line(exc)}"
        ) from None
    src = Source(con, str(path), "duckdb", True, files=[path])
    src._names = {n: n for n in names}
    return src


def _url(url: str) -> Source:
    if url.lower().startswith("pyspark://"):
        return _spark_url(url)
    try:
        con = ibis.connect(url)
        names = con.list_tables()
    except Exception as exc:
        raise DataSourceError(
            f"Database {_redact(url)} could not be opened: {_first_line(exc)}. Check the URL, "
            f"the credentials and that the Ibis backend for it is installed."
        ) from None
    src = Source(con, _redact(url), "url", False)
    src._names = {n: n for n in names}
    return src


def _connection(con: Any) -> Source:
    """An Ibis connection the caller opened (PostgreSQL, PySpark, ...): its tables, read-only."""
    label = f"{con.name} connection"
    try:
        names = con.list_tables()
    except Exception as exc:
        raise DataSourceError(
            f"The {label} passed as source could not list its tables: {_first_line(exc)}. Check "
            f"that the connection is open and can read the current database/schema."
        ) from None
    src = Source(con, label, "url", False)
    src._names = {n: n for n in names}
    return src


def _is_spark_session(obj: Any) -> bool:
    return type(obj).__name__ == "SparkSession" and type(obj).__module__.startswith("pyspark.")


def _spark(session: Any) -> Source:
    """A SparkSession: its tables and temporary views, through Ibis' PySpark backend."""
    try:
        con = ibis.pyspark.connect(session)
    except Exception as exc:  # the backend's extra is missing, or the session is stopped
        raise DataSourceError(
            f"The SparkSession passed as source could not be used: {_first_line(exc)}. Install "
            f"the spark extra (pip install 'salesops-widgets[spark]') and pass a running session."
        ) from None
    return _connection(con)


# Spark settings of a pyspark:// URL without its own: two shuffle partitions suit the small
# aggregated results of KPI queries; no web UI and no console progress bar in a notebook.
_SPARK_DEFAULTS = {
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


def _spark_url(url: str) -> Source:
    """``pyspark:///FOLDER?spark.master=...&...``: a Spark session (the query's settings, e.g.
    ``spark.master=local[2]`` or a cluster's master) reading every table of FOLDER: each
    ``NAME.parquet`` file or ``NAME/`` folder of Parquet files (as Spark writes a table) is the
    table NAME. A folder on a cluster's storage (``hdfs://``, ``s3a://``) goes in ``path=``."""
    parts = urllib.parse.urlsplit(url)
    settings = dict(urllib.parse.parse_qsl(parts.query))
    folder = settings.pop("path", None) or urllib.parse.unquote(parts.path)
    tables = _parquet_tables(url, folder)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataSourceError(
            f"{url}: pyspark is not installed. Install the spark extra: "
            f"pip install 'salesops-widgets[spark]'."
        ) from None
    builder = SparkSession.builder.appName("salesops")
    for key, value in {**_SPARK_DEFAULTS, **settings}.items():
        builder = builder.config(key, value)
    try:
        con = ibis.pyspark.connect(builder.getOrCreate())
    except Exception as exc:
        raise DataSourceError(
            f"{url}: Spark could not start: {_first_line(exc)}. Check spark.master in the URL "
            f"and that Java 17 is installed (Spark needs it)."
        ) from None
    for name, location in tables.items():
        con.read_parquet(location, table_name=name)
    src = _connection(con)
    src.label = url
    return src


def _parquet_tables(url: str, folder: str) -> dict[str, str]:
    """Table name -> location of the Parquet tables in a local ``folder`` (a remote folder:
    the Spark catalogue's tables only)."""
    if "://" in folder:
        return {}
    path = Path(folder)
    if not path.is_dir():
        raise DataSourceError(
            f"{url}: {path} is not a folder. Write the path of a folder of Parquet tables "
            f"after pyspark://, e.g. pyspark:///data/crm?spark.master=local[2]."
        )
    found = {}
    for child in sorted(path.iterdir()):
        if child.name.startswith((".", "_")):
            continue
        if child.is_dir() and any(child.glob("*.parquet")):
            found[child.name] = str(child)
        elif child.is_file() and child.name.lower().endswith(_PARQUET_SUFFIXES):
            found[_stem(child.name)] = str(child)
    return found


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):([^@]+)@", r"//\1:***@", url)


def _frames(frames: dict[str, pd.DataFrame]) -> Source:
    src = Source(_new_duckdb(), "DataFrames", "frames", True)
    for name, df in frames.items():
        if not isinstance(df, pd.DataFrame):
            raise DataSourceError(
                f"Table {name!r} is a {type(df).__name__}, not a pandas DataFrame. Pass "
                f"{{table_name: DataFrame}}."
            )
        src._names[str(name)] = ibis.memtable(_clean_frame(df))
    return src


def _open_object(source: Any) -> Source | None:
    """DataFrames, a connection, a SparkSession or a URL opened; None for a path."""
    if isinstance(source, pd.DataFrame):
        source = {"opportunities": source}
    if isinstance(source, dict):
        return _frames(source)
    if isinstance(source, ibis.BaseBackend):
        return _connection(source)
    if _is_spark_session(source):
        return _spark(source)
    if isinstance(source, str) and re.match(r"^[a-z][a-z0-9+]*://", source):
        return _url(source)
    return None


def open_source(source: Any) -> Source:
    """Open a folder, file, workbook, DuckDB file, database URL, Ibis connection, SparkSession,
    DataFrame or dict of DataFrames."""
    opened = _open_object(source)
    if opened is not None:
        return opened
    if not isinstance(source, (str, os.PathLike)):
        raise DataSourceError(
            f"Cannot open a {type(source).__name__}. Pass a folder, a .csv/.parquet/.xlsx/.duckdb "
            f"file, a database URL, an Ibis connection, a SparkSession, or pandas DataFrames."
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(
            f"{path} does not exist. Pass a folder of CSV/Parquet files, an .xlsx workbook, a "
            f".duckdb file or a database URL (current folder: {Path.cwd()})."
        )
    if path.is_dir():
        return _folder(path)
    low = path.name.lower()
    if low.endswith((".xlsx", ".xlsm")):
        return _xlsx(path)
    if low.endswith((".duckdb", ".ddb", ".db")):
        return _duckdb_file(path)
    if low.endswith(_SUFFIXES):
        return _single_file(path)
    raise DataSourceError(
        f"{path} has an unsupported type. Use a folder, .csv, .tsv, .parquet, .xlsx or .duckdb."
    )
