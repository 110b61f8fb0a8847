"""Real engines for the parity tests: a throwaway PostgreSQL cluster and a local Spark session.

Both are started by the tests themselves and stopped at the end of the session:

- PostgreSQL: Debian's server binaries (``/usr/lib/postgresql/*/bin``: ``initdb``, ``pg_ctl``)
  make a cluster in a temporary folder, listening on a free loopback port only, with ``trust``
  authentication for local connections. As root, they run as the ``postgres`` user (initdb
  refuses root) through ``runuser``.
- Spark: ``local[2]``, two shuffle partitions, no UI, and no ``spark.jars.packages`` (nothing is
  downloaded).

The canonical tables reach them as a CRM's warehouse would hold them: one table (PostgreSQL)
or temporary view (Spark) per canonical table, written from the sample's pandas frames.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

# How to install what is missing (scripts/ensure_backends.sh does it as root).
HINT = (
    "run `make backends` (or `sudo apt-get install -y openjdk-17-jre-headless postgresql`) "
    "and `pip install -e '.[spark,postgres]'`"
)


class BackendMissing(RuntimeError):
    """An engine of the parity tests is not installed here."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL server binaries (the newest version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise BackendMissing(f"PostgreSQL's initdb is not installed: {HINT}")
    return Path(found[-1]).parent


def require_postgres() -> None:
    """Raise BackendMissing unless PostgreSQL's server and the psycopg driver are installed."""
    postgres_bin()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise BackendMissing(f"psycopg is not installed: {HINT}") from None


def _as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` as the ``postgres`` user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], log: Path) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
            f"{log.read_text() if log.exists() else ''}"
        )


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yield its URL (``postgresql://...``); stop it."""
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="salesops-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    try:
        _run(
            _as_server_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "salesops", "-A", "trust"]
                + ["-E", "UTF8", "--no-sync"]
            ),
            log,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(
            _as_server_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
                + ["-w", "-t", "60", "start"]
            ),
            log,
        )
        try:
            yield f"postgresql://salesops@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                capture_output=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_postgres(url: str, frames: dict[str, pd.DataFrame], schema: str) -> str:
    """Write ``frames`` as tables of a new PostgreSQL schema; the URL that reads them.

    The URL's ``search_path`` option makes the schema the one ``load(url)`` lists and reads.
    """
    import ibis

    con = ibis.connect(url)
    con.raw_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}").close()
    for name, df in frames.items():
        con.create_table(name, df, database=schema, overwrite=True)
    con.disconnect()
    return f"{url}?options=-csearch_path%3D{schema}"


_SPARK_CONFIG = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def require_spark() -> None:
    """Raise BackendMissing unless Java and pyspark are installed."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise BackendMissing(f"Java is not installed (PySpark needs it): {HINT}")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise BackendMissing(f"pyspark is not installed: {HINT}") from None


@contextmanager
def spark_session() -> Iterator:
    """A local[2] SparkSession (no downloaded packages), stopped at the end."""
    require_spark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("salesops-tests")
    for key, value in _SPARK_CONFIG.items():
        builder = builder.config(key, value)
    started = time.monotonic()
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    print(f"spark local[2] started in {time.monotonic() - started:.1f} s")
    try:
        yield session
    finally:
        session.stop()


def write_spark(session, frames: dict[str, pd.DataFrame], prefix: str = "") -> None:
    """Register ``frames`` as temporary views of ``session`` (``PREFIX + table``)."""
    for name, df in frames.items():
        session.createDataFrame(_spark_frame(df)).createOrReplaceTempView(prefix + name)


def _spark_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A frame Spark's pandas conversion takes: plain object strings, timestamps in ns."""
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype) or out[col].dtype == object:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        elif pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].astype("datetime64[ns]")
    return out


def forget_cached(con) -> None:
    """Let the engine drop the tables Ibis cached (temporary tables, persisted DataFrames) with
    the session itself: Ibis' own finalizers would try at exit, after the server has stopped."""
    for entry in list(getattr(con, "_cache_name_to_entry", {}).values()):
        entry.finalizer.detach()
