"""Sales-Cycle Acceleration, its own controls: each one mirrors traits of the app both ways (a
control changed sets the trait; a trait set in code shows in the control)."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..errors import ParameterError
from ._common import Controls
from ._cycle_display import _threshold_text

__all__ = ["flow_controls", "stuck_controls", "what_if_controls"]

_SLIDERS = {  # trait -> (label, min, max) of the slider, in percent or points
    "cycle_cut": ("Cycle days cut (%)", 0, 50),
    "win_rate_points": ("Win rate gain (points)", -10, 20),
    "asp_lift": ("ASP increase (%)", -20, 30),
}


def stuck_controls(app: Any) -> Controls:
    """The stuck threshold (p90, p75, median, or the value set in code) and which open deals
    are listed."""
    options = [(_threshold_text(v), v) for v in ("p90", "p75", "median")]
    threshold = w.Dropdown(options=options, description="Stuck over")

    def show(change: Any = None) -> None:
        value = app.stuck_threshold
        if value not in [v for _, v in threshold.options]:
            threshold.options = [*threshold.options, (_threshold_text(value), value)]
        threshold.value = value

    show()
    app.observe(show, "stuck_threshold")
    threshold.observe(lambda c: setattr(app, "stuck_threshold", c.new), "value")
    shown = w.ToggleButtons(options=[("Stuck deals", True), ("Every open deal", False)])
    w.link((app, "only_stuck"), (shown, "value"))
    return Controls([threshold, shown])


def flow_controls(app: Any) -> Controls:
    """The two dates of the pipeline flow; they show last quarter's while the traits are ''."""
    pickers = {
        "flow_start": w.DatePicker(description="From"),
        "flow_end": w.DatePicker(description="To"),
    }

    def show(change: Any = None) -> None:
        try:
            days = app.flow_dates()
        except ParameterError:  # half-way through setting both: the refresh will say so
            return
        for picker, day in zip(pickers.values(), days, strict=True):
            picker.value = day

    def pick(change: dict, name: str) -> None:
        try:
            shown = app.flow_dates()[0 if name == "flow_start" else 1]
        except ParameterError:
            shown = None
        if change["new"] != shown:  # a date picked, not the default shown
            setattr(app, name, change["new"].isoformat() if change["new"] else "")

    show()
    app.observe(show, ["flow_start", "flow_end"])
    for name, picker in pickers.items():
        picker.observe(lambda c, name=name: pick(c, name), "value")
    return Controls(list(pickers.values()))


def what_if_controls(app: Any) -> Controls:
    """One slider per lever, in percent (points for the win rate); the traits hold fractions.
    A value set in code outside a slider's range widens the range."""
    sliders = {
        name: w.IntSlider(
            min=low,
            max=high,
            description=label,
            style={"description_width": "initial"},
            continuous_update=False,
        )
        for name, (label, low, high) in _SLIDERS.items()
    }

    def show(change: Any = None) -> None:
        for name, slider in sliders.items():
            value = round(getattr(app, name) * 100)
            with slider.hold_sync():
                slider.min, slider.max = min(slider.min, value), max(slider.max, value)
                slider.value = value

    def slide(change: dict, name: str) -> None:
        if round(getattr(app, name) * 100) != change["new"]:
            setattr(app, name, change["new"] / 100)

    show()
    app.observe(show, list(_SLIDERS))
    for name, slider in sliders.items():
        slider.observe(lambda c, name=name: slide(c, name), "value")
    return Controls(list(sliders.values()))
