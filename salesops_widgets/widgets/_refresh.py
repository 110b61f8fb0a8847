"""Busy state and debounced refresh, shared by every view that recomputes on a change.

``Refresher.schedule(fn, apply=...)`` runs ``fn`` once the changes have stopped for
``debounce`` seconds (on the kernel's asyncio loop, with ``loop.call_later``); it runs at once
when ``debounce == 0`` or when no loop is running (tests, scripts, papermill cells). Every call
bumps a generation counter: a pending call that a newer one replaced never runs, and a result
that arrives after a newer call started (an ``async`` fn) is dropped, so a stale result never
overwrites a newer one.

While a refresh is pending or running, ``busy`` is True and the indicator shows "Updating…".
A ``SalesOpsError`` from ``fn`` becomes a friendly message in the view (``message``); any
other exception clears ``busy`` and propagates.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import traitlets as t

from ..errors import ParameterError, SalesOpsError
from ._html import COLORS, message_html, style
from ._static import static_mimebundle

__all__ = ["Refresher", "EmptyState", "NO_DEALS"]

NO_DEALS = "No deals match these filters — widen the period or clear a filter."

_BUSY_HTML = (
    '<div class="salesops-busy" {css}>'
    "<span {dot}></span>Updating…</div>"
    "<style>@keyframes salesops-pulse {{0% {{opacity: .25}} 50% {{opacity: 1}} "
    "100% {{opacity: .25}}}}</style>"
).format(
    css=style(
        display="inline-flex",
        align_items="center",
        gap="6px",
        padding="2px 10px",
        font_size="12px",
        color=COLORS["neutral"],
        background=COLORS["header"],
        border_radius="10px",
    ),
    dot=style(
        width="8px",
        height="8px",
        border_radius="50%",
        background=COLORS["neutral"],
        animation="salesops-pulse 1s ease-in-out infinite",
    ),
)


class EmptyState(w.VBox):
    """A clear message in place of a blank chart or table: "No deals match these filters…".

    Examples
    --------
    >>> EmptyState().message.startswith("No deals match")
    True
    """

    message = t.Unicode(NO_DEALS, help="The text shown (plain text; escaped).")

    def __init__(self, message: str = NO_DEALS, **kwargs: Any) -> None:
        self._html = w.HTML()
        super().__init__(children=[self._html], message=message, **kwargs)
        self._update()

    @t.observe("message")
    def _on_change(self, change: dict) -> None:
        self._update()

    def _update(self) -> None:
        self._html.value = self.to_static_html()

    def to_static_html(self) -> str:
        return message_html(self.message, kind="empty")

    _repr_mimebundle_ = static_mimebundle


def _in_kernel() -> bool:
    """True inside an IPython kernel (JupyterLab, Voilà, papermill), where a person waits."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The kernel's running event loop, to debounce on; None outside a kernel (plain Python,
    tests: another library's loop, e.g. Playwright's, may be marked running in this thread)."""
    if not _in_kernel():
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Refresher(w.VBox):
    """A busy indicator plus an error line, and the debounced ``schedule`` that drives them.

    Parameters
    ----------
    debounce
        Seconds of quiet before a scheduled function runs (0: at once).
    loop
        The event loop to schedule on (default: the running loop, if any). Tests pass a fake
        with ``call_later(delay, callback, *args)`` returning a handle with ``cancel()``.
    """

    busy = t.Bool(False, help="True while a refresh is pending or running.")
    message = t.Unicode("", help="Friendly message of the last failed refresh ('' when none).")
    debounce = t.Float(0.3, help="Seconds of quiet before a scheduled refresh runs (0: at once).")
    generation = t.Int(0, read_only=True, help="Number of refreshes scheduled so far.")

    def __init__(self, *, debounce: float = 0.3, loop: Any = None, **kwargs: Any) -> None:
        self._loop = loop
        self._pending: Any = None
        self._indicator = w.HTML(_BUSY_HTML, layout=w.Layout(display="none"))
        self._error = w.HTML(layout=w.Layout(display="none"))
        super().__init__(children=[self._indicator, self._error], debounce=debounce, **kwargs)

    @t.validate("debounce")
    def _check_debounce(self, proposal: dict) -> float:
        if proposal["value"] < 0:
            raise ParameterError(f"debounce={proposal['value']!r} must be 0 or more seconds.")
        return proposal["value"]

    @t.observe("busy", "message")
    def _on_change(self, change: dict) -> None:
        self._update()

    def _update(self) -> None:
        self._indicator.layout.display = "" if self.busy else "none"
        self._error.value = message_html(self.message, kind="error") if self.message else ""
        self._error.layout.display = "" if self.message else "none"

    def schedule(
        self,
        fn: Callable[[], Any],
        *,
        apply: Callable[[Any], None] | None = None,
        now: bool = False,
    ) -> int:
        """Run ``fn`` (then ``apply(result)``) after ``debounce`` seconds of quiet.

        ``now=True`` runs it at once (a view's first rendering). Returns the generation number
        of this request.
        """
        generation = self.generation + 1
        self.set_trait("generation", generation)
        if self._pending is not None:
            self._pending[0].cancel()
            self._pending = None
        self.busy = True
        loop = self._loop or _running_loop()
        if now or self.debounce == 0 or loop is None:
            self._run(generation, fn, apply)
        else:
            handle = loop.call_later(self.debounce, self._run, generation, fn, apply)
            self._pending = (handle, fn, apply)
        return generation

    def flush(self) -> None:
        """Run the pending refresh now, if there is one (before a static rendering, say)."""
        if self._pending is not None:
            handle, fn, apply = self._pending
            handle.cancel()
            self._run(self.generation, fn, apply)

    def _run(self, generation: int, fn: Callable[[], Any], apply: Callable | None) -> None:
        self._pending = None
        if generation != self.generation:
            return  # replaced by a newer request before it ran
        try:
            result = fn()
        except Exception as exc:
            self._fail(generation, exc)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda done: self._done(generation, done, apply))
        else:
            self._finish(generation, result, apply)

    def _done(self, generation: int, task: asyncio.Future, apply: Callable | None) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            self._fail(generation, task.exception())
        else:
            self._finish(generation, task.result(), apply)

    def _finish(self, generation: int, result: Any, apply: Callable | None) -> None:
        if generation != self.generation:
            return  # stale: a newer request is pending or running and will clear busy
        try:
            if apply is not None:
                apply(result)
        except Exception as exc:
            self._fail(generation, exc)
            return
        with self.hold_sync():
            self.message = ""
            self.busy = False

    def _fail(self, generation: int, exc: BaseException) -> None:
        current = generation == self.generation
        if isinstance(exc, SalesOpsError):
            if current:
                with self.hold_sync():
                    self.message = f"Could not update this view: {exc}"
                    self.busy = False
            return
        if current:
            self.busy = False
        raise exc

    def to_static_html(self) -> str:
        return message_html(self.message, kind="error") if self.message else ""

    _repr_mimebundle_ = static_mimebundle
