"""Time a typical dashboard refresh three ways and check they agree; print JSON.

python -m benchmarks.refresh --rows 1000000 [--repeat 7] [--json]

The refresh: filter on two dimensions (region in NA/EMEA, deal type New Business/Expansion),
then a segment KPI table by industry (opportunities, open, won, lost, win rate with its Wilson
95% interval, bookings, ASP, median won cycle, portfolio discount, Kaplan-Meier median days to
close with open deals censored at the as-of date) and a discount-band table (opportunities,
won, lost, win rate, median won cycle, portfolio discount). Three implementations compute
the same numbers:

- ``library``: salesops_widgets.metrics (Ibis expressions on the embedded DuckDB);
- ``pandas``: plain pandas on the same deals, held in memory as a DataFrame;
- ``sql``: hand-written DuckDB SQL on the same deals table, with the same numpy Kaplan-Meier.

All three start from the deals view that ``load()`` + ``deals()`` prepare once per session
(dimensions already joined), so the timing is the refresh alone. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

FILTERS = {"region": ["NA", "EMEA"], "deal_type": ["New Business", "Expansion"]}
SEGMENT = "industry"
BANDS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 1.0)
Z = 1.959963984540054


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (k + Z**2 / 2) / (n + Z**2)
        half = Z * np.sqrt(k * (n - k) / n + Z**2 / 4) / (n + Z**2)
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)


def _km_median(durations: np.ndarray, events: np.ndarray, censored: np.ndarray) -> float:
    """Smallest time where the Kaplan-Meier survival falls to 0.5 or below (NaN if never)."""
    order = np.argsort(durations)
    d, e, c = durations[order], events[order], censored[order]
    at_risk = (e + c)[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(at_risk > 0, 1 - e / at_risk, 1.0))
    hit = np.nonzero(surv <= 0.5)[0]
    return float(d[hit[0]]) if len(hit) else float("nan")


def _band_labels() -> list[str]:
    # zero-padded so that text order is band order
    return [
        f"{lo * 100:03.0f}-{hi * 100:03.0f}%" for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True)
    ]


# ---------------------------------------------------------------------------------- pandas


def refresh_pandas(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The refresh in plain pandas."""
    t = df[df["region"].isin(FILTERS["region"]) & df["deal_type"].isin(FILTERS["deal_type"])]
    won, lost = t["status"] == "won", t["status"] == "lost"
    t = t.assign(
        _won=won,
        _lost=lost,
        _open=t["status"] == "open",
        _bookings=t["amount"].where(won, 0.0),
        _won_cycle=t["cycle_days"].where(won),
        _list=t["list_amount"].where(t["list_amount"] > 0),
        _net=t["amount"].where(t["list_amount"] > 0),
    )
    g = t.groupby(SEGMENT)
    seg = pd.DataFrame(
        {
            "opportunities": g.size(),
            "open": g["_open"].sum(),
            "won": g["_won"].sum(),
            "lost": g["_lost"].sum(),
            "bookings": g["_bookings"].sum(),
            "median_cycle_days_won": g["_won_cycle"].median(),
            "portfolio_discount": 1 - g["_net"].sum() / g["_list"].sum(),
        }
    )
    km = {}
    for name, part in g:
        counts = (
            part.groupby(["duration_days", "is_closed"])
            .size()
            .unstack(fill_value=0)
            .reindex(columns=[False, True], fill_value=0)
        )
        km[name] = _km_median(
            counts.index.to_numpy(float),
            counts[True].to_numpy(float),
            counts[False].to_numpy(float),
        )
    seg["km_median_days_to_close"] = pd.Series(km)
    seg = _finish_segments(seg.reset_index())
    # bands are [low, high) on the discount rounded to 9 decimals; the last band is closed
    d = t["discount"].round(9)
    bands = pd.cut(
        d.mask(d == BANDS[-1], BANDS[-1] - 1e-12), BANDS, right=False, labels=_band_labels()
    )
    b = t.assign(band=bands).dropna(subset=["band"]).groupby("band", observed=True)
    disc = pd.DataFrame(
        {
            "opportunities": b.size(),
            "won": b["_won"].sum(),
            "lost": b["_lost"].sum(),
            "median_cycle_days_won": b["_won_cycle"].median(),
            "portfolio_discount": 1 - b["_net"].sum() / b["_list"].sum(),
        }
    ).reset_index()
    return seg, _finish_bands(disc)


def _finish_segments(seg: pd.DataFrame) -> pd.DataFrame:
    seg = seg.astype({"opportunities": int, "open": int, "won": int, "lost": int})
    closed = (seg["won"] + seg["lost"]).to_numpy(float)
    seg["win_rate"] = seg["won"] / closed
    seg["win_rate_low"], seg["win_rate_high"] = _wilson(seg["won"].to_numpy(float), closed)
    seg["asp"] = seg["bookings"] / seg["won"].where(seg["won"] > 0)
    return seg.sort_values(SEGMENT).reset_index(drop=True)


def _finish_bands(disc: pd.DataFrame) -> pd.DataFrame:
    disc = disc.astype({"opportunities": int, "won": int, "lost": int})
    disc["band"] = disc["band"].astype(str)
    disc["win_rate"] = disc["won"] / (disc["won"] + disc["lost"])
    return disc.sort_values("band").reset_index(drop=True)


# ---------------------------------------------------------------------------------- SQL


def refresh_sql(con, table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The refresh as hand-written DuckDB SQL (plus the same numpy Kaplan-Meier)."""
    where = "region IN ('NA', 'EMEA') AND deal_type IN ('New Business', 'Expansion')"
    seg = con.execute(
        f"""
        SELECT {SEGMENT},
               count(*) AS opportunities,
               count(*) FILTER (WHERE status = 'open') AS open,
               count(*) FILTER (WHERE status = 'won') AS won,
               count(*) FILTER (WHERE status = 'lost') AS lost,
               coalesce(sum(amount) FILTER (WHERE status = 'won'), 0) AS bookings,
               median(cycle_days) FILTER (WHERE status = 'won') AS median_cycle_days_won,
               1 - sum(amount) FILTER (WHERE list_amount > 0)
                 / sum(list_amount) FILTER (WHERE list_amount > 0) AS portfolio_discount
        FROM {table} WHERE {where} GROUP BY {SEGMENT}
        """
    ).df()
    counts = con.execute(
        f"""
        SELECT {SEGMENT}, duration_days,
               count(*) FILTER (WHERE is_closed) AS events,
               count(*) FILTER (WHERE NOT is_closed) AS censored
        FROM {table} WHERE {where} GROUP BY ALL
        """
    ).df()
    km = {
        name: _km_median(
            part["duration_days"].to_numpy(float),
            part["events"].to_numpy(float),
            part["censored"].to_numpy(float),
        )
        for name, part in counts.groupby(SEGMENT)
    }
    seg["km_median_days_to_close"] = seg[SEGMENT].map(km)
    # [low, high) on the discount rounded to 9 decimals, the last band closed (as the library
    # documents); DOUBLE literals, since a bare 0.10 is a DECIMAL in DuckDB
    edges = list(zip(BANDS[:-1], BANDS[1:], strict=True))
    cases = " ".join(
        f"WHEN round(discount, 9) >= {lo}::DOUBLE AND round(discount, 9) "
        f"{'<=' if i == len(edges) - 1 else '<'} {hi}::DOUBLE THEN '{label}'"
        for i, ((lo, hi), label) in enumerate(zip(edges, _band_labels(), strict=True))
    )
    disc = con.execute(
        f"""
        SELECT band, count(*) AS opportunities,
               count(*) FILTER (WHERE status = 'won') AS won,
               count(*) FILTER (WHERE status = 'lost') AS lost,
               median(cycle_days) FILTER (WHERE status = 'won') AS median_cycle_days_won,
               1 - sum(amount) FILTER (WHERE list_amount > 0)
                 / sum(list_amount) FILTER (WHERE list_amount > 0) AS portfolio_discount
        FROM (SELECT *, CASE {cases} END AS band FROM {table} WHERE {where})
        WHERE band IS NOT NULL GROUP BY band
        """
    ).df()
    return _finish_segments(seg), _finish_bands(disc)


# ---------------------------------------------------------------------------------- library


def refresh_library(data) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The refresh through the package's KPI layer."""
    from salesops_widgets import metrics

    seg = metrics.segment_kpis(data, by=[SEGMENT], filters=FILTERS)
    disc = metrics.discount_bands(data, filters=FILTERS, bands=BANDS)
    disc = disc[disc["opportunities"] > 0].sort_values("band_low").reset_index(drop=True)
    return seg, disc


# ---------------------------------------------------------------------------------- harness


SEG_COLUMNS = [
    SEGMENT,
    "opportunities",
    "open",
    "won",
    "lost",
    "win_rate",
    "win_rate_low",
    "win_rate_high",
    "bookings",
    "asp",
    "median_cycle_days_won",
    "portfolio_discount",
    "km_median_days_to_close",
]
BAND_COLUMNS = [
    "opportunities",
    "won",
    "lost",
    "win_rate",
    "median_cycle_days_won",
    "portfolio_discount",
]


def _compare(
    name: str, ref: tuple[pd.DataFrame, pd.DataFrame], got: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    a = ref[0][SEG_COLUMNS].sort_values(SEGMENT).reset_index(drop=True)
    b = got[0][SEG_COLUMNS].sort_values(SEGMENT).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9, obj=f"{name} segments")
    ra = ref[1][BAND_COLUMNS].reset_index(drop=True)
    rb = got[1][BAND_COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb, check_dtype=False, rtol=1e-9, obj=f"{name} bands")


def _time(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up (and the result to compare)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args(argv)

    from salesops_widgets import load
    from salesops_widgets.data import write_sample
    from salesops_widgets.metrics import deals

    folder = args.dir or Path(f"/tmp/salesops-bench-{args.rows}-parquet")
    if not (folder / "opportunities.parquet").exists():
        write_sample(folder, n_opportunities=args.rows)
    start = time.perf_counter()
    data = load(folder)
    table = deals(data)
    prepare_s = time.perf_counter() - start
    lib_ms, lib_out = _time(lambda: refresh_library(data), args.repeat)
    sql_name = table.get_name()
    raw = data.con.con
    sql_ms, sql_out = _time(lambda: refresh_sql(raw, sql_name), args.repeat)
    _compare("sql vs library", sql_out, lib_out)
    result = {
        "rows": args.rows,
        "library_ms": round(lib_ms, 1),
        "sql_ms": round(sql_ms, 1),
        "pandas_ms": None,
        "library_vs_sql": round(lib_ms / sql_ms, 2),
        "pandas_vs_library": None,
        "prepare_s": round(prepare_s, 1),
        "same_numbers": True,
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if not args.skip_pandas:
        cols = [
            "region",
            "deal_type",
            SEGMENT,
            "status",
            "is_closed",
            "amount",
            "list_amount",
            "cycle_days",
            "duration_days",
            "discount",
        ]
        frame = table.select(*cols).to_pandas()
        pd_ms, pd_out = _time(lambda: refresh_pandas(frame), args.repeat)
        _compare("pandas vs library", pd_out, lib_out)
        result["pandas_ms"] = round(pd_ms, 1)
        result["pandas_vs_library"] = round(pd_ms / lib_ms, 2)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
