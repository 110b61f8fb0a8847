"""``salesops run``: parameters checked before a kernel starts, atomic report folders, failures
kept aside, standalone HTML reports that make no network request.

Most tests need no kernel. The few that run one use the throwaway notebooks of
tests/fixtures/notebooks/ (tiny.ipynb fails, sleeps or crashes on demand; broken.ipynb always
fails) and the 16-row Salesforce fixture, so each run takes a few seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pyarrow.parquet as pq
import pytest
from _helpers import ROOT, SALESFORCE
from typer.testing import CliRunner

from salesops_widgets import __version__, validate
from salesops_widgets.cli import app
from salesops_widgets.errors import ParameterError
from salesops_widgets.runs import (
    _execute,
    _store,
    check_values,
    declared_parameters,
    external_references,
    parse_texts,
    read_latest,
    render_report,
)
from salesops_widgets.runs._fingerprint import data_fingerprint
from salesops_widgets.runs._plan import parse_assignments, read_params_file

FIXTURE_NOTEBOOKS = ROOT / "tests" / "fixtures" / "notebooks"
TINY = FIXTURE_NOTEBOOKS / "tiny.ipynb"
runner = CliRunner()


def salesops_run(*args, out: Path):
    """``salesops run`` in this process, on the Salesforce fixture."""
    argv = ["run", *map(str, args), "--data", SALESFORCE, "--mapping", "salesforce", "--out", out]
    result = runner.invoke(app, [str(a) for a in argv])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def read_nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


# --------------------------------------------------------------------------------------------------
# Parameters: declared, parsed, checked (no kernel)


def test_declared_parameters_include_lines_papermill_skips():
    declared = declared_parameters(read_nb(ROOT / "notebooks" / "data_quality.ipynb"))
    # papermill's inspection drops `as_of: str = ""  # ...; empty = latest ...` (two `=`)
    assert {"data_path", "mapping", "as_of"} <= set(declared)
    assert declared["as_of"].type == "str"
    assert declared["as_of"].default == ""
    assert declared["mapping"].help.startswith("canonical, salesforce")


def test_declared_types_of_the_tiny_notebook():
    declared = declared_parameters(read_nb(TINY))
    types = {name: p.type for name, p in declared.items()}
    assert types == {
        "data_path": "str",
        "mapping": "str",
        "mode": "str",
        "seconds": "float",
        "count": "int",
        "shout": "bool",
        "names": "list",
        "as_of": "str",
    }


def test_types_from_annotations_and_defaults():
    cell = nbformat.v4.new_code_cell(
        "a: int | None = None  # optional\nb = 2.5\nc: 'list[str]' = []\nd = {'k': 1}\ne = f()",
        metadata={"tags": ["parameters"]},
    )
    declared = declared_parameters(nbformat.v4.new_notebook(cells=[cell]))
    assert (declared["a"].type, declared["a"].optional) == ("int", True)
    assert declared["b"].type == "float"
    assert declared["c"].type == "list"
    assert declared["d"].type == "dict"
    assert declared["e"].type == ""  # not a literal: taken as text


def test_no_parameters_cell_declares_nothing():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert declared_parameters(nb) == {}


def test_texts_become_the_declared_types():
    declared = declared_parameters(read_nb(TINY))
    texts = {
        "count": "4",
        "seconds": "2.5",
        "shout": "yes",
        "names": "EMEA, NA",
        "mode": "ok",
        "as_of": "2026-09-30",
    }
    assert parse_texts(declared, texts, notebook="tiny.ipynb") == {
        "count": 4,
        "seconds": 2.5,
        "shout": True,
        "names": ["EMEA", "NA"],
        "mode": "ok",
        "as_of": "2026-09-30",
    }
    assert parse_texts(declared, {"names": "['a b', 'c']"}, notebook="t") == {"names": ["a b", "c"]}
    parsed = parse_texts(declared, {"names": ["a", "b,c"]}, notebook="t")
    assert parsed == {"names": ["a", "b", "c"]}
    assert parse_texts(declared, {"shout": "False"}, notebook="t") == {"shout": False}


@pytest.mark.parametrize(
    ("texts", "needles"),
    [
        ({"regoin": "EMEA"}, ["'regoin'", "tiny.ipynb", "count"]),
        ({"count": "three"}, ["'count'", "tiny.ipynb", "whole number", "'three'"]),
        ({"seconds": "soon"}, ["'seconds'", "number"]),
        ({"shout": "maybe"}, ["'shout'", "true or false"]),
        ({"count": ["1", "2"]}, ["'count'", "2 times"]),
    ],
)
def test_bad_texts_name_the_parameter_and_the_notebook(texts, needles):
    declared = declared_parameters(read_nb(TINY))
    with pytest.raises(ParameterError) as caught:
        parse_texts(declared, texts, notebook="tiny.ipynb")
    for needle in needles:
        assert needle in str(caught.value)


def test_typed_values_are_checked():
    declared = declared_parameters(read_nb(TINY))
    values = {"as_of": dt.date(2026, 9, 30), "seconds": 3, "names": ("a",), "count": 2}
    assert check_values(declared, values, notebook="t") == {
        "as_of": "2026-09-30",  # YAML reads an unquoted date as a date
        "seconds": 3.0,
        "names": ["a"],
        "count": 2,
    }
    for bad in ({"count": "2"}, {"count": True}, {"shout": "yes"}, {"names": "a"}):
        with pytest.raises(ParameterError, match="tiny.ipynb"):
            check_values(declared, bad, notebook="tiny.ipynb")


def test_assignments_and_params_file(tmp_path):
    assert parse_assignments(["a=1", "b=x=y", "a=2"]) == {"a": ["1", "2"], "b": "x=y"}
    with pytest.raises(ParameterError, match="key=value"):
        parse_assignments(["novalue"])
    params = tmp_path / "params.yml"
    params.write_text("as_of: 2026-09-30\nnames: [a, b]\n")
    assert read_params_file(params) == {"as_of": dt.date(2026, 9, 30), "names": ["a", "b"]}
    params.write_text("- a\n- b\n")
    with pytest.raises(ParameterError, match="name: value"):
        read_params_file(params)
    with pytest.raises(ParameterError, match="nowhere.yml"):
        read_params_file(tmp_path / "nowhere.yml")


# --------------------------------------------------------------------------------------------------
# Bad input stops the run before any kernel starts: exit 2


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if papermill is asked to execute anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(_execute, "_papermill", refuse)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-p", "regoin=EMEA"], ["unknown parameter 'regoin'", "tiny.ipynb"]),
        (["-p", "count=three"], ["'count'", "tiny.ipynb", "whole number"]),
        (["-p", "data_path=/etc"], ["--data"]),
        (["-p", "count"], ["key=value"]),
    ],
)
def test_bad_parameter_exits_2_before_a_kernel_starts(args, needles, tmp_path, no_kernel):
    result = salesops_run(TINY, *args, out=tmp_path / "out")
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.stderr
    assert not (tmp_path / "out").exists()


def test_params_file_of_the_wrong_type_exits_2(tmp_path, no_kernel):
    params = tmp_path / "params.yml"
    params.write_text("count: many\n")
    result = salesops_run(TINY, "--params-file", params, out=tmp_path / "out")
    assert result.exit_code == 2
    assert "'count'" in result.stderr


def test_unknown_notebook_exits_2_and_lists_the_notebooks(tmp_path, no_kernel):
    result = salesops_run("tinny", "--notebooks", FIXTURE_NOTEBOOKS, out=tmp_path / "out")
    assert result.exit_code == 2
    assert "tinny" in result.stderr and "tiny" in result.stderr and "broken" in result.stderr


def test_all_rejects_a_parameter_no_notebook_declares(tmp_path, no_kernel):
    args = ["all", "--notebooks", FIXTURE_NOTEBOOKS, "-p", "region=EMEA"]
    result = salesops_run(*args, out=tmp_path / "out")
    assert result.exit_code == 2
    assert "no notebook declares it" in result.stderr


def test_unreadable_data_exits_1_before_a_kernel_starts(tmp_path, no_kernel):
    argv = ["run", str(TINY), "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert "nowhere" in result.stderr
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------------------------------
# Output folders (no kernel)


def test_publish_is_a_rename_and_never_overwrites(tmp_path):
    first = _store.scratch_dir(tmp_path / "nb", "20260101T000000Z")
    (first / "a.txt").write_text("1")
    second = _store.scratch_dir(tmp_path / "nb", "20260101T000000Z")
    (second / "a.txt").write_text("2")
    one = _store.publish(first, tmp_path / "nb", "20260101T000000Z")
    two = _store.publish(second, tmp_path / "nb", "20260101T000000Z")
    assert (one.name, two.name) == ("20260101T000000Z", "20260101T000000Z-2")
    assert (one / "a.txt").read_text() == "1" and (two / "a.txt").read_text() == "2"
    assert not first.exists() and not second.exists()


def test_latest_pointer_is_replaced_atomically(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    assert read_latest(tmp_path) is None
    _store.point_latest(tmp_path, "A")
    assert read_latest(tmp_path) == tmp_path / "A"
    _store.point_latest(tmp_path, "B")
    assert read_latest(tmp_path) == tmp_path / "B"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A", "B", "latest"]


def test_stamp_is_utc_and_sortable():
    moment = dt.datetime(2026, 11, 22, 8, 5, 9, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert _store.stamp(moment) == "20261122T070509Z"


# The views the Salesforce fixture cannot feed: Opportunity.csv has no list price column, so both
# discount views have nothing to count; every other view has deals (4 open ones with an amount,
# 6 of the 7 won deals with one, every closed deal with dates but #16).
SF_WARNINGS = [
    "no list_amount column in the data: portfolio discount cannot be computed",
    "no list_amount column in the data: win rate by discount band cannot be computed",
]


def test_fingerprint_hashes_files_and_counts_rows():
    described = data_fingerprint(str(SALESFORCE), mapping="salesforce")
    fingerprint = described["fingerprint"]
    names = sorted(p.name for p in SALESFORCE.iterdir())
    assert [f["path"] for f in fingerprint["files"]] == names
    opportunity = next(f for f in fingerprint["files"] if f["path"] == "Opportunity.csv")
    content = (SALESFORCE / "Opportunity.csv").read_bytes()
    assert opportunity["sha256"] == hashlib.sha256(content).hexdigest()
    assert opportunity["bytes"] == len(content)
    # 16 rows in Opportunity.csv, only #14 (no status) excluded (see test_cli.py); 5 flags, one
    # row each: #9 open past its close date, #10 and #11 unknown account and owner, and, kept
    # now instead of excluded, #12 (EUR without a rate) and #16 (closed before created)
    assert fingerprint["rows"]["opportunities"] == {
        "read": 16,
        "used": 15,
        "excluded": 1,
        "flagged": 5,
    }
    assert described["data_quality"]["usable"] is True
    assert described["warnings"] == SF_WARNINGS


# --------------------------------------------------------------------------------------------------
# The HTML report (no kernel: a hand-made executed notebook)

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="5"/></svg>'
WIDGET_VIEW = {"version_major": 2, "version_minor": 0, "model_id": "abc"}


def executed_notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    chart = v4.new_output("display_data", data={"image/svg+xml": SVG, "text/plain": "chart"})
    fallback = v4.new_output(
        "display_data",
        data={
            "application/vnd.jupyter.widget-view+json": WIDGET_VIEW,
            "text/html": "<p>static fallback</p>",
            "text/plain": "HTML(value='live')",
        },
    )
    bare = v4.new_output(
        "display_data",
        data={"application/vnd.jupyter.widget-view+json": WIDGET_VIEW, "text/plain": "VBox()"},
    )
    cells = [
        v4.new_markdown_cell("# Report title\n\nSome $x^2$ maths and a diagram below."),
        v4.new_markdown_cell("```mermaid\ngraph TD; A-->B\n```"),
        v4.new_code_cell("secret_source_line = 1", outputs=[chart]),
        v4.new_code_cell("widget", outputs=[fallback, bare]),
    ]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_report_has_no_code_inline_svg_and_widget_fallbacks():
    html = render_report(executed_notebook(), footer="run on the fixture")
    assert "secret_source_line" not in html
    assert "<svg" in html and '<img src="data:image/svg+xml' not in html
    assert "static fallback" in html
    assert "VBox()" not in html and "open this notebook as a dashboard" in html
    assert "run on the fixture" in html
    assert "<title>Report title</title>" in html


def test_report_makes_no_network_request():
    html = render_report(executed_notebook())
    assert external_references(html) == []
    for name in ("require", "mathjax", "mermaid", "unpkg", "cdn"):
        assert f'src="https://{name}' not in html.lower()


def test_external_references_finds_loads_not_links():
    page = (
        '<script src="https://cdn.example/x.js"></script><link href="//fonts.example/f.css">'
        '<img src="http://127.0.0.1:8866/ok.png"><a href="https://docs.example">docs</a>'
        "<style>@import 'https://x.example/a.css'; b { background: url(https://y.example/i.png) }"
    )
    assert external_references(page) == [
        "https://cdn.example/x.js",
        "//fonts.example/f.css",
        "https://x.example/a.css",
        "https://y.example/i.png",
    ]


# --------------------------------------------------------------------------------------------------
# Real runs (a kernel each)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """tiny.ipynb run once with parameters of every type: (result, OUT)."""
    out = tmp_path_factory.mktemp("runs")
    args = ["-p", "count=4", "-p", "names=x,y", "-p", "shout=true", "-p", "as_of=2025-06-01"]
    return salesops_run(TINY, *args, out=out), out


@pytest.mark.notebook
def test_run_writes_notebook_report_manifest_and_latest(good_run):
    result, out = good_run
    assert result.exit_code == 0, result.output
    folder = read_latest(out / "tiny")
    assert folder is not None and folder.parent == out / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "tiny.html", "tiny.ipynb"]
    assert "tiny.ipynb" in result.stdout and "ok" in result.stdout

    executed = read_nb(folder / "tiny.ipynb")
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "HELLO X, Y AS OF 2025-06-01" in printed  # the typed parameters reached the kernel

    html = (folder / "tiny.html").read_text()
    assert "<svg" in html and "bar 3" in html  # count=4 bars, inline SVG
    assert "static fallback of the widget" in html
    assert external_references(html) == []
    assert "alt.Chart" not in html  # no code


@pytest.mark.notebook
def test_manifest_contents(good_run):
    _, out = good_run
    folder = read_latest(out / "tiny")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["error"] is None
    assert manifest["notebook"] == "tiny.ipynb"
    assert manifest["parameters"] == {
        "count": 4,
        "names": ["x", "y"],
        "shout": True,
        "as_of": "2025-06-01",
        "data_path": str(SALESFORCE),
        "mapping": "salesforce",
    }
    assert manifest["package"]["version"] == __version__
    start, end = (dt.datetime.fromisoformat(manifest[k]) for k in ("start", "end"))
    assert (end - start).total_seconds() == pytest.approx(manifest["duration_seconds"], abs=0.01)
    assert manifest["files"] == {
        "notebook": "tiny.ipynb",
        "report": "tiny.html",
        "manifest": "manifest.json",
    }
    data = manifest["data"]
    assert data["as_of"] == "2025-06-01"
    assert {f["path"] for f in data["files"]} == {p.name for p in SALESFORCE.iterdir()}
    assert data["rows"]["opportunities"]["read"] == 16
    # #12, #15 and #16 are kept now; only #14 (no status) is excluded
    assert manifest["data_quality"]["tables"]["opportunities"]["rows_used"] == 15


@pytest.mark.notebook
def test_manifest_warnings_are_the_reports_and_the_run_prints_them(good_run):
    result, out = good_run
    manifest = json.loads((read_latest(out / "tiny") / "manifest.json").read_text())
    report = validate(SALESFORCE, mapping="salesforce", as_of="2025-06-01")
    assert manifest["warnings"] == report.all_warnings == SF_WARNINGS
    printed = " ".join(result.stdout.split())
    for warning in SF_WARNINGS:
        assert f"data warning: {warning}" in printed


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-p", "mode=fail"], ['`if mode == "fail":`', "ValueError: planted failure"]),
        (["-p", "mode=sleep", "-p", "seconds=120", "--timeout", "3"], ["sleep", "timed out"]),
        (["-p", "mode=crash"], ['`if mode == "crash":`', "kernel died"]),
    ],
    ids=["cell-error", "timeout", "kernel-crash"],
)
def test_failure_is_kept_aside_and_latest_untouched(good_run, args, needles):
    _, out = good_run
    good = read_latest(out / "tiny")
    before = sorted(p.name for p in (out / "tiny").iterdir())

    result = salesops_run(TINY, *args, out=out)

    assert result.exit_code == 1
    assert "tiny.ipynb" in result.stderr
    for needle in needles:
        assert needle in result.stderr
    assert read_latest(out / "tiny") == good
    after = sorted(p.name for p in (out / "tiny").iterdir())
    assert after == sorted({*before, "failed"}), "a failed run must not add a report folder"
    failed = max((out / "tiny" / "failed").iterdir())
    assert (failed / "tiny.ipynb").is_file()
    assert not (failed / "tiny.html").exists()
    manifest = json.loads((failed / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"]["cell_index"] is not None
    assert not [p for p in (out / "tiny").iterdir() if p.name.startswith(".")], "scratch left"


@pytest.mark.notebook
@pytest.mark.slow
def test_all_runs_every_notebook_in_parallel_and_reports_each(tmp_path):
    args = ["all", "--notebooks", FIXTURE_NOTEBOOKS, "--jobs", "2", "-p", "count=2"]
    result = salesops_run(*args, out=tmp_path)
    assert result.exit_code == 1  # broken.ipynb always fails
    table = result.stdout
    assert "broken.ipynb" in table and "tiny.ipynb" in table
    assert "failed" in table and "ok" in table
    # rich wraps long lines at the console width (a long tmp path moves the break): join them
    stderr = " ".join(result.stderr.split())
    assert "broken.ipynb failed" in stderr and "this notebook always fails" in stderr
    assert read_latest(tmp_path / "tiny") is not None
    assert read_latest(tmp_path / "broken") is None
    assert len(list((tmp_path / "broken" / "failed").iterdir())) == 1


@pytest.mark.notebook
def test_run_kernels_render_static_only(tmp_path, monkeypatch):
    """salesops run starts its kernels with SALESOPS_RENDER=static: a ChartView builds no
    JupyterChart (no 900 KB of JavaScript saved per chart), and the report still has the chart."""
    monkeypatch.delenv("SALESOPS_RENDER", raising=False)
    v4 = nbformat.v4
    nb = v4.new_notebook(
        cells=[
            v4.new_code_cell(
                'data_path: str = ""  # set by --data', metadata={"tags": ["parameters"]}
            ),
            v4.new_code_cell(
                "import os\nimport altair as alt\nimport pandas as pd\n"
                "from salesops_widgets.widgets import ChartView\n"
                'frame = pd.DataFrame({"region": ["EMEA", "APAC"], "n": [3, 4]})\n'
                'pick = alt.selection_point(name="pick", fields=["region"])\n'
                'chart = alt.Chart(frame).mark_bar().encode(x="region", y="n").add_params(pick)\n'
                'view = ChartView(chart, selection="pick")\n'
                'print("render:", os.environ.get("SALESOPS_RENDER"), "widget:", view.widget)'
            ),
            v4.new_code_cell("view"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, tmp_path / "static.ipynb")

    result = salesops_run(tmp_path / "static.ipynb", out=tmp_path / "out")

    assert result.exit_code == 0, result.output
    assert "SALESOPS_RENDER" not in os.environ  # set for the kernel only
    folder = read_latest(tmp_path / "out" / "static")
    executed = read_nb(folder / "static.ipynb")
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "render: static widget: None" in printed
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert [m["model_name"] for m in state.values() if "_esm" in m["state"]] == []
    assert sum(len(json.dumps(m)) for m in state.values()) < 20_000
    html = (folder / "static.html").read_text()
    assert html.count("<svg") == 1 and "EMEA" in html


# --------------------------------------------------------------------------------------------------
# The data-quality notebook on the sample, and both reports in a browser


@pytest.fixture(scope="module")
def data_quality_run(sample_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("dq")
    argv = ["run", "data_quality", "--data", str(sample_dirs["default"]), "--out", str(out)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    return read_latest(out / "data_quality")


@pytest.mark.notebook
@pytest.mark.slow
def test_data_quality_report(data_quality_run, sample_dirs):
    html = (data_quality_run / "data_quality.html").read_text()
    assert external_references(html) == []
    assert "Rows read and used, per table" in html and "opportunities" in html
    assert "data.report.table" not in html  # no code
    manifest = json.loads((data_quality_run / "manifest.json").read_text())
    parquet = sample_dirs["default"] / "opportunities.parquet"
    rows = pq.ParquetFile(parquet).metadata.num_rows  # counted by pyarrow, not by the package
    assert manifest["data"]["rows"]["opportunities"]["read"] == rows
    entry = next(f for f in manifest["data"]["files"] if f["path"] == parquet.name)
    assert entry["bytes"] == os.path.getsize(parquet)


@pytest.fixture
def open_report(page, page_log):
    """Open a report in chromium, served as a plain file over 127.0.0.1 (the ``page`` fixture
    blocks file:// URLs with every other non-local one); return every request but the page's
    own, local or not."""
    servers = []

    def open_one(path: Path) -> list[str]:
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(path.parent))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/{path.name}"
        page_log.requests.clear()
        page.goto(url)
        page.wait_for_load_state("load")
        return [u for u in page_log.requests if u != url and not u.startswith("data:")]

    yield open_one
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.slow
def test_reports_open_offline_with_every_chart(
    open_report, page, page_log, good_run, data_quality_run
):
    _, out = good_run
    tiny = read_latest(out / "tiny") / "tiny.html"
    assert open_report(tiny) == []
    chart = page.locator(".jp-RenderedSVG svg")
    assert chart.count() == 1 and chart.first.is_visible()
    assert page.get_by_text("static fallback of the widget").is_visible()
    assert page_log.page_errors == [] and page_log.console_errors == []

    report = data_quality_run / "data_quality.html"
    assert open_report(report) == []
    assert page.locator("table", has_text="opportunities").first.is_visible()
    assert page_log.page_errors == [] and page_log.console_errors == []


def test_run_all_includes_the_follow_through_pages_and_gives_them_the_history(tmp_path):
    from salesops_widgets.runs import RunJob, find_notebooks_dir
    from salesops_widgets.runs._plan import find_notebooks, notebook_parameters
    from salesops_widgets.runs._run import _goals_file

    notebooks = find_notebooks("all", find_notebooks_dir())
    names = {p.name for p in notebooks}
    assert {"goal_tracking.ipynb", "driver_tree.ipynb"} <= names
    server = {"data_path": "d", "mapping": "canonical", "history_path": str(tmp_path / "h")}
    params = notebook_parameters(notebooks, texts={}, values={}, server=server)
    by_name = {p.name: v for p, v in params.items()}
    # only the page that declares it gets the history folder
    assert by_name["goal_tracking.ipynb"]["history_path"] == str(tmp_path / "h")
    assert "history_path" not in by_name["driver_tree.ipynb"]
    # the goals file the run measures is the notebook's default, found from its folder
    job = RunJob(ROOT / "notebooks" / "goal_tracking.ipynb", {}, tmp_path, "s")
    assert _goals_file(job) == ROOT / "data" / "samples" / "goals.yaml"
    assert _goals_file(RunJob(ROOT / "notebooks" / "driver_tree.ipynb", {}, tmp_path, "s")) is None
