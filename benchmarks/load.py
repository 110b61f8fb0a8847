"""Time load() (map + validate + materialise) on a generated sample, print JSON.

python -m benchmarks.load --opportunities 1000000 [--dir /tmp/bench-1m] [--repeat 3] [--cache]

With ``--cache``: also prepare the data (``salesops prepare``) into a temporary cache folder and
time opening it (``load()`` of unchanged files), and the first KPI table on fresh and on
prepared data (``segment_kpis`` by industry: the deals table is built, or read from the file).

The sample is generated once into --dir (default /tmp/salesops-bench-N) and reused. Figures go
to docs/performance.md; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

from salesops_widgets import load
from salesops_widgets.data import write_sample


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fmt", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--cache", action="store_true", help="compare with prepared data")
    args = parser.parse_args(argv)
    folder = args.dir or Path(f"/tmp/salesops-bench-{args.opportunities}-{args.fmt}")
    if not (folder / f"opportunities.{args.fmt}").exists():
        write_sample(folder, n_opportunities=args.opportunities, fmt=args.fmt)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        data = load(folder, cache=False)
        times.append(time.perf_counter() - start)
    rows = {name: rep.rows_read for name, rep in data.report.tables.items()}
    result = {
        "opportunities": args.opportunities,
        "format": args.fmt,
        "load_seconds_median": round(statistics.median(times), 2),
        "load_seconds_all": [round(t, 2) for t in times],
        "rows_read": rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.cache:
        result["prepared"] = _prepared(folder, data, args.repeat)
    print(json.dumps(result, indent=2))
    return result


def _prepared(folder: Path, fresh, repeat: int) -> dict:
    """Prepare ``folder`` into a temporary cache folder, then time opening it."""
    import tempfile

    from salesops_widgets import metrics
    from salesops_widgets.data import prepare

    start = time.perf_counter()
    metrics.segment_kpis(fresh, by="industry")
    first_kpis_fresh = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="salesops-prepared-") as cache_dir:
        done = prepare(folder, cache_dir=cache_dir)
        opens, first = [], []
        for _ in range(max(repeat, 3)):  # opening is cheap: 3 at least
            start = time.perf_counter()
            data = load(folder, cache_dir=cache_dir)
            opens.append(time.perf_counter() - start)
            start = time.perf_counter()
            metrics.segment_kpis(data, by="industry")
            first.append(time.perf_counter() - start)
            same = data.report.to_dict() == fresh.report.to_dict()
    return {
        "prepare_load_seconds": done.load_seconds,
        "prepare_deals_seconds": done.derive_seconds,
        "prepare_write_seconds": done.write_seconds,
        "file_megabytes": round(done.bytes / 1e6, 1),
        "open_seconds_median": round(statistics.median(opens), 3),
        "open_seconds_all": [round(t, 3) for t in opens],
        "first_kpis_fresh_seconds": round(first_kpis_fresh, 3),
        "first_kpis_prepared_seconds_median": round(statistics.median(first), 3),
        "same_report": same,
    }


if __name__ == "__main__":
    main()
