"""Scheduled runs (``salesops run``): papermill execution, standalone HTML reports, manifests.

Each run of a notebook is published atomically as ``OUT/<notebook>/<timestamp>/`` (the executed
notebook, an HTML report that makes no network request, and ``manifest.json``), and
``OUT/<notebook>/latest`` points at the last good one. A failed run goes to
``OUT/<notebook>/failed/<timestamp>/`` and leaves ``latest`` alone.
"""

from ._execute import CellFailure, RunJob, RunResult, execute_job
from ._history import HISTORY, append_history, read_history, record_run
from ._parameters import Declared, check_values, declared_parameters, parse_texts
from ._plan import find_notebooks_dir
from ._report import external_references, render_report
from ._run import run_notebooks
from ._store import read_latest

__all__ = [
    "run_notebooks",
    "RunResult",
    "RunJob",
    "CellFailure",
    "execute_job",
    "render_report",
    "external_references",
    "read_latest",
    "HISTORY",
    "append_history",
    "read_history",
    "record_run",
    "find_notebooks_dir",
    "Declared",
    "declared_parameters",
    "parse_texts",
    "check_values",
]
