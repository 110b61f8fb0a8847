"""Load test: N concurrent browser-less sessions against ``salesops serve``; print JSON.

python -m benchmarks.sessions [--sessions 25] [--dashboard segmentation_explorer]
    [--data data/samples/default] [--port PORT | --url http://127.0.0.1:PORT/]
    [--timeout 300] [--deadline SECONDS] [--filter Region] [--serve-arg ARG ...]

Each session (``benchmarks/_session.py``) opens the dashboard, waits for its first chart,
changes a filter, waits for the dashboard's reaction, and closes the page (the kernel shutdown
a browser sends on close). All start at once.

- Traffic goes to loopback only: ``--url`` must name 127.0.0.0/8, ::1 or localhost.
- Bounded: each session has ``--timeout`` seconds, the whole run ``--deadline`` (default
  timeout + 60), then at most ``--settle`` seconds (30) for the kernels to go; it stops by
  itself and stops the server it started.
- Without ``--url`` it starts ``salesops serve --data DATA`` on a free (or the given) loopback
  port; ``--serve-arg`` passes more options through (``--serve-arg=--cull-idle=60``,
  ``--serve-arg=--preheat=2``: ``salesops serve`` keeps 1 preheated kernel per dashboard by
  default, ``--preheat=0`` gives cold kernels). ``--wait-kernels K`` waits, before the
  sessions, until the server holds K idle kernels (a filled pool: the dashboards times
  ``--preheat``).
- Kernels: the ipykernel processes under the server (psutil), sampled every 0.5 s during the
  run, then until they are gone: count and RSS (total and largest), peak and after.
- Culling: ``--abandon K`` makes the last K sessions leave without closing (a tab that died:
  the websocket goes, no shutdown request). With ``--serve-arg=--cull-idle=30 --settle 150``
  the "after" figures show whether the idle culler stopped their kernels (it looks every 60 s).

Figures go to docs/performance.md ("Load test"); nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._session import (
    KernelSampler,
    Session,
    check_loopback,
    kernel_snapshot,
    run_sessions,
    server_process,
    wait_for_kernels,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "default"


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` percentile (0-100) of ``values``, nearest rank; None when empty."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return round(values[rank - 1], 3)


def spread(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": percentile(values, 100),
        "n": len([v for v in values if v is not None]),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(sessions: list[Session]) -> dict[str, Any]:
    """Errors and times of a finished run."""
    results = [s.result for s in sessions]
    errors = [{"session": r.index, "step": r.step, "error": r.error} for r in results if r.error]
    return {
        "sessions": len(results),
        "errors": len(errors),
        "error_messages": errors,
        "first_chart_s": spread([r.first_chart_s for r in results]),
        "page_s": spread([r.page_s for r in results]),
        "filter_change_s": spread([r.filter_change_s for r in results]),
        "charts_per_session": sorted({r.charts for r in results}),
        "closed": sum(r.closed for r in results),
        "filters": sorted({r.filter for r in results if r.filter}),
    }


@contextmanager
def target(args: argparse.Namespace):
    """The server to load: (base URL, its psutil.Process or None); started here unless --url."""
    if args.url:
        url = check_loopback(args.url.rstrip("/") + "/")
        yield url, server_process(url)
        return
    salesops = Path(sys.executable).with_name("salesops")
    argv = [str(salesops), "serve", "--data", str(args.data), *args.serve_arg]
    args.logs.mkdir(parents=True, exist_ok=True)
    with serve(argv, args.port or free_port(), args.logs / "sessions-serve.log") as found:
        yield found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(argv: list[str], port: int, log: Path, timeout: float = 180):
    """``argv --port=PORT`` on 127.0.0.1, once it answers; (base URL, psutil.Process). Stopped
    (SIGTERM, then SIGKILL after 30 s) on the way out."""
    import psutil

    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, f"--port={port}"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, timeout)
        yield url, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_until_up(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"salesops serve exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"salesops serve did not answer at {url} within {timeout:g} s")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "dashboard": args.dashboard,
        "cores": os.cpu_count(),
        "load_average_start": load_average(),
    }
    with target(args) as (url, process):
        if process and args.wait_kernels:
            from benchmarks.dashboards import _wait_for_idle_kernels

            _wait_for_idle_kernels(process, args.wait_kernels, timeout=900)
        baseline = kernel_snapshot(process) if process else None
        result["url"], result["kernels_before"] = url, baseline
        started = time.monotonic()
        with KernelSampler(process) if process else _nothing() as sampler:
            sessions = asyncio.run(
                run_sessions(
                    url,
                    args.dashboard,
                    args.sessions,
                    timeout=args.timeout,
                    deadline=args.deadline,
                    filter_label=args.filter,
                    keep_open=args.abandon,
                )
            )
        result["wall_s"] = round(time.monotonic() - started, 1)
        result["load_average_end_of_sessions"] = load_average()
        result.update(summary(sessions))
        if process:
            result["kernels_peak"] = sampler.peak()
            at_most = baseline["kernels"]
            result["kernels_after"] = wait_for_kernels(process, at_most, args.settle)
    result["load_average_end"] = load_average()
    return result


@contextmanager
def _nothing():
    yield None


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=25)
    parser.add_argument("--dashboard", default="segmentation_explorer")
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--port", type=int, help="port of the server started here")
    parser.add_argument("--url", help="a running salesops serve on loopback (not started here)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per session")
    parser.add_argument("--deadline", type=float, help="seconds for the run (timeout + 60)")
    parser.add_argument("--settle", type=float, default=30, help="seconds for kernels to go")
    parser.add_argument("--filter", default="Region", help="label of the filter to change")
    parser.add_argument(
        "--wait-kernels",
        type=int,
        default=0,
        help="before the sessions, wait (at most 900 s) for this many idle kernels: a pool",
    )
    parser.add_argument(
        "--abandon",
        type=int,
        default=0,
        help="sessions (the last ones) that leave without closing, for the culler to stop",
    )
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="passed on to salesops serve"
    )
    parser.add_argument("--logs", type=Path, default=ROOT / "tmp" / "benchmarks")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.sessions > 200:
        parser.error("--sessions: 1 to 200")
    if not 0 <= args.abandon <= args.sessions:
        parser.error("--abandon: 0 to --sessions")
    if args.url:
        try:
            check_loopback(args.url)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    result = measure(args)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
