"""``salesops run``: plan, check, fingerprint the data, then run the notebooks."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ._batch import run_jobs
from ._execute import RunJob, RunResult
from ._fingerprint import data_fingerprint
from ._history import HISTORY, record_run
from ._parameters import declared_parameters
from ._plan import (
    absolute_source,
    find_notebooks,
    find_notebooks_dir,
    notebook_parameters,
    parse_assignments,
    read_params_file,
)
from ._store import stamp

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["run_notebooks"]


def run_notebooks(
    target: str,
    *,
    data: str,
    out: Path,
    mapping: str = "canonical",
    assignments: Iterable[str] = (),
    params_file: Path | None = None,
    workers: int = 1,
    timeout: float | None = None,
    notebooks_dir: Path | None = None,
    console: Console | None = None,
) -> list[RunResult]:
    """Run one notebook, or ``all``, and publish each as a report folder under ``out``.

    Parameters
    ----------
    target
        A notebook (a path, or a name in the notebooks folder) or ``"all"``.
    data, mapping
        The CRM export and its mapping, passed as ``data_path`` and ``mapping`` to every
        notebook that declares them.
    out
        The folder that receives ``<notebook>/<timestamp>/`` and ``<notebook>/latest``.
    assignments
        ``key=value`` texts (``-p``), converted to each parameter's declared type.
    params_file
        A YAML file of ``name: value`` parameters (``-p`` wins over it).
    workers
        How many notebooks run at once, each in its own process.
    timeout
        Seconds a single cell may run before the run fails.
    notebooks_dir
        The notebooks folder (default: this checkout's ``notebooks/``).
    console
        A ``rich`` console for the progress bar.

    Returns
    -------
    list of RunResult
        One per notebook, failed ones included. When every notebook ran, the KPIs of the run
        are appended to ``out/history`` (see ``_history.py``); a failed run adds nothing.

    Raises
    ------
    ParameterError
        An unknown notebook or parameter, or a value of the wrong type: nothing was run.
    SalesOpsError
        The data cannot be read with this mapping: nothing was run.
    """
    notebooks = _notebooks(target, notebooks_dir)
    data, mapping = absolute_source(data), absolute_source(mapping)
    texts = parse_assignments(assignments)
    values = read_params_file(params_file)
    out = out.absolute()
    server = {"data_path": data, "mapping": mapping}
    if "history_path" not in {*texts, *values}:  # the goal tracking reads this run's history
        server["history_path"] = str(out / HISTORY)
    params = notebook_parameters(notebooks, texts=texts, values=values, server=server)
    as_of = _as_of(texts, values)
    context = run_context(data, mapping, as_of=as_of)
    run_stamp = stamp()
    jobs = [
        RunJob(path, chosen, out, run_stamp, timeout, _kernel_name(path), context)
        for path, chosen in params.items()
    ]
    results = run_jobs(jobs, workers=workers, console=console)
    if all(r.ok for r in results):  # a failed run adds nothing to the history
        goals = [g for g in map(_goals_file, jobs) if g is not None]
        record_run(out, run_stamp, data=data, mapping=mapping, as_of=as_of, goals_files=goals)
    return results


def _goals_file(job: RunJob) -> Path | None:
    """The goals file of a notebook that declares ``goals_path``, found as its kernel finds it
    (from the notebook's folder); None for the others."""
    declared = declared_parameters(nbformat.read(job.notebook, as_version=4))
    if "goals_path" not in declared:
        return None
    given = job.parameters.get("goals_path", declared["goals_path"].default)
    return (job.notebook.parent / given).resolve() if given else None


def run_context(data: str, mapping: str, *, as_of: str | None) -> dict[str, Any]:
    """The manifest entries every notebook of a run shares: package versions and the data."""
    import papermill

    from .. import __version__

    described = data_fingerprint(data, mapping=mapping, as_of=as_of)
    package = {
        "name": "salesops-widgets",
        "version": __version__,
        "papermill": papermill.__version__,
        "python": platform.python_version(),
    }
    return {
        "package": package,
        "data": described["fingerprint"],
        "data_quality": described["data_quality"],
        "warnings": described["warnings"],
    }


def _notebooks(target: str, notebooks_dir: Path | None) -> list[Path]:
    if target != "all" and Path(target).is_file():
        return find_notebooks(target, Path(target).resolve().parent)
    return find_notebooks(target, find_notebooks_dir(notebooks_dir))


def _as_of(texts: dict[str, Any], values: dict[str, Any]) -> str | None:
    value = texts.get("as_of", values.get("as_of"))
    if isinstance(value, list):
        value = value[-1]
    if isinstance(value, dt.date):
        value = value.isoformat()
    return value or None


def _kernel_name(path: Path) -> str | None:
    """None when the notebook names its kernel; else ``python3`` (papermill needs one)."""
    nb = nbformat.read(path, as_version=4)
    return None if nb.metadata.get("kernelspec", {}).get("name") else "python3"
