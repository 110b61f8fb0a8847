"""The drill-down: the deals behind a segment, a bar or a cell that was clicked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .. import metrics
from ..data import SalesData
from ..errors import ParameterError
from ._html import COLORS, esc, style
from ._refresh import Refresher
from ._static import static_mimebundle
from ._table import DataTable

__all__ = ["DetailView", "DETAIL_COLUMNS", "merge_filters"]

# shown when the data has them (the drill-down's point: who, how much, how discounted, how old)
DETAIL_COLUMNS = (
    "opportunity_id",
    "opportunity_name",
    "account",
    "owner",
    "stage",
    "amount",
    "discount",
    "created_date",
    "close_date",
    "age_days",
    "cycle_days",
)
_STATUSES = (None, "open", "won", "lost", "closed")
_SORT_WORDS = {
    "amount": "amount",
    "discount": "discount",
    "age_days": "age",
    "cycle_days": "cycle days",
    "created_date": "created date",
    "close_date": "close date",
}


def merge_filters(
    filters: Mapping[str, Sequence[Any]], extra: Mapping[str, Sequence[Any]]
) -> dict[str, list[str]] | None:
    """The filters of a selection narrowed by a click: the values in both, per dimension.

    Returns None when a dimension keeps no value at all (nothing can match). An empty list
    would mean "every value" to the KPI layer, so it is never returned.

    Examples
    --------
    >>> merge_filters({"region": ["EMEA", "APAC"]}, {"region": ["EMEA"], "team": ["Ent"]})
    {'region': ['EMEA'], 'team': ['Ent']}
    >>> merge_filters({"region": ["APAC"]}, {"region": ["EMEA"]}) is None
    True
    """
    out = {k: [str(v) for v in vs] for k, vs in filters.items() if vs}
    for dim, values in extra.items():
        values = [str(v) for v in values]
        if not values:
            continue
        out[dim] = [v for v in out[dim] if v in values] if dim in out else values
        if not out[dim]:
            return None
    return out


class DetailView(w.VBox):
    """The deals behind a selection and a clicked segment, largest first.

    Parameters
    ----------
    data
        The loaded data.
    columns
        The deal columns shown (default: ``DETAIL_COLUMNS`` that the data has, plus the
        dimensions that were clicked).
    top_n
        At most this many deals.
    sort
        Largest (or latest) first on this column: amount, discount, age_days, cycle_days,
        created_date or close_date.
    debounce
        Seconds of quiet before the list is queried again (0: at once).
    """

    selection = t.Dict(
        help="The selection: {'filters', 'period', 'date_field'} (e.g. FilterBar.selection)."
    )
    extra_filters = t.Dict(help="The clicked segment: dimension -> values (ChartView.selected).")
    status = t.Unicode(None, allow_none=True, help="open, won, lost, closed, or None for all.")
    top_n = t.Int(50, help="At most this many deals are listed.")
    sort = t.Unicode("amount", help="Largest first on this column.")
    deals = t.Instance(pd.DataFrame, read_only=True, help="The deals listed (unformatted).")

    def __init__(
        self,
        data: SalesData,
        *,
        columns: Sequence[str] | None = None,
        top_n: int = 50,
        sort: str = "amount",
        selection: Mapping[str, Any] | None = None,
        extra_filters: Mapping[str, Sequence[Any]] | None = None,
        status: str | None = None,
        debounce: float = 0.2,
        **kwargs: Any,
    ) -> None:
        self.data = data
        self._ready = False
        self._columns = None if columns is None else list(columns)
        self._header = w.HTML()
        self.table = DataTable(small_n=None, currency=data.base_currency, max_rows=10_000)
        self.refresher = Refresher(debounce=debounce)
        super().__init__(children=[self._header, self.refresher, self.table], **kwargs)
        self.set_trait("deals", pd.DataFrame())
        self._ready = False  # set one by one, queried once at the end
        self.top_n = top_n
        self.sort = sort
        self.status = status
        self.selection = dict(selection or {})
        self.extra_filters = dict(extra_filters or {})
        self._ready = True
        self._update(now=True)

    @t.validate("selection")
    def _valid_selection(self, proposal: dict) -> dict[str, Any]:
        unknown = set(proposal["value"]) - {"filters", "period", "date_field"}
        if unknown:
            raise ParameterError(
                f"selection has {', '.join(sorted(unknown))}; it takes only filters, period and "
                f"date_field (pass FilterBar.selection)."
            )
        return dict(proposal["value"])

    @t.validate("extra_filters")
    def _valid_extra(self, proposal: dict) -> dict[str, list[Any]]:
        out = {}
        for dim, values in proposal["value"].items():
            out[dim] = [values] if isinstance(values, str) else list(values)
        return out

    @t.validate("status")
    def _valid_status(self, proposal: dict) -> str | None:
        if proposal["value"] not in _STATUSES:
            raise ParameterError(
                f"status={proposal['value']!r} must be open, won, lost, closed, or None (all)."
            )
        return proposal["value"]

    @t.validate("top_n")
    def _valid_top_n(self, proposal: dict) -> int:
        if proposal["value"] < 1:
            raise ParameterError(f"top_n={proposal['value']!r} must be 1 or more.")
        return proposal["value"]

    @t.validate("sort")
    def _valid_sort(self, proposal: dict) -> str:
        if proposal["value"] not in _SORT_WORDS:
            raise ParameterError(
                f"sort={proposal['value']!r} must be one of {', '.join(_SORT_WORDS)}."
            )
        return proposal["value"]

    # ----------------------------------------------------------------------------- state -> view

    @t.observe("selection", "extra_filters", "status", "top_n", "sort")
    def _on_change(self, change: dict) -> None:
        if self._ready:
            self._update()

    def _update(self, now: bool = False) -> None:
        self._header.value = self._header_html()
        self.refresher.schedule(self._query, apply=self._show, now=now)

    def _query(self) -> pd.DataFrame:
        filters = merge_filters(self.selection.get("filters") or {}, self.extra_filters)
        if filters is None:
            return pd.DataFrame()
        frame = metrics.deal_list(
            self.data,
            filters=filters,
            period=self.selection.get("period"),
            date_field=self.selection.get("date_field", "created_date"),
            status=self.status,
            extra=tuple(self.extra_filters),
            sort=self.sort,
            top_n=self.top_n,
        )
        wanted = self._columns or [*DETAIL_COLUMNS, *self.extra_filters]
        return frame[[c for c in dict.fromkeys(wanted) if c in frame.columns]]

    def _show(self, frame: pd.DataFrame) -> None:
        self.set_trait("deals", frame)
        self.table.data = frame

    def follow(self, chart: Any) -> None:
        """Drill down on clicks: ``extra_filters`` follows ``chart.selected`` (a ChartView)."""
        chart.observe(lambda change: setattr(self, "extra_filters", change["new"]), "selected")
        self.extra_filters = dict(chart.selected)

    def segment_text(self) -> str:
        """Which deals these are, in words: "region = EMEA, team = Enterprise"."""
        filters = merge_filters(self.selection.get("filters") or {}, self.extra_filters)
        if filters is None:
            return "no deal (the clicked segment is outside the filters)"
        parts = [f"{dim} = {', '.join(map(str, values))}" for dim, values in filters.items()]
        if self.status:
            parts.append(f"status = {self.status}")
        period = self.selection.get("period")
        if period and any(p is not None for p in period):
            start, end = period
            word = "closed" if self.selection.get("date_field") == "closed_date" else "created"
            parts.append(f"{word} {start or '…'} to {end or '…'}")
        return ", ".join(parts) or "all deals"

    def _header_html(self) -> str:
        order = f"top {self.top_n} by {_SORT_WORDS[self.sort]}"
        css = style(margin="4px 0", color=COLORS["text"])
        return f"<h4 {css}>Deals behind: {esc(self.segment_text())} ({esc(order)})</h4>"

    def to_static_html(self) -> str:
        self.refresher.flush()
        if self.refresher.message:
            return self._header_html() + self.refresher.to_static_html()
        return self._header_html() + self.table.to_static_html()

    _repr_mimebundle_ = static_mimebundle
