"""The data-quality panel: rows read, used and excluded per table and by rule, collapsed."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from ..data import QualityReport, SalesData
from ..errors import ParameterError
from ._html import COLORS, esc, html_table, message_html, style
from ._static import static_mimebundle

__all__ = ["QualityPanel"]

_KINDS = {
    "rows_read": "count",
    "rows_used": "count",
    "rows_excluded": "count",
    "rows_flagged": "count",
    "rows": "count",
    "counted": "count",
    "left_out": "count",
    "empty": "count",
    "unparseable": "count",
    "no_match_read": "count",
    "no_match_used": "count",
}


def _section(title: str, frame: pd.DataFrame, empty: str) -> str:
    head = f"<h5 {style(margin='10px 0 4px 0')}>{esc(title)}</h5>"
    if frame.empty:
        return head + f"<p {style(color=COLORS['neutral'])}>{esc(empty)}</p>"
    labels = {c: str(c).replace("_", " ") for c in frame.columns}
    return head + html_table(frame, _KINDS, labels=labels)


class QualityPanel(w.Accordion):
    """A collapsed summary of what was loaded, used and excluded, and why.

    Parameters
    ----------
    data
        The loaded data (its ``report``), or a ``QualityReport``.
    """

    report = t.Instance(QualityReport, help="The data-quality report shown.")

    def __init__(self, data: SalesData | QualityReport, **kwargs: Any) -> None:
        report = data if isinstance(data, QualityReport) else getattr(data, "report", None)
        if not isinstance(report, QualityReport):
            raise ParameterError(
                f"QualityPanel needs the loaded data (salesops_widgets.load(...)) or its "
                f"report, not {type(data).__name__}."
            )
        self._html = w.HTML()
        super().__init__(children=[self._html], **kwargs)
        self.report = report
        self._update()

    @t.observe("report")
    def _on_change(self, change: dict) -> None:
        self._update()

    def _update(self) -> None:
        with self.hold_sync():
            self._html.value = self.body_html()
            self.set_title(0, self.title())
            self.selected_index = None  # collapsed

    def title(self) -> str:
        """One line: the opportunities used and excluded."""
        opp = self.report.tables.get("opportunities")
        if opp is None:
            return "Data quality: no opportunities table was loaded"
        flagged = sum(opp.flagged.values())
        text = (
            f"Data quality: {opp.rows_used:,} of {opp.rows_read:,} opportunities used, "
            f"{opp.rows_excluded:,} excluded"
        )
        text += f", {flagged:,} flagged" if flagged else ""
        starved = len(self.report.view_warnings)
        return text + (f"; {starved} view(s) cannot be computed" if starved else "")

    def body_html(self) -> str:
        """The panel's content: warnings, then per table, by rule, and per metric."""
        r = self.report
        parts = [message_html(f"Not usable: {r.fatal}", kind="error")] if r.fatal else []
        parts += [f"<p {style(color=COLORS['bad'])}>{esc(w_)}</p>" for w_ in r.all_warnings]
        sections = (
            ("Rows per table (rows read = rows used + rows excluded)", "summary"),
            ("Rows excluded or flagged, by rule", "issues"),
            ("Which deals each KPI counts (of the opportunities used)", "populations"),
            ("Empty or unparseable values per column (of the rows read)", "columns"),
            ("Lookups: keys that found no match", "lookups"),
        )
        for title, name in sections:
            frame = getattr(r, f"{name}_frame")()
            if name != "lookups" or len(frame):
                parts.append(_section(title, frame, r.EMPTY[name]))
        source = f"Source: {r.source} · mapping: {r.mapping} · as of {r.as_of or '–'}"
        parts.append(f"<p {style(color=COLORS['muted'], font_size='12px')}>{esc(source)}</p>")
        return "".join(parts)

    def to_static_html(self) -> str:
        return (
            f'<details class="salesops-quality"><summary>{esc(self.title())}</summary>'
            f"{self.body_html()}</details>"
        )

    _repr_mimebundle_ = static_mimebundle
