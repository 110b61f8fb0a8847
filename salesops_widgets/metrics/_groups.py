"""Per-group work on the rows the engine aggregated: groups in order, counts split into arrays
per group, long frames built from them, and frames that say why they are empty.

The KPI functions that compute curves and tests in numpy (time to close, stages, strata,
ranking) ask the engine for counts per group and distinct value, then use these helpers.
"""

from __future__ import annotations

from collections.abc import Iterator

import ibis
import numpy as np
import pandas as pd

__all__ = [
    "NO_DEALS",
    "counts_by_value",
    "frame",
    "group_keys",
    "iter_groups",
    "long_frame",
    "notes",
    "split_counts",
]

NO_DEALS = "no deals match the filters and period"


def group_keys(agg: pd.DataFrame, keys: list[str]) -> list[tuple]:
    """The groups of aggregated rows, in their order (one empty group without keys)."""
    if not keys:
        return [()]
    return list(dict.fromkeys(agg[keys].itertuples(index=False, name=None)))


def iter_groups(df: pd.DataFrame, keys: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key tuple, rows) per group, sorted; one empty-key group when ``keys`` is empty."""
    if not keys:
        yield (), df
        return
    for key, sub in df.groupby(keys, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), sub


def split_counts(
    counts: pd.DataFrame, keys: list[str], duration: str, kind: str
) -> Iterator[tuple[tuple, dict[str, np.ndarray]]]:
    """Per group (sorted), numpy arrays ``t`` (duration, NaN when unknown), ``n`` (count) and
    ``kind`` (event type). With no keys: one group, even when there are no rows."""
    arrays = {
        "t": pd.to_numeric(counts[duration]).to_numpy(dtype=float, na_value=np.nan),
        "n": counts["n"].to_numpy(dtype=float),
        "kind": counts[kind].to_numpy(dtype=object),
    }
    if not keys:
        yield (), arrays
        return
    indices = counts.groupby(keys, sort=False, dropna=False).indices
    for key in sorted(indices, key=lambda k: tuple(map(str, k if isinstance(k, tuple) else (k,)))):
        pos = indices[key]
        yield (key if isinstance(key, tuple) else (key,)), {k: a[pos] for k, a in arrays.items()}


def long_frame(
    keys: list[str], parts: list[tuple[tuple, dict]], columns: list[str]
) -> pd.DataFrame:
    """One long frame from per-group arrays: key columns repeated, then ``columns``."""
    if not parts:
        return frame([], [*keys, *columns], NO_DEALS)
    sizes = [len(a[columns[0]]) for _, a in parts]
    out = {k: np.repeat([g[i] for g, _ in parts], sizes) for i, k in enumerate(keys)}
    out.update({c: np.concatenate([a[c] for _, a in parts]) for c in columns})
    return pd.DataFrame(out, columns=[*keys, *columns])


def frame(rows: list[dict], columns: list[str], note: str = "") -> pd.DataFrame:
    """A frame of ``rows``; when it is empty, ``attrs["note"]`` says why."""
    out = pd.DataFrame(rows, columns=columns)
    if out.empty and note:
        out.attrs["note"] = note
    return out


def notes(*parts: str) -> str:
    """The non-empty notes, joined with "; "."""
    return "; ".join(p for p in parts if p)


def counts_by_value(t: ibis.Table, key: str, value: ibis.Value) -> pd.DataFrame:
    """Deals counted per (``key``, distinct non-NULL ``value``), aggregated in the engine.

    Wide: one row per key (sorted), one column per value, 0 where a key lacks the value; an
    empty frame when no deal has a value.
    """
    v = t.select(key, _v=value)
    v = v.filter(v._v.notnull())
    counted = v.group_by([key, "_v"]).aggregate(_n=v.count()).to_pandas()
    if counted.empty:
        return pd.DataFrame()
    wide = counted.pivot_table(index=key, columns="_v", values="_n", aggfunc="sum")
    return wide.fillna(0.0).sort_index()
