"""Dashboards and reports: time to first chart in chromium, papermill time against the floor,
kernel memory; print JSON.

python -m benchmarks.dashboards [--repeat 3] [--only NAME ...]
    [--skip browser split preheated papermill live]

- ``browser``: each dashboard opened N times in chromium from ``salesops serve --preheat 0``
  on the default sample (a fresh kernel per page: cold). Times come from the page's own clock
  (``performance.now()``, from navigation start): first chart drawn and shown, every chart,
  the cells shown. Memory: RSS of the page's kernel (psutil) after the page is done, and its
  peak while loading.
- ``split``: where a cold page's time goes. A kernel started the way Voilà starts it (its
  environment, so no static fallbacks are built), timed to ready; then the notebook's cells on
  it, with the server's parameters. A preheated kernel saves both.
- ``preheated``: the same pages from ``salesops serve``'s Voilà with a pool of preheated
  kernels for that dashboard (never refilled while measured): the page of a kernel that already
  ran the notebook, opened plain and as a link (``?region=EMEA``), whose view the kernel applies
  after the request (``link_view_shown``: EMEA chosen in the filter bar, no refresh running).
- ``papermill``: each notebook executed by papermill as ``salesops run`` does it (kernels with
  ``SALESOPS_RENDER=static``) and as it did before (live JupyterCharts), against the floor: a
  notebook that only imports the package. Wall time, executed notebook size, kernel peak RSS,
  and the slowest cells.

Figures go to docs/performance.md ("Dashboards and reports"); nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import psutil

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SAMPLE = ROOT / "data" / "samples" / "default"
CHROMIUM = "/usr/bin/chromium"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
# Set by Voilà 0.5 in the kernels it starts (the widgets check them to skip static fallbacks).
VOILA_ENV = {"VOILA_PREHEAT": "False", "VOILA_BASE_URL": "/", "VOILA_APP_IP": "127.0.0.1"}

# Records, in the page, when the first chart is drawn and shown, when all are, and when Voilà
# shows the cells (performance.now(): milliseconds since navigation start).
TIMING_SCRIPT = """
window.__timing = {};
const mark = (key) => {
  if (window.__timing[key] === undefined) window.__timing[key] = performance.now();
};
new MutationObserver(() => {
  const cells = document.querySelector('#rendered_cells');
  const shown = cells && cells.offsetParent !== null;
  const charts = document.querySelectorAll('.vega-embed svg.marks').length;
  if (shown) mark('cells_shown');
  if (charts >= 1) mark('first_chart_drawn');
  if (charts >= 1 && shown) mark('first_chart_shown');
  if (charts >= window.__expected && window.__expected > 0 && shown) mark('all_charts_shown');
  // a link's view (?region=EMEA): its region chosen in the filter bar, no refresh running, and
  // the charts drawn since it was chosen
  const want = window.__region;
  if (want && shown) {
    const chosen = [...document.querySelectorAll('select[multiple] option')]
      .some(o => o.selected && o.textContent.startsWith(want));
    const busy = [...document.querySelectorAll('.salesops-busy')]
      .some(b => b.offsetParent !== null);
    if (chosen) mark('link_chosen');
    if (chosen && !busy && charts >= 1) mark('link_view_shown');
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""
LINK_REGION = "EMEA"  # the link measured on preheated kernels: ?region=EMEA


def dashboards(only: list[str] | None) -> list[Path]:
    """The notebooks to measure (``_*.ipynb`` are scratch files and skipped)."""
    found = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if not p.name.startswith("_")]
    return [p for p in found if not only or p.stem in only]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def guarded(label: str, measure, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``measure(*args, **kwargs)``, or ``{"error": ...}`` when it fails: one broken notebook
    does not lose the others' figures."""
    try:
        result = measure(*args, **kwargs)
    except Exception as exc:  # a notebook that fails to run, a page that never finishes
        result = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"}
    print(f"{label}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


# --------------------------------------------------------------------------------------------------
# Memory: sample the RSS of a process tree's kernels in a thread


class KernelMemory:
    """Peak and last RSS (MB) of the ipykernel processes under ``parent`` started after now."""

    def __init__(self, parent: psutil.Process) -> None:
        self.parent = parent
        self.before = {p.pid for p in self._kernels()}
        self.peak: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kernels(self) -> list[psutil.Process]:
        out = []
        for child in self.parent.children(recursive=True):
            try:
                if "ipykernel" in " ".join(child.cmdline()):
                    out.append(child)
            except psutil.Error:
                pass
        return out

    def sample(self) -> None:
        for proc in self._kernels():
            if proc.pid in self.before:
                continue
            try:
                rss = proc.memory_info().rss / 2**20
            except psutil.Error:
                continue
            self.last[proc.pid] = rss
            self.peak[proc.pid] = max(rss, self.peak.get(proc.pid, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def __enter__(self) -> KernelMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def new_kernels(self) -> list[psutil.Process]:
        return [p for p in self._kernels() if p.pid not in self.before]


# --------------------------------------------------------------------------------------------------
# Servers


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(argv: list[str], log: Path) -> Any:
    """A server process (``argv`` gets ``--port=PORT``); yields (base URL, psutil.Process)."""
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, f"--port={port}"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        yield url, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def salesops_serve(log: Path):
    """``salesops serve`` with no preheated kernel: every page is a cold start."""
    salesops = Path(sys.executable).with_name("salesops")
    return server([str(salesops), "serve", "--data", str(SAMPLE), "--preheat", "0"], log)


def preheated_voila(notebook: Path, pool: int, log: Path):
    """``salesops serve``'s Voilà (URL parameters, hook and all) with ``pool`` preheated kernels
    for ``notebook`` only, never refilled during the benchmark.

    The folder, not the notebook alone: a single-notebook Voilà renders every path, so the
    browser's request for /favicon.ico takes a preheated kernel too.
    """
    code = (
        "import sys; from benchmarks.dashboards import _serve_preheated; "
        f"_serve_preheated({notebook.name!r}, {pool}, int(sys.argv[1].split('=')[1]), "
        f"{str(SAMPLE)!r})"
    )
    return server([sys.executable, "-c", code], log)


def _serve_preheated(name: str, pool: int, port: int, data: str) -> None:
    from salesops_widgets.serve import ServeOptions, find_jupyter_data, voila_argv, voila_config

    os.environ["JUPYTER_PATH"] = str(find_jupyter_data())
    from salesops_widgets.serve._app import SalesOpsVoila

    options = ServeOptions(notebooks=NOTEBOOKS, port=port, data=data, preheat=pool)
    c = voila_config(options)
    pools = {"default": {"pool_size": 0}, name: {"pool_size": pool}}
    c.VoilaKernelManager.kernel_pools_config = pools
    c.VoilaKernelManager.fill_delay = 3600  # no refill competing with the pages measured
    app = SalesOpsVoila(config=c)
    app.initialize(voila_argv(options))
    app.start()


# --------------------------------------------------------------------------------------------------
# Pages in chromium


def count_charts(notebook: Path, url: str, browser, settle_s: float = 10.0) -> int:
    """How many charts the page shows once done (to know when "all charts" is reached): the
    count once it has not changed for ``settle_s`` seconds (a busy machine draws slowly)."""
    page = browser.new_page()
    page.goto(url, timeout=600_000)
    page.locator("#rendered_cells").wait_for(state="visible", timeout=600_000)
    n, since = -1, time.monotonic()
    while time.monotonic() - since < settle_s:
        page.wait_for_timeout(500)
        now = page.locator(".vega-embed svg.marks").count()
        if now != n:
            n, since = now, time.monotonic()
    page.close(run_before_unload=True)
    return n


def open_page(
    browser, url: str, charts: int, process: psutil.Process, region: str = ""
) -> dict[str, Any]:
    """One page load: the page's timings (s) and the memory (MB) of the kernel it started;
    with ``region``, also when the link's view (that region) is shown."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    setup = f"window.__expected = {charts}; window.__region = {json.dumps(region)};"
    context.add_init_script(f"{setup}\n{TIMING_SCRIPT}")
    page = context.new_page()
    with KernelMemory(process) as memory:
        page.goto(url, timeout=600_000)
        page.locator("#rendered_cells").wait_for(state="visible", timeout=600_000)
        if charts:
            page.wait_for_function(
                "() => window.__timing.all_charts_shown !== undefined", timeout=600_000
            )
        if region:
            page.wait_for_function(
                "() => window.__timing.link_view_shown !== undefined", timeout=600_000
            )
        page.wait_for_timeout(1000)  # memory settles after the widgets sync
    timing = page.evaluate("window.__timing")
    kernels = memory.new_kernels()
    page.close(run_before_unload=True)  # Voilà shuts the kernel down on beforeunload
    context.close()
    for proc in kernels:  # in case it did not
        try:
            proc.wait(timeout=10)
        except psutil.TimeoutExpired:
            proc.terminate()
    seconds = {k: round(v / 1000, 3) for k, v in timing.items()}
    return {
        **seconds,
        "kernel_rss_mb": round(sum(memory.last.values()), 1),
        "kernel_peak_rss_mb": round(sum(memory.peak.values()), 1),
        "load_average": load_average(),
    }


def _summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in loads[0] if k != "load_average"]
    return {
        **{f"{k}_median": _median([x.get(k) for x in loads]) for k in keys},
        "runs": loads,
    }


def measure_browser(notebooks: list[Path], repeat: int, logs: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw, salesops_serve(logs / "serve.log") as (url, process):
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )

        def one(nb: Path) -> dict[str, Any]:
            page_url = f"{url}voila/render/{nb.name}"
            charts = count_charts(nb, page_url, browser)
            loads = [open_page(browser, page_url, charts, process) for _ in range(repeat)]
            return {"charts": charts, **_summary(loads)}

        for nb in notebooks:
            out[nb.stem] = guarded(f"browser {nb.stem}", one, nb)
        browser.close()
    return out


def measure_preheated(notebooks: list[Path], repeat: int, logs: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from salesops_widgets.runs._parameters import declared_parameters

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )

        def one(nb: Path) -> dict[str, Any]:
            log = logs / f"preheated-{nb.stem}.log"
            link = "region" in declared_parameters(nbformat.read(nb, as_version=4))
            pool = 1 + repeat * (2 if link else 1)
            with preheated_voila(nb, pool, log) as (base, process):
                url = f"{base}voila/render/{nb.name}"
                _wait_for_idle_kernels(process, pool)  # every pool kernel ran the notebook
                charts = count_charts(nb, url, browser)  # the first page only counts the charts
                loads = [open_page(browser, url, charts, process) for _ in range(repeat)]
                links = [
                    open_page(browser, f"{url}?region={LINK_REGION}", charts, process, LINK_REGION)
                    for _ in range(repeat if link else 0)
                ]
            for load in loads + links:  # the page's kernel was started before: not measured
                del load["kernel_rss_mb"], load["kernel_peak_rss_mb"]
            out = {"charts": charts, **_summary(loads)}
            return out | ({"link": _summary(links)} if links else {})

        for nb in notebooks:
            out[nb.stem] = guarded(f"preheated {nb.stem}", one, nb)
        browser.close()
    return out


def _wait_for_idle_kernels(process: psutil.Process, count: int, timeout: float = 900) -> None:
    """Until ``count`` kernels exist under ``process`` and none used CPU for 3 s."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        kernels = [p for p in process.children(recursive=True) if _is_kernel(p)]
        busy = len(kernels) < count or any(p.cpu_percent(interval=0.5) > 2 for p in kernels)
        now = time.monotonic()
        quiet_since = None if busy else (quiet_since or now)
        if quiet_since is not None and now - quiet_since >= 3:
            return
    raise TimeoutError("the preheated kernels did not settle")


def _is_kernel(proc: psutil.Process) -> bool:
    try:
        return "ipykernel" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


# --------------------------------------------------------------------------------------------------
# Where a cold page's time goes: kernel start, then the notebook


def measure_split(notebooks: list[Path], repeat: int) -> dict[str, Any]:
    def one(nb: Path) -> dict[str, Any]:
        runs = [_split_once(nb) for _ in range(repeat)]
        return {
            "kernel_start_s_median": _median([r["kernel_start_s"] for r in runs]),
            "execute_s_median": _median([r["execute_s"] for r in runs]),
            "runs": runs,
        }

    return {nb.stem: guarded(f"split {nb.stem}", one, nb) for nb in notebooks}


def _split_once(notebook: Path) -> dict[str, Any]:
    from nbclient import NotebookClient

    nb = _with_server_parameters(nbformat.read(notebook, as_version=4))
    client = NotebookClient(nb, kernel_name="python3", timeout=600)
    client.km = client.create_kernel_manager()
    start = time.perf_counter()
    client.start_new_kernel(cwd=str(notebook.parent), env={**os.environ, **VOILA_ENV})
    client.start_new_kernel_client()  # waits until the kernel answers
    started = time.perf_counter() - start
    cells = []
    with client.setup_kernel():  # shuts the kernel down at the end
        for index, cell in enumerate(nb.cells):
            start = time.perf_counter()
            client.execute_cell(cell, index)
            if cell.cell_type == "code" and cell.source.strip():
                cells.append((time.perf_counter() - start, cell.source.splitlines()[0][:60]))
    return {
        "kernel_start_s": round(started, 3),
        "execute_s": round(sum(seconds for seconds, _ in cells), 3),
        "slowest_cells": [[round(t, 2), line] for t, line in sorted(cells, reverse=True)[:3]],
        "load_average": load_average(),
    }


def _with_server_parameters(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as ``salesops serve --data SAMPLE`` runs it."""
    from salesops_widgets.runs import declared_parameters
    from salesops_widgets.serve import parameterize

    return (
        parameterize(nb, {"data_path": str(SAMPLE)})
        if "data_path" in declared_parameters(nb)
        else nb
    )


# --------------------------------------------------------------------------------------------------
# papermill: each notebook against the floor, static (salesops run) and live rendering


def floor_notebooks(folder: Path) -> list[Path]:
    """The floor (a notebook that only imports the package), and a second reference that
    imports everything the dashboards import (apps, charts, widgets: altair, scipy, ...)."""
    sources = {
        "floor": "import salesops_widgets",
        "floor_imports": (
            "from salesops_widgets import load\nimport salesops_widgets.apps\n"
            "import salesops_widgets.charts\nimport salesops_widgets.widgets"
        ),
    }
    paths = []
    for name, source in sources.items():
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source)], metadata={"kernelspec": KERNELSPEC}
        )
        paths.append(folder / f"{name}.ipynb")
        nbformat.write(nb, paths[-1])
    return paths


def papermill_once(notebook: Path, out: Path, *, static: bool) -> dict[str, Any]:
    import papermill as pm
    from jupyter_client.manager import AsyncKernelManager

    from salesops_widgets.runs import declared_parameters, render_report
    from salesops_widgets.runs._execute import _static_kernel_manager

    declared = declared_parameters(nbformat.read(notebook, as_version=4))
    params = {"data_path": str(SAMPLE)} if "data_path" in declared else {}
    manager = _static_kernel_manager() if static else AsyncKernelManager
    with KernelMemory(psutil.Process()) as memory:
        start = time.perf_counter()
        pm.execute_notebook(
            str(notebook),
            str(out),
            parameters=params,
            cwd=str(notebook.parent),
            progress_bar=False,
            kernel_manager_class=manager,
        )
        wall = time.perf_counter() - start
    nb = nbformat.read(out, as_version=4)
    cells = sorted(
        (
            (c.metadata.get("papermill", {}).get("duration") or 0.0, c.source.splitlines()[0])
            for c in nb.cells
            if c.cell_type == "code" and c.source.strip()
        ),
        reverse=True,
    )
    return {
        "wall_s": round(wall, 3),
        "ipynb_bytes": out.stat().st_size,
        "report_bytes": len(render_report(nb).encode()),
        "kernel_peak_rss_mb": round(max(memory.peak.values(), default=0.0), 1),
        "slowest_cells": [[round(s, 2), line[:60]] for s, line in cells[:3]],
        "load_average": load_average(),
    }


def measure_papermill(notebooks: list[Path], repeat: int, live: bool) -> dict[str, Any]:
    """Each notebook (and the floors) ``repeat`` times, round-robin: the runs of one round see
    the same load on the machine, so the ratios compare like with like."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floors = floor_notebooks(folder)
        modes = {"static": True, **({"live": False} if live else {})}
        plan = [(nb, m, st) for nb in [*floors, *notebooks] for m, st in modes.items()]
        plan = [(nb, m, st) for nb, m, st in plan if nb not in floors or m == "static"]
        for i in range(repeat):
            for nb, mode, static in plan:
                target = folder / f"{nb.stem}-{mode}-{i}.ipynb"
                label = f"papermill {nb.stem} {mode} #{i + 1}"
                one = guarded(label, papermill_once, nb, target, static=static)
                runs.setdefault((nb.stem, mode), []).append(one)
    out: dict[str, Any] = {}
    for (name, mode), done in runs.items():
        good = [r for r in done if "error" not in r]
        if not good:
            out.setdefault(name, {})[mode] = done[0]
            continue
        out.setdefault(name, {})[mode] = {
            "wall_s_median": _median([r["wall_s"] for r in good]),
            "ipynb_bytes": good[-1]["ipynb_bytes"],
            "report_bytes": good[-1]["report_bytes"],
            "kernel_peak_rss_mb_max": max(r["kernel_peak_rss_mb"] for r in good),
            "runs": done,
        }
    floor = out["floor"]["static"]["runs"]
    for name, modes_out in out.items():
        for mode, entry in modes_out.items():
            if "wall_s_median" not in entry:
                continue
            mine = [r.get("wall_s") for r in runs[(name, mode)]]
            ratios = [
                m / f["wall_s"] for m, f in zip(mine, floor, strict=True) if m and "wall_s" in f
            ]
            entry["ratio_to_floor_median"] = _median(ratios)
    return out


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    global SAMPLE  # noqa: PLW0603 - every part of the benchmark opens the data of --data
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="notebook names (stems); default: all")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["browser", "split", "preheated", "papermill", "live"],
        help="parts to leave out (live: papermill with live JupyterCharts, the 'before')",
    )
    parser.add_argument("--logs", type=Path, default=ROOT / "tmp" / "benchmarks")
    parser.add_argument(
        "--data",
        type=Path,
        default=SAMPLE,
        help="the data every dashboard opens (default: the sample); prepare it first "
        "(salesops prepare) to measure pages over the prepared-data cache",
    )
    args = parser.parse_args(argv)
    SAMPLE = args.data.resolve()
    args.logs.mkdir(parents=True, exist_ok=True)
    notebooks = dashboards(args.only)
    result: dict[str, Any] = {
        "notebooks": [p.name for p in notebooks],
        "cores": os.cpu_count(),
        "data": str(SAMPLE),
        "load_average_start": load_average(),
    }
    if "browser" not in args.skip:
        result["browser_cold"] = measure_browser(notebooks, args.repeat, args.logs)
    if "split" not in args.skip:
        result["split"] = measure_split(notebooks, args.repeat)
    if "preheated" not in args.skip:
        result["browser_preheated"] = measure_preheated(notebooks, args.repeat, args.logs)
    if "papermill" not in args.skip:
        live = "live" not in args.skip
        result["papermill"] = measure_papermill(notebooks, args.repeat, live)
    result["load_average_end"] = load_average()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
