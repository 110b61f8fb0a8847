"""The data-quality report: rows read, used and excluded per table, by rule; empty and
unparseable values per column; lookups that found no match; which deals each KPI counts; and
the views that cannot be computed on this data.

Every count says its base: **rows read** (every row of the source table) or **rows used** (the
rows read minus those excluded). Rows read = rows used + rows excluded, and for every KPI, the
rows it counts + the rows left out of it = rows used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from ..errors import ParameterError
from ._lookups import LookupReport
from ._populations import ViewWarning
from ._schema import RULE_TEXT

__all__ = ["ColumnCounts", "MetricExclusion", "TableReport", "QualityReport"]


@dataclass
class ColumnCounts:
    """Values of one column among the rows read: empty, and present but not parseable."""

    blank: int = 0
    unparseable: int = 0


@dataclass(frozen=True)
class MetricExclusion:
    """Rows that are used, but left out of one metric, and why."""

    metric: str
    rows: int
    reason: str


@dataclass
class TableReport:
    """What happened to one table's rows."""

    table: str
    source: str
    rows_read: int = 0
    rows_used: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    unmatched: dict[str, dict[str, int]] = field(default_factory=dict)
    metric_exclusions: list[MetricExclusion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: dict[str, ColumnCounts] = field(default_factory=dict)  # of the rows read
    lookups: list[LookupReport] = field(default_factory=list)

    @property
    def rows_excluded(self) -> int:
        return sum(self.excluded.values())

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows_excluded"] = self.rows_excluded
        out["lookups"] = [lk.to_dict() for lk in self.lookups]
        return out


@dataclass
class QualityReport:
    """Validation results for every table that was found.

    ``usable`` is False when the opportunities table has no usable row.
    """

    source: str
    mapping: str
    as_of: str | None = None
    base_currency: str | None = None
    tables: dict[str, TableReport] = field(default_factory=dict)
    missing_tables: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fatal: str | None = None
    # per KPI: what it counts, the used opportunities it counts and those left out, by reason
    populations: list[dict[str, Any]] = field(default_factory=list)
    view_warnings: list[ViewWarning] = field(default_factory=list)

    def warnings_for(self, kpis: Any) -> list[str]:
        """The view warnings that concern any of these KPI columns (e.g. ``["velocity"]``)."""
        wanted = {kpis} if isinstance(kpis, str) else set(kpis)
        return [w.message for w in self.view_warnings if wanted & set(w.kpis)]

    @property
    def all_warnings(self) -> list[str]:
        """Source warnings, then the views that cannot be computed."""
        return [*self.warnings, *(w.message for w in self.view_warnings)]

    @property
    def usable(self) -> bool:
        opp = self.tables.get("opportunities")
        return self.fatal is None and opp is not None and opp.rows_used > 0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "mapping": self.mapping,
            "as_of": self.as_of,
            "base_currency": self.base_currency,
            "usable": self.usable,
            "fatal": self.fatal,
            "warnings": list(self.warnings),
            "view_warnings": [
                {"kpis": list(w.kpis), "message": w.message} for w in self.view_warnings
            ],
            "missing_tables": list(self.missing_tables),
            "tables": {name: rep.to_dict() for name, rep in self.tables.items()},
            "populations": [dict(p) for p in self.populations],
        }

    EMPTY = {  # what each frame says when it is empty
        "overview": "Nothing was loaded.",
        "summary": "No table was loaded.",
        "issues": "Every rule passed: no row was excluded or flagged.",
        "metric_exclusions": "Every used row counts in every metric.",
        "columns": "No column has an empty or unparseable value.",
        "populations": "No opportunity was used.",
        "warnings": "Every view can be computed on this data.",
        "lookups": "No lookup in the mapping.",
    }

    def table(self, name: str):
        """A display-ready table (pandas Styler): no index, 1,234-style counts, and a sentence
        instead of bare headers when it is empty.

        ``name`` is one of "overview", "summary", "issues", "metric_exclusions", "columns",
        "populations", "warnings", "lookups".
        """
        frames = {
            "overview": self.overview_frame,
            "summary": self.summary_frame,
            "issues": self.issues_frame,
            "metric_exclusions": self.metric_exclusions_frame,
            "columns": self.columns_frame,
            "populations": self.populations_frame,
            "warnings": self.warnings_frame,
            "lookups": self.lookups_frame,
        }
        if name not in frames:
            raise ParameterError(f"table name {name!r} is not one of {', '.join(frames)}.")
        frame = frames[name]()
        if frame.empty:
            frame = pd.DataFrame({"": [self.EMPTY[name]]})
        styler = frame.style.hide(axis="index").format(thousands=",", precision=0)
        return styler.set_table_styles([{"selector": "th, td", "props": "text-align: left;"}])

    def overview_frame(self) -> pd.DataFrame:
        """What was loaded: source (passwords masked), mapping, as-of date, currency, warnings."""
        rows = [
            ("source", self.source),
            ("mapping", self.mapping),
            ("as of", self.as_of or "-"),
            ("base currency", self.base_currency or "-"),
            ("tables found", ", ".join(self.tables) or "-"),
            ("optional tables not found", ", ".join(self.missing_tables) or "-"),
        ]
        rows += [("warning", w) for w in self.all_warnings]
        if self.fatal:
            rows.append(("fatal", self.fatal))
        return pd.DataFrame(rows, columns=["setting", "value"])

    def summary_frame(self) -> pd.DataFrame:
        """One row per table: rows read, used and excluded."""
        rows = [
            {
                "table": r.table,
                "source": r.source,
                "rows_read": r.rows_read,
                "rows_used": r.rows_used,
                "rows_excluded": r.rows_excluded,
                "rows_flagged": sum(r.flagged.values()),
            }
            for r in self.tables.values()
        ]
        cols = ["table", "source", "rows_read", "rows_used", "rows_excluded", "rows_flagged"]
        return pd.DataFrame(rows, columns=cols)

    def issues_frame(self) -> pd.DataFrame:
        """One row per (table, rule): excluded rows and flagged (still used) rows."""
        rows = []
        for r in self.tables.values():
            for action, counts in (("excluded", r.excluded), ("flagged", r.flagged)):
                for rule, n in counts.items():
                    if not n:
                        continue
                    key = rule if action == "excluded" else f"flag:{rule}"
                    examples = r.examples.get(key) or r.examples.get(rule) or []
                    rows.append(
                        {
                            "table": r.table,
                            "rule": rule,
                            "action": action,
                            "rows": n,
                            "description": RULE_TEXT.get(rule, rule),
                            "examples": ", ".join(examples),
                        }
                    )
        cols = ["table", "rule", "action", "rows", "description", "examples"]
        return pd.DataFrame(rows, columns=cols)

    def columns_frame(self) -> pd.DataFrame:
        """Per table and column, among the rows read: empty values and unparseable values."""
        rows = [
            {
                "table": r.table,
                "column": column,
                "rows_read": r.rows_read,
                "empty": c.blank,
                "unparseable": c.unparseable,
            }
            for r in self.tables.values()
            for column, c in r.columns.items()
            if c.blank or c.unparseable
        ]
        return pd.DataFrame(rows, columns=["table", "column", "rows_read", "empty", "unparseable"])

    def populations_frame(self) -> pd.DataFrame:
        """Per KPI: what it counts, and of the opportunities used, how many it counts and how
        many it leaves out, by reason (the two add up to the rows used)."""
        rows = [
            {
                "kpi": p["kpi"],
                "counts": p["counts"],
                "rows_used": p["rows_used"],
                "counted": p["rows_in"],
                "left_out": p["rows_used"] - p["rows_in"],
                "why left out": "; ".join(f"{n:,} {why}" for why, n in p["left_out"].items()),
            }
            for p in self.populations
        ]
        cols = ["kpi", "counts", "rows_used", "counted", "left_out", "why left out"]
        return pd.DataFrame(rows, columns=cols)

    def warnings_frame(self) -> pd.DataFrame:
        """The source's warnings and the views that cannot be computed, one sentence each."""
        return pd.DataFrame({"warning": self.all_warnings}, columns=["warning"])

    def lookups_frame(self) -> pd.DataFrame:
        """Per lookup: the rows that found no match, of the rows read and of the rows used, and
        the unmatched keys with their counts and the closest known keys."""
        rows = [
            {
                "table": r.table,
                "column": lk.column,
                "from": lk.source,
                "rows_read": lk.rows_read,
                "no_match_read": lk.missed_read,
                "rows_used": lk.rows_used,
                "no_match_used": lk.missed_used,
                "unmatched keys": "; ".join(lk.describe(k, n) for k, n in lk.unmatched.items()),
            }
            for r in self.tables.values()
            for lk in r.lookups
        ]
        cols = ["table", "column", "from", "rows_read", "no_match_read", "rows_used"]
        return pd.DataFrame(rows, columns=[*cols, "no_match_used", "unmatched keys"])

    def metric_exclusions_frame(self) -> pd.DataFrame:
        """Rows used in general but left out of one KPI for a gap in their data (not for their
        status: see :meth:`populations_frame`)."""
        rows = [
            {"table": r.table, "metric": m.metric, "rows": m.rows, "reason": m.reason}
            for r in self.tables.values()
            for m in r.metric_exclusions
        ]
        return pd.DataFrame(rows, columns=["table", "metric", "rows", "reason"])
