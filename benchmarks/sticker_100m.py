"""Scale a generated sample to ~100M line items with DuckDB, for the sticker-shock run.

python -m benchmarks.sticker_100m --source /tmp/big10m --copies 5 --out /tmp/big100m-li

The source is a folder written by ``python -m benchmarks.generate`` (Parquet). Opportunities
and line items are copied ``copies`` times with suffixed ids (``opportunity_id || '-c' || k``);
account, owner and product ids are kept, so every join stays valid. Accounts, reps and products
are copied once. Stage history is left out: the sticker-shock notebook does not use it. No
table passes through pandas: DuckDB reads the Parquet files and writes them back
(``COPY ... TO``), spilling to disk beyond its memory limit. Prints JSON: rows per table and
seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path

import duckdb

_REPLICATED = ("opportunities", "line_items")
_COPIED_ONCE = ("accounts", "reps", "products")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--memory", default="4GB", help="DuckDB memory limit for the build")
    args = parser.parse_args(argv)
    if args.copies < 1:
        parser.error("--copies must be at least 1")
    for name in _REPLICATED + _COPIED_ONCE:
        if not (args.source / f"{name}.parquet").exists():
            parser.error(f"{args.source / name}.parquet does not exist")
    args.out.mkdir(parents=True, exist_ok=True)
    spill = args.out.with_name(args.out.name + ".spill")
    con = duckdb.connect(
        config={
            "memory_limit": args.memory,
            "temp_directory": str(spill),
            # streaming copy: no need to keep the source row order
            "preserve_insertion_order": False,
        }
    )
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    try:
        for name in _REPLICATED:
            t0 = time.perf_counter()
            src = _parquet(args.source / f"{name}.parquet")
            columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
            select = ", ".join(
                "opportunity_id || '-c' || k AS opportunity_id" if c == "opportunity_id" else c
                for c in columns
            )
            dest = _parquet(args.out / f"{name}.parquet")
            con.execute(
                f"COPY (SELECT {select} FROM {src}, range({args.copies}) AS r(k)) "
                f"TO {dest} (FORMAT parquet, COMPRESSION zstd)"
            )
            seconds[name] = round(time.perf_counter() - t0, 2)
        for name in _COPIED_ONCE:
            t0 = time.perf_counter()
            shutil.copyfile(args.source / f"{name}.parquet", args.out / f"{name}.parquet")
            seconds[name] = round(time.perf_counter() - t0, 2)
        rows = {
            name: con.execute(
                f"SELECT count(*) FROM {_parquet(args.out / f'{name}.parquet')}"
            ).fetchone()[0]
            for name in _REPLICATED + _COPIED_ONCE
        }
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    result = {
        "source": str(args.source),
        "out": str(args.out),
        "copies": args.copies,
        "rows": rows,
        "left_out": ["stage_history"],
        "megabytes": {
            name: round((args.out / f"{name}.parquet").stat().st_size / 1e6, 1) for name in rows
        },
        "seconds": round(time.perf_counter() - start, 2),
        "seconds_per_table": seconds,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    print(json.dumps(result, indent=2))
    return result


def _parquet(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


if __name__ == "__main__":
    main()
