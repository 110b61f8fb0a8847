"""Lookups: fill a canonical column from another file, like a spreadsheet VLOOKUP, with keys
cleaned first and every unmatched key reported with its count and the closest known keys.

Both sides' keys are compared cleaned: trimmed, case-folded, inner runs of spaces made one.
Before that, the row's key goes through a cleaning map: the lookup's own ``key_values``
(``{GTXPro: GTX Pro}``), or the ``values`` map of the canonical column read from the same
source column, or of the canonical column ``key_values`` names. The joined table carries, per
lookup ``i``, ``_lk{i}_value`` (the value found), ``_lk{i}_miss`` (the key, as written, of a
row whose key found no match; NULL otherwise) and ``_lk{i}_blank``, from which the report
counts and lists the misses on the rows read and on the rows used.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import ibis

from ..errors import DataSourceError, SchemaError
from ._mapping import Lookup, Mapping, TableMapping, norm_label
from ._parse import strip
from ._sources import RawTable, Source

__all__ = ["LookupReport", "apply_lookups", "clean_key", "fill_report", "suggest"]

# how many unmatched keys, and how many known keys to compare them with, the report reads
TOP_UNMATCHED = 20
MAX_KNOWN = 20_000


def clean_key(value: ibis.Value) -> ibis.StringValue:
    """A key as lookups compare it: text, trimmed, lower case, inner spaces made one."""
    return strip(value.cast("string").lower().re_replace(r"\s+", " ")).nullif("")


@dataclass
class LookupReport:
    """What one lookup found: its misses on the rows read and on the rows used."""

    column: str
    source: str  # the lookup file/sheet/table
    key: str
    rows_read: int = 0
    missed_read: int = 0  # rows read whose key found no match
    rows_used: int = 0
    missed_used: int = 0  # of the rows used
    blank_keys: int = 0  # rows read without a key
    # key as written (one spelling of each cleaned key) -> rows read
    unmatched: dict[str, int] = field(default_factory=dict)
    suggestions: dict[str, list[str]] = field(default_factory=dict)  # key -> closest known

    def note(self) -> str:
        """One sentence, both bases named: how many rows found no match and which keys."""
        if not self.missed_read and not self.blank_keys:
            return f"lookup {self.column} from {self.source}: every row found a match"
        other = self.missed_read - self.missed_used
        are = "is" if other == 1 else "are"
        why = f": the other {other:,} {are} excluded for another reason" if other else ""
        parts = [
            f"lookup {self.column} from {self.source}: {self.missed_read:,} of the "
            f"{self.rows_read:,} rows read found no match for their {self.key} "
            f"({self.missed_used:,} of the {self.rows_used:,} rows used{why})"
        ]
        if self.blank_keys:
            rows = (
                "1 row read has" if self.blank_keys == 1 else f"{self.blank_keys:,} rows read have"
            )
            parts.append(f"{rows} no {self.key}")
        shown = [self.describe(k, n) for k, n in list(self.unmatched.items())[:5]]
        if shown:
            parts.append("unmatched: " + "; ".join(shown))
        return ". ".join(parts)

    def describe(self, key: str, n: int) -> str:
        close = self.suggestions.get(key)
        hint = f": did you mean {' or '.join(map(repr, close))}?" if close else ""
        return f"{key!r} ({n:,} row{'' if n == 1 else 's'}{hint})"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "note": self.note()}


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def suggest(value: str, known: list[str], n: int = 2) -> list[str]:
    """The known keys closest to an unmatched one: the same letters and digits first (``GTXPro``
    and ``GTX Pro``), then the most similar text (difflib ratio ≥ 0.75).

    Examples
    --------
    >>> suggest("gtxpro", ["GTX Pro", "GTX Lite", "Starter"])
    ['GTX Pro']
    """
    same = [k for k in known if _squash(k) == _squash(value)]
    if same:
        return same[:n]
    by_clean = {norm_label(k): k for k in known}
    close = difflib.get_close_matches(norm_label(value), list(by_clean), n=n, cutoff=0.75)
    return [by_clean[c] for c in close]


def _key_map(lk: Lookup, tmap: TableMapping, column_of: dict[str, str]) -> dict[str, str]:
    """The cleaning map of a lookup's key: its own ``key_values``, the values map of the
    canonical column it names, or that of the canonical column read from the key column."""
    if isinstance(lk.key_values, dict):
        return lk.key_values
    canonical = lk.key_values or column_of.get(norm_label(lk.key))
    return tmap.values.get(canonical, {}) if canonical else {}


def _cleaned(value: ibis.Value, key_map: dict[str, str]) -> ibis.StringValue:
    cleaned = clean_key(value)
    if not key_map:
        return cleaned
    book = {norm_label(k): norm_label(v) for k, v in key_map.items()}
    return cleaned.substitute(book, else_=cleaned)


def _check_columns(lk: Lookup, raw: ibis.Table, lraw: RawTable, label: str, where: str) -> None:
    raw_cols = {norm_label(c) for c in raw.columns}
    l_cols = [str(c) for c in lraw.table.columns]
    for what, have, col, lab in (
        ("key", raw_cols, lk.key, label),
        ("lookup_key", {norm_label(c) for c in l_cols}, lk.lookup_key, lraw.label),
        ("value", {norm_label(c) for c in l_cols}, lk.value, lraw.label),
    ):
        if norm_label(col) not in have:
            shown = list(raw.columns) if what == "key" else l_cols
            raise SchemaError(
                f"{lab}: lookup {where}.{what} names column {col!r}, which is not there. "
                f"Columns found: {', '.join(map(repr, shown[:25]))}."
            )


def _column(table: ibis.Table, name: str) -> ibis.Value:
    by_norm = {norm_label(c): c for c in table.columns}
    return table[by_norm[norm_label(name)]]


def _find_source(lk: Lookup, source: Source, where: str, notes: list[str]) -> str | None:
    name = source.find(lk.source)
    if name is None and not lk.optional:
        raise DataSourceError(
            f"{source.label}: lookup {where} needs source {list(lk.source)}, which is not there "
            f"(available: {', '.join(source.available()) or 'nothing'}). Add the "
            f"file/sheet/table or fix {where}.source."
        )
    if name is None:
        notes.append(f"lookup {where}: source {list(lk.source)} not found; skipped")
    return name


def apply_lookups(
    raw: ibis.Table,
    tmap: TableMapping,
    mapping: Mapping,
    source: Source,
    label: str,
    column_of: dict[str, str],
    notes: list[str],
) -> tuple[ibis.Table, dict[str, str], list[tuple[LookupReport, ibis.Table]]]:
    """Join each lookup's value onto ``raw``.

    ``column_of``: cleaned source column name -> the canonical column read from it. Returns the
    joined table, canonical column -> joined value column, and per lookup its report (to fill)
    with the cleaned keys of the lookup source (for suggestions).
    """
    filled: dict[str, str] = {}
    reports = []
    for i, lk in enumerate(tmap.lookups):
        where = f"{mapping.key(tmap.table, 'lookups')}[{i}]"
        name = _find_source(lk, source, where, notes)
        if name is None:
            continue
        lraw = source.read(name)
        _check_columns(lk, raw, lraw, label, where)
        lt = lraw.table
        lkey = _column(lt, lk.lookup_key)
        right = (
            lt.mutate(_k=clean_key(lkey), _o=strip(lkey.cast("string")), _v=_column(lt, lk.value))
            .filter(lambda x: x._k.notnull())
            .group_by("_k")
            .aggregate(_v=lambda x: x._v.arbitrary(), _o=lambda x: x._o.arbitrary())
            .rename({f"_lk{i}_key": "_k", f"_lk{i}_value": "_v", f"_lk{i}_known": "_o"})
        )
        given = _column(raw, lk.key)
        key = _cleaned(given, _key_map(lk, tmap, column_of))
        joined = raw.left_join(right, key == right[f"_lk{i}_key"])
        missed = key.notnull() & joined[f"_lk{i}_key"].isnull()
        raw = joined.select(
            *raw.columns,
            joined[f"_lk{i}_value"],
            **{
                f"_lk{i}_miss": ibis.ifelse(missed, strip(given.cast("string")), None),
                f"_lk{i}_blank": key.isnull(),
            },
        )
        filled[lk.column] = f"_lk{i}_value"
        reports.append((LookupReport(lk.column, lraw.label, lk.key), right[f"_lk{i}_known"]))
    return raw, filled, reports


def fill_report(
    report: LookupReport, i: int, annotated: ibis.Table, known: ibis.Value
) -> LookupReport:
    """Count a lookup's misses on the rows read and used of ``annotated`` (which kept the
    ``_lk{i}_*`` columns), list the most frequent unmatched keys (as written in the file) and
    the known keys (``known``, as written in the lookup source) they may mean."""
    t = annotated
    miss, used = t[f"_lk{i}_miss"].notnull(), t._excluded.isnull()
    row = t.aggregate(
        read=t.count(),
        missed=miss.sum(),
        used=used.sum(),
        missed_used=(miss & used).sum(),
        blank=t[f"_lk{i}_blank"].sum(),
    ).execute()
    r = row.iloc[0]
    report.rows_read, report.missed_read = int(r["read"]), int(r["missed"] or 0)
    report.rows_used, report.missed_used = int(r["used"] or 0), int(r["missed_used"] or 0)
    report.blank_keys = int(r["blank"] or 0)
    if not report.missed_read:
        return report
    # GTXPro, gtxpro and " GTXPRO" are one unmatched key: counted together, shown one way
    written = t[f"_lk{i}_miss"]
    misses = (
        t.filter(miss)
        .group_by(_c=clean_key(written))
        .aggregate(n=lambda x: x.count(), k=written.min())
    )
    top = misses.order_by([ibis.desc("n"), "k"]).limit(TOP_UNMATCHED).execute()
    report.unmatched = {str(k): int(n) for k, n in zip(top["k"], top["n"], strict=True)}
    names = known.as_table().distinct().limit(MAX_KNOWN).execute().iloc[:, 0]
    known_keys = [str(k) for k in names if k is not None]
    report.suggestions = {k: s for k in report.unmatched if (s := suggest(k, known_keys))}
    return report
