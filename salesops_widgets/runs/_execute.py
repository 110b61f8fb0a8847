"""One notebook run: execute with papermill, render the report, write the manifest, publish."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import _store
from ._parameters import quiet
from ._report import render_report

__all__ = ["RunJob", "RunResult", "CellFailure", "execute_job"]

# progress(notebook, code cells done, code cells in all)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunJob:
    """Everything one notebook run needs (picklable: it is sent to worker processes)."""

    notebook: Path  # absolute path of the source notebook
    parameters: dict[str, Any]
    out: Path  # absolute OUT folder
    stamp: str
    timeout: float | None = None  # seconds one cell may run
    kernel_name: str | None = None  # None: the notebook's kernelspec
    context: dict[str, Any] = field(default_factory=dict)  # shared manifest entries

    @property
    def name(self) -> str:
        return self.notebook.stem


@dataclass(frozen=True)
class CellFailure:
    """Why a run failed and where: ``kind`` is error, timeout, kernel died or report."""

    kind: str
    message: str
    cell_index: int | None = None  # 0-based, in the executed notebook
    cell_id: str | None = None
    first_line: str = ""

    def describe(self) -> str:
        """One line: the cell (index, id, first source line) and the error."""
        if self.cell_index is None:
            return self.message
        where = f"cell {self.cell_index}"
        if self.cell_id:
            where += f" (id {self.cell_id})"
        if self.first_line:
            where += f" `{self.first_line}`"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class RunResult:
    """The outcome of one notebook run."""

    notebook: str
    ok: bool
    folder: Path  # OUT/<notebook>/<stamp> or OUT/<notebook>/failed/<stamp>
    seconds: float
    failure: CellFailure | None = None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"


def execute_job(job: RunJob, progress: Progress | None = None) -> RunResult:
    """Run one notebook and publish it: its folder and ``latest`` on success, ``failed/`` if not.

    Parameters
    ----------
    job
        What to run, with which parameters, and where to write.
    progress
        Called after every code cell with (notebook, cells done, cells in all).

    Returns
    -------
    RunResult
        Never raises for a failing notebook: a cell error, a timeout, a dead kernel or a report
        that cannot be rendered all come back as a failed result.
    """
    scratch = _store.scratch_dir(job.out / job.name, job.stamp)
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    try:
        failure = _execute(job, scratch, progress) or _report(job, scratch)
        seconds = time.monotonic() - clock
        manifest = _manifest(job, started, seconds, failure)
        (scratch / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        folder = _publish(job, scratch, failure)
        return RunResult(job.notebook.name, failure is None, folder, seconds, failure)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _publish(job: RunJob, scratch: Path, failure: CellFailure | None) -> Path:
    """A good run becomes OUT/<notebook>/<stamp> and ``latest``; a failed one goes aside."""
    notebook_dir = job.out / job.name
    if failure is not None:
        (scratch / f"{job.name}.html").unlink(missing_ok=True)
        return _store.publish(scratch, notebook_dir / _store.FAILED, job.stamp)
    folder = _store.publish(scratch, notebook_dir, job.stamp)
    _store.point_latest(notebook_dir, folder.name)
    return folder


class _Tracker:
    """Follows the cells as nbclient runs them: which one started last, how many are done."""

    def __init__(self, name: str, total: int, progress: Progress | None) -> None:
        self.name, self.total, self.progress = name, total, progress
        self.current: int | None = None
        self.done = 0

    def start(self, cell=None, cell_index: int | None = None, **_: Any) -> None:
        self.current = cell_index

    def executed(self, cell=None, cell_index: int | None = None, **_: Any) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.name, self.done, self.total)


def _execute(job: RunJob, scratch: Path, progress: Progress | None) -> CellFailure | None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    output = scratch / f"{job.name}.ipynb"
    source = nbformat.read(job.notebook, as_version=4)
    code_cells = sum(c.cell_type == "code" for c in source.cells) + bool(job.parameters)
    tracker = _Tracker(job.notebook.name, code_cells, progress)
    try:
        with quiet("papermill"):  # its parameter warnings: checked before, by _parameters
            _papermill(job, output, tracker)
    except PapermillExecutionError as exc:
        index = exc.cell_index if tracker.current is None else tracker.current
        return _failure(output, "error", f"{exc.ename}: {exc.evalue}", index)
    except CellTimeoutError:
        message = f"timed out: the cell ran longer than {job.timeout:g} s (--timeout)"
        return _failure(output, "timeout", message, tracker.current)
    except DeadKernelError:
        message = "the kernel died (it crashed, ran out of memory or was killed)"
        return _failure(output, "kernel died", message, tracker.current)
    except Exception as exc:  # a kernel that cannot start, an unreadable notebook, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _failure(output, "error", f"{type(exc).__name__}: {first}", tracker.current)
    return None


def _papermill(job: RunJob, output: Path, tracker: _Tracker) -> None:
    import papermill as pm

    pm.execute_notebook(
        str(job.notebook),
        str(output),
        parameters=job.parameters,
        kernel_name=job.kernel_name,
        cwd=str(job.notebook.parent),
        progress_bar=False,
        log_output=False,
        execution_timeout=job.timeout,
        on_cell_start=tracker.start,
        on_cell_executed=tracker.executed,
        kernel_manager_class=_static_kernel_manager(),
    )


def _static_kernel_manager() -> type:
    """nbclient's kernel manager, starting kernels with ``SALESOPS_RENDER=static``: a scheduled
    run has no browser, so widgets build only their static rendering (no JupyterChart; see
    ``salesops_widgets.widgets._static``)."""
    from jupyter_client.manager import AsyncKernelManager

    from ..widgets._static import RENDER_ENV

    class StaticKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            env = {**(kw.pop("env", None) or os.environ), RENDER_ENV: "static"}
            await super().start_kernel(env=env, **kw)

    return StaticKernelManager


def _failure(output: Path, kind: str, message: str, index: int | None) -> CellFailure:
    """Where it failed, read from the executed notebook papermill wrote as far as it got."""
    try:
        cells = _executed_cells(output)
        cell = cells[index] if index is not None else None
    except (OSError, IndexError, ValueError):
        cell = None
    if cell is None:
        return CellFailure(kind, message, index)
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    return CellFailure(kind, message, index, cell.get("id"), lines[0] if lines else "")


def _executed_cells(output: Path) -> list:
    """The cells as they were executed: without the error banner papermill adds at the top."""
    from papermill.execute import ERROR_MARKER_TAG

    cells = nbformat.read(output, as_version=4).cells
    return [c for c in cells if ERROR_MARKER_TAG not in c.metadata.get("tags", [])]


def _report(job: RunJob, scratch: Path) -> CellFailure | None:
    try:
        nb = nbformat.read(scratch / f"{job.name}.ipynb", as_version=4)
        html = render_report(nb, footer=_footer(job))
        (scratch / f"{job.name}.html").write_text(html, encoding="utf-8")
    except Exception as exc:
        return CellFailure("report", f"the HTML report could not be rendered: {exc}")
    return None


def _footer(job: RunJob) -> str:
    data = job.context.get("data", {})
    params = ", ".join(f"{k}={v!r}" for k, v in job.parameters.items() if k != "data_path")
    moment = dt.datetime.strptime(job.stamp[:15], "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M")
    return (
        f"{job.notebook.name}, run {moment} UTC by salesops run on {data.get('source', '-')} "
        f"(as of {data.get('as_of') or '-'}). Parameters: {params or 'defaults'}."
    )


def _manifest(
    job: RunJob, started: dt.datetime, seconds: float, failure: CellFailure | None
) -> dict[str, Any]:
    ended = started + dt.timedelta(seconds=seconds)
    files = {"notebook": f"{job.name}.ipynb", "manifest": "manifest.json"}
    if failure is None:
        files["report"] = f"{job.name}.html"
    return {
        "notebook": job.notebook.name,
        "source": str(job.notebook),
        "status": "ok" if failure is None else "failed",
        "error": None if failure is None else {**asdict(failure), "text": failure.describe()},
        "parameters": job.parameters,
        "start": started.isoformat(),
        "end": ended.isoformat(),
        "duration_seconds": round(seconds, 3),
        "timeout_seconds": job.timeout,
        "files": files,
        **job.context,
    }
