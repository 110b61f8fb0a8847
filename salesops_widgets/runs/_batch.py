"""Run several notebooks, one after the other or in parallel processes, with a progress bar."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ._execute import CellFailure, Progress, RunJob, RunResult, execute_job

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["run_jobs"]


def run_jobs(
    jobs: list[RunJob], *, workers: int = 1, console: Console | None = None
) -> list[RunResult]:
    """Run every job and return the results in the order of ``jobs``.

    Parameters
    ----------
    jobs
        The notebook runs (see :class:`RunJob`).
    workers
        Notebooks run at once, each in its own process (1: one after the other, in this one).
    console
        A ``rich.console.Console`` for the progress bar (default: stderr).
    """
    with _progress(console) as (bar, tasks):
        for job in jobs:
            tasks[job.notebook.name] = bar.add_task(job.notebook.name, total=None)

        def update(name: str, done: int, total: int) -> None:
            bar.update(tasks[name], completed=done, total=total)

        if workers <= 1 or len(jobs) == 1:
            return [execute_job(job, update) for job in jobs]
        return _parallel(jobs, min(workers, len(jobs)), update)


@contextmanager
def _progress(console: Console | None) -> Iterator[tuple]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )
    with bar:
        yield bar, {}


# --------------------------------------------------------------------------------------------------
# Worker processes report progress through a queue they get when they start.

_QUEUE = None


def _init_worker(progress_queue) -> None:
    global _QUEUE
    _QUEUE = progress_queue


def _run_in_worker(job: RunJob) -> RunResult:
    return execute_job(job, lambda *update: _QUEUE.put(update))


def _parallel(jobs: list[RunJob], workers: int, update: Progress) -> list[RunResult]:
    # spawn, not fork: the parent may hold threads (rich's refresh thread, DuckDB's pool).
    context = multiprocessing.get_context("spawn")
    progress_queue = context.Queue()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(progress_queue,),
    ) as pool:
        futures = [pool.submit(_run_in_worker, job) for job in jobs]
        while not all(f.done() for f in futures):
            _drain(progress_queue, update, wait=0.2)
        _drain(progress_queue, update, wait=0)
    return [_result(job, future) for job, future in zip(jobs, futures, strict=True)]


def _drain(progress_queue, update: Progress, wait: float) -> None:
    try:
        item = progress_queue.get(timeout=wait) if wait else progress_queue.get_nowait()
        update(*item)
        while True:
            update(*progress_queue.get_nowait())
    except queue_module.Empty:
        pass


def _result(job: RunJob, future: Future) -> RunResult:
    """The future's result; a worker that died becomes a failed run."""
    try:
        return future.result()
    except Exception as exc:
        failure = CellFailure("error", f"the worker process failed: {type(exc).__name__}: {exc}")
        return RunResult(job.notebook.name, False, job.out / job.name, 0.0, failure)
