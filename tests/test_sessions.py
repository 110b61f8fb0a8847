"""The load test's client (``benchmarks/_session.py``), and a small load test: three concurrent
browser-less sessions against a real ``salesops serve``, on loopback.

Each session opens segmentation_explorer, gets its widget state over the kernel websocket, sees
a chart, changes the Region filter, sees the charts react, and closes the page. One of the three
leaves without closing (a tab that died): its kernel must still be counted, which proves the
"no kernel left" check can fail, and then closing it must bring the count back to the
baseline. No assertion on time: ``python -m benchmarks.sessions`` measures that.
"""

from __future__ import annotations

import asyncio
import json
import struct
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import salesops_serve, worker_id

from benchmarks._session import (
    chart_models,
    check_loopback,
    decode,
    descendants,
    find_filter,
    kernel_snapshot,
    new_index,
    run_sessions,
    server_process,
    wait_for_kernels,
)
from benchmarks.sessions import parse, percentile

DASHBOARD = "segmentation_explorer"
SESSION_TIMEOUT_S = 300  # a bound, not a target: a loaded CI machine is slow
KERNELS_GONE_S = 60


# --------------------------------------------------------------------------------------------------
# The client's parts (no server)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8866/", "http://127.3.4.5:1/x", "http://localhost:9/", "http://[::1]:9/"],
)
def test_loopback_urls_are_accepted(url):
    assert check_loopback(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8866/",
        "http://192.168.1.10:8866/",
        "http://172.16.0.1/",
        "http://8.8.8.8/",
        "http://example.com/",
        "http://localhost.example.com/",
        "http://0.0.0.0:8866/",
    ],
)
def test_other_addresses_are_refused(url):
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(url)
    with pytest.raises(SystemExit) as caught:  # the command stops before any request
        parse(["--url", url])
    assert caught.value.code == 2


def test_binary_frames_are_decoded():
    """Jupyter's binary websocket frame: part count, offsets, the JSON message, buffers."""
    body = json.dumps({"msg_type": "comm_msg", "content": {"x": 1}}).encode()
    buffer = b"\x00\x01\x02"
    offsets = [12, 12 + len(body)]
    frame = struct.pack("!3I", 2, *offsets) + body + buffer
    assert decode(frame) == {"msg_type": "comm_msg", "content": {"x": 1}}
    assert decode(json.dumps({"a": 1})) == {"a": 1}


def _model(name: str, module: str = "@jupyter-widgets/controls", **state) -> dict:
    return {"model_name": name, "model_module": module, "state": state}


# A filter bar's column (label + list), a grid holding a chart, and a chart without a spec.
STATES = {
    "a" * 32: _model("VBoxModel", children=[f"IPY_MODEL_{'b' * 32}", f"IPY_MODEL_{'c' * 32}"]),
    "b" * 32: _model("HTMLModel", value="<b>Region</b>"),
    "c" * 32: _model("SelectMultipleModel", _options_labels=["APAC (3)", "EMEA (2)"], index=[]),
    "d" * 32: _model("GridBoxModel", children=[f"IPY_MODEL_{'e' * 32}"]),
    "e" * 32: _model("AnyModel", "anywidget", spec={"mark": "bar"}),
    "f" * 32: _model("AnyModel", "anywidget", spec=None),
    "9" * 32: _model("DropdownModel", description="Period", _options_labels=["All", "Q3"], index=0),
}


def test_charts_are_anywidgets_with_a_spec_and_found_under_their_view():
    assert chart_models(STATES) == {"e" * 32}
    assert descendants(STATES, "d" * 32) == {"d" * 32, "e" * 32}
    assert descendants(STATES, "a" * 32) & chart_models(STATES) == set()


def test_the_filter_is_found_by_its_label_or_description():
    assert find_filter(STATES, "Region") == "c" * 32
    assert find_filter(STATES, "period") == "9" * 32
    assert find_filter(STATES, "Stage") is None


def test_the_new_index_differs_from_the_current_one():
    assert new_index({"_options_labels": ["a", "b"], "index": []}, True) == [0]
    assert new_index({"_options_labels": ["a", "b"], "index": [0]}, True) == [1]
    assert new_index({"_options_labels": ["a", "b"], "index": 0}, False) == 1


def test_percentiles_use_the_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20: p50 is the 10th, p95 the 19th
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (
        10.0,
        19.0,
        20.0,
    )
    assert percentile([None, 3.0], 95) == 3.0
    assert percentile([], 50) is None


# --------------------------------------------------------------------------------------------------
# Three sessions against a real server


@pytest.fixture(scope="module")
def server(sample_dirs, request) -> str:
    """A server of its own, so that no other test's page holds a kernel while kernels are
    counted; cold kernels (``--preheat 0``: a pool's refills would move the count)."""
    log = f"serve-sessions-{worker_id(request.config)}.log"
    with salesops_serve(sample_dirs["default"], log, "--preheat", "0") as url:
        yield url


def in_thread(coroutine):
    """Run ``coroutine`` on an event loop of its own thread (playwright's sync API may leave
    this thread's loop running)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def kernel_alive(server: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{server}api/kernels/{kernel_id}", timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


async def close_later(session) -> None:
    from tornado.httpclient import AsyncHTTPClient

    await session.close(http=AsyncHTTPClient(force_instance=True))


@pytest.mark.slow
def test_concurrent_sessions_see_charts_react_to_a_filter_and_leave_no_kernel(server):
    process = server_process(server)
    assert process is not None, "the server's process is not found: no kernel can be counted"
    baseline = kernel_snapshot(process)["kernels"]

    sessions = in_thread(run_sessions(server, DASHBOARD, 3, timeout=SESSION_TIMEOUT_S, keep_open=1))
    results = [s.result for s in sessions]
    assert [r.error for r in results] == [None, None, None]
    for r in results:
        assert r.charts > 0 and r.first_chart_s is not None, r
        assert r.filter and r.filter.startswith("Region -> "), r
        assert "chart" in r.reacted, f"session {r.index}: no chart reacted ({r.reacted})"
    assert len({r.kernel_id for r in results}) == 3, "each page has a kernel of its own"
    assert [r.closed for r in results] == [True, True, False]

    # The tab that died still holds its kernel: the count sees it (the check below can fail).
    left = wait_for_kernels(process, baseline + 1, KERNELS_GONE_S)
    assert left["kernels"] == baseline + 1, left
    assert [kernel_alive(server, r.kernel_id) for r in results] == [False, False, True]

    in_thread(close_later(sessions[2]))
    assert sessions[2].result.closed
    after = wait_for_kernels(process, baseline, KERNELS_GONE_S)
    assert after["kernels"] == baseline, f"kernels left after every page closed: {after}"
    assert not kernel_alive(server, results[2].kernel_id)
