"""The run history: the KPIs each good ``salesops run`` measured, stored beside its reports.

::

    OUT/history/<stamp>-<id>.parquet    one file per good run: its measurements (see below)
    OUT/history/.tmp-*                  a file being written (never read)

A run writes its rows to a temporary name in the same folder and renames it into place
(atomic), so concurrent runs never see or overwrite each other's rows, and a reader sees a
run's rows whole or not at all. A failed run writes nothing. ``read_history`` reads the union.
Rows: ``metrics.history_rows`` (``key``, ``kpi``, ``as_of``, ``start``, ``value``, ``low``,
``high``, ``n``, ``small_n``) plus ``run`` (the run's stamp) and ``data`` (its source).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

__all__ = ["HISTORY", "HISTORY_KPIS", "append_history", "read_history", "record_run"]

HISTORY = "history"
# the KPIs every run stores over every deal (a goal's KPI is stored over its segment too)
HISTORY_KPIS = (
    "win_rate",
    "asp",
    "bookings",
    "median_cycle_days_won",
    "km_median_days_to_close",
    "portfolio_discount",
)
COLUMNS = ["key", "kpi", "as_of", "start", "value", "low", "high", "n", "small_n", "run", "data"]


def append_history(folder: Path, rows: pd.DataFrame, *, run: str, data: str) -> Path:
    """Add one run's ``rows`` to the history ``folder`` as one new file, atomically.

    Returns
    -------
    Path
        The file written: ``<run>-<random id>.parquet`` (two runs with the same stamp never
        clash).
    """
    folder.mkdir(parents=True, exist_ok=True)
    frame = rows.assign(run=run, data=data)
    name = f"{run}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".tmp-{os.getpid()}-{name}"
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, folder / name)  # atomic on one file system
    finally:
        tmp.unlink(missing_ok=True)
    return folder / name


def read_history(folder: str | Path | None) -> pd.DataFrame:
    """Every run's rows of the history ``folder`` (an empty frame when there is none yet)."""
    if not folder:
        return pd.DataFrame(columns=COLUMNS)
    files = sorted(p for p in Path(folder).glob("*.parquet") if not p.name.startswith("."))
    if not files:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


def record_run(
    out: Path,
    run: str,
    *,
    data: str,
    mapping: str,
    as_of: str | None,
    goals_files: Iterable[Path] = (),
) -> Path:
    """Measure the KPIs of a good run and append them to ``out/history``: ``HISTORY_KPIS``
    over every deal, and the KPI of every goal of ``goals_files`` over its segment."""
    from .. import metrics
    from ..data import load

    loaded = load(data, mapping=mapping, as_of=as_of)
    goals = [g for path in dict.fromkeys(goals_files) for g in metrics.read_goals(path)]
    rows = metrics.history_rows(loaded, goals, HISTORY_KPIS)
    return append_history(out / HISTORY, rows, run=run, data=data)
