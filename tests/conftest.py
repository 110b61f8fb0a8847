"""Shared fixtures.

Sections:

- paths of the repository;
- sample CRM exports under data/samples/ (generated with ``salesops sample`` when missing),
  and the datasets loaded once per session and shared by every module (``sample``,
  ``sample_deals``, ``small_canonical``);
- a Voilà server on 127.0.0.1 serving notebooks/ with our offline template, and ``salesops serve``
  (the production set-up: sources stripped, tracebacks hidden, URL parameters);
- a Playwright browser on Debian's chromium, and a page that records its requests and errors.

Browser tests use Debian's chromium (``apt-get install chromium``), not a Playwright download:
``playwright install`` cannot reach its download host here. Without chromium the browser tests
skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# Tests load the files fresh, so that a prepared file (data/_prepared.py) never stands in for the
# loading code a test exercises; tests/test_prepared.py turns the cache on where it tests it.
os.environ.setdefault("SALESOPS_NO_CACHE", "1")

# --------------------------------------------------------------------------------------------------
# Paths

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
# Screenshots, page HTML and server logs of failed browser tests (gitignored).
ARTIFACTS_DIR = REPO_ROOT / "tmp" / "artifacts"
# Holds jupyter/voila/templates/salesops, found by Voilà through JUPYTER_PATH.
JUPYTER_DATA_DIR = REPO_ROOT / "share" / "jupyter"
VOILA_TEMPLATE = "salesops"

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root, where chromium's sandbox cannot start
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
# Hosts a page may talk to: the test server. Anything else is recorded and blocked.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# The sample exports the notebooks and dashboards are tested on: name -> extra CLI arguments.
SAMPLES = {"default": (), "messy": ("--messy",)}


def in_ci() -> bool:
    """True when running in CI (CI=true), where missing tools are failures, not skips."""
    return os.environ.get("CI", "").lower() in {"true", "1"}


# --------------------------------------------------------------------------------------------------
# Sample data


def _salesops_command() -> list[str]:
    script = Path(sys.executable).with_name("salesops")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from salesops_widgets.cli import app; app()"]


def ensure_sample(name: str) -> Path:
    """Return data/samples/NAME, generating it with ``salesops sample`` if it is missing.

    The export is written to a temporary folder and renamed into place, so two pytest-xdist
    workers asking at once never see a half-written folder.
    """
    target = SAMPLES_DIR / name
    if any(target.glob("opportunities.*")):  # .parquet, or .csv for the messy sample
        return target
    tmp = SAMPLES_DIR / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [*_salesops_command(), "sample", "--out", str(tmp), *SAMPLES[name]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    try:
        tmp.rename(target)
    except OSError:  # another worker got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def sample_dirs() -> dict[str, Path]:
    """The sample exports under data/samples/, by name ("default", "messy")."""
    return {name: ensure_sample(name) for name in SAMPLES}


@pytest.fixture(scope="session")
def sample(sample_dirs: dict[str, Path]):
    """The default sample, loaded once per session (per pytest-xdist worker).

    Shared by every module: a SalesData never changes after ``load`` (its tables are fixed, and
    what ``derived()`` keeps is derived from them). A test that changes the object or its
    engine (``engine_owned``, a DuckDB setting) loads its own copy instead.
    """
    from salesops_widgets import load

    return load(sample_dirs["default"])


@pytest.fixture(scope="session")
def sample_deals(sample):
    """The default sample's deals view as a pandas DataFrame (``deals(sample).to_pandas()``),
    for references computed independently in pandas.

    Shared by every module: select from it or copy it, never change it in place.
    """
    from salesops_widgets.metrics import deals

    return deals(sample).to_pandas()


@pytest.fixture(scope="session")
def sample_opportunities(sample_dirs: dict[str, Path]):
    """The default sample's raw opportunities (its parquet file, in pandas), with the per-deal
    discount computed here, independently of the package: 1 − amount / list_amount where both
    are above 0."""
    import numpy as np
    import pandas as pd

    o = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    priced = (o["list_amount"] > 0) & (o["amount"] > 0)
    o["disc"] = np.where(priced, 1 - o["amount"] / o["list_amount"].where(priced), np.nan)
    return o


@pytest.fixture(scope="session")
def small_canonical():
    """The small canonical dataset of tests/_helpers.py (10 opportunities, whose exclusions are
    known by hand), loaded once per session; shared like ``sample``."""
    from _helpers import small_frames

    from salesops_widgets import load

    return load(small_frames())


@pytest.fixture(scope="session")
def realistic_deals():
    """The realistic export's used deals, cleaned by hand in pandas (tests/_helpers.py)."""
    from _helpers import realistic_deals as reference

    return reference()


@pytest.fixture(scope="session")
def tiny_history():
    """The tiny pipeline with stage history of tests/_helpers.py (6 deals, as of 2025-03-31),
    loaded once per session: the cycle, time-to-close and stages tests share it."""
    from _helpers import HISTORY_AS_OF, history_frames

    from salesops_widgets import load

    return load(history_frames(), as_of=HISTORY_AS_OF)


# --------------------------------------------------------------------------------------------------
# Voilà server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Voilà exited with {proc.returncode} before serving:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers HTTP, so it is up
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"Voilà did not answer at {url} within {timeout:.0f} s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def voila_url(sample_dirs: dict[str, Path], request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/``) of a Voilà server serving notebooks/.

    It runs with our ``salesops`` template (Voilà's ``lab`` template without CDN links, under
    share/jupyter) and shows tracebacks, so a failing cell says why in the page.
    """
    port = free_port()
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")  # pytest-xdist
    log = ARTIFACTS_DIR / f"voila-{worker}.log"
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(JUPYTER_DATA_DIR), os.environ.get("JUPYTER_PATH", "")) if p
    )
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(NOTEBOOKS_DIR),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        f"--template={VOILA_TEMPLATE}",
        "--show_tracebacks=True",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, proc, log, timeout=90)
        yield url
    finally:
        _stop(proc)


@contextmanager
def salesops_serve(data: Path, log_name: str, *args: str) -> Iterator[str]:
    """Run ``salesops serve --data DATA [ARGS]`` on a free port and yield its base URL; its
    log goes to tmp/artifacts/LOG_NAME."""
    port = free_port()
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS_DIR / log_name
    cmd = [*_salesops_command(), "serve", f"--port={port}", "--data", str(data), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, proc, log, timeout=90)
        yield url
    finally:
        _stop(proc)


def worker_id(config: pytest.Config) -> str:
    """The pytest-xdist worker ("gw0", ...), or "main" without xdist."""
    return getattr(config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(scope="session")
def serve_url(sample_dirs: dict[str, Path], request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of ``salesops serve`` on a free port, serving notebooks/ on the default sample.

    Unlike ``voila_url``, this is the production set-up: sources stripped, tracebacks hidden,
    URL parameters mapped onto the parameters cell; but no preheated kernels. Its log goes to
    tmp/artifacts/.
    """
    log_name = f"serve-{worker_id(request.config)}.log"
    # no preheated kernels: each page's own kernel, as the tests expect (one test module
    # checks preheated kernels on a server of its own)
    with salesops_serve(sample_dirs["default"], log_name, "--preheat", "0") as url:
        yield url


# --------------------------------------------------------------------------------------------------
# Browser


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's chromium. Skips the test when it is missing, or fails it under CI=true."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = (
        f"{CHROMIUM} is missing: install Debian's chromium "
        "(`make chromium`, or `sudo apt-get install -y chromium`); "
        "`playwright install` cannot download browsers here"
    )
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser(chromium_path: Path):
    """A headless Playwright Browser on Debian's chromium, shared by the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed: `pip install -e '.[dev]'` (or `make install`)"
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def is_local(url: str) -> bool:
    """True for a URL that stays on this machine (loopback, or data:/blob:/about:)."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about", "chrome-error"}:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


# anywidget 0.11 gives a chart widget's model 2 s to load its JavaScript (for a JupyterChart,
# the 900 KB offline vega bundle, compiled once per chart), then rejects a promise nobody awaits:
# an uncaught "Failed to initialize model." while the model goes on loading and its chart is
# drawn all the same. On a busy machine a page of 14 charts takes longer than that. The tests
# that allow it count the charts drawn.
ANYWIDGET_WATCHDOG = "[anywidget] Failed to initialize model."


def wait_for_texts(page, texts: list[str], timeout_ms: float) -> None:
    """Wait until the rendered cells of a Voila page show every one of ``texts``: Voila shows
    the cells once they have run, but the page may draw their outputs later."""
    page.wait_for_function(
        """texts => {
            const text = document.querySelector('#rendered_cells').innerText;
            return texts.every(t => text.includes(t));
        }""",
        arg=texts,
        timeout=timeout_ms,
    )


@dataclass
class PageLog:
    """What a page did: every request and websocket URL, console errors and uncaught errors."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        return [url for url in self.requests if not is_local(url)]

    @property
    def uncaught_errors(self) -> list[str]:
        """``page_errors`` but anywidget's start-up watchdog (``ANYWIDGET_WATCHDOG``)."""
        return [error for error in self.page_errors if error != ANYWIDGET_WATCHDOG]


@pytest.fixture
def page_log() -> PageLog:
    """The record of the ``page`` fixture's requests and errors."""
    return PageLog()


def recorded_page(browser, log: PageLog):
    """A new browser context and page that record into ``log`` and block (but record) every
    request to a non-local host: ``(context, page)``; close the context when done."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # Block, but record (the "request" event still fires), anything that would leave the machine.
    context.route(
        "**/*",
        lambda route: route.continue_() if is_local(route.request.url) else route.abort(),
    )
    pg = context.new_page()
    pg.on("request", lambda req: log.requests.append(req.url))
    pg.on("websocket", lambda ws: log.requests.append(ws.url))
    pg.on(
        "console",
        lambda msg: (
            log.console_errors.append(f"{msg.text} ({msg.location})")
            if msg.type == "error"
            else None
        ),
    )
    pg.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    return context, pg


@pytest.fixture
def page(browser, page_log: PageLog, request: pytest.FixtureRequest):
    """A fresh page that records into ``page_log``, blocks requests to any non-local host,
    and leaves a screenshot and its HTML under tmp/artifacts/ when the test fails."""
    context, pg = recorded_page(browser, page_log)
    yield pg
    if call_failed(request.node):
        save_artifacts(pg, request.node.nodeid)
    close(context, pg)


def close(context, pg) -> None:
    """Close the page as a reader does (its beforeunload shuts its Voilà kernel down), then its
    context."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        pg.close(run_before_unload=True)
    except PlaywrightError as exc:
        if "has been closed" not in str(exc):  # a test closed it already
            raise
    finally:
        context.close()


def call_failed(item: pytest.Item) -> bool:
    """True when the test's call phase failed (for fixtures' teardown)."""
    report = item.stash.get(_REPORTS, {}).get("call")
    return report is not None and report.failed


def save_artifacts(pg, nodeid: str) -> None:
    """A full-page screenshot and the HTML of ``pg`` under tmp/artifacts/, named after the test."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)
    try:
        pg.screenshot(path=str(ARTIFACTS_DIR / f"{stem}.png"), full_page=True)
        (ARTIFACTS_DIR / f"{stem}.html").write_text(pg.content())
    except Exception as exc:  # the page may be gone; the test's own error matters more
        print(f"could not save artifacts for {nodeid}: {exc}", file=sys.stderr)
    else:
        print(f"artifacts of {nodeid}: {ARTIFACTS_DIR / stem}.png/.html", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# Hooks

_REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


# --------------------------------------------------------------------------------------------------
# Other engines: a throwaway PostgreSQL cluster and a local Spark session (tests/_backends.py)

# The parity tests' data: a small sample (a few thousand deals keep Spark's queries short).
BACKEND_SAMPLE_SIZE = 2_000


def _backend_or_skip(start):
    """``start()``, or a skip (a failure under CI=true) when the engine is not installed."""
    from _backends import BackendMissing

    try:
        return start()
    except BackendMissing as exc:
        if in_ci():
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def backend_frames():
    """The canonical tables of a small generated sample, as pandas frames."""
    from salesops_widgets.data import generate_sample

    return generate_sample(BACKEND_SAMPLE_SIZE)


@pytest.fixture(scope="session")
def duckdb_small(backend_frames):
    """``backend_frames`` loaded on the embedded DuckDB: the reference of the parity tests."""
    from salesops_widgets import load

    return load(backend_frames)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL cluster on a loopback port, for the session."""
    from _backends import postgres_cluster, require_postgres

    _backend_or_skip(require_postgres)
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str, backend_frames) -> str:
    """A URL whose schema holds ``backend_frames`` as tables (what ``load`` reads)."""
    from _backends import write_postgres

    return write_postgres(postgres_server, backend_frames, "crm")


@pytest.fixture(scope="session")
def postgres_small(postgres_url: str):
    """``backend_frames`` loaded from PostgreSQL: validated and computed by the server."""
    from _backends import forget_cached

    from salesops_widgets import load

    data = load(postgres_url)
    yield data
    forget_cached(data.con)


@pytest.fixture(scope="session")
def spark(backend_frames) -> Iterator:
    """A local[2] SparkSession whose temporary views hold ``backend_frames``."""
    from _backends import require_spark, spark_session, write_spark

    _backend_or_skip(require_spark)
    with spark_session() as s:
        write_spark(s, backend_frames)
        yield s


@pytest.fixture(scope="session")
def spark_small(spark):
    """``backend_frames`` loaded from the SparkSession: validated and computed by Spark."""
    from _backends import forget_cached

    from salesops_widgets import load

    data = load(spark)
    yield data
    forget_cached(data.con)
