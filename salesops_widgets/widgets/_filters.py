"""The filter bar: a period (preset or custom dates) and a multi-select per dimension.

``bar.selection`` is ready to pass to any KPI function: ``metrics.segment_kpis(data,
**bar.selection)``. Periods are relative to the data's as-of date, never to today.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ipywidgets as w
import traitlets as t

from .._dates import date_parameter
from ..data import SalesData
from ..errors import ParameterError, SalesOpsError
from ..metrics import DIMENSIONS, available_dimensions, deals
from ._html import COLORS, esc, message_html, style
from ._static import static_mimebundle

__all__ = [
    "PRESETS",
    "FILTER_DIMENSIONS",
    "FilterBar",
    "filter_options",
    "period_for_preset",
    "previous_period",
]

PRESETS: dict[str, str] = {
    "all": "All time",
    "last_90_days": "Last 90 days",
    "this_quarter": "This quarter",
    "last_quarter": "Last quarter",
    "ytd": "Year to date",
    "last_12_months": "Last 12 months",
    "custom": "Custom",
}
# low-cardinality dimensions shown by default, in this order, when the data has them
FILTER_DIMENSIONS = (
    "region",
    "industry",
    "size_band",
    "team",
    "product_family",
    "deal_type",
    "lead_source",
)
MAX_OPTIONS = 200
_DATE_FIELDS = {"created_date": "Created in period", "closed_date": "Closed in period"}

Period = tuple[_dt.date | None, _dt.date | None]


def _quarter_start(day: _dt.date) -> _dt.date:
    return _dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _months_back(day: _dt.date, months: int) -> _dt.date:
    """``day`` moved back by whole months, clipped to the month's last day (29 Feb → 28 Feb)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return _dt.date(year, month + 1, min(day.day, last))


def period_for_preset(preset: str, as_of: _dt.date) -> Period:
    """The (start, end) dates, inclusive, of a period preset relative to ``as_of``.

    ``"all"`` is ``(None, None)``. ``"custom"`` has no dates of its own (pass a period).

    Examples
    --------
    >>> import datetime as dt
    >>> period_for_preset("last_quarter", dt.date(2025, 2, 14))
    (datetime.date(2024, 10, 1), datetime.date(2024, 12, 31))
    >>> period_for_preset("last_90_days", dt.date(2025, 3, 31))  # 90 days, both ends counted
    (datetime.date(2025, 1, 1), datetime.date(2025, 3, 31))
    """
    key = _preset_key(preset)
    as_of = date_parameter(as_of, "as_of")
    if as_of is None:
        raise ParameterError("as_of is missing: presets are relative to the data's as-of date.")
    if key == "all":
        return (None, None)
    if key == "custom":
        raise ParameterError("preset 'custom' has no dates of its own; set period=(start, end).")
    if key == "last_90_days":
        return (as_of - _dt.timedelta(days=89), as_of)
    if key == "this_quarter":
        return (_quarter_start(as_of), as_of)
    if key == "last_quarter":
        end = _quarter_start(as_of) - _dt.timedelta(days=1)
        return (_quarter_start(end), end)
    if key == "ytd":
        return (_dt.date(as_of.year, 1, 1), as_of)
    # last_12_months
    return (_months_back(as_of, 12) + _dt.timedelta(days=1), as_of)


def previous_period(start: Any, end: Any) -> tuple[_dt.date, _dt.date]:
    """The period of the same length just before ``(start, end)``: the comparison for deltas.

    A period of whole calendar months (a quarter, a year) compares with the same number of
    months before it; any other period with the same number of days before it.

    Examples
    --------
    >>> import datetime as dt
    >>> previous_period(dt.date(2025, 1, 1), dt.date(2025, 3, 31))  # Q1 -> Q4
    (datetime.date(2024, 10, 1), datetime.date(2024, 12, 31))
    >>> previous_period("2025-03-10", "2025-03-19")  # 10 days -> the 10 days before
    (datetime.date(2025, 2, 28), datetime.date(2025, 3, 9))
    """
    start, end = date_parameter(start, "period start"), date_parameter(end, "period end")
    if start is None or end is None:
        raise ParameterError(
            "previous_period needs both a start and an end; an open-ended period (such as "
            "'All time') has no period before it to compare with."
        )
    if start > end:
        raise ParameterError(f"period start {start} is after its end {end}; swap them.")
    before = start - _dt.timedelta(days=1)
    if start.day == 1 and (end + _dt.timedelta(days=1)).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        return (_months_back(start, months), before)
    return (start - (end - start) - _dt.timedelta(days=1), before)


def _preset_key(preset: str) -> str:
    if preset in PRESETS:
        return preset
    by_label = {label.lower(): key for key, label in PRESETS.items()}
    if str(preset).lower() in by_label:
        return by_label[str(preset).lower()]
    raise ParameterError(
        f"preset={preset!r} is not a period preset. Use one of: "
        f"{', '.join(repr(k) for k in PRESETS)}."
    )


def filter_options(data: SalesData, dimensions: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """Each dimension's values with their deal counts, from one engine query.

    Values are sorted by name, with ``(not set)`` last.
    """
    if not dimensions:
        return {}
    import ibis

    d = deals(data)
    parts = [d.select(dimension=ibis.literal(dim), value=d[dim]) for dim in dimensions]
    union = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
    counts = union.group_by(["dimension", "value"]).agg(n=union.count()).to_pandas()
    out: dict[str, list[tuple[str, int]]] = {dim: [] for dim in dimensions}
    for dim, value, n in counts.itertuples(index=False, name=None):
        out[dim].append((str(value), int(n)))
    for values in out.values():
        values.sort(key=lambda vn: (vn[0] == "(not set)", vn[0].lower()))
    return out


def _choose_dimensions(data: SalesData, dimensions: Iterable[str] | None) -> list[str]:
    present = available_dimensions(data)
    if dimensions is None:
        return [d for d in FILTER_DIMENSIONS if d in present]
    dims = [dimensions] if isinstance(dimensions, str) else list(dimensions)
    for dim in dims:
        if dim not in DIMENSIONS:
            raise ParameterError(
                f"dimensions={dim!r} is not a dimension. Known dimensions: {', '.join(DIMENSIONS)}."
            )
        if dim not in present:
            raise ParameterError(
                f"dimensions={dim!r} is not in this data (available: {', '.join(present)}); "
                f"map its column in the mapping, or leave it out."
            )
    return dims


class FilterBar(w.VBox):
    """Period and dimension filters whose ``selection`` feeds every KPI function.

    Parameters
    ----------
    data
        The loaded data; options come from its deals, presets from its as-of date.
    dimensions
        Dimensions to offer. Default: those of ``FILTER_DIMENSIONS`` that the data has, less the
        ones with more than ``MAX_OPTIONS`` values (``left_out``, named under the lists). A
        dimension named here with more than ``MAX_OPTIONS`` values is refused.
    period, date_field, preset, filters
        The initial state (see the traits). A ``period`` other than the preset's dates makes the
        preset "custom".

    Examples
    --------
    >>> bar = FilterBar(data, preset="ytd", filters={"region": ["EMEA"]})  # doctest: +SKIP
    >>> metrics.segment_kpis(data, by=["industry"], **bar.selection)  # doctest: +SKIP
    """

    filters = t.Dict(help="Dimension -> values kept; a dimension left out keeps every value.")
    period = t.Any((None, None), help="(start, end) dates, inclusive; None for an open end.")
    date_field = t.Unicode(
        "created_date", help="'created_date' (deals created in the period) or 'closed_date'."
    )
    preset = t.Unicode("all", help=f"Period preset, one of {', '.join(PRESETS)}.")
    selection = t.Dict(
        read_only=True, help="{'filters', 'period', 'date_field'}: pass as **selection."
    )
    dimensions = t.List(t.Unicode(), read_only=True, help="The dimensions offered, in order.")
    options = t.Dict(read_only=True, help="Dimension -> [(value, deal count)], from the data.")

    def __init__(
        self,
        data: SalesData,
        *,
        dimensions: Iterable[str] | None = None,
        period: tuple[Any, Any] = (None, None),
        date_field: str = "created_date",
        preset: str = "all",
        filters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.data = data
        self.as_of = data.as_of
        dims = _choose_dimensions(data, dimensions)
        options = filter_options(data, dims)
        # too many values for a list: refused when asked for by name, left out (and said so)
        # when the bar chose its dimensions itself
        self.left_out = {d: len(v) for d, v in options.items() if len(v) > MAX_OPTIONS}
        for dim, n in self.left_out.items():
            if dimensions is not None:
                raise ParameterError(
                    f"dimensions={dim!r} has {n:,} values, too many for a filter list "
                    f"(at most {MAX_OPTIONS}); pass filters={{'{dim}': [...]}} to the metrics "
                    f"functions instead, or choose a dimension with fewer values."
                )
        dims = [d for d in dims if d not in self.left_out]
        self._unlisted = {d: {v for v, _ in options.pop(d)} for d in self.left_out}
        self.set_trait("dimensions", dims)
        self.set_trait("options", options)
        preset = self._initial_preset(preset, period)
        self._syncing = False
        self._build_controls()
        super().__init__(children=self._layout_children(), **kwargs)
        self.date_field = date_field
        self.filters = dict(filters or {})
        self.preset = preset
        if preset == "custom":
            self.period = tuple(period)
        self._initial = (dict(self.filters), tuple(self.period), self.date_field, self.preset)
        self._update("init")

    # ----------------------------------------------------------------------------- validation

    def _initial_preset(self, preset: str, period: tuple[Any, Any]) -> str:
        key = _preset_key(preset)
        start, end = self._check_period(period)
        if (start, end) == (None, None) or key == "custom":
            return key
        if key == "all":
            return "custom"
        if period_for_preset(key, self.as_of) != (start, end):
            raise ParameterError(
                f"preset={key!r} and period={period!r} disagree; give either a preset or a "
                f"period (a period alone is a custom period)."
            )
        return key

    @staticmethod
    def _check_period(period: Any) -> Period:
        if period is None:
            return (None, None)
        if isinstance(period, str) or len(period) != 2:
            raise ParameterError(
                f"period={period!r} must be two dates (start, end); use None for an open end."
            )
        start = date_parameter(period[0], "period start")
        end = date_parameter(period[1], "period end")
        if start and end and start > end:
            raise ParameterError(f"period start {start} is after its end {end}; swap them.")
        return (start, end)

    @t.validate("period")
    def _valid_period(self, proposal: dict) -> Period:
        return self._check_period(proposal["value"])

    @t.validate("preset")
    def _valid_preset(self, proposal: dict) -> str:
        return _preset_key(proposal["value"])

    @t.validate("date_field")
    def _valid_date_field(self, proposal: dict) -> str:
        value = proposal["value"]
        if value not in _DATE_FIELDS:
            raise ParameterError(
                f"date_field={value!r} must be 'created_date' (deals created in the period) or "
                f"'closed_date' (deals closed in it)."
            )
        if value == "closed_date" and not self.data.has("opportunities", "close_date"):
            raise ParameterError(
                "date_field='closed_date' needs close_date on opportunities; map "
                "tables.opportunities.columns.close_date, or use 'created_date'."
            )
        return value

    @t.validate("filters")
    def _valid_filters(self, proposal: dict) -> dict[str, list[str]]:
        clean: dict[str, list[str]] = {}
        for dim, values in proposal["value"].items():
            if dim not in self.dimensions and dim not in self._unlisted:
                raise ParameterError(
                    f"filters has dimension {dim!r}, which this filter bar does not offer "
                    f"(it offers: {', '.join(self.dimensions) or 'none'}). Pass "
                    f"dimensions=[..., {dim!r}] to FilterBar, or remove it from filters."
                )
            if values is None or values == "All" or values == "":
                continue
            values = [values] if isinstance(values, str) else [str(v) for v in values]
            known = (
                [v for v, _ in self.options[dim]]
                if dim in self.options
                else sorted(self._unlisted[dim])
            )
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ParameterError(
                    f"filters[{dim!r}] has {', '.join(map(repr, unknown))}, not a value of {dim} "
                    f"in this data. Its values: {', '.join(known[:30])}"
                    f"{', …' if len(known) > 30 else ''}."
                )
            if values:
                clean[dim] = values
        return clean

    # ----------------------------------------------------------------------------- state -> view

    @t.observe("filters", "period", "date_field", "preset")
    def _on_change(self, change: dict) -> None:
        self._update(change["name"])

    def _update(self, changed: str) -> None:
        """Keep preset and period consistent, then mirror the state in the controls and in
        ``selection``."""
        if changed == "preset" and self.preset != "custom":
            dates = period_for_preset(self.preset, self.as_of)
            if tuple(self.period) != dates:
                self.period = dates  # comes back here as a "period" change
                return
        if (
            changed == "period"
            and self.preset != "custom"
            and tuple(self.period) != period_for_preset(self.preset, self.as_of)
        ):
            self.preset = "custom"
            return
        self._sync_controls()
        start, end = self.period
        self.set_trait(
            "selection",
            {
                "filters": {k: list(v) for k, v in self.filters.items()},
                "period": None if (start, end) == (None, None) else (start, end),
                "date_field": self.date_field,
            },
        )

    def comparison_selection(self) -> dict[str, Any] | None:
        """``selection`` with the period just before this one (for KPI deltas); None when the
        period is open-ended (nothing before "All time")."""
        start, end = self.period
        if start is None or end is None:
            return None
        return {**self.selection, "period": previous_period(start, end)}

    def reset(self) -> None:
        """Back to the state the bar was created with."""
        filters, period, date_field, preset = self._initial
        self.filters = dict(filters)
        self.date_field = date_field
        self.preset = preset
        if preset == "custom":
            self.period = period
        self._message.value = ""

    # ----------------------------------------------------------------------------- controls

    def _build_controls(self) -> None:
        self._preset = w.Dropdown(
            options=[(label, key) for key, label in PRESETS.items()],
            description="Period",
            layout=w.Layout(width="220px"),
        )
        self._start = w.DatePicker(description="From", layout=w.Layout(width="200px"))
        self._end = w.DatePicker(description="To", layout=w.Layout(width="200px"))
        fields = [(label, key) for key, label in _DATE_FIELDS.items()]
        if not self.data.has("opportunities", "close_date"):
            fields = fields[:1]
        self._date_field = w.Dropdown(options=fields, layout=w.Layout(width="170px"))
        self._reset = w.Button(description="Reset", tooltip="Back to the initial filters")
        as_of = style(color=COLORS["neutral"], font_size="12px", padding="4px 8px")
        self._as_of = w.HTML(f"<span {as_of}>Data as of <b>{esc(self.as_of)}</b></span>")
        self._selects = {
            dim: w.SelectMultiple(
                options=[(f"{value} ({n:,})", value) for value, n in self.options[dim]],
                rows=min(5, max(2, len(self.options[dim]))),
                layout=w.Layout(width="180px"),
            )
            for dim in self.dimensions
        }
        self._message = w.HTML()
        for control in (self._preset, self._start, self._end, self._date_field):
            control.observe(self._on_control, names="value")
        for select in self._selects.values():
            select.observe(self._on_control, names="value")
        self._reset.on_click(lambda _: self.reset())

    def _layout_children(self) -> list[w.Widget]:
        row = w.HBox(
            [self._preset, self._start, self._end, self._date_field, self._reset, self._as_of],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        columns = [
            w.VBox(
                [w.HTML(f"<b>{esc(dim.replace('_', ' ').capitalize())}</b>"), select],
                layout=w.Layout(margin="0 8px 0 0"),
            )
            for dim, select in self._selects.items()
        ]
        dims = w.HBox(columns, layout=w.Layout(flex_flow="row wrap"))
        return [row, dims, w.HTML(self._left_out_html()), self._message]

    def _left_out_html(self) -> str:
        """Which dimensions have too many values for a list, and how to filter them."""
        if not self.left_out:
            return ""
        parts = [f"{dim.replace('_', ' ')} ({n:,} values)" for dim, n in self.left_out.items()]
        example = next(iter(self.left_out))
        css = style(color=COLORS["neutral"], font_size="13px")
        return (
            f"<p {css}>Not offered as lists, too many values: {esc(', '.join(parts))}. Filter "
            f"them in the parameters cell, e.g. filters={esc(repr({example: ['...']}))}.</p>"
        )

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            self._preset.value = self.preset
            self._start.value, self._end.value = self.period
            self._date_field.value = self.date_field
            for dim, select in self._selects.items():
                select.value = tuple(self.filters.get(dim, ()))
        finally:
            self._syncing = False

    def _on_control(self, change: dict) -> None:
        if self._syncing:
            return
        owner = change["owner"]
        try:
            if owner is self._preset:
                self.preset = owner.value
            elif owner is self._start or owner is self._end:
                self.period = (self._start.value, self._end.value)
            elif owner is self._date_field:
                self.date_field = owner.value
            else:
                listed = {d: list(s.value) for d, s in self._selects.items() if s.value}
                kept = {d: v for d, v in self.filters.items() if d not in self._selects}
                self.filters = {**kept, **listed}  # filters on dimensions not listed stay
            self._message.value = ""
        except SalesOpsError as exc:
            self._message.value = message_html(str(exc), kind="error")
            self._sync_controls()

    def to_static_html(self) -> str:
        """The selection in words (for a static report)."""
        parts = [f"{dim} = {', '.join(values)}" for dim, values in self.filters.items()]
        start, end = self.period
        if (start, end) != (None, None):
            field = _DATE_FIELDS[self.date_field].split()[0].lower()
            parts.append(f"{field} {start or '…'} to {end or '…'}")
        text = "; ".join(parts) or "all deals"
        css = style(color=COLORS["neutral"], font_size="13px")
        return f"<p {css}>Showing: {esc(text)} (data as of {esc(self.as_of)})</p>"

    _repr_mimebundle_ = static_mimebundle
