"""Time the synthetic sample generator: generate and write every table, print JSON.

python -m benchmarks.generate --opportunities 10000000 --out /tmp/big
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import pyarrow.parquet as pq

from salesops_widgets.data._sample import write_sample


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fmt", choices=["parquet", "csv"], default=None)
    parser.add_argument("--messy", action="store_true")
    args = parser.parse_args(argv)
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    paths = write_sample(
        args.out,
        n_opportunities=args.opportunities,
        seed=args.seed,
        messy=args.messy,
        fmt=args.fmt,
    )
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu_start
    result = {
        "opportunities": args.opportunities,
        "seconds": round(seconds, 2),
        # CPU time of this process, all threads: on a busy machine it says more than seconds
        "cpu_seconds": round(cpu_seconds, 2),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "rows": {name: _rows(path) for name, path in paths.items()},
        "megabytes": {name: round(path.stat().st_size / 1e6, 1) for name, path in paths.items()},
    }
    print(json.dumps(result, indent=2))
    return result


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


if __name__ == "__main__":
    main()
