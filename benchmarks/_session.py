"""One browser-less dashboard session against ``salesops serve``, and N of them at once.

A session does what a reader's browser does with a Voilà 0.5 dashboard, over loopback only:

1. GET ``/voila/render/<notebook>`` and read the streamed page. It keeps the cookies
   (``_xsrf``), the kernel id the page embeds (``"kernelId"`` in its page config) and the
   widget views of its outputs (``application/vnd.jupyter.widget-view+json``, ``model_id``).
   The ``lab`` template shows nothing until every cell ran; then its script connects.
2. Connect the kernel's websocket (``/api/kernels/<id>/channels?session_id=...``, Jupyter's
   JSON protocol; messages with buffers come as binary frames) and ask for the widget state
   the way the page's widget manager does: a ``jupyter.widget.control`` comm and its
   ``request_states`` message.
3. **First chart**: the time from the request's start until the page holds a widget view
   whose model tree (``IPY_MODEL_`` references) contains an altair ``JupyterChart`` model
   (``anywidget``, with a non-empty ``spec``) *and* the kernel's state with that spec has
   arrived. That is when a browser has what it needs to draw the chart; drawing is not timed.
4. **Change a filter**: an ``update`` comm message setting ``index`` of the filter bar's list
   (the ``SelectMultiple`` under the label named by ``filter_label``, e.g. "Region"), as a
   click does. The dashboard debounces (0.3 s) and recomputes on the kernel's loop, so the
   reaction is read from the updates that follow: it is over when a chart model was updated
   and no update came for ``QUIET`` s; its time is the last update's. A filter change that
   updates no chart is an error.
5. **Close**: POST ``/voila/api/shutdown/<kernel>`` with the ``_xsrf`` form field and cookie,
   as the page does on ``beforeunload``, and close the websocket.

Every step has a timeout, and a run of sessions has a deadline: nothing here loops unbounded.
Used by ``benchmarks/sessions.py`` and ``tests/test_sessions.py``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import ipaddress
import json
import re
import struct
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil

KERNEL_ID = re.compile(r'"kernelId": "([0-9a-f-]{36})"')
VIEW = re.compile(r'widget-view\+json": \{"model_id": "([0-9a-f]{32})"')
REFERENCE = re.compile(r"IPY_MODEL_([0-9a-f]{32})")
WIDGET_PROTOCOL = "2.1.0"
CONTROL_PROTOCOL = "1.0.0"
MAX_MESSAGE = 512 * 2**20  # the widget state holds each chart's JS bundle (~1 MB)
# A filter change is over when no widget update came for this long after a chart's.
QUIET = 1.5
# How often a session checks that the kernel of a page still streaming is alive (s).
WATCH = 5.0


class SessionError(Exception):
    """A session step that did not do what a browser would have seen done."""


def check_loopback(url: str) -> str:
    """``url`` if its host is a loopback address (127.0.0.0/8, ::1, localhost), else raise.

    A load test sends traffic to this machine only.
    """
    host = urlsplit(url).hostname or ""
    if host != "localhost":
        try:
            if ipaddress.ip_address(host).is_loopback:
                return url
        except ValueError:
            pass
        raise ValueError(f"{url}: a load test only targets loopback (127.0.0.1, ::1, localhost)")
    return url


# --------------------------------------------------------------------------------------------------
# What one session saw


@dataclass
class SessionResult:
    """What one session saw; times in seconds from its request's start."""

    index: int
    kernel_id: str | None = None
    page_s: float | None = None  # the whole page received (every cell ran)
    first_chart_s: float | None = None
    filter_change_s: float | None = None  # filter update sent -> the last widget update after it
    charts: int = 0  # JupyterChart models with a spec
    views: int = 0  # widget views in the page
    filter: str | None = None  # which control was changed, and to what
    reacted: list[str] = field(default_factory=list)  # models updated after it ("chart": a chart)
    closed: bool = False  # the shutdown request was accepted
    error: str | None = None
    step: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Jupyter messages over the websocket


def message(msg_type: str, content: dict, session: str, **metadata: Any) -> dict:
    """A Jupyter message for the shell channel, as the JSON websocket protocol carries it."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": "loadtest",
        "date": dt.datetime.now(dt.UTC).isoformat(),
        "version": "5.3",
    }
    return {
        "header": header,
        "parent_header": {},
        "metadata": metadata,
        "content": content,
        "channel": "shell",
        "buffers": [],
    }


def decode(raw: str | bytes) -> dict:
    """A websocket frame as a message: JSON text, or Jupyter's binary frame (a count, offsets,
    the JSON message, then its buffers, which are not needed here)."""
    if isinstance(raw, str):
        return json.loads(raw)
    (count,) = struct.unpack("!I", raw[:4])
    offsets = struct.unpack(f"!{count}I", raw[4 : 4 + 4 * count])
    end = offsets[1] if count > 1 else len(raw)
    return json.loads(raw[offsets[0] : end])


def descendants(states: dict[str, dict], model_id: str) -> set[str]:
    """``model_id`` and every model its state references (children, layouts, ...)."""
    seen, todo = set(), [model_id]
    while todo:
        current = todo.pop()
        if current in seen or current not in states:
            continue
        seen.add(current)
        todo.extend(REFERENCE.findall(json.dumps(states[current].get("state", {}))))
    return seen


def chart_models(states: dict[str, dict]) -> set[str]:
    """The altair JupyterChart models (anywidget) that carry a chart spec."""
    return {
        mid
        for mid, s in states.items()
        if s.get("model_module") == "anywidget" and s.get("state", {}).get("spec")
    }


def find_filter(states: dict[str, dict], label: str) -> str | None:
    """The model id of the filter bar's list under the label ``label`` (its HTML sibling in a
    box), or of a Dropdown/SelectMultiple whose description is ``label``; else None."""
    wanted = label.lower()
    for s in states.values():
        children = REFERENCE.findall(json.dumps(s.get("state", {}).get("children", [])))
        texts = [states.get(c, {}).get("state", {}).get("value", "") for c in children]
        if any(isinstance(t, str) and f">{wanted}<" in t.lower() for t in texts):
            for child in children:
                if states.get(child, {}).get("model_name") == "SelectMultipleModel":
                    return child
    for mid, s in states.items():
        name, state = s.get("model_name"), s.get("state", {})
        described = str(state.get("description", "")).lower() == wanted
        if described and name in ("SelectMultipleModel", "DropdownModel"):
            return mid
    return None


def new_index(state: dict[str, Any], multiple: bool) -> int | list[int]:
    """An index other than the current one: the first option, or the second if the first is
    already the selection."""
    options = state.get("_options_labels", [])
    if len(options) < 2 and not (multiple and options):
        raise SessionError(f"the filter has {len(options)} option(s): nothing to change to")
    current = state.get("index")
    if multiple:
        return [1] if current == [0] else [0]
    return 1 if current == 0 else 0


# --------------------------------------------------------------------------------------------------
# One session


class Session:
    """One reader: open the dashboard, change a filter, close. See the module docstring."""

    def __init__(
        self,
        base_url: str,
        notebook: str,
        *,
        index: int = 0,
        timeout: float = 300,
        filter_label: str = "Region",
        close: bool = True,
        http=None,
    ) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.base = check_loopback(base_url.rstrip("/") + "/")
        self.notebook = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
        self.timeout = timeout
        self.filter_label = filter_label
        self.close_at_end = close
        self.http = http or AsyncHTTPClient(force_instance=True, max_clients=1000)
        self.result = SessionResult(index=index)
        self.cookies: dict[str, str] = {}
        self.session_id = uuid.uuid4().hex
        self.conn = None
        self.states: dict[str, dict] = {}
        self._start = 0.0

    def _since_start(self) -> float:
        return round(time.monotonic() - self._start, 3)

    async def run(self) -> SessionResult:
        """The whole session, within ``timeout`` seconds; errors are recorded, not raised."""
        self._start = time.monotonic()
        try:
            await asyncio.wait_for(self._steps(), self.timeout)
        except TimeoutError:
            self.result.error = f"timed out after {self.timeout:g} s"
        except Exception as exc:  # one session's failure is a result, not a crash of the run
            self.result.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        finally:
            if self.close_at_end:
                await self.close()
            else:  # a tab that died: its websocket goes, its kernel stays (for the culler)
                self.disconnect()
        return self.result

    async def _steps(self) -> None:
        self.result.step = "page"
        html, views = await self.open_page()
        self.result.step = "websocket"
        await self.connect()
        self.result.step = "state"
        await self.first_chart(html, views)
        self.result.step = "filter"
        await self.change_filter()
        self.result.step = "done"

    # ---------------------------------------------------------------------------- page

    async def open_page(self) -> tuple[str, dict[str, float]]:
        """GET the dashboard; the page and, for each widget view, when it arrived (s)."""
        from tornado.httpclient import HTTPRequest

        chunks: list[bytes] = []
        ends: list[int] = []
        times: list[float] = []

        def on_chunk(chunk: bytes) -> None:
            chunks.append(chunk)
            ends.append((ends[-1] if ends else 0) + len(chunk))
            times.append(self._since_start())

        request = HTTPRequest(
            f"{self.base}voila/render/{self.notebook}",
            streaming_callback=on_chunk,
            header_callback=self._on_header,
            request_timeout=self.timeout,
        )
        response = await self._fetch_watching_kernel(request, chunks)
        if response.code != 200:
            raise SessionError(f"GET {self.notebook}: HTTP {response.code} {response.reason}")
        self.result.page_s = self._since_start()
        html = b"".join(chunks).decode("utf-8", "replace")
        if not self._kernel_in(chunks):
            raise SessionError("the page has no kernelId")
        views = {}
        for match in VIEW.finditer(html):
            position = bisect.bisect_right(ends, match.start())
            views.setdefault(match.group(1), times[min(position, len(times) - 1)])
        self.result.views = len(views)
        return html, views

    def _kernel_in(self, chunks: list[bytes]) -> str | None:
        """The kernel id once the streamed page has shown it (kept in the result)."""
        if not self.result.kernel_id:
            found = KERNEL_ID.search(b"".join(chunks).decode("utf-8", "replace"))
            self.result.kernel_id = found.group(1) if found else None
        return self.result.kernel_id

    async def _fetch_watching_kernel(self, request, chunks: list[bytes]):
        """``fetch(request)``; while the page streams, check every ``WATCH`` s that its kernel
        is still there. Voilà leaves the page of a kernel that died open forever (the error
        stays in the server's log), so a dead kernel fails the session at once."""
        fetch = asyncio.ensure_future(self.http.fetch(request, raise_error=False))
        while not fetch.done():
            await asyncio.wait([fetch], timeout=WATCH)
            kernel = self._kernel_in(chunks)
            if not fetch.done() and kernel and not await self._kernel_alive(kernel):
                fetch.cancel()
                raise SessionError(f"kernel {kernel} died while the page was rendering")
        return fetch.result()

    async def _kernel_alive(self, kernel: str) -> bool:
        response = await self.http.fetch(
            f"{self.base}api/kernels/{kernel}", raise_error=False, request_timeout=60
        )
        return response.code != 404

    def _on_header(self, line: str) -> None:
        name, _, value = line.partition(":")
        if name.strip().lower() == "set-cookie":
            key, _, rest = value.strip().partition("=")
            self.cookies[key] = rest.split(";")[0]

    def _cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    # ---------------------------------------------------------------------------- websocket

    async def connect(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        parts = urlsplit(self.base)
        url = (
            f"ws://{parts.netloc}{parts.path}api/kernels/{self.result.kernel_id}/channels"
            f"?{urlencode({'session_id': self.session_id})}"
        )
        request = HTTPRequest(
            url, headers={"Cookie": self._cookie_header()}, request_timeout=self.timeout
        )
        self.conn = await websocket_connect(request, max_message_size=MAX_MESSAGE)

    async def send(self, msg: dict) -> str:
        await self.conn.write_message(json.dumps(msg))
        return msg["header"]["msg_id"]

    async def receive(self) -> dict:
        raw = await self.conn.read_message()
        if raw is None:
            raise SessionError("the kernel's websocket closed")
        return decode(raw)

    # ---------------------------------------------------------------------------- first chart

    async def request_states(self) -> dict[str, dict]:
        """The kernel's widget state, through a ``jupyter.widget.control`` comm."""
        comm = uuid.uuid4().hex
        opened = {"comm_id": comm, "target_name": "jupyter.widget.control", "data": {}}
        await self.send(message("comm_open", opened, self.session_id, version=CONTROL_PROTOCOL))
        ask = {"comm_id": comm, "data": {"method": "request_states"}}
        await self.send(message("comm_msg", ask, self.session_id, version=CONTROL_PROTOCOL))
        while True:
            msg = await self.receive()
            content = msg.get("content", {})
            if msg.get("msg_type") == "comm_msg" and content.get("comm_id") == comm:
                data = content.get("data", {})
                if data.get("method") == "update_states":
                    return data["states"]

    async def first_chart(self, html: str, views: dict[str, float]) -> None:
        self.states = await self.request_states()
        arrived = self._since_start()
        charts = chart_models(self.states)
        self.result.charts = len(charts)
        shown = [t for mid, t in views.items() if descendants(self.states, mid) & charts]
        if not shown:
            raise SessionError(
                f"no chart: {len(views)} widget views, {len(charts)} JupyterChart models"
            )
        self.result.first_chart_s = max(min(shown), arrived)

    # ---------------------------------------------------------------------------- filter

    async def change_filter(self) -> None:
        target = find_filter(self.states, self.filter_label)
        if target is None:
            raise SessionError(f"no filter {self.filter_label!r} among the widgets")
        model = self.states[target]
        multiple = model["model_name"] == "SelectMultipleModel"
        index = new_index(model["state"], multiple)
        labels = model["state"].get("_options_labels", [])
        chosen = [labels[i] for i in (index if multiple else [index])]
        self.result.filter = f"{self.filter_label} -> {', '.join(chosen)}"
        update = {"method": "update", "state": {"index": index}, "buffer_paths": []}
        content = {"comm_id": target, "data": update}
        sent = time.monotonic()
        await self.send(message("comm_msg", content, self.session_id))
        last = await self._reaction(target)
        self.result.filter_change_s = round(last - sent, 3) if last else None
        if "chart" not in self.result.reacted:
            got = ", ".join(self.result.reacted) or "nothing"
            raise SessionError(f"no chart reacted to the filter change (updated: {got})")

    async def _reaction(self, target: str) -> float | None:
        """Widget updates after the change, until a chart was updated and none came for
        ``QUIET`` s (the dashboard debounces and recomputes on the kernel's loop, after the
        kernel answered the message); when the last one came (monotonic), or None."""
        charts = chart_models(self.states)
        reacted: set[str] = set()
        last = None
        while True:
            wait = QUIET if "chart" in reacted else self.timeout
            try:
                msg = await asyncio.wait_for(self.receive(), wait)
            except TimeoutError:
                self.result.reacted = sorted(reacted)
                return last
            content = msg.get("content", {})
            if msg.get("msg_type") != "comm_msg" or content.get("comm_id") == target:
                continue
            if content.get("data", {}).get("method") in ("update", "echo_update"):
                mid = content["comm_id"]
                reacted.add("chart" if mid in charts else self._model_name(mid))
                last = time.monotonic()

    def _model_name(self, model_id: str) -> str:
        return self.states.get(model_id, {}).get("model_name", "new model")

    # ---------------------------------------------------------------------------- close

    def disconnect(self) -> None:
        """Close the websocket (the kernel keeps running)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def close(self, http=None) -> None:
        """Shut the kernel down as the page does on close, and close the websocket.

        ``http``: a tornado AsyncHTTPClient to use instead of the session's (whose event loop
        may be gone when a kept-open session is closed later).
        """
        from tornado.httpclient import HTTPRequest

        self.disconnect()
        if http is not None:
            self.http = http
        if not self.result.kernel_id or self.result.closed:
            return
        xsrf = self.cookies.get("_xsrf", "")
        request = HTTPRequest(
            f"{self.base}voila/api/shutdown/{self.result.kernel_id}",
            method="POST",
            body=urlencode({"_xsrf": xsrf}),
            headers={
                "Cookie": self._cookie_header(),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            request_timeout=60,
        )
        try:
            response = await self.http.fetch(request, raise_error=False)
        except Exception as exc:  # the server is gone: say so, do not crash the run
            self._close_error(f"{type(exc).__name__}: {exc}")
            return
        self.result.closed = response.code in (200, 204)
        if not self.result.closed:
            self._close_error(f"HTTP {response.code} {response.reason}")

    def _close_error(self, text: str) -> None:
        note = f"shutdown refused: {text}"
        self.result.error = f"{self.result.error}; {note}" if self.result.error else note


async def run_sessions(
    base_url: str,
    notebook: str,
    count: int,
    *,
    timeout: float = 300,
    deadline: float | None = None,
    filter_label: str = "Region",
    keep_open: int = 0,
) -> list[Session]:
    """``count`` sessions at once, each within ``timeout`` s, all within ``deadline`` s (default
    ``timeout`` + 60). The last ``keep_open`` do not close: their kernels stay for a caller
    that checks they are seen (then closes them with :meth:`Session.close`)."""
    from tornado.httpclient import AsyncHTTPClient

    check_loopback(base_url)
    http = AsyncHTTPClient(force_instance=True, max_clients=max(10, 2 * count))
    sessions = [
        Session(
            base_url,
            notebook,
            index=i,
            timeout=timeout,
            filter_label=filter_label,
            close=i < count - keep_open,
            http=http,
        )
        for i in range(count)
    ]
    tasks = [asyncio.ensure_future(s.run()) for s in sessions]
    _, pending = await asyncio.wait(tasks, timeout=deadline or timeout + 60)
    for task in pending:  # cannot happen unless a step ignores its timeout
        task.cancel()
    for session in sessions:
        if session.result.step != "done" and not session.result.error:
            session.result.error = "cancelled at the run's deadline"
    return sessions


# --------------------------------------------------------------------------------------------------
# The server's kernels


def server_process(url: str) -> psutil.Process | None:
    """The process listening on ``url``'s loopback port (this machine only), or None."""
    port = urlsplit(check_loopback(url)).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def kernel_processes(server: psutil.Process) -> list[psutil.Process]:
    """The ipykernel processes under ``server``."""
    found = []
    try:
        children = server.children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def kernel_snapshot(server: psutil.Process) -> dict[str, float]:
    """How many kernels run under ``server``, their RSS in all and the largest (MB)."""
    rss = []
    for proc in kernel_processes(server):
        with contextlib.suppress(psutil.Error):
            rss.append(proc.memory_info().rss / 2**20)
    return {
        "kernels": len(rss),
        "rss_total_mb": round(sum(rss), 1),
        "rss_max_mb": round(max(rss, default=0.0), 1),
    }


def wait_for_kernels(server: psutil.Process, at_most: int, timeout: float) -> dict[str, float]:
    """Poll until ``server`` has at most ``at_most`` kernels or ``timeout`` s passed; the last
    snapshot, with ``waited_s``."""
    start = time.monotonic()
    while True:
        snap = kernel_snapshot(server)
        waited = time.monotonic() - start
        if snap["kernels"] <= at_most or waited >= timeout:
            return {**snap, "waited_s": round(waited, 1)}
        time.sleep(0.5)


class KernelSampler:
    """Samples :func:`kernel_snapshot` every ``interval`` s in a thread (``with`` block)."""

    def __init__(self, server: psutil.Process, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(kernel_snapshot(self.server))
            self._stop.wait(self.interval)

    def __enter__(self) -> KernelSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self) -> dict[str, float]:
        """The largest count, RSS total and RSS of one kernel seen in any sample."""
        keys = ("kernels", "rss_total_mb", "rss_max_mb")
        return {k: max((s[k] for s in self.samples), default=0) for k in keys}
