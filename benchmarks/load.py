"""Time load() (map + validate + materialise) on a generated sample, print JSON.

python -m benchmarks.load --opportunities 1000000 [--dir /tmp/bench-1m] [--repeat 3]

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
    args = parser.parse_args(argv)
    folder = args.dir or Path(f"/tmp/salesops-bench-{args.opportunities}-{args.fmt}")
    if not (folder / f"opportunities.{args.fmt}").exists():
        write_sample(folder, n_opportunities=args.opportunities, fmt=args.fmt)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        data = load(folder)
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
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
