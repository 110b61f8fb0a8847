"""The data-quality report: rows read, used and excluded per table, by rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from ..errors import ParameterError
from ._schema import RULE_TEXT

__all__ = ["MetricExclusion", "TableReport", "QualityReport"]


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

    @property
    def rows_excluded(self) -> int:
        return sum(self.excluded.values())

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows_excluded"] = self.rows_excluded
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
            "missing_tables": list(self.missing_tables),
            "tables": {name: rep.to_dict() for name, rep in self.tables.items()},
        }

    _EMPTY = {
        "overview": "Nothing was loaded.",
        "summary": "No table was loaded.",
        "issues": "Every rule passed: no row was excluded or flagged.",
        "metric_exclusions": "Every used row counts in every metric.",
    }

    def table(self, name: str):
        """A display-ready table (pandas Styler): no index, 1,234-style counts, and a sentence
        instead of bare headers when it is empty.

        ``name`` is one of "overview", "summary", "issues", "metric_exclusions".
        """
        frames = {
            "overview": self.overview_frame,
            "summary": self.summary_frame,
            "issues": self.issues_frame,
            "metric_exclusions": self.metric_exclusions_frame,
        }
        if name not in frames:
            raise ParameterError(f"table name {name!r} is not one of {', '.join(frames)}.")
        frame = frames[name]()
        if frame.empty:
            frame = pd.DataFrame({"": [self._EMPTY[name]]})
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
        rows += [("warning", w) for w in self.warnings]
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

    def metric_exclusions_frame(self) -> pd.DataFrame:
        """Rows used in general but left out of one metric."""
        rows = [
            {"table": r.table, "metric": m.metric, "rows": m.rows, "reason": m.reason}
            for r in self.tables.values()
            for m in r.metric_exclusions
        ]
        return pd.DataFrame(rows, columns=["table", "metric", "rows", "reason"])
