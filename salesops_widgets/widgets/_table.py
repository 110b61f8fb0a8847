"""A sortable, formatted HTML table of a small DataFrame, with small-n rows marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from ..errors import ParameterError
from ._format import KINDS, guess_kind
from ._html import COLORS, esc, html_table, style
from ._refresh import NO_DEALS, EmptyState
from ._static import static_mimebundle

__all__ = ["DataTable"]

_NOT_RATES = ("_low", "_high", "share")


class DataTable(w.VBox):
    """A table that sorts on the raw values and shows them formatted.

    Parameters
    ----------
    df
        The rows (a small, aggregated frame: a KPI table, a deal list).
    formats
        Column -> kind (money, percent, days, count, ratio, number, date, text). Columns not
        listed get a kind guessed from their name (``win_rate`` → percent, ``bookings`` →
        money, ``*_days`` → days) or dtype.
    currency
        ISO code for money columns (e.g. ``data.base_currency``).
    sort_by, ascending
        Initial sort (None: the frame's order).
    small_n
        A boolean column marking rows with too few deals: they are greyed, and their rate
        columns show "too few to say". The column itself is not shown.
    small_n_columns
        The columns blanked in small-n rows (default: percent and ratio columns, except
        interval bounds and shares).
    title
        Shown above the table.
    max_rows
        Rows shown (the export holds all of them).
    labels
        Column -> header text (default: the name with spaces for underscores).
    """

    data = t.Instance(pd.DataFrame, help="The rows shown (unformatted values).")
    sort_by = t.Unicode(None, allow_none=True, help="Column sorted on (None: frame order).")
    ascending = t.Bool(False, help="Sort ascending (False: largest first).")
    formats = t.Dict(help="Column -> display kind; other columns are guessed.")
    currency = t.Unicode(None, allow_none=True, help="ISO currency code for money columns.")
    small_n = t.Unicode(
        "small_n", allow_none=True, help="Boolean column marking rows with too few deals."
    )
    title = t.Unicode("", help="Title shown above the table.")
    max_rows = t.Int(200, help="At most this many rows are shown.")
    empty_message = t.Unicode(NO_DEALS, help="Shown instead of an empty table.")

    def __init__(
        self,
        df: pd.DataFrame | None = None,
        *,
        formats: Mapping[str, str] | None = None,
        currency: str | None = None,
        sort_by: str | None = None,
        ascending: bool = False,
        small_n: str | None = "small_n",
        small_n_columns: Sequence[str] | None = None,
        title: str = "",
        max_rows: int = 200,
        labels: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._ready = False
        self._small_n_columns = None if small_n_columns is None else list(small_n_columns)
        self._labels = dict(labels or {})
        self._syncing = False
        self._title = w.HTML()
        self._sort = w.Dropdown(description="Sort by", layout=w.Layout(width="260px"))
        self._order = w.ToggleButtons(
            options=[("Largest first", False), ("Smallest first", True)],
            style={"button_width": "110px"},
        )
        self._table = w.HTML()
        self._controls = w.HBox([self._sort, self._order])
        self._empty = EmptyState()
        self._sort.observe(self._on_control, names="value")
        self._order.observe(self._on_control, names="value")
        super().__init__(**kwargs)
        # one by one (a hold_trait_notifications block would notify with a value that failed
        # validation), with the view built once at the end
        self._ready = False
        self.data = pd.DataFrame() if df is None else df
        self.formats = dict(formats or {})
        self.currency = currency
        self.small_n = small_n
        self.title = title
        self.max_rows = max_rows
        self.sort_by = sort_by
        self.ascending = ascending
        self._ready = True
        self._update()

    # ----------------------------------------------------------------------------- validation

    @t.validate("data")
    def _valid_data(self, proposal: dict) -> pd.DataFrame:
        frame = proposal["value"]
        if frame is None:
            return pd.DataFrame()
        return frame.reset_index(drop=True)

    @t.validate("sort_by")
    def _valid_sort_by(self, proposal: dict) -> str | None:
        column = proposal["value"]
        if column is not None and column not in self.data.columns:
            raise ParameterError(
                f"sort_by={column!r} is not a column of this table (columns: "
                f"{', '.join(map(str, self.data.columns))})."
            )
        return column

    @t.validate("formats")
    def _valid_formats(self, proposal: dict) -> dict[str, str]:
        for column, kind in proposal["value"].items():
            if kind not in KINDS:
                raise ParameterError(
                    f"formats[{column!r}]={kind!r} is not a format; use one of {', '.join(KINDS)}."
                )
        return dict(proposal["value"])

    @t.validate("max_rows")
    def _valid_max_rows(self, proposal: dict) -> int:
        if proposal["value"] < 1:
            raise ParameterError(f"max_rows={proposal['value']!r} must be 1 or more.")
        return proposal["value"]

    # ----------------------------------------------------------------------------- state

    def kinds(self) -> dict[str, str]:
        """Column -> display kind, for every column of ``data``."""
        return {
            c: self.formats.get(c) or guess_kind(c, self.data[c].dtype) for c in self.data.columns
        }

    def sorted_data(self) -> pd.DataFrame:
        """All rows in the current order, unformatted (what an export holds)."""
        frame = self.data
        if self.sort_by is None or frame.empty:
            return frame.copy()
        try:
            out = frame.sort_values(
                self.sort_by, ascending=self.ascending, na_position="last", kind="mergesort"
            )
        except TypeError:  # mixed types in an object column: sort on their text
            out = frame.sort_values(
                self.sort_by,
                ascending=self.ascending,
                na_position="last",
                kind="mergesort",
                key=lambda s: s.astype(str),
            )
        return out.reset_index(drop=True)

    def view(self) -> pd.DataFrame:
        """The rows shown: sorted, at most ``max_rows``, without the small-n column."""
        shown = self.sorted_data().head(self.max_rows)
        if self.small_n in shown.columns:
            shown = shown.drop(columns=[self.small_n])
        return shown

    def _small_rows(self, frame: pd.DataFrame) -> list[bool]:
        if self.small_n not in frame.columns:
            return [False] * len(frame)
        return [bool(v) and not pd.isna(v) for v in frame[self.small_n]]

    def _blank_columns(self, kinds: Mapping[str, str]) -> list[str]:
        if self._small_n_columns is not None:
            return self._small_n_columns
        return [
            c
            for c, kind in kinds.items()
            if kind in ("percent", "ratio") and not str(c).endswith(_NOT_RATES)
        ]

    # ----------------------------------------------------------------------------- state -> view

    @t.observe(
        "data", "sort_by", "ascending", "formats", "currency", "small_n", "title", "max_rows"
    )
    def _on_change(self, change: dict) -> None:
        if self._ready:
            self._update()

    def _update(self) -> None:
        if self.sort_by is not None and self.sort_by not in self.data.columns:
            self.sort_by = None  # the new data has no such column; comes back here
            return
        self._sync_controls()
        title = f"<h4 {style(margin='4px 0')}>{esc(self.title)}</h4>" if self.title else ""
        self._title.value = title
        self._table.value = self._table_html()
        if self.data.empty:
            self._empty.message = self.empty_message
            self.children = [self._title, self._empty]
        else:
            self.children = [self._title, self._controls, self._table]

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            options = [("(as given)", None)] + [
                (self._labels.get(c, str(c).replace("_", " ")), c) for c in self.data.columns
            ]
            with self._sort.hold_sync():
                if list(self._sort.options) != options:
                    self._sort.options = options
                self._sort.value = self.sort_by
            self._order.value = self.ascending
        finally:
            self._syncing = False

    def _on_control(self, change: dict) -> None:
        if self._syncing:
            return
        with self.hold_trait_notifications():
            self.sort_by = self._sort.value
            self.ascending = self._order.value

    def _table_html(self) -> str:
        full = self.sorted_data().head(self.max_rows)
        kinds = self.kinds()
        shown = self.view()
        labels = {c: self._labels.get(c, str(c).replace("_", " ")) for c in shown.columns}
        table = html_table(
            shown,
            kinds,
            currency=self.currency,
            small_rows=self._small_rows(full),
            blank_columns=self._blank_columns(kinds),
            labels=labels,
        )
        note = ""
        if len(self.data) > self.max_rows:
            css = style(color=COLORS["muted"], font_size="12px")
            note = f"<div {css}>Showing {self.max_rows:,} of {len(self.data):,} rows.</div>"
        scroll = style(max_height="480px", overflow="auto")
        return f'<div class="salesops-table-wrap" {scroll}>{table}</div>{note}'

    def to_static_html(self) -> str:
        title = f"<h4>{esc(self.title)}</h4>" if self.title else ""
        if self.data.empty:
            return title + self._empty.to_static_html()
        return title + self._table_html()

    _repr_mimebundle_ = static_mimebundle
