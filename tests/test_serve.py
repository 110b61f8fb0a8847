"""``salesops serve``: the Voilà configuration, URL parameters onto the parameters cell, the index
page, and (in chromium) the real server: every dashboard offline, with URL parameters.

Adding a dashboard to the live checks is one line in DASHBOARDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from _helpers import ROOT, run_async
from conftest import free_port, wait_for_texts
from tornado.web import HTTPError
from typer.testing import CliRunner

from salesops_widgets.cli import app
from salesops_widgets.errors import ParameterError
from salesops_widgets.runs import external_references
from salesops_widgets.serve import (
    DashboardIndex,
    ServeOptions,
    UrlParameters,
    describe,
    find_jupyter_data,
    parameterize,
    parse_pools,
    preheated_kernel_serves,
    serve,
    url_parameters,
    voila_argv,
    voila_config,
)

NOTEBOOKS = ROOT / "notebooks"
DATA_QUALITY = NOTEBOOKS / "data_quality.ipynb"
TINY = ROOT / "tests" / "fixtures" / "notebooks" / "tiny.ipynb"

# One line per dashboard: notebook, URL query, texts the rendered page must show.
DASHBOARDS = [
    # as_of differs from the sample's latest date (2026-09-30), so the page proves it was applied
    ("data_quality.ipynb", "as_of=2026-06-30", ["2026-06-30", "opportunities"]),
]

RENDER_TIMEOUT_MS = 180_000
WIDGETS_TIMEOUT_MS = 90_000  # the widgets' views, after the cells (a loaded CI machine)
ERROR_MARKERS = ("Traceback", "There was an error when executing cell", "could not be computed")


def read_nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def query(**values: str | list[str]) -> dict[str, list[bytes]]:
    """A query as tornado's ``request.query_arguments`` gives it."""
    return {k: [x.encode() for x in (v if isinstance(v, list) else [v])] for k, v in values.items()}


# --------------------------------------------------------------------------------------------------
# Configuration (no server)


def test_config_defaults_are_local_offline_and_quiet():
    c = voila_config(ServeOptions(notebooks=NOTEBOOKS))
    assert (c.Voila.ip, c.Voila.port, c.Voila.port_retries) == ("127.0.0.1", 8866, 0)
    assert c.Voila.open_browser is False
    assert "token" not in c.Voila  # no token on 127.0.0.1 unless asked for
    assert c.Voila.base_url == "/"
    vc = c.VoilaConfiguration
    assert vc.template == "salesops"
    assert vc.allow_template_override == "NO"  # ?template=lab would bring back the CDN links
    assert vc.strip_sources is True
    assert vc.show_tracebacks is False
    # one preheated kernel per dashboard, beside the prelaunch hook (Voilà refuses the pair;
    # SalesOpsVoila keeps both, see test_preheated_kernels_and_the_hook_start_together)
    assert (vc.preheat_kernel, vc.default_pool_size) == (True, 1)
    assert isinstance(vc.prelaunch_hook, UrlParameters)
    assert vc.prelaunch_hook.defaults == {}
    assert isinstance(vc.page_config_hook, DashboardIndex)
    assert "Traceback" not in c.VoilaExecutor.cell_error_instruction
    kernels = c.MappingKernelManager
    assert (kernels.cull_idle_timeout, kernels.cull_interval) == (1200, 60)
    assert voila_argv(ServeOptions(notebooks=NOTEBOOKS)) == [str(NOTEBOOKS)]


def test_config_with_token_base_url_and_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "export").mkdir()
    options = ServeOptions(
        notebooks=NOTEBOOKS,
        host="0.0.0.0",
        port=9000,
        token="s3cret",
        base_url="salesops",
        data="export",
        mapping="salesforce",
        cull_idle_seconds=300,
        preheat=0,
    )
    c = voila_config(options)
    assert c.VoilaConfiguration.preheat_kernel is False  # --preheat 0: a kernel per page
    assert (c.Voila.ip, c.Voila.port, c.Voila.token) == ("0.0.0.0", 9000, "s3cret")
    assert c.Voila.base_url == "/salesops/"
    # kernels run in the notebook's folder: a relative --data is made absolute
    defaults = c.VoilaConfiguration.prelaunch_hook.defaults
    assert defaults == {"data_path": str(tmp_path / "export"), "mapping": "salesforce"}
    assert c.MappingKernelManager.cull_idle_timeout == 300


def test_salesops_template_is_found_and_makes_no_external_request():
    template = find_jupyter_data() / "voila" / "templates" / "salesops"
    names = {p.name for p in template.iterdir()}
    assert {"index.html.j2", "page.html", "tree-lab.html", "tree.html", "error.html"} <= names
    for path in template.iterdir():
        assert external_references(path.read_text()) == [], path.name


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--host", "0.0.0.0"], "--token"),
        (["--data", "nowhere-at-all"], "nowhere-at-all"),
        (["--notebooks", "nowhere-at-all"], "nowhere-at-all"),
    ],
)
def test_serve_refuses_bad_options_before_starting(args, needle):
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------------------------------
# URL parameters (no server)


def test_url_parameters_are_typed_like_the_parameters_cell():
    nb = read_nb(TINY)
    got = url_parameters(
        query(as_of="2026-09-30", count="4", names=["EMEA", "NA"], shout="true"),
        nb,
        defaults={},
        notebook="tiny.ipynb",
    )
    assert got == {"as_of": "2026-09-30", "count": 4, "names": ["EMEA", "NA"], "shout": True}


def test_server_defaults_apply_to_notebooks_that_declare_them():
    defaults = {"data_path": "/srv/crm", "mapping": "salesforce"}
    got = url_parameters({}, read_nb(DATA_QUALITY), defaults=defaults, notebook="dq")
    assert got == defaults
    broken = read_nb(ROOT / "tests" / "fixtures" / "notebooks" / "broken.ipynb")
    assert url_parameters({}, broken, defaults=defaults, notebook="b") == {"mapping": "salesforce"}


def test_voila_and_server_keys_are_ignored():
    got = url_parameters(
        query(token="t", theme="dark", template="lab", **{"classic-tree": "true"}),
        read_nb(DATA_QUALITY),
        defaults={},
        notebook="dq",
    )
    assert got == {}


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        ({"regoin": "EMEA"}, ["unknown parameter 'regoin'", "data_quality.ipynb"]),
        ({"count": "many"}, ["'count'", "whole number"]),
        ({"data_path": "/etc"}, ["data_path", "--data"]),
        ({"mapping": "../../secret.yaml"}, ["mapping", "--mapping"]),
    ],
)
def test_bad_url_parameters_are_refused(values, needles):
    nb = read_nb(TINY if "count" in values else DATA_QUALITY)
    name = "tiny.ipynb" if "count" in values else "data_quality.ipynb"
    with pytest.raises(ParameterError) as caught:
        url_parameters(query(**values), nb, defaults={}, notebook=name)
    for needle in needles:
        assert needle in str(caught.value)


def test_parameterize_injects_after_the_parameters_cell_and_copies():
    nb = read_nb(DATA_QUALITY)
    before = nbformat.writes(nb)
    done = parameterize(nb, {"as_of": "2026-06-30", "data_path": "/srv/crm"})
    assert nbformat.writes(nb) == before, "the notebook Voilà loaded must not change"
    assert "parameters" in done.cells[0].metadata.tags
    injected = done.cells[1]
    assert injected.metadata.tags == ["injected-parameters"]
    assert 'as_of = "2026-06-30"' in injected.source
    assert 'data_path = "/srv/crm"' in injected.source
    assert len(done.cells) == len(nb.cells) + 1


def test_parameterize_cannot_inject_code():
    done = parameterize(read_nb(DATA_QUALITY), {"as_of": 'x"\nimport os\nos.system("id")\n"'})
    injected = done.cells[1].source
    assert "\nimport os" not in injected  # the newline is escaped inside one string literal
    ns: dict = {}
    exec(compile(injected, "injected", "exec"), ns)  # noqa: S102 - it only assigns
    assert ns["as_of"] == 'x"\nimport os\nos.system("id")\n"'


def fake_handler(path: str, **values) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(path=path, query_arguments=query(**values)))


def test_prelaunch_hook():
    nb = read_nb(DATA_QUALITY)
    hook = UrlParameters({"data_path": "/srv/crm"})
    done = hook(fake_handler("/voila/render/data_quality.ipynb", as_of="2026-06-30"), nb, ".")
    assert 'as_of = "2026-06-30"' in done.cells[1].source
    assert UrlParameters()(fake_handler("/voila/render/data_quality.ipynb"), nb, ".") is None

    with pytest.raises(HTTPError) as caught:
        hook(fake_handler("/voila/render/data_quality.ipynb", regoin="EMEA"), nb, ".")
    assert caught.value.status_code == 400
    message = caught.value.log_message % caught.value.args  # what the error page shows
    assert "regoin" in message and "data_quality.ipynb" in message


def test_prelaunch_hook_of_a_preheated_kernel_sets_the_server_defaults_only():
    # Voilà calls the hook with no handler when it preheats: no request, no URL yet
    nb = read_nb(DATA_QUALITY)
    done = UrlParameters({"data_path": "/srv/crm", "mapping": "salesforce"})(None, nb, ".")
    injected = next(c for c in done.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'data_path = "/srv/crm"' in injected.source and "as_of" not in injected.source
    assert UrlParameters()(None, nb, ".") is None


@pytest.mark.parametrize(
    ("values", "serves"),
    [
        ({}, True),
        ({"region": "EMEA", "dimension": "industry"}, True),  # the dashboard's own state
        ({"as_of": ""}, True),  # the as-of date the kernel loaded with
        ({"as_of": "2026-06-30"}, False),  # another as-of date: the data must be loaded again
        ({"region": "EMEA", "as_of": "2026-06-30"}, False),
    ],
)
def test_a_preheated_kernel_serves_links_it_can_apply(values, serves):
    nb = read_nb(NOTEBOOKS / "segmentation_explorer.ipynb")
    request = fake_handler("/voila/render/segmentation_explorer.ipynb", **values).request
    assert preheated_kernel_serves(request, nb) is serves


def test_a_bad_link_is_refused_before_a_preheated_kernel_is_used():
    nb = read_nb(NOTEBOOKS / "segmentation_explorer.ipynb")
    for values in ({"regoin": "EMEA"}, {"data_path": "/etc"}, {"filters": "EMEA"}):
        request = fake_handler("/voila/render/segmentation_explorer.ipynb", **values).request
        with pytest.raises(HTTPError) as caught:
            preheated_kernel_serves(request, nb)
        assert caught.value.status_code == 400


def test_preheated_kernels_and_the_hook_start_together(tmp_path):
    from salesops_widgets.serve._app import SalesOpsVoila

    app = SalesOpsVoila(config=voila_config(ServeOptions(notebooks=tmp_path, port=free_port())))
    app.initialize([str(tmp_path)])  # plain Voilà raises: incompatible
    assert app.voila_configuration.preheat_kernel is True
    assert isinstance(app.voila_configuration.prelaunch_hook, UrlParameters)


def test_a_pool_size_per_dashboard():
    pools = parse_pools(["segmentation_explorer=25", "sticker_shock.ipynb=0"])
    c = voila_config(ServeOptions(notebooks=NOTEBOOKS, preheat=0, pools=pools))
    assert c.VoilaConfiguration.preheat_kernel is True  # one dashboard has a pool
    assert c.VoilaKernelManager.kernel_pools_config == {
        "default": {"pool_size": 0},
        "segmentation_explorer.ipynb": {"pool_size": 25},
        "sticker_shock.ipynb": {"pool_size": 0},
    }
    for bad in ("segmentation_explorer", "=3", "segmentation_explorer=-1", "x=two"):
        with pytest.raises(ParameterError, match="--pool"):
            parse_pools([bad])
    with pytest.raises(ParameterError, match="--pool nope=2"):
        serve(ServeOptions(notebooks=NOTEBOOKS, pools=(("nope", 2),)))


def test_preheat_must_not_be_negative():
    with pytest.raises(ParameterError, match="--preheat -1"):
        serve(ServeOptions(notebooks=NOTEBOOKS, preheat=-1))  # refused before it starts


# --------------------------------------------------------------------------------------------------
# The charts' shared bundle: its route and the URL the kernels are told (no Voilà server)


def test_the_chart_bundle_route_serves_one_immutable_script_and_tells_the_kernels(monkeypatch):
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port
    from tornado.web import Application

    from salesops_widgets.serve._app import SalesOpsVoila
    from salesops_widgets.widgets import CHART_BUNDLE_URL_ENV, chart_bundle, chart_bundle_route

    monkeypatch.delenv(CHART_BUNDLE_URL_ENV, raising=False)
    voila = SalesOpsVoila(base_url="/dash/")
    route = voila._chart_bundle_route()
    url = f"/dash/{chart_bundle_route()}"
    assert os.environ[CHART_BUNDLE_URL_ENV] == url  # what the kernels started next inherit

    async def fetch_all() -> tuple:
        sock, port = bind_unused_port()
        server = HTTPServer(Application([route]))
        server.add_sockets([sock])
        client = AsyncHTTPClient()
        try:
            first = await client.fetch(f"http://127.0.0.1:{port}{url}")
            again = await client.fetch(
                f"http://127.0.0.1:{port}{url}",
                headers={"If-None-Match": first.headers["Etag"]},
                raise_error=False,
            )
            with pytest.raises(HTTPClientError) as other:
                await client.fetch(f"http://127.0.0.1:{port}/dash/salesops/static/index.css")
            return first, again, other.value.code
        finally:
            server.stop()

    first, again, other = run_async(fetch_all())
    assert first.code == 200 and first.body == chart_bundle().encode("utf-8")
    assert first.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in first.headers["Cache-Control"]
    assert again.code == 304 and other == 404


# --------------------------------------------------------------------------------------------------
# The index page's list (no server)


def test_describe_takes_title_and_first_sentence():
    assert describe(read_nb(DATA_QUALITY), "data_quality") == {
        "title": "Data quality",
        "line": "What was read from your CRM export, what was set aside, and why.",
    }
    assert describe(read_nb(TINY), "tiny")["line"].startswith("A throwaway notebook for the tests")
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    assert describe(empty, "empty") == {"title": "empty", "line": ""}


def test_index_hook_lists_folder_pages_only():
    hook = DashboardIndex(NOTEBOOKS)
    listed = hook({}, notebook_path="")["salesopsDashboards"]
    assert set(listed) == {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert listed["data_quality.ipynb"]["title"] == "Data quality"
    assert hook({}, notebook_path="data_quality.ipynb") == {}
    assert hook({}, notebook_path="..") == {}  # never outside the served folder


# --------------------------------------------------------------------------------------------------
# The real server, in chromium


@pytest.mark.browser
@pytest.mark.slow
def test_index_lists_every_dashboard_offline(page, page_log, serve_url):
    page.goto(serve_url)
    page.get_by_text("data_quality.ipynb", exact=True).wait_for(timeout=30_000)
    assert page.get_by_text("Data quality", exact=True).is_visible()
    assert page.get_by_text("What was read from your CRM export", exact=False).is_visible()
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        assert page.get_by_text(notebook.name, exact=True).count() == 1, notebook.name
    assert page_log.external_requests == [], "the index page reached outside the machine"
    assert page_log.page_errors == [] and page_log.console_errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_bad_url_parameter_gives_a_friendly_page(page, page_log, serve_url):
    response = page.goto(f"{serve_url}voila/render/data_quality.ipynb?regoin=EMEA")
    assert response.status == 400
    text = page.locator("body").inner_text()
    assert "unknown parameter 'regoin'" in text and "Traceback" not in text
    assert page.get_by_role("link", name="All dashboards").is_visible()
    assert page_log.external_requests == []

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{serve_url}voila/render/data_quality.ipynb?data_path=/etc")
    assert caught.value.code == 400
    assert "--data" in caught.value.read().decode()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(("notebook", "params", "expected"), DASHBOARDS, ids=lambda v: str(v))
def test_dashboard_renders_offline_with_url_parameters(
    page, page_log, serve_url, notebook, params, expected
):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.goto(f"{serve_url}voila/render/{notebook}?{params}", timeout=RENDER_TIMEOUT_MS)
    cells = page.locator("#rendered_cells")
    cells.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    # Voilà shows the cells once they have run, but the page may draw their outputs later (on a
    # loaded machine they were missing when read at once): the texts are waited for. On a
    # timeout, the assertions below name what is missing.
    with contextlib.suppress(PlaywrightTimeoutError):
        wait_for_texts(page, expected, WIDGETS_TIMEOUT_MS)

    text = cells.inner_text()
    errors = [marker for marker in ERROR_MARKERS if marker in text]
    assert errors == [], f"a cell failed:\n{text[:3000]}"
    missing = [word for word in expected if word not in text]
    assert missing == [], f"not on the page: {missing}"
    assert "load(data_path" not in page.content(), "source code is shown"
    assert page_log.page_errors == []
    assert page_log.console_errors == []
    assert page_log.external_requests == [], "the dashboard reached outside the machine"


def test_pool_kernels_run_their_notebooks_one_at_a_time():
    from salesops_widgets.serve._app import one_preheat_at_a_time

    running, most = 0, 0

    class Pooling:  # Voilà's preheating manager, reduced to what the wrapper uses
        def get_rendered_notebook(self): ...

        async def _initialize(self, notebook_path, kernel_id=None, **kwargs):
            async def render():
                nonlocal running, most
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.05)
                running -= 1
                return notebook_path

            return {"task": asyncio.ensure_future(render()), "kernel_id": notebook_path}

    class Plain:  # --preheat 0: no pools, nothing to wrap
        pass

    assert one_preheat_at_a_time(Plain) is Plain

    async def fill() -> list:
        manager = one_preheat_at_a_time(Pooling)()
        return await asyncio.gather(*(manager._initialize(f"nb{i}") for i in range(4)))

    contents = run_async(fill())
    assert most == 1  # without the wrapper: 4
    assert [c["task"].result() for c in contents] == ["nb0", "nb1", "nb2", "nb3"]
