"""What every dashboard shares: the data, the filter bar, the status line, the deal detail and
its click path, the data-quality panel, and the one update path.

A dashboard is a small ``Dashboard`` subclass that declares its parts (``PARTS``). Each
``Part`` says what makes it stale and has two steps: ``_compute_<name>()`` asks the KPI layer
for its frames (and touches no widget), ``_apply_<name>(frames)`` turns them into the view.
Every refresh, clicks included, runs through the ``Refresher`` (``status``): debounced, busy
while it runs, a ``SalesOpsError`` shown as a sentence. Only the stale parts are recomputed;
the frames of every part are kept in one store, ``_frames``. The first render runs at once, so
a notebook executed by papermill holds results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import ipywidgets as w
import traitlets as t

from ..data import SalesData
from ..errors import ParameterError
from ..widgets import ChartView, DetailView, ExportBar, FilterBar, QualityPanel, Refresher
from ._common import Panel, dimension_label, dimension_options, filter_arguments
from ._preheated import follow_page

__all__ = ["DRILL", "FILTER_PARAMETERS", "Dashboard", "Part"]

# The notebook parameters that set the filter bar; a dashboard's other parameters are its traits.
FILTER_PARAMETERS = ("period", "date_field", "filters", "region")
_ROUNDS = 3  # refresh rounds at most: the parts a refresh makes stale (a click undone by a redraw)


@dataclass(frozen=True)
class Part:
    """One part of a dashboard.

    Attributes
    ----------
    name
        Its key in the store; its steps are the methods ``_compute_<name>()`` and
        ``_apply_<name>(frames)``.
    on
        What makes it stale: traits of the dashboard, ``"selection"`` (the filter bar), or
        parts declared before it (when they are recomputed, this one is applied again).
    computes
        False for a part with no compute step: ``_apply_<name>()`` re-reads the frames of the
        parts it is on (a click that narrows what they show).
    """

    name: str
    on: tuple[str, ...]
    computes: bool = True


DRILL = Part("drill", on=("drill",), computes=False)  # a click lists the deals behind it


class Dashboard(t.HasTraits):
    """The skeleton of a dashboard; subclasses declare ``PARTS`` and their two steps.

    Parameters
    ----------
    data
        The loaded data.
    period, date_field, filters, region
        The initial filter bar: ``period`` is a preset ("all", "last_90_days", "this_quarter",
        "last_quarter", "ytd", "last_12_months"), "YYYY-MM-DD..YYYY-MM-DD" or a (start, end)
        pair; ``region`` ("All" for every one) is one more filter (see ``FilterBar``).
    debounce
        Seconds of quiet before a change recomputes (0: at once).
    top_n, sort
        Deals listed in the drill-down, largest first on ``sort``.

    Attributes
    ----------
    filter_bar, drilldown, quality
        Sections every dashboard has, each displayable on its own.
    detail, status
        The deal list of the drill-down, and the busy indicator and error line of refreshes.

    A subclass sets its own traits after ``super().__init__``, builds its widgets, then calls
    ``_start()``: from then on every trait a part is ``on`` refreshes it.
    """

    PARTS: ClassVar[tuple[Part, ...]] = ()

    drill = t.Dict(help="The marks clicked last: field -> values (the drill-down follows).")

    def __init__(
        self,
        data: SalesData,
        *,
        period: str | tuple[Any, Any] = "all",
        date_field: str = "created_date",
        filters: Mapping[str, Any] | None = None,
        region: str = "All",
        debounce: float = 0.3,
        top_n: int = 50,
        sort: str = "amount",
    ) -> None:
        super().__init__()
        self.data = data
        self.top_n = int(top_n)
        self._options = dimension_options(data)
        self._frames: dict[str, Any] = {}
        self._dirty: set[str] = set()
        self._applying = False
        self.filter_bar = FilterBar(data, **filter_arguments(period, date_field, filters, region))
        self.status = Refresher(debounce=debounce)
        self.detail = DetailView(
            data, top_n=top_n, sort=sort, selection=self._selection(), debounce=debounce
        )
        self.quality = QualityPanel(data)
        self.drilldown = Panel([self.detail, ExportBar(table=self.detail.table, name="deals")])

    # ------------------------------------------------------------------------------ parameters

    def apply_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Show what notebook parameters ask for, as if the controls had been set to them.

        Parameters
        ----------
        parameters
            Name -> value, as the notebook's parameters cell declares them: the filter bar's
            (``period``, ``date_field``, ``filters``, ``region``; the bar is set to the ones
            given, the others at their defaults) and the dashboard's own (its keyword
            arguments). Those not given keep their value. One refresh follows, as after a
            click on the controls.

        Raises
        ------
        ParameterError
            A name that is not a parameter of this dashboard, or a bad value (nothing is set).
        """
        values = dict(parameters)
        bar = {name: values.pop(name) for name in FILTER_PARAMETERS if name in values}
        unknown = sorted(name for name in values if not self.has_trait(name))
        if unknown:
            raise ParameterError(
                f"{type(self).__name__} has no parameter {', '.join(map(repr, unknown))}; its "
                f"parameters are {', '.join(FILTER_PARAMETERS)} and its keyword arguments."
            )
        with self.hold_trait_notifications():
            self._set_parameters(**values)
        if bar:
            self._set_filters(bar)

    def _set_parameters(self, **values: Any) -> None:
        """Set the dashboard's own parameters (the constructor's and ``apply_parameters``'
        one path); a subclass converts notebook-style values first."""
        for name, value in values.items():
            setattr(self, name, value)

    def _set_filters(self, values: Mapping[str, Any]) -> None:
        args = filter_arguments(
            values.get("period", "all"),
            values.get("date_field", "created_date"),
            values.get("filters"),
            values.get("region"),
        )
        bar = self.filter_bar
        bar.filters = args["filters"]
        bar.date_field = args["date_field"]
        if "period" in args:
            bar.period = args["period"]
        else:
            bar.preset = args["preset"]

    # ------------------------------------------------------------------------------ helpers

    def _selection(self) -> dict[str, Any]:
        """The filter bar's selection, to pass as ``**selection`` to the KPI layer."""
        return dict(self.filter_bar.selection)

    def _dimension(self, value: str, name: str) -> str:
        """``value`` if it is a segment dimension of this data; a ParameterError otherwise."""
        if value not in self._options:
            raise ParameterError(
                f"{name}={value!r} is not a dimension this data has; choose one of "
                f"{', '.join(self._options)}."
            )
        return value

    def _dimension_control(self, trait: str, description: str = "Segments") -> w.Dropdown:
        """A dropdown of the data's dimensions, linked to the trait ``trait``."""
        options = [(dimension_label(d), d) for d in self._options]
        drop = w.Dropdown(options=options, description=description)
        w.link((self, trait), (drop, "value"))
        return drop

    # ------------------------------------------------------------------------------ clicks

    def _follow_clicks(self, *views: ChartView) -> None:
        """A click on any of these charts sets ``drill``."""
        for view in views:
            view.observe(self._on_click, "selected")

    def _on_click(self, change: dict) -> None:
        self.drill = dict(change["new"])

    def _apply_drill(self) -> None:
        """The deals behind the click: the clicked fields narrow the drill-down."""
        self.detail.extra_filters = dict(self.drill)

    # ------------------------------------------------------------------------------ update path

    def _start(self) -> None:
        """Follow what every part is on, then render every part at once (a bad parameter
        raises here, so a notebook stops at it). In a preheated Voilà kernel, the page's URL
        parameters are applied when its request comes (``_preheated``)."""
        traits = {name for part in self.PARTS for name in part.on if self.has_trait(name)}
        self.filter_bar.observe(self._on_change, "selection")
        self.observe(self._on_change, sorted(traits))
        self._apply(self._compute({part.name for part in self.PARTS}))
        follow_page(self)

    def _on_change(self, change: dict) -> None:
        self._schedule(["selection" if change["owner"] is self.filter_bar else change["name"]])

    def _schedule(self, changed: Iterable[str]) -> None:
        """One refresh of the parts that ``changed`` (traits, "selection" or parts) makes stale;
        within a refresh, that same refresh takes them up."""
        self._dirty |= self._stale(set(changed))
        if not self._applying:
            self.status.schedule(self._compute_dirty, apply=self._apply)

    def _stale(self, changed: set[str]) -> set[str]:
        """The parts ``changed`` makes stale, with the parts that are on them."""
        stale: set[str] = set()
        for part in self.PARTS:
            if part.name in changed or not (changed | stale).isdisjoint(part.on):
                stale.add(part.name)
        return stale

    def _compute_dirty(self) -> dict[str, Any]:
        names = set(self._dirty)
        frames = self._compute(names)
        self._dirty -= names  # kept when a step fails: the next refresh tries them again
        return frames

    def _compute(self, names: set[str]) -> dict[str, Any]:
        """The compute step of the parts ``names``: part -> frames (None: no compute step)."""
        return {
            part.name: getattr(self, f"_compute_{part.name}")() if part.computes else None
            for part in self.PARTS
            if part.name in names
        }

    def _apply(self, frames: dict[str, Any]) -> None:
        """The apply step of the parts computed, in order. A chart they redraw drops its click;
        the parts that follow it are taken up in this same refresh."""
        self._applying = True
        try:
            for _ in range(_ROUNDS):
                self._show(frames)
                if not self._dirty:
                    break
                frames = self._compute_dirty()
        finally:
            self._applying = False

    def _show(self, frames: dict[str, Any]) -> None:
        parts = [part for part in self.PARTS if part.name in frames]
        self._frames |= {part.name: frames[part.name] for part in parts if part.computes}
        for part in parts:
            apply = getattr(self, f"_apply_{part.name}")
            if part.computes:
                apply(self._frames[part.name])
            else:
                apply()
        self.detail.selection = self._selection()
