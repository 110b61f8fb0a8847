"""Small helpers the dashboards share: which dimensions to offer and how to name them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as w

from ..data import SalesData
from ..errors import MissingDataError
from ..metrics import available_dimensions
from ..widgets import static_mimebundle
from ..widgets._html import esc

__all__ = [
    "SEGMENT_DIMENSIONS",
    "Controls",
    "Grid",
    "Panel",
    "attempt",
    "dimension_label",
    "dimension_options",
    "filter_arguments",
    "p_text",
]

# dimensions that make readable segments (ids and names of single deals or accounts do not)
SEGMENT_DIMENSIONS = (
    "size_band",
    "industry",
    "region",
    "country",
    "team",
    "manager",
    "owner",
    "rep_region",
    "product_family",
    "product",
    "deal_type",
    "lead_source",
    "pipeline",
    "loss_reason",
)
_LABELS = {"size_band": "Company size", "rep_region": "Rep region", "owner": "Rep"}


def dimension_options(data: SalesData) -> list[str]:
    """The segment dimensions this data has, in SEGMENT_DIMENSIONS order."""
    have = set(available_dimensions(data))
    return [d for d in SEGMENT_DIMENSIONS if d in have]


def dimension_label(dim: str) -> str:
    """A dimension's name for titles: "size_band" -> "Company size", "deal_type" -> "Deal type"."""
    return _LABELS.get(dim, dim.replace("_", " ").capitalize())


# --------------------------------------------------------------------------------------------------
# Boxes with the kit's static fallback (papermill runs and HTML reports show their content)


class Panel(w.VBox):
    """A vertical group of dashboard parts; statically, their static renderings in order."""

    _repr_mimebundle_ = static_mimebundle


class Grid(w.GridBox):
    """Charts side by side (two columns); statically, each chart's SVG in order."""

    _repr_mimebundle_ = static_mimebundle

    def __init__(self, children: Sequence[w.Widget] = (), **kwargs: Any) -> None:
        layout = w.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="8px")
        super().__init__(children=list(children), layout=layout, **kwargs)


def _setting(widget: w.Widget) -> str | None:
    """ "Description: value" of an input control, or None for anything else."""
    label = getattr(widget, "description", "")
    if not label or not isinstance(widget, w.ValueWidget):
        return None
    shown = getattr(widget, "label", None)
    if isinstance(shown, tuple):
        shown = ", ".join(shown) or "(none)"
    return f"{esc(label)}: <b>{esc(shown if shown is not None else widget.value)}</b>"


class Controls(w.HBox):
    """The dashboard's own controls (and its busy indicator); statically, one line that says
    what they are set to, so a report says what it shows."""

    _repr_mimebundle_ = static_mimebundle

    def to_static_html(self) -> str:
        settings = [s for s in map(_setting, _leaves(self)) if s]
        return f'<p class="salesops-settings">{" · ".join(settings)}</p>' if settings else ""


def _leaves(widget: w.Widget) -> list[w.Widget]:
    if isinstance(widget, w.Box):
        return [leaf for child in widget.children for leaf in _leaves(child)]
    return [widget]


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or the MissingDataError saying what the view needs (the other
    views of the dashboard still show)."""
    try:
        return fn(*args, **kwargs)
    except MissingDataError as exc:
        return exc


def p_text(p: Any) -> str:
    """A p-value as read in a table: "< 0.001", "0.042", or "–" when there is no test."""
    if p is None or p != p:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# --------------------------------------------------------------------------------------------------
# Notebook parameters -> FilterBar arguments


def filter_arguments(
    period: str | tuple[Any, Any] | None,
    date_field: str = "created_date",
    filters: Mapping[str, Any] | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """FilterBar keyword arguments from notebook-style parameters.

    ``period`` is a preset key ("all", "last_90_days", "this_quarter", "last_quarter", "ytd",
    "last_12_months"), "YYYY-MM-DD..YYYY-MM-DD" (either side may be empty), or a (start, end)
    pair. ``region`` ("All" or "" for every region) is one more filter.
    """
    args: dict[str, Any] = {"date_field": date_field, "filters": dict(filters or {})}
    if region and region != "All":
        args["filters"]["region"] = [region]
    if period is None or period == "":
        args["preset"] = "all"
    elif isinstance(period, str) and ".." in period:
        start, end = (part.strip() or None for part in period.split("..", 1))
        args["period"] = (start, end)
    elif isinstance(period, str):
        args["preset"] = period
    else:
        args["period"] = tuple(period)
    return args
