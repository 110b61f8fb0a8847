"""Time a typical dashboard refresh three ways and check they agree; print JSON.

python -m benchmarks.refresh --rows 1000000 [--repeat 7] [--json] [--rounds 3 --quiet-below 1.5]
    [--breakdown] [--backend duckdb|spark|postgres [--url URL]]

The refresh: filter on two dimensions (region in NA/EMEA, deal type New Business/Expansion),
then a segment KPI table by industry (opportunities, open, won, lost, win rate with its Wilson
95% interval, bookings, ASP, median won cycle, portfolio discount, Kaplan-Meier median days to
close with open deals censored at the as-of date) and a discount-band table (opportunities,
won, lost, win rate, median won cycle, portfolio discount). Three implementations (and two
variants of the SQL) compute the same numbers:

- ``library``: salesops_widgets.metrics (Ibis expressions on the embedded DuckDB);
- ``pandas``: plain pandas on the same deals, held in memory as a DataFrame;
- ``sql``: hand-written DuckDB SQL on the same deals table, with the same numpy Kaplan-Meier,
  filtering and grouping on the text labels as an analyst would write it;
- ``sql_codes``: the same SQL on the table's dictionary-code columns (``_c_region`` IN codes
  looked up in the dictionaries; labels put back on the result), for reference;
- ``sql_grouped``: SQL on the code columns written the way the library works: two grouped
  queries (counts and sums per segment or band, status and days), the medians and the
  Kaplan-Meier curve from those counts in numpy, for reference. The code columns are made by
  ``deals()`` (the library's prepared table), so the SQL variants on codes lean on that step.

``--breakdown`` also times each KPI call of the library alone and the engine alone on the SQL
the library keeps compiled (the rest of a call is Python: pandas, numpy, statistics).

All of them start from the deals table that ``load()`` + ``deals()`` prepare once per session
(dimensions already joined), so the timing is the refresh alone. Nothing here asserts on time.
On a shared machine, ``--rounds`` times everything several times in one session (waiting for
a 1-minute load average below ``--quiet-below`` first) and reports the quietest round.
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


def _band_cases() -> str:
    """The WHEN clauses of a SQL CASE giving each deal's band label: [low, high) on the discount
    rounded to 9 decimals, the last band closed (as the library documents); DOUBLE literals,
    since a bare 0.10 is a DECIMAL in DuckDB."""
    edges = list(zip(BANDS[:-1], BANDS[1:], strict=True))
    return " ".join(
        f"WHEN round(discount, 9) >= {lo}::DOUBLE AND round(discount, 9) "
        f"{'<=' if i == len(edges) - 1 else '<'} {hi}::DOUBLE THEN '{label}'"
        for i, ((lo, hi), label) in enumerate(zip(edges, _band_labels(), strict=True))
    )


LABEL_WHERE = "region IN ('NA', 'EMEA') AND deal_type IN ('New Business', 'Expansion')"


def refresh_sql(
    con, table: str, where: str = LABEL_WHERE, segment: str = SEGMENT, decode=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The refresh as hand-written DuckDB SQL (plus the same numpy Kaplan-Meier).

    By default on the labels, as an analyst writes it. :func:`sql_on_codes` gives the
    ``where``, ``segment`` and ``decode`` of the same query on the dictionary-code columns.
    """
    seg = con.execute(
        f"""
        SELECT {segment} AS {SEGMENT},
               count(*) AS opportunities,
               count(*) FILTER (WHERE status = 'open') AS open,
               count(*) FILTER (WHERE status = 'won') AS won,
               count(*) FILTER (WHERE status = 'lost') AS lost,
               coalesce(sum(amount) FILTER (WHERE status = 'won'), 0) AS bookings,
               median(cycle_days) FILTER (WHERE status = 'won') AS median_cycle_days_won,
               1 - sum(amount) FILTER (WHERE list_amount > 0)
                 / sum(list_amount) FILTER (WHERE list_amount > 0) AS portfolio_discount
        FROM {table} WHERE {where} GROUP BY {segment}
        """
    ).df()
    counts = con.execute(
        f"""
        SELECT {segment} AS {SEGMENT}, duration_days,
               count(*) FILTER (WHERE is_closed) AS events,
               count(*) FILTER (WHERE NOT is_closed) AS censored
        FROM {table} WHERE {where} GROUP BY ALL
        """
    ).df()
    if decode is not None:
        seg[SEGMENT] = seg[SEGMENT].map(decode)
        counts[SEGMENT] = counts[SEGMENT].map(decode)
    km = {
        name: _km_median(
            part["duration_days"].to_numpy(float),
            part["events"].to_numpy(float),
            part["censored"].to_numpy(float),
        )
        for name, part in counts.groupby(SEGMENT)
    }
    seg["km_median_days_to_close"] = seg[SEGMENT].map(km)
    cases = _band_cases()
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


def refresh_sql_grouped(
    con, table: str, where: str = LABEL_WHERE, segment: str = SEGMENT, decode=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The refresh as SQL that, like the library, asks the engine only for counts and sums per
    segment (or band), status and days, and takes the medians from those counts in numpy: two
    grouped queries instead of :func:`refresh_sql`'s three with holistic medians."""
    seg_rows = con.execute(
        f"""
        SELECT {segment} AS {SEGMENT}, duration_days, status, count(*) AS n,
               sum(amount) AS amount,
               sum(amount) FILTER (WHERE list_amount > 0) AS net,
               sum(list_amount) FILTER (WHERE list_amount > 0) AS list
        FROM {table} WHERE {where} GROUP BY ALL
        """
    ).df()
    cases = _band_cases()
    band_rows = con.execute(
        f"""
        SELECT band, won_days, status, count(*) AS n, sum(net) AS net, sum(list) AS list
        FROM (SELECT CASE {cases} END AS band, status,
                     CASE WHEN status = 'won' THEN cycle_days END AS won_days,
                     CASE WHEN list_amount > 0 THEN amount END AS net,
                     CASE WHEN list_amount > 0 THEN list_amount END AS list
              FROM {table} WHERE {where})
        WHERE band IS NOT NULL GROUP BY ALL
        """
    ).df()
    if decode is not None:
        seg_rows[SEGMENT] = seg_rows[SEGMENT].map(decode)

    def won_median(days: np.ndarray, n: np.ndarray) -> float:
        keep = ~np.isnan(days)
        return float(np.median(np.repeat(days[keep], n[keep]))) if keep.any() else float("nan")

    def table(rows: pd.DataFrame, key: str, days: str) -> pd.DataFrame:
        n, status = rows["n"], rows["status"]
        won = (status == "won").to_numpy()
        parts = {s: n.where(status == s, 0) for s in ("open", "won", "lost")}
        parts.update(opportunities=n, net=rows["net"], list=rows["list"])
        if "amount" in rows:
            parts["bookings"] = rows["amount"].where(status == "won", 0.0)
        out = pd.DataFrame(parts).groupby(rows[key]).sum()
        out["portfolio_discount"] = 1 - out.pop("net") / out.pop("list")
        w = rows[won]
        w_days, w_n = w[days].to_numpy(float), w["n"].to_numpy(int)
        medians = {k: won_median(w_days[i], w_n[i]) for k, i in w.groupby(key).indices.items()}
        out["median_cycle_days_won"] = pd.Series(medians, dtype=float)
        return out

    seg = table(seg_rows, SEGMENT, "duration_days")
    ev = seg_rows["n"].where(seg_rows["status"] != "open", 0).rename("ev")
    ce = (seg_rows["n"] - ev).rename("ce")
    km = pd.concat([ev, ce], axis=1).groupby([seg_rows[SEGMENT], seg_rows["duration_days"]]).sum()
    seg["km_median_days_to_close"] = {
        name: _km_median(
            part.index.get_level_values(1).to_numpy(float),
            part["ev"].to_numpy(float),
            part["ce"].to_numpy(float),
        )
        for name, part in km.groupby(level=0)
    }
    disc = table(band_rows, "band", "won_days")
    return _finish_segments(seg.reset_index()), _finish_bands(disc.reset_index())


def sql_on_codes(data) -> tuple[str, str, dict] | None:
    """``where``, ``segment`` and ``decode`` for :func:`refresh_sql` on the code columns of
    the kept deals table (the filter values looked up in the dictionaries, as an analyst would
    after reading them); None when the engine has no codes."""
    from salesops_widgets.metrics._codes import code_column
    from salesops_widgets.metrics._deals import dimension_labels

    labels = dimension_labels(data)
    if not all(d in labels for d in [*FILTERS, SEGMENT]):
        return None
    where = " AND ".join(
        f"{code_column(d)} IN ({', '.join(str(labels[d].index(v)) for v in values)})"
        for d, values in FILTERS.items()
    )
    return where, code_column(SEGMENT), dict(enumerate(labels[SEGMENT]))


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


def _wait_for_quiet(below: float | None, limit: float) -> float:
    """Seconds spent waiting for the 1-minute load average to fall below ``below``."""
    start = time.perf_counter()
    while below is not None and os.getloadavg()[0] >= below:
        if time.perf_counter() - start > limit:
            break
        time.sleep(10)
    return time.perf_counter() - start


PANDAS_COLUMNS = [
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


def _round(data, table, frame_of, repeat: int, quiet: tuple[float | None, float]) -> dict:
    """One timing of the three (four) implementations, checked equal; with load averages."""
    waited = _wait_for_quiet(*quiet)
    before = os.getloadavg()[0]
    lib_ms, lib_out = _time(lambda: refresh_library(data), repeat)
    raw = data.con.con
    sql_ms, sql_out = _time(lambda: refresh_sql(raw, table.get_name()), repeat)
    _compare("sql vs library", sql_out, lib_out)
    timing = {"library_ms": lib_ms, "sql_ms": sql_ms, "sql_codes_ms": None, "pandas_ms": None}
    timing["sql_grouped_ms"] = None
    on_codes = sql_on_codes(data)
    if on_codes is not None:
        from salesops_widgets.metrics._deals import select_coded_deals

        kept = select_coded_deals(data).get_name()  # the kept table, code columns and all
        timing["sql_codes_ms"], out = _time(lambda: refresh_sql(raw, kept, *on_codes), repeat)
        _compare("sql on codes vs library", out, lib_out)
        grouped = lambda: refresh_sql_grouped(raw, kept, *on_codes)  # noqa: E731
        timing["sql_grouped_ms"], out = _time(grouped, repeat)
        _compare("grouped sql on codes vs library", out, lib_out)
    # the library path's peak memory: before the pandas copy of the deals exists
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame = frame_of()
    if frame is not None:
        timing["pandas_ms"], pd_out = _time(lambda: refresh_pandas(frame), repeat)
        _compare("pandas vs library", pd_out, lib_out)
    timing.update(load_before=before, load_after=os.getloadavg()[0], waited_s=waited)
    return timing


def _ms(a: float | None) -> float | None:
    return None if a is None else round(a, 1)


def _breakdown(data, repeat: int) -> dict:
    """Where the library's refresh spends its time: each KPI call, and the engine alone on the
    compiled SQL it keeps (``_engine.run_query``); the rest is Python (pandas, numpy,
    statistics)."""
    from salesops_widgets import metrics
    from salesops_widgets.metrics._engine import _fetch, compiled_queries

    calls = {
        "segment_kpis": lambda: metrics.segment_kpis(data, by=[SEGMENT], filters=FILTERS),
        "discount_bands": lambda: metrics.discount_bands(data, filters=FILTERS, bands=BANDS),
    }
    out = {f"{name}_ms": round(_time(fn, repeat)[0], 1) for name, fn in calls.items()}
    for key, (sql, schema, _) in compiled_queries(data).items():
        engine = _time(lambda: data.con.con.sql(sql).to_arrow_table(), repeat)[0]  # noqa: B023
        fetched = _time(lambda: _fetch(data.con, sql, schema), repeat)[0]  # noqa: B023
        out[f"{key[0]}_engine_ms"] = round(engine, 1)
        out[f"{key[0]}_engine_to_pandas_ms"] = round(fetched, 1)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a / b, 2)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time everything this many times in the same session; the figures reported are "
        "those of the quietest round (lowest load average), and every round is listed",
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=None,
        help="before each round, wait (at most --quiet-wait seconds) for the 1-minute load "
        "average to fall below this: on a shared machine other work changes the figures "
        "several-fold",
    )
    parser.add_argument("--quiet-wait", type=float, default=1800)
    parser.add_argument(
        "--backend",
        choices=["duckdb", "spark", "postgres"],
        default="duckdb",
        help="spark or postgres: the library's refresh on that engine beside DuckDB "
        "(benchmarks/backends.py)",
    )
    parser.add_argument("--url", default=None, help="--backend postgres: a superuser's URL")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time each KPI call of the library and its engine queries alone",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _parse_args(argv)

    from salesops_widgets import load
    from salesops_widgets.data import write_sample
    from salesops_widgets.metrics import deals

    folder = args.dir or Path(f"/tmp/salesops-bench-{args.rows}-parquet")
    if not (folder / "opportunities.parquet").exists():
        write_sample(folder, n_opportunities=args.rows)
    if args.backend != "duckdb":
        from benchmarks.backends import run

        result = run(args, folder, refresh_library, _compare)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        return result
    start = time.perf_counter()
    data = load(folder)
    table = deals(data)
    prepare_s = time.perf_counter() - start
    frames: list = []

    def frame_of():
        if args.skip_pandas:
            return None
        if not frames:
            frames.append(table.select(*PANDAS_COLUMNS).to_pandas())
        return frames[0]

    quiet = (args.quiet_below, args.quiet_wait)
    rounds = [_round(data, table, frame_of, args.repeat, quiet) for _ in range(args.rounds)]
    best = min(rounds, key=lambda r: r["load_before"] + r["load_after"])
    result = {
        "rows": args.rows,
        "library_ms": round(best["library_ms"], 1),
        "sql_ms": round(best["sql_ms"], 1),
        "pandas_ms": None if best["pandas_ms"] is None else round(best["pandas_ms"], 1),
        "library_vs_sql": _ratio(best["library_ms"], best["sql_ms"]),
        "sql_codes_ms": None if best["sql_codes_ms"] is None else round(best["sql_codes_ms"], 1),
        "library_vs_sql_codes": _ratio(best["library_ms"], best["sql_codes_ms"]),
        "sql_grouped_ms": _ms(best["sql_grouped_ms"]),
        "library_vs_sql_grouped": _ratio(best["library_ms"], best["sql_grouped_ms"]),
        "pandas_vs_library": _ratio(best["pandas_ms"], best["library_ms"]),
        "prepare_s": round(prepare_s, 1),
        "same_numbers": True,
        "cores": os.cpu_count(),
        "load_average_1min": round(best["load_after"], 2),
        "load_average_before": round(best["load_before"], 2),
        "peak_rss_mb": round(rounds[0]["peak_rss_mb"]),
    }
    if args.rounds > 1:
        keys = ["library_ms", "sql_ms", "sql_codes_ms", "sql_grouped_ms", "pandas_ms"]
        keys += ["load_before", "load_after"]
        result["rounds"] = [
            {k: None if r[k] is None else round(r[k], 1 if k.endswith("ms") else 2) for k in keys}
            | {"waited_s": round(r["waited_s"])}
            for r in rounds
        ]
    if args.breakdown:
        result["breakdown"] = _breakdown(data, args.repeat) | {
            "load_average_1min": round(os.getloadavg()[0], 2)
        }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
