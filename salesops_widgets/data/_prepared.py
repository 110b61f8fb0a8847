"""Prepared data: a validated load kept in a DuckDB file, keyed by the source's fingerprint.

Loading and validating a large export takes seconds to minutes; its result never changes while
the files do not. So :func:`load` on a file source (a folder of CSV/Parquet files, a single
CSV/Parquet file, an .xlsx workbook) writes what it found to a *prepared file*: the canonical
tables (used rows only), the quality report (JSON), the as-of date and base currency, and the
derived tables registered with :func:`store_when_prepared` (the metrics layer's deals table with
its codes and stored keys). A later load of the same files with the same mapping and as-of date
opens that file read-only instead.

- **Key.** The fingerprint of the source (every file's path, size and modification time), the
  resolved mapping, the as-of parameter, the package, DuckDB and Ibis versions and
  :data:`FORMAT`. Any change gives another key, so another file: a changed source is rebuilt.
- **Where.** ``--cache-dir`` / ``cache_dir=``, else ``$SALESOPS_CACHE_DIR``, else a
  ``.salesops-cache`` folder inside the data folder (beside a single file); when that cannot be
  written, the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)
  ``/salesops-widgets/prepared``.
- **Safe.** A writer writes a temporary file in the same folder and renames it into place
  (``os.replace``), so a reader sees a complete file or none; readers attach it read-only (any
  number of processes). Two writers each write their own temporary file; the last rename wins,
  and both files were complete. Older files of the same source, mapping and as-of date are
  deleted after a rename (a reader that has one open keeps reading it).
- **Off.** ``load(..., cache=False)``, or ``SALESOPS_NO_CACHE=1`` in the environment (what
  ``salesops serve --no-cache`` and ``salesops run --no-cache`` set for their kernels).

DataFrames, DuckDB files and database URLs are never cached: they are read where they are.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis

from ._lookups import LookupReport
from ._mapping import Mapping, resolve_mapping
from ._populations import ViewWarning
from ._quality import ColumnCounts, MetricExclusion, QualityReport, TableReport
from ._sources import _SUFFIXES, _new_duckdb

__all__ = [
    "FORMAT",
    "Prepared",
    "PreparedKey",
    "cache_enabled",
    "prepared_key",
    "report_from_dict",
    "source_files",
    "store_when_prepared",
]

FORMAT = 1  # the layout of a prepared file; bump it when what is written changes
FOLDER = ".salesops-cache"
NO_CACHE_ENV = "SALESOPS_NO_CACHE"
CACHE_DIR_ENV = "SALESOPS_CACHE_DIR"
_META = "_salesops_prepared"
_ATTACHED = "prepared"
_STALE_TEMP_SECONDS = 6 * 3600  # a temporary file this old belongs to a writer that died
_WORKBOOKS = (".xlsx", ".xlsm")
_DERIVED: list[Callable[[Any], dict[str, ibis.Table]]] = []


@dataclass(frozen=True)
class PreparedKey:
    """What a prepared file is keyed by: ``digest`` names the file, ``slot`` the source,
    mapping and as-of date it belongs to (older files of a slot are deleted)."""

    source: Path
    mapping: Mapping
    as_of: str | None
    digest: str
    slot: str

    @property
    def name(self) -> str:
        return f"prepared-{self.slot}-{self.digest}.duckdb"


@dataclass(frozen=True)
class Prepared:
    """Where :func:`prepare` wrote, and how long each step took."""

    path: Path
    load_seconds: float
    derive_seconds: float
    write_seconds: float
    bytes: int
    stored: tuple[str, ...]


def store_when_prepared(derive: Callable[[Any], dict[str, ibis.Table]]) -> None:
    """Register ``derive(data) -> {name: table}``: tables built from loaded data that a
    prepared file keeps too (``SalesData.stored_table(name)`` gives them back). The metrics layer
    registers its deals table here when it is imported."""
    if derive not in _DERIVED:
        _DERIVED.append(derive)


def cache_enabled(cache: bool | None) -> bool:
    """``cache`` when given, else on unless ``SALESOPS_NO_CACHE`` is set (to anything but 0)."""
    if cache is not None:
        return bool(cache)
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() in ("", "0", "false", "no")


def source_files(path: Path) -> list[Path]:
    """The files a folder or file source consists of: the file itself, or every file in the
    folder and below, hidden ones (``.salesops-cache``) left out, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]


def _file_source(source: Any) -> Path | None:
    """The path of a source that is cached (folder, CSV/Parquet file, workbook), else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    if "://" in text:
        return None
    path = Path(text).expanduser()
    if path.is_dir() or path.name.lower().endswith((*_SUFFIXES, *_WORKBOOKS)):
        return path.resolve() if path.exists() else None
    return None


def prepared_key(source: Any, mapping: Any, as_of: _dt.date | None) -> PreparedKey | None:
    """The key of ``source`` read with ``mapping`` at ``as_of``; None when it is not cached."""
    path = _file_source(source)
    if path is None:
        return None
    from .. import __version__

    mapping_obj = resolve_mapping(mapping)
    as_of_text = as_of.isoformat() if as_of else None
    files = []
    for p in source_files(path):
        stat = p.stat()
        files.append(
            [
                p.relative_to(path).as_posix() if p != path else p.name,
                stat.st_size,
                stat.st_mtime_ns,
            ]
        )
    slot_of = {"source": str(path), "mapping": repr(mapping_obj), "as_of": as_of_text}
    key = {
        **slot_of,
        "format": FORMAT,
        "files": files,
        "package": __version__,
        "duckdb": duckdb.__version__,
        "ibis": ibis.__version__,
    }
    return PreparedKey(path, mapping_obj, as_of_text, _digest(key, 20), _digest(slot_of, 10))


def _digest(value: Any, length: int) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:length]


# --------------------------------------------------------------------------------------------
# Where prepared files live


def user_cache_dir() -> Path:
    """The fallback folder: ``$XDG_CACHE_HOME`` (or ``~/.cache``)/salesops-widgets/prepared."""
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "salesops-widgets" / "prepared"


def _candidates(key: PreparedKey, cache_dir: Path | str | None) -> list[Path]:
    """The folders a prepared file of ``key`` may be in, the preferred first."""
    chosen = cache_dir or os.environ.get(CACHE_DIR_ENV)
    if chosen:
        return [Path(chosen).expanduser()]
    beside = key.source if key.source.is_dir() else key.source.parent
    return [beside / FOLDER, user_cache_dir()]


def _writable(folder: Path) -> bool:
    """True when files can be created in ``folder`` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
        probe.touch()
        probe.unlink()
    except OSError:
        return False
    return True


def find_prepared(key: PreparedKey, cache_dir: Path | str | None = None) -> Path | None:
    """The complete prepared file of ``key``, or None (temporary files are never returned)."""
    for folder in _candidates(key, cache_dir):
        path = folder / key.name
        if path.is_file():
            return path
    return None


def _write_folder(key: PreparedKey, cache_dir: Path | str | None) -> Path:
    for folder in _candidates(key, cache_dir):
        if _writable(folder):
            return folder
    from ..errors import DataSourceError

    raise DataSourceError(
        f"No folder to write prepared data for {key.source} to: tried "
        f"{', '.join(map(str, _candidates(key, cache_dir)))}. Set SALESOPS_CACHE_DIR (or "
        f"--cache-dir) to a writable folder, or load with --no-cache."
    )


# --------------------------------------------------------------------------------------------
# Writing: a temporary file in the target folder, renamed into place when complete


def write_prepared(data: Any, key: PreparedKey, cache_dir: Path | str | None = None) -> Prepared:
    """Write ``data`` (a fresh load) and its registered derived tables as the prepared file of
    ``key``; the file appears (by rename) only when complete."""
    start = time.perf_counter()
    stored: dict[str, ibis.Table] = {}
    for derive in _DERIVED:
        stored.update(derive(data))
    derived_at = time.perf_counter()
    folder = _write_folder(key, cache_dir)
    final = folder / key.name
    temp = folder / f"{key.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        _write_file(data, stored, key, temp)
        os.replace(temp, final)
    finally:
        for leftover in (temp, Path(f"{temp}.wal")):
            leftover.unlink(missing_ok=True)
    _drop_older(folder, key)
    return Prepared(
        path=final,
        load_seconds=0.0,
        derive_seconds=round(derived_at - start, 3),
        write_seconds=round(time.perf_counter() - derived_at, 3),
        bytes=final.stat().st_size,
        stored=tuple(stored),
    )


def _write_file(data: Any, stored: dict[str, ibis.Table], key: PreparedKey, temp: Path) -> None:
    con, raw = data.con, data.con.con
    alias = f"_prep_{secrets.token_hex(4)}"
    raw.execute(f"ATTACH {_quoted(temp)} AS {alias}")
    try:
        for name, table in {**data.tables, **stored}.items():
            raw.execute(f'CREATE TABLE {alias}.main."{name}" AS {con.compile(table)}')
        meta = _meta(data, stored, key)
        raw.execute(f"CREATE TABLE {alias}.main.{_META} (meta VARCHAR)")
        raw.execute(
            f"INSERT INTO {alias}.main.{_META} VALUES (?)", [json.dumps(meta, default=_plain)]
        )
        raw.execute(f"CHECKPOINT {alias}")
    finally:
        raw.execute(f"DETACH {alias}")


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _plain(value: Any) -> Any:
    """numpy numbers (counts from the engine) as Python numbers, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _meta(data: Any, stored: dict[str, ibis.Table], key: PreparedKey) -> dict[str, Any]:
    from .. import __version__

    return {
        "format": FORMAT,
        "digest": key.digest,
        "source": str(key.source),
        "package": __version__,
        "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "tables": list(data.tables),
        "stored": list(stored),
        "as_of": data.as_of.isoformat(),
        "base_currency": data.base_currency,
        "report": data.report.to_dict(),
    }


def _drop_older(folder: Path, key: PreparedKey) -> None:
    """Delete the other prepared files of this slot, and temporary files of dead writers."""
    for path in folder.glob(f"prepared-{key.slot}-*.duckdb"):
        if path.name != key.name:
            path.unlink(missing_ok=True)
    now = time.time()
    for path in folder.glob("prepared-*.tmp*"):
        try:
            if now - path.stat().st_mtime > _STALE_TEMP_SECONDS:
                path.unlink(missing_ok=True)
        except OSError:
            continue


# --------------------------------------------------------------------------------------------
# Reading: attached read-only to a private engine, which stays writable for derived tables


def open_prepared(path: Path, key: PreparedKey) -> Any:
    """The SalesData kept in the prepared file ``path`` (opened read-only)."""
    from ._load import SalesData

    con = _new_duckdb()
    con.attach(str(path), name=_ATTACHED, read_only=True)
    (text,) = con.con.execute(f"SELECT meta FROM {_ATTACHED}.main.{_META}").fetchone()
    meta = json.loads(text)
    if meta.get("format") != FORMAT or meta.get("digest") != key.digest:
        raise ValueError(f"{path} is not the prepared file of this source")
    where = (_ATTACHED, "main")
    return SalesData(
        {name: con.table(name, database=where) for name in meta["tables"]},
        report_from_dict(meta["report"]),
        con=con,
        as_of=_dt.date.fromisoformat(meta["as_of"]),
        base_currency=meta["base_currency"],
        mapping=key.mapping,
        engine_owned=True,
        stored={name: con.table(name, database=where) for name in meta["stored"]},
    )


def read_prepared_report(path: Path, key: PreparedKey) -> QualityReport:
    """The quality report kept in ``path``, without opening its tables."""
    with duckdb.connect(str(path), read_only=True) as con:
        (text,) = con.execute(f"SELECT meta FROM {_META}").fetchone()
    meta = json.loads(text)
    if meta.get("format") != FORMAT or meta.get("digest") != key.digest:
        raise ValueError(f"{path} is not the prepared file of this source")
    return report_from_dict(meta["report"])


def report_from_dict(d: dict[str, Any]) -> QualityReport:
    """A QualityReport from :meth:`QualityReport.to_dict` (after a JSON round trip)."""
    return QualityReport(
        source=d["source"],
        mapping=d["mapping"],
        as_of=d["as_of"],
        base_currency=d["base_currency"],
        tables={name: _table_report(t) for name, t in d["tables"].items()},
        missing_tables=list(d["missing_tables"]),
        warnings=list(d["warnings"]),
        fatal=d["fatal"],
        populations=[dict(p) for p in d["populations"]],
        view_warnings=[ViewWarning(tuple(w["kpis"]), w["message"]) for w in d["view_warnings"]],
    )


_LOOKUP_FIELDS = set(LookupReport.__dataclass_fields__)


def _table_report(d: dict[str, Any]) -> TableReport:
    d = {k: v for k, v in d.items() if k != "rows_excluded"}
    d["metric_exclusions"] = [MetricExclusion(**m) for m in d["metric_exclusions"]]
    d["columns"] = {c: ColumnCounts(**v) for c, v in d["columns"].items()}
    d["lookups"] = [
        LookupReport(**{k: v for k, v in lk.items() if k in _LOOKUP_FIELDS}) for lk in d["lookups"]
    ]
    return TableReport(**d)


# --------------------------------------------------------------------------------------------
# load() and validate() through the prepared file


def load_through_cache(
    key: PreparedKey, cache_dir: Path | str | None, fresh: Callable[[], Any]
) -> Any:
    """The prepared file of ``key`` opened, or ``fresh()`` loaded and written for next time."""
    found = find_prepared(key, cache_dir)
    if found is not None:
        try:
            return open_prepared(found, key)
        except (duckdb.Error, OSError, ValueError, KeyError):
            pass  # unreadable (another version, a damaged disk): rebuilt below
    data = fresh()
    _write_quietly(data, key, cache_dir)
    return data


def report_through_cache(key: PreparedKey, cache_dir: Path | str | None) -> QualityReport | None:
    """The report of the prepared file of ``key``, or None when there is none."""
    found = find_prepared(key, cache_dir)
    if found is None:
        return None
    try:
        return read_prepared_report(found, key)
    except (duckdb.Error, OSError, ValueError, KeyError):
        return None


def _write_quietly(data: Any, key: PreparedKey, cache_dir: Path | str | None) -> None:
    """Write the prepared file; a failure only warns (the data was loaded all the same)."""
    import warnings

    from ..errors import SalesOpsError

    try:
        write_prepared(data, key, cache_dir)
    except (duckdb.Error, OSError, SalesOpsError) as exc:
        warnings.warn(
            f"The prepared data for {key.source} could not be written ({exc}); the next load "
            f"reads the files again. Set SALESOPS_CACHE_DIR to a writable folder, or "
            f"SALESOPS_NO_CACHE=1 to stop trying.",
            stacklevel=3,
        )


def prepare(
    source: Any,
    *,
    mapping: Any = "canonical",
    as_of: Any = None,
    cache_dir: Path | str | None = None,
) -> Prepared:
    """Load and validate ``source`` and write its prepared file (always, even when one exists).

    For cron: run it after each export so that dashboards and runs open the data in well under a
    second. Raises a DataSourceError for a source that is not a folder or file.
    """
    from ..errors import DataSourceError
    from ._load import _parse_as_of, load

    key = prepared_key(source, mapping, _parse_as_of(as_of))
    if key is None:
        raise DataSourceError(
            f"{source}: only a folder of CSV/Parquet files, a CSV/Parquet file or an .xlsx "
            f"workbook can be prepared; DataFrames, DuckDB files and database URLs are read "
            f"where they are."
        )
    start = time.perf_counter()
    data = load(source, mapping=mapping, as_of=as_of, cache=False)
    seconds = round(time.perf_counter() - start, 3)
    written = write_prepared(data, key, cache_dir)
    return Prepared(
        written.path,
        seconds,
        written.derive_seconds,
        written.write_seconds,
        written.bytes,
        written.stored,
    )
