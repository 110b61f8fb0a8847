"""The refresh of benchmarks/refresh.py on Spark or PostgreSQL, beside the embedded DuckDB.

python -m benchmarks.refresh --backend spark|postgres --rows 1000000 [--repeat 3] [--url URL]

- ``spark``: a local[2] session reads the sample's Parquet files (``pyspark://FOLDER?...``, the
  way a lakehouse folder is read); nothing is copied.
- ``postgres``: the tables are copied into the server given by ``--url`` (a superuser's URL), or
  into a throwaway cluster started here (tests/_backends.py) when there is none, by COPY from
  CSV files DuckDB writes; then ``load()`` reads them from the server.

Timed: writing the tables into the engine, ``load()`` (validation and the quality report, run
by that engine), ``deals()`` (the joined deals view, cached there), and the refresh (median of
``--repeat``), whose numbers are checked against the library's on DuckDB. Nothing here asserts
on time.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SPARK_SETTINGS = (
    "spark.master=local[2]&spark.sql.shuffle.partitions=2&spark.driver.memory=6g"
    "&spark.ui.enabled=false"
)


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


@contextlib.contextmanager
def _postgres(url: str | None):
    if url:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _backends import postgres_cluster

    with postgres_cluster() as started:
        yield started


def _copy_into_postgres(url: str, folder: Path) -> str:
    """The sample's tables copied into schema ``bench`` (COPY from CSV); the URL to load."""
    import duckdb
    import ibis

    con = ibis.connect(url)
    con.raw_sql("DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench").close()
    with tempfile.TemporaryDirectory(prefix="salesops-copy-") as tmp:
        os.chmod(tmp, 0o755)
        for path in sorted(folder.glob("*.parquet")):
            name, csv = path.stem, Path(tmp) / f"{path.stem}.csv"
            duckdb.sql(f"COPY (SELECT * FROM '{path}') TO '{csv}' (HEADER)")
            os.chmod(csv, 0o644)
            schema = ibis.duckdb.connect().read_parquet(path).schema()
            con.create_table(name, schema=schema, database="bench")
            con.raw_sql(f"COPY bench.{name} FROM '{csv}' WITH (FORMAT csv, HEADER)").close()
    con.disconnect()
    return f"{url}?options=-csearch_path%3Dbench"


def _refresh_times(data, repeat: int, refresh) -> tuple[float, float, tuple]:
    first, result = _timed(lambda: refresh(data))
    times = [_timed(lambda: refresh(data))[0] for _ in range(repeat)]
    return first, statistics.median(times), result


def run(args, folder: Path, refresh, compare) -> dict:
    """Time the refresh on ``args.backend``; its numbers compared with DuckDB's."""
    from salesops_widgets import load
    from salesops_widgets.metrics import deals

    reference = load(folder)
    duck_first, duck_ms, want = _refresh_times(reference, args.repeat, refresh)
    with contextlib.ExitStack() as stack:
        if args.backend == "spark":
            write_s, source = 0.0, f"pyspark://{folder}?{SPARK_SETTINGS}"
        else:
            server = stack.enter_context(_postgres(args.url))
            write_s, source = _timed(lambda: _copy_into_postgres(server, folder))
        load_s, data = _timed(lambda: load(source))
        deals_s, _ = _timed(lambda: deals(data).count().execute())
        first, median, got = _refresh_times(data, args.repeat, refresh)
        compare(args.backend, want, got)
        for entry in list(getattr(data.con, "_cache_name_to_entry", {}).values()):
            entry.finalizer.detach()  # the engine drops its cached tables when it stops
    return {
        "backend": args.backend,
        "rows": args.rows,
        "write_s": round(write_s, 1),
        "load_s": round(load_s, 1),
        "deals_s": round(deals_s, 1),
        "first_refresh_ms": round(first * 1000, 1),
        "refresh_ms": round(median * 1000, 1),
        "duckdb_first_refresh_ms": round(duck_first * 1000, 1),
        "duckdb_refresh_ms": round(duck_ms * 1000, 1),
        "same_numbers": True,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
