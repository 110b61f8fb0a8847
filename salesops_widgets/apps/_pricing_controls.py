"""Sticker Shock, its own controls: each one mirrors traits of the app both ways (a control
changed sets the trait; a trait set in code shows in the control)."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ._pricing_display import _percent

__all__ = ["cap_slider", "compare_controls"]


def compare_controls(app: Any) -> w.VBox:
    """Two dropdowns of the segment's values: the two compared side by side. They offer the
    values of the current segment (``app.segment_values``) and show ``app.compare_segments``."""
    drops = [w.Dropdown(description=d) for d in ("Compare", "with")]
    showing = []

    def show(change: Any = None) -> None:
        names = [v for v, _ in app.segment_values]
        showing.append(True)  # the two dropdowns change one at a time: not a choice yet
        try:
            for drop, value in zip(drops, app.compare_segments, strict=True):
                with drop.hold_sync():
                    drop.options = list(dict.fromkeys([*names, value]))
                    drop.value = value
        finally:
            showing.pop()

    def pick(change: dict) -> None:
        chosen = [drop.value for drop in drops]
        if not showing and chosen[0] != chosen[1] and chosen != app.compare_segments:
            app.compare_segments = chosen

    show()
    app.observe(show, ["segment", "compare_segments"])
    for drop in drops:
        drop.observe(pick, "value")
    return w.VBox(drops)


def cap_slider(app: Any) -> w.SelectionSlider:
    """The discount cap of the what-if: 0% to 50% by whole points, and the cap itself."""
    slider = w.SelectionSlider(
        options=[(_percent(app.cap), app.cap)],
        description="Cap discount at",
        style={"description_width": "initial"},
        layout=w.Layout(width="420px"),
    )

    def show(change: Any = None) -> None:
        steps = sorted({i / 100 for i in range(51)} | {app.cap})
        with slider.hold_sync():
            slider.options = [(_percent(c), c) for c in steps]
            slider.value = app.cap

    show()
    slider.observe(lambda change: setattr(app, "cap", change["new"]), "value")
    app.observe(show, "cap")
    return slider
