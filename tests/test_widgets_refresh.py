"""Refresher: debounce on a fake loop, stale results dropped, errors shown, busy cleared."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from salesops_widgets.errors import ParameterError
from salesops_widgets.widgets import NO_DEALS, EmptyState, Refresher


class FakeLoop:
    """call_later on a clock that moves only when the test says so."""

    def __init__(self):
        self.now = 0.0
        self.calls = []

    def call_later(self, delay, callback, *args):
        handle = FakeHandle(self.now + delay, callback, args)
        self.calls.append(handle)
        return handle

    def advance(self, seconds):
        self.now += seconds
        for handle in sorted(self.calls, key=lambda h: h.when):
            if handle.when <= self.now and not handle.cancelled and not handle.done:
                handle.done = True
                handle.callback(*handle.args)


class FakeHandle:
    def __init__(self, when, callback, args):
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = self.done = False

    def cancel(self):
        self.cancelled = True


def test_twenty_rapid_schedules_run_once():
    loop, runs, applied = FakeLoop(), [], []
    refresher = Refresher(debounce=0.3, loop=loop)
    for i in range(20):
        refresher.schedule(lambda i=i: runs.append(i) or i, apply=applied.append)
        loop.advance(0.1)  # faster than the debounce
    assert runs == [] and refresher.busy
    assert refresher._indicator.layout.display == ""  # "Updating…" is visible
    loop.advance(0.3)
    assert runs == [19] and applied == [19]
    assert not refresher.busy and refresher.generation == 20
    assert refresher._indicator.layout.display == "none"


def test_zero_debounce_or_no_loop_runs_at_once():
    applied = []
    Refresher(debounce=0).schedule(lambda: 1, apply=applied.append)
    Refresher(debounce=5).schedule(lambda: 2, apply=applied.append)  # no running loop here
    assert applied == [1, 2]


def test_a_stale_result_never_overwrites_a_newer_one():
    refresher, applied = Refresher(debounce=0), []

    def slow_old():
        # while the old query runs, the user changes a filter: a newer refresh starts
        refresher.schedule(lambda: "new", apply=applied.append)
        return "old"

    refresher.schedule(slow_old, apply=applied.append)
    assert applied == ["new"]
    assert not refresher.busy


def test_a_stale_async_result_is_dropped():
    applied = []

    async def compute(value, delay):
        await asyncio.sleep(delay)
        return value

    async def main():
        refresher = Refresher(debounce=0)
        refresher.schedule(lambda: compute("old", 0.05), apply=applied.append)
        refresher.schedule(lambda: compute("new", 0.0), apply=applied.append)
        await asyncio.sleep(0.1)
        return refresher

    # in a thread of its own: a library used earlier in this process (Playwright) may have left
    # an event loop marked running in the main thread, and asyncio.run refuses to nest
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        refresher = pool.submit(asyncio.run, main()).result()
    assert applied == ["new"] and not refresher.busy


def test_a_salesops_error_is_a_friendly_message():
    refresher = Refresher(debounce=0)

    def bad():
        raise ParameterError("filters={'regoin': ...} is not a dimension.")

    refresher.schedule(bad)
    assert not refresher.busy
    assert refresher.message.startswith("Could not update this view: filters=")
    assert "Traceback" not in refresher._error.value and refresher._error.layout.display == ""
    refresher.schedule(lambda: None)  # the next good refresh clears it
    assert refresher.message == "" and refresher._error.layout.display == "none"


def test_other_errors_propagate_after_clearing_busy():
    refresher = Refresher(debounce=0)
    with pytest.raises(ZeroDivisionError):
        refresher.schedule(lambda: 1 / 0)
    assert not refresher.busy


def test_flush_runs_the_pending_refresh_now():
    loop, applied = FakeLoop(), []
    refresher = Refresher(debounce=1, loop=loop)
    refresher.schedule(lambda: "x", apply=applied.append)
    refresher.flush()
    assert applied == ["x"] and not refresher.busy
    loop.advance(2)
    assert applied == ["x"]  # the cancelled timer does not run it again


def test_negative_debounce_is_refused():
    with pytest.raises(ParameterError, match="debounce"):
        Refresher(debounce=-1)


def test_empty_state():
    empty = EmptyState()
    assert empty.message == NO_DEALS
    assert "widen the period or clear a filter" in empty._html.value
    empty.message = "Nothing <here>"
    assert "Nothing &lt;here&gt;" in empty._html.value
